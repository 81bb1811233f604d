"""No silent loss at the agent: what the broker refuses stays in the outbox,
and every failure is named in one line (issue 10, item 4).

Real mosquitto with a password file and an ACL that lets ``agent1`` publish
only under ``netroom/v1/sq-1/pc-1/``; the real agent (``--once``) or its
Publisher in this process. mosquitto 2.0 answers an ACL denial with PUBACK
0x87 Not authorized (MQTT 5, QoS 1) and a wrong password with CONNACK 0x87.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest
from harness import run_cli, write_config
from paho.mqtt.enums import CallbackAPIVersion
from servers import Mosquitto, free_port, password_file, self_signed, wait_until

from agent import transport
from agent.collectors.base import Job
from agent.runner import Runner
from agent.transport import Publisher
from netroom.mqtt import MqttConfig, connect_cause

PASSWORDS = {"agent1": "s3cret-agent", "reader": "s3cret-reader"}
ACL_PC1 = """user agent1
topic write netroom/v1/sq-1/pc-1/#

user reader
topic read netroom/v1/#
"""
ACL_SITE = ACL_PC1.replace("netroom/v1/sq-1/pc-1/#", "netroom/v1/sq-1/#")
DENIED = "netroom/v1/sq-1/pc-2"  # agent1 may not publish here under ACL_PC1
ALLOWED = "netroom/v1/sq-1/pc-1"


@pytest.fixture
def broker(tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """mosquitto with passwords and ACL_PC1 (rewrite ``acl`` and restart to change it)."""
    passwd = password_file(tmp_path / "passwd", PASSWORDS)
    acl = tmp_path / "acl"
    acl.write_text(ACL_PC1)
    return mosquitto_factory(extra_config=[
        "allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}",
        # As in deploy/mosquitto/netroom.conf. With 0 (no limit, the test
        # default) mosquitto 2.0.11 also drops the connection after refusing
        # a message; the agent copes, but that is not what this file tests.
        "max_queued_messages 1000000"])


def restart_with_acl(broker: Mosquitto, tmp_path: Path, acl: str) -> None:
    (tmp_path / "acl").write_text(acl)
    broker.stop()
    broker.start()


def reload_acl(broker: Mosquitto, tmp_path: Path, acl: str) -> None:
    """SIGHUP: mosquitto rereads its ACL file, connections stay."""
    (tmp_path / "acl").write_text(acl)
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)


class Reader:
    """Records what crosses the broker (user ``reader``)."""

    def __init__(self, mosq: Mosquitto, topic: str = "netroom/v1/#") -> None:
        self.messages: list[tuple[str, bytes]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"reader-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("reader", PASSWORDS["reader"])
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(mosq.host, mosq.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "reader did not subscribe"

    def topics(self) -> Counter[str]:
        return Counter(t for t, _ in list(self.messages))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_config(tmp_path: Path, mosq: Mosquitto, pc: str = "pc-2", **mqtt_cfg: Any) -> Path:
    """The agent of PC ``pc`` of site sq-1, user agent1; ``mqtt_cfg`` overrides."""
    return write_config(tmp_path, mosq,
                        mqtt={"host": mosq.host, "port": mosq.port, "username": "agent1",
                              **mqtt_cfg},
                        agent={"host": pc})


def run_agent(cfg: Path, password: str = PASSWORDS["agent1"],
              timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    return run_cli("agent", "--config", str(cfg), "--once", "--timeout", f"{timeout_s:g}",
                   env={"NETROOM_MQTT_PASSWORD": password})


def outbox_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "agent-state" / "outbox").glob("*.msg"))


def last_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    return r.stderr.strip().splitlines()[-1]


def test_refused_once_exits_1_keeps_the_messages_and_delivers_them_once_allowed(
        tmp_path: Path, broker: Mosquitto) -> None:
    cfg = agent_config(tmp_path, broker)
    r = run_agent(cfg)
    assert r.returncode == 1, r.stderr
    line = last_line(r)
    assert line.startswith(f"netroom-agent: error: broker 127.0.0.1:{broker.port} refused "), line
    assert f"not authorized: user 'agent1' may not publish to {DENIED}/" in line
    assert "stay in the outbox" in line
    assert f"refused a message: not authorized: user 'agent1' may not publish to {DENIED}/" \
        in r.stderr  # the log line, at the default level
    kept = outbox_files(tmp_path)
    assert kept, "the refused messages left the outbox"
    assert f"; {len(kept)} message(s) stay in the outbox for the next run" in line

    restart_with_acl(broker, tmp_path, ACL_SITE)
    reader = Reader(broker, f"{DENIED}/#")
    try:
        r = run_agent(cfg)
        assert r.returncode == 0, r.stderr
        assert outbox_files(tmp_path) == []
        # Both rounds arrive: the one refused first, and this one.
        assert wait_until(lambda: sum(reader.topics().values()) >= 2 * len(kept), 20), \
            reader.topics()
        assert set(reader.topics().values()) == {2}, reader.topics()
    finally:
        reader.close()


def agent1(broker: Mosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, username="agent1",
                      password=PASSWORDS["agent1"])


class Metrics:
    """A collector of kind metrics that always works."""

    kind = "metrics"

    def collect(self) -> dict[str, Any]:
        return {"uptime_s": 1}


def test_a_refused_topic_is_held_back_without_holding_up_the_others(
        tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a topic is refused, its next messages wait in the outbox unsent
    (no retry during this test: an hour's backoff), other topics flow and
    the metrics ``errors`` say why; the agent restarted after the ACL is
    fixed delivers everything."""
    monkeypatch.setattr(transport, "RETRY_MIN_S", 3600.0)
    monkeypatch.setattr(transport, "RETRY_MAX_S", 3600.0)
    reader = Reader(broker, f"{ALLOWED}/#")
    pub = Publisher(agent1(broker), "agent-in-test", str(tmp_path / "outbox"))
    try:
        pub.start()
        assert pub.connected(10), pub.last_error
        pub.send(f"{DENIED}/metrics", b"refused-0")
        assert wait_until(lambda: pub.refused == 1, 10)
        for i in range(1, 6):
            pub.send(f"{DENIED}/metrics", f"refused-{i}".encode())
            pub.send(f"{ALLOWED}/probe", f"taken-{i}".encode())
        assert wait_until(lambda: reader.topics()[f"{ALLOWED}/probe"] == 5, 10), reader.topics()
        assert wait_until(pub.settled, 10)
        assert pub.refused == 1  # the five behind it were held, never sent
        assert pub.pending() == pub.held() == 6
        assert pub.refusals() == (1, [f"not authorized: user 'agent1' may not publish to "
                                      f"{DENIED}/metrics"])
        runner = Runner([Job(Metrics(), 60)],
                        lambda kind, body, ts: pub.send(f"{ALLOWED}/{kind}",
                                                        body["errors"].encode()),
                        problems=pub.problem)
        runner.run_once()
        assert wait_until(lambda: reader.topics()[f"{ALLOWED}/metrics"] == 1, 10)
        errors = next(p for t, p in reader.messages if t.endswith("/metrics")).decode()
        assert errors == (f"mqtt: 6 message(s) kept in the outbox: not authorized: user "
                          f"'agent1' may not publish to {DENIED}/metrics")
    finally:
        pub.close()
        reader.close()
    restart_with_acl(broker, tmp_path, ACL_SITE)
    reader = Reader(broker, f"{DENIED}/#")
    again = Publisher(agent1(broker), "agent-in-test", str(tmp_path / "outbox"))
    try:
        again.start()
        assert wait_until(lambda: again.pending() == 0, 20), again.last_error
        assert wait_until(lambda: len(reader.messages) == 6, 10)
        assert sorted(p for _, p in reader.messages) == [f"refused-{i}".encode()
                                                         for i in range(6)]
    finally:
        again.close()
        reader.close()


def test_a_running_agent_retries_a_refused_topic_and_delivers_once_allowed(
        tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """No restart, no reconnect: the backoff's probe finds the fixed ACL."""
    monkeypatch.setattr(transport, "RETRY_MIN_S", 0.2)
    monkeypatch.setattr(transport, "RETRY_MAX_S", 0.4)
    pub = Publisher(agent1(broker), "agent-in-test", str(tmp_path / "outbox"))
    try:
        pub.start()
        assert pub.connected(10), pub.last_error
        for i in range(5):
            pub.send(f"{DENIED}/status", f"refused-{i}".encode())
        assert wait_until(lambda: pub.refused >= 6, 20)  # all five, then a probe at least
        assert pub.pending() == pub.held() == 5
        reader = Reader(broker, f"{DENIED}/#")
        try:
            reload_acl(broker, tmp_path, ACL_SITE)
            assert wait_until(lambda: pub.pending() == 0, 20), pub.last_error
            assert wait_until(lambda: len(reader.messages) == 5, 10)
        finally:
            reader.close()
        assert pub.held() == 0 and pub.problem() == "" and pub.refusals() == (0, [])
    finally:
        pub.close()


def test_wrong_password_is_named_in_one_line_without_the_password(
        tmp_path: Path, broker: Mosquitto) -> None:
    cfg = agent_config(tmp_path, broker, pc="pc-1")
    r = run_agent(cfg, password="not-the-password", timeout_s=3)
    assert r.returncode == 1
    line = last_line(r)
    assert "not authorized: the broker refused user 'agent1'" in line, line
    assert "wrong password" in line and "stay in the outbox" in line
    logged = [ln for ln in r.stderr.splitlines()[:-1] if "refused user 'agent1'" in ln]
    assert len(logged) == 1, r.stderr  # rate-limited: retries say nothing new
    assert "not-the-password" not in r.stderr
    assert outbox_files(tmp_path)


def test_refused_port_is_named(tmp_path: Path, broker: Mosquitto) -> None:
    cfg = agent_config(tmp_path, broker, pc="pc-1", port=free_port())
    r = run_agent(cfg, timeout_s=3)
    assert r.returncode == 1
    assert "connection refused: nothing listens there" in last_line(r)


def test_unknown_host_is_named(tmp_path: Path, broker: Mosquitto) -> None:
    """``-no-such-broker.invalid`` never resolves (RFC 6761), and is not even
    asked: a leading hyphen is no host name, so glibc's resolver refuses it
    without sending a DNS query off this machine."""
    cfg = agent_config(tmp_path, broker, pc="pc-1", host="-no-such-broker.invalid")
    r = run_agent(cfg, timeout_s=3)
    assert r.returncode == 1, r.stderr
    assert "unknown host '-no-such-broker.invalid'" in last_line(r), r.stderr


def test_tls_name_mismatch_untrusted_certificate_and_plain_to_tls_are_named(tmp_path: Path,
                                    mosquitto_factory: Callable[..., Mosquitto]) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = self_signed(tmp_path)
    tls = mosquitto_factory(extra_config=[f"certfile {cert}", f"keyfile {key}"])
    causes = {}
    for case, settings in (("mismatch", {"tls": {"ca": str(cert)}}),  # made for broker.example
                           ("untrusted", {"tls": {}}),  # the system's CAs did not sign it
                           ("plain", {})):  # no TLS at all
        cfg = write_config(tmp_path, tls, mqtt={"host": "127.0.0.1", "port": tls.port,
                                                **settings})
        r = run_cli("agent", "--config", str(cfg), "--once", "--timeout", "3")
        assert r.returncode == 1, r.stderr
        causes[case] = last_line(r)
    assert "TLS: the broker's certificate is not trusted: IP address mismatch" \
        in causes["mismatch"], causes
    assert "TLS: the broker's certificate is not trusted: self" in causes["untrusted"], causes
    assert "signed certificate" in causes["untrusted"]  # OpenSSL 1.1 has no hyphen
    assert "the broker closed the connection before accepting it (a TLS port, without " \
        "mqtt.tls?)" in causes["plain"], causes


def test_timeout_and_other_causes_read_well() -> None:
    assert connect_cause(socket.timeout("timed out"), "broker", False).startswith("timed out")
    reset = connect_cause(ConnectionResetError(104, "Connection reset by peer"), "b", True)
    assert reset == ("cannot connect: Connection reset by peer "
                     "(mqtt.tls is set: is it the broker's TLS port?)")


def test_help_documents_the_exit_status() -> None:
    r = run_cli("agent", "--help")
    assert r.returncode == 0
    assert "exit status" in r.stdout and "refused" in r.stdout
