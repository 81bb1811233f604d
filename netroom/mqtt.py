"""The one paho wrapper: MQTT config, client set-up (protocol, auth, TLS), session.

The agent publishes and the collector subscribes through clients made here,
so both speak MQTT the same way.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import ssl
import threading
import time
from contextlib import suppress
from typing import Any, Callable, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from netroom.settings import ConfigError, Section

log = logging.getLogger(__name__)

QOS = 1
# MQTT versions a client may speak (mqtt.protocol; the collector's own
# collector.mqtt_protocol, docs/benchmarks.md).
PROTOCOLS = ("5", "3.1.1")
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code (CONNACK, PUBACK, SUBACK)
BAD_CREDENTIALS = 0x86  # MQTT 5 CONNACK: bad user name or password


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

    def __repr__(self) -> str:
        """Every field but the password's value: a config may end up in a log line."""
        fields = ", ".join(
            f"{name}={'***' if name == 'password' and value else value!r}"
            for name, value in zip(self._fields, self))
        return f"MqttConfig({fields})"


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
        protocol=s.choice("protocol", PROTOCOLS, "5"),
        keepalive_s=s.integer("keepalive_s", 60, 5, 3600),
    )
    s.done()
    return cfg


def make_client(cfg: MqttConfig, client_id: str, persistent: bool = False,
                manual_ack: bool = False, idle: bool = False) -> mqtt.Client:
    """A paho client set up from config (protocol, auth, TLS).

    Run its network loop with an IdleLoop (loop_start() works too). ``idle``
    is accepted for older callers and ignored: how often the loop wakes is
    the IdleLoop's business now.
    """
    del idle
    v5 = cfg.protocol == "5"
    client = mqtt.Client(
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
    return client


class IdleLoop:
    """paho's network loop on one thread: for a mostly idle client (the agent),
    and for a busy one (the collector's ingest).

    Why not loop_start(): its thread waits in select() for at most 1 s, so an
    idle agent wakes every second. Measured on a small PC that costs about
    0.33 ms of CPU per second, some 9x the agent's own collection cost.
    This thread sleeps until the socket has data, a publish() needs writing
    or keepalive/3 s have passed (loop_misc: PINGREQ and the keepalive
    check; a third, so a PINGREQ is never later than the broker's
    1.5 x keepalive limit).

    Only paho's documented external-loop API is used: on_socket_open/close
    and on_socket_register_write/unregister_write wake the thread through a
    socketpair; loop_read(), loop_write() and loop_misc() do the work;
    reconnect() (re)connects, retried with a backoff of MIN_DELAY_S doubling
    to MAX_DELAY_S until stop(). Because no paho thread runs and
    on_socket_register_write is set, publish() from another thread never
    writes the socket itself: paho queues the packet and calls our
    register_write callback (paho 2.x Client._packet_queue), and this thread
    writes it. For the collector that means a PUBACK costs the writer thread
    no wake-up of its own: the acks of a batch go out in one turn here.

    ``on_connect_fail(exc)`` is called for every failed connection attempt
    (refused, unreachable, timed out, TLS), as paho's on_connect_fail is.
    """

    MIN_DELAY_S = 1.0
    MAX_DELAY_S = 30.0
    DRAIN_MAX = 1000  # packets read in one turn while bytes are pending

    def __init__(self, client: mqtt.Client,
                 on_connect_fail: Callable[[Exception], None] | None = None) -> None:
        self.client = client
        self.on_connect_fail = on_connect_fail
        self.misc_s = 20.0  # set from the keepalive by start()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._watched: Any = None  # the client socket registered in _sel
        self._events = 0
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_change
        client.on_socket_unregister_write = self._on_socket_change

    def start(self, **connect_kwargs: Any) -> None:
        """Connect in the background (connect_async's arguments); reconnect until stop()."""
        self.misc_s = max(float(connect_kwargs.get("keepalive", 60)) / 3, 0.1)
        self.client.connect_async(**connect_kwargs)
        self._thread = threading.Thread(target=self._run, name="mqtt-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send DISCONNECT if connected, then end the thread (waits up to timeout_s)."""
        self._stop_deadline = time.monotonic() + timeout_s
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout_s + 1)
            if self._thread.is_alive():
                return  # a connect attempt still blocks; the daemon thread ends with it
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # paho's callbacks (any thread): only wake ours, which owns the selector.
    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._wake()

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if threading.current_thread() is self._thread:
            self._unwatch()  # before paho closes it: its fd may be reused at once
        else:
            self._wake()

    def _on_socket_change(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._wake()

    def _wake(self) -> None:
        with suppress(OSError):  # BlockingIOError: a wake-up is already pending
            self._wake_w.send(b"x")

    def _unwatch(self) -> None:
        if self._watched is not None:
            with suppress(KeyError, ValueError, OSError):
                self._sel.unregister(self._watched)
            self._watched = None

    def _watch(self, sock: Any) -> None:
        """Select on ``sock``: for reading, and for writing while paho has data to send."""
        if sock is not self._watched:
            self._unwatch()
        if sock is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.client.want_write() else 0)
        if self._watched is None:
            self._sel.register(sock, events)
            self._watched = sock
        elif events != self._events:
            self._sel.modify(sock, events)
        self._events = events

    def _run(self) -> None:
        client = self.client
        delay = self.MIN_DELAY_S
        next_try = time.monotonic()  # the first attempt at once
        next_misc = 0.0
        had_sock = False
        disconnected: Any = None  # the socket DISCONNECT was asked for on
        while True:
            try:
                now = time.monotonic()
                sock = client.socket()
                if self._stopping.is_set():
                    if sock is None or now >= self._stop_deadline:
                        break
                    if disconnected is not sock:
                        disconnected = sock
                        client.disconnect()  # queued; paho closes after sending it
                elif sock is None:
                    if had_sock:  # lost: wait before trying again
                        had_sock = False
                        next_try = now + delay
                        delay = min(delay * 2, self.MAX_DELAY_S)
                    if now >= next_try:
                        try:
                            client.reconnect()
                        except (OSError, ValueError) as exc:  # ValueError: IDNA (UnicodeError)
                            next_try = now + delay
                            delay = min(delay * 2, self.MAX_DELAY_S)
                            if self.on_connect_fail is not None:
                                self.on_connect_fail(exc)
                        sock = client.socket()
                        next_misc = now + self.misc_s
                if sock is not None:
                    had_sock = True
                    if client.is_connected():
                        delay = self.MIN_DELAY_S
                self._watch(sock)
                self._step(sock, next_try if sock is None else next_misc)
                if client.socket() is not None and time.monotonic() >= next_misc:
                    client.loop_misc()
                    next_misc = time.monotonic() + self.misc_s
            except Exception:  # a callback's bug must not end the loop quietly
                log.exception("MQTT network loop")
                self._stopping.wait(1.0)
        self._unwatch()

    def _step(self, sock: Any, until: float) -> None:
        """Wait until ``until`` (monotonic s) or an event; read and write what is ready."""
        timeout = max(until - time.monotonic(), 0.0)
        if self._stopping.is_set():
            timeout = min(timeout, max(self._stop_deadline - time.monotonic(), 0.0))
        # TLS: bytes already decrypted.
        pending = getattr(sock, "pending", None)
        if pending is not None and pending() > 0:
            timeout = 0.0
        for key, mask in self._sel.select(timeout):
            if key.fileobj is self._wake_r:
                with suppress(OSError):
                    self._wake_r.recv(4096)
                continue
            if mask & selectors.EVENT_READ and self.client.socket() is key.fileobj:
                self.client.loop_read()
            if mask & selectors.EVENT_WRITE and self.client.socket() is key.fileobj:
                self.client.loop_write()
        # loop_read() takes one packet: take what is already read, up to
        # DRAIN_MAX (then writes, e.g. PUBACKs, and loop_misc get their turn).
        n = 0
        while (pending is not None and n < self.DRAIN_MAX and self.client.socket() is sock
               and pending() > 0):
            self.client.loop_read()
            n += 1


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




# Why a connection failed, as codes (netroom.doctor words them in zh and en)
# and as one English line for logs. Never the password.
UNREACHABLE = ("refused", "unknown_host", "timeout", "cannot_connect")  # nothing answered


def connect_failure(exc: BaseException) -> tuple[str, str]:
    """(code, detail) of a failed connection attempt (DNS, TCP, TLS); codes:
    tls_untrusted, tls_handshake, unknown_host, refused, timeout, cannot_connect."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_untrusted", str(exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        return "tls_handshake", str(exc.reason or exc)
    if isinstance(exc, socket.gaierror):
        return "unknown_host", str(exc.strerror or exc)
    if isinstance(exc, ConnectionRefusedError):
        return "refused", ""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout", ""
    if isinstance(exc, OSError):
        return "cannot_connect", str(exc.strerror or exc)
    return "cannot_connect", f"{type(exc).__name__}: {exc}"


def connect_cause(exc: BaseException, host: str, tls: bool) -> str:
    """One line on why a connection attempt failed (DNS, TCP, TLS)."""
    code, detail = connect_failure(exc)
    if code == "tls_untrusted":
        return (f"TLS: the broker's certificate is not trusted: {detail} "
                "(mqtt.host must be a name in the certificate, mqtt.tls.ca the CA that signed it)")
    if code == "tls_handshake":
        return f"TLS handshake failed: {detail} (is it the broker's TLS port?)"
    if code == "unknown_host":
        return f"unknown host {host!r}: {detail} (check mqtt.host and DNS)"
    if code == "refused":
        return "connection refused: nothing listens there (is mosquitto running, the right port?)"
    if code == "timeout":
        return "timed out connecting (a firewall, or a wrong address?)"
    text = f"cannot connect: {detail}"
    if tls and isinstance(exc, (ConnectionResetError, ConnectionAbortedError)):
        text += " (mqtt.tls is set: is it the broker's TLS port?)"
    return text


def connack_failure(reason: Any) -> str:
    """The code of a refused CONNECT: bad_login, not_authorized or connack."""
    if reason.value == BAD_CREDENTIALS:
        return "bad_login"
    if reason.value == NOT_AUTHORIZED:
        return "not_authorized"
    return "connack"  # paho words MQTT 3.1.1's return codes as MQTT 5 reason codes


def connack_cause(reason: Any, username: str | None) -> str:
    """One line on why the broker refused our CONNECT; never the password."""
    who = f"user {username!r}" if username else "an anonymous login (no mqtt.username)"
    code = connack_failure(reason)
    if code == "bad_login":
        return f"bad user name or password: the broker refused {who}"
    if code == "not_authorized":
        # mosquitto 2.0 says this for a wrong password as well.
        return (f"not authorized: the broker refused {who} "
                "(wrong password, unknown user, or not allowed to connect)")
    return f"the broker refused the connection: {str(reason).lower()} (0x{reason.value:02X})"
