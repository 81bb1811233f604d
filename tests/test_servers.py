"""Prove the server fixtures start real servers that keep data across restarts."""

from __future__ import annotations

import json
import threading
import urllib.parse
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from servers import OPENER, Influxd, Mosquitto, free_port, wait_until


class Sub:
    """MQTT5 subscriber collecting (topic, payload, retain) tuples."""

    def __init__(self, server: Mosquitto, topic: str, client_id: str = "",
                 clean_start: bool = True) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.got.append(
            (m.topic, bytes(m.payload), m.retain))
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600  # seconds
        self.client.connect(server.host, server.port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(5), "no SUBACK within 5 s"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(server: Mosquitto, topic: str, payloads: list[bytes], retain: bool = False) -> None:
    """Publish at QoS 1 and wait for every PUBACK."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(server.host, server.port)
    c.loop_start()
    try:
        for p in payloads:
            c.publish(topic, p, qos=1, retain=retain).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def test_free_port_is_loopback_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_mosquitto_pubsub_qos1(mosquitto: Mosquitto) -> None:
    sub = Sub(mosquitto, "netroom/#")
    try:
        publish(mosquitto, "netroom/a", [b"hello"])
        assert wait_until(lambda: len(sub.got) == 1, 5)
        assert sub.got == [("netroom/a", b"hello", False)]
    finally:
        sub.close()


def test_mosquitto_retained_survives_restart(mosquitto: Mosquitto) -> None:
    publish(mosquitto, "netroom/keep", [b"kept"], retain=True)
    port = mosquitto.port
    mosquitto.stop()
    assert not mosquitto.running
    mosquitto.start()
    assert mosquitto.port == port
    sub = Sub(mosquitto, "netroom/keep")
    try:
        assert wait_until(lambda: len(sub.got) == 1, 5)
        assert sub.got == [("netroom/keep", b"kept", True)]
    finally:
        sub.close()


def test_mosquitto_queued_session_messages_survive_restart(mosquitto: Mosquitto) -> None:
    """QoS 1 messages queued for an offline persistent session outlive a clean restart.

    mosquitto 2.0.11 writes a session to disk only if it was created with
    clean_start=False: an MQTT5 session made with clean_start=True plus a
    Session Expiry Interval lives in memory only and is lost on restart.
    """
    Sub(mosquitto, "netroom/q", client_id="collector-1", clean_start=False).close()
    payloads = [str(i).encode() for i in range(50)]
    publish(mosquitto, "netroom/q", payloads)
    mosquitto.stop()
    mosquitto.start()
    sub = Sub(mosquitto, "netroom/q", client_id="collector-1", clean_start=False)
    try:
        assert wait_until(lambda: len(sub.got) >= 50, 5)
        assert [p for _, p, _ in sub.got] == payloads
    finally:
        sub.close()


def test_mosquitto_kill_and_extra_config(mosquitto_factory: Callable[..., Mosquitto]) -> None:
    server = mosquitto_factory(extra_config=["autosave_interval 1"])
    assert "autosave_interval 1" in server.config_path.read_text()
    server.kill()
    assert not server.running
    server.start()
    publish(server, "netroom/x", [b"1"])


def _http(url: str, data: bytes | None = None) -> Any:
    with OPENER.open(url, data=data, timeout=10) as r:
        body = r.read()
        return json.loads(body) if body else r.status


def test_influxd_write_and_read(influxd: Influxd) -> None:
    # Raw HTTP here, independent of the helpers under test.
    q = urllib.parse.urlencode({"q": "CREATE DATABASE t1"})
    assert _http(f"{influxd.url}/query?{q}", data=b"")["results"][0].get("error") is None
    w = urllib.parse.urlencode({"db": "t1", "precision": "ms"})
    assert _http(f"{influxd.url}/write?{w}", data=b"cpu,host=a usage=1.5 1700000000000") == 204
    res = influxd.query("SELECT usage FROM cpu", "t1")
    assert res["results"][0]["series"][0]["values"] == [[1700000000000, 1.5]]


def test_influxd_point_survives_restart_and_kill(influxd: Influxd, influx_db: str) -> None:
    influxd.write("m,host=b v=7i 1700000000123", influx_db)
    influxd.stop()
    influxd.start()
    influxd.write("m,host=b v=8i 1700000000456", influx_db)
    influxd.kill()  # acknowledged writes are in the fsync'ed WAL
    influxd.start()
    res = influxd.query("SELECT v FROM m", influx_db)
    assert res["results"][0]["series"][0]["values"] == [[1700000000123, 7], [1700000000456, 8]]


def test_influx_db_is_unique_and_empty(influxd: Influxd, influx_db: str) -> None:
    names = influxd.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
    assert [influx_db] in names
    assert "series" not in influxd.query("SHOW MEASUREMENTS", influx_db)["results"][0]


def test_influxd_auth(influxd_factory: Callable[..., Influxd]) -> None:
    server = influxd_factory(auth_enabled=True)
    server.post("CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES")
    with pytest.raises(RuntimeError, match="401"):
        server.query("SHOW DATABASES")
    server.auth = ("admin", "pw")
    assert "results" in server.query("SHOW DATABASES")


def test_missing_binary_fails_loudly(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"setup\.sh"):
        Mosquitto(workdir=tmp_path, binary="/nonexistent/mosquitto").start()
