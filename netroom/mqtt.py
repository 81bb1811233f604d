"""The one paho wrapper: MQTT config, client set-up (protocol, auth, TLS), session.

The agent publishes and the collector subscribes through clients made here,
so both speak MQTT the same way.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from netroom.settings import ConfigError, Section

QOS = 1


class TlsConfig(NamedTuple):
    ca: str = ""
    cert: str = ""
    key: str = ""


class MqttConfig(NamedTuple):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    client_id: str = ""
    protocol: str = "5"  # "5" or "3.1.1"
    keepalive_s: int = 60


def read_mqtt(data: Any) -> MqttConfig:
    s = Section(data, "mqtt")
    tls = None
    if s.raw("tls") is not None:
        t = s.sub("tls")
        tls = TlsConfig(ca=t.text("ca", ""), cert=t.text("cert", ""), key=t.text("key", ""))
        if bool(tls.cert) != bool(tls.key):
            raise ConfigError("mqtt.tls: cert and key must be given together")
        for name in ("ca", "cert", "key"):
            path = getattr(tls, name)
            if path and not os.path.isfile(path):
                raise ConfigError(f"mqtt.tls.{name}: no such file {path!r}")
        t.done()
    cfg = MqttConfig(
        host=s.text("host", "127.0.0.1"),
        port=s.integer("port", 8883 if tls else 1883, 1, 65535),
        username=s.env("username"),
        password=s.env("password"),
        tls=tls,
        client_id=s.text("client_id", ""),
        protocol=s.choice("protocol", ("5", "3.1.1"), "5"),
        keepalive_s=s.integer("keepalive_s", 60, 5, 3600),
    )
    s.done()
    return cfg


class _Client(mqtt.Client):
    """paho's client whose network thread wakes rarely when idle.

    loop_start() polls every second, which on a small PC costs more CPU per
    minute than a whole metrics round. Traffic and publish() still wake the
    loop at once (socket and socketpair); only the keepalive check waits
    longer, at most ``loop_timeout_s``, kept to a third of the keepalive so a
    PINGREQ is never later than the broker's 1.5 x keepalive limit.
    """

    loop_timeout_s = 1.0

    def _thread_main(self) -> None:  # paho 2.x: the body loop_start() runs
        try:
            self.loop_forever(timeout=self.loop_timeout_s, retry_first_connection=True)
        finally:
            self._thread = None


def make_client(cfg: MqttConfig, client_id: str, persistent: bool = False,
                manual_ack: bool = False, idle: bool = False) -> mqtt.Client:
    """A paho client set up from config (protocol, auth, TLS).

    ``idle``: the client is mostly idle (an agent): its loop wakes every
    keepalive/3 s instead of every second.
    """
    v5 = cfg.protocol == "5"
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls is not None:
        client.tls_set(ca_certs=cfg.tls.ca or None, certfile=cfg.tls.cert or None,
                       keyfile=cfg.tls.key or None)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if idle:
        client.loop_timeout_s = cfg.keepalive_s / 3
    return client


def connect_args(cfg: MqttConfig, persistent: bool, receive_max: int = 0) -> dict[str, Any]:
    """Keyword arguments for connect(): session and flow control (MQTT 5)."""
    args: dict[str, Any] = {"host": cfg.host, "port": cfg.port, "keepalive": cfg.keepalive_s}
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if persistent:
            props.SessionExpiryInterval = 7 * 86400  # s the broker keeps our queue
        if receive_max:
            props.ReceiveMaximum = receive_max
        args["clean_start"] = not persistent
        args["properties"] = props
    return args


