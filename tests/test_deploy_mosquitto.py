"""deploy/mosquitto/: the production broker config, run for real on loopback.

mosquitto starts from a copy of Debian 12's /etc/mosquitto/mosquitto.conf
with deploy/mosquitto/netroom.conf in its conf.d and acl.example as the ACL,
so a duplicate option or a wrong ACL line fails here as it would on the
server. Only file locations and the port are moved into the test's temp dir.
"""
from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from harness import REPO, count, run_cli, wait_count, write_config
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from servers import Influxd, Mosquitto, wait_until

DEPLOY = REPO / "deploy" / "mosquitto"
PASSWD_BIN = "/usr/bin/mosquitto_passwd"
# Debian 12's /etc/mosquitto/mosquitto.conf, with {d} for the locations.
DEBIAN_MAIN = """pid_file {d}/mosquitto.pid

persistence true
persistence_location {d}/

log_dest file {d}/mosquitto.log

include_dir {d}/conf.d
"""
USERS = {"sq-1": "pw-one", "sq-2": "pw-two", "netroom-collector": "pw-collector"}
NOT_AUTHORIZED = 0x87


class ProductionMosquitto(Mosquitto):
    """Mosquitto running deploy/mosquitto/netroom.conf + acl.example."""

    def _argv(self) -> list[str]:
        d = self.datadir
        conf = (DEPLOY / "netroom.conf").read_text()
        moves = {
            "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1",
            "/etc/mosquitto/netroom.passwd": str(d / "netroom.passwd"),
            "/etc/mosquitto/netroom.acl": str(d / "netroom.acl"),
        }
        for old, new in moves.items():
            assert conf.count(old) >= 1, f"netroom.conf no longer has {old!r}"
            conf = conf.replace(old, new)
        (d / "conf.d").mkdir(exist_ok=True)
        (d / "conf.d" / "netroom.conf").write_text(conf)
        (d / "netroom.acl").write_text((DEPLOY / "acl.example").read_text())
        # As root mosquitto 2.0 would switch to user `mosquitto`, which cannot
        # write the test's temp dir.
        self.config_path.write_text("user root\n" + DEBIAN_MAIN.format(d=d))
        return [self.binary, "-c", str(self.config_path)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    if not Path(PASSWD_BIN).exists():
        pytest.fail(f"{PASSWD_BIN} missing: apt-get install mosquitto", pytrace=False)
    server = ProductionMosquitto(workdir=tmp_path / "broker")
    passwd = server.datadir / "netroom.passwd"
    for i, (user, password) in enumerate(USERS.items()):
        args = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run([PASSWD_BIN, *args, str(passwd), user, password], check=True)
    server.start()
    yield server
    server.kill()


class Client:
    """A paho MQTT 5 client that records CONNACK, PUBACK, SUBACK and messages."""

    def __init__(self, broker: Mosquitto, user: str | None, password: str | None = None,
                 client_id: str = "", persistent: bool = False) -> None:
        self.broker = broker
        self.persistent = persistent
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id=client_id or f"t-{uuid.uuid4().hex[:8]}")
        if user is not None:
            self.c.username_pw_set(user, password if password is not None else USERS[user])
        self.connack: Any = None
        self.acks: dict[int, int] = {}
        self.suback: list[int] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.suback.extend(r.value for r in rcs)
        self.c.on_message = self._on_message

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        with self.lock:
            self.acks[mid] = rc.value

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(m)

    def connect(self) -> Any:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            props.SessionExpiryInterval = 3600
        self.c.connect(self.broker.host, self.broker.port, clean_start=not self.persistent,
                       properties=props)
        self.c.loop_start()
        assert wait_until(lambda: self.connack is not None, 10), "no CONNACK"
        return self.connack

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.c.publish(topic, payload, qos=1)
        assert wait_until(lambda: info.mid in self.acks, 10), f"no PUBACK for {topic}"
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> int:
        self.suback.clear()
        self.c.subscribe(topic, qos=1)
        assert wait_until(lambda: bool(self.suback), 10), "no SUBACK"
        return self.suback[0]

    def topics(self) -> list[str]:
        with self.lock:
            return [m.topic for m in self.messages]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def client(broker: ProductionMosquitto) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(user: str | None, password: str | None = None, **kw: Any) -> Client:
        c = Client(broker, user, password, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_anonymous_and_wrong_password_are_refused(client: Callable[..., Client]) -> None:
    assert client(None).connect().is_failure
    assert client("sq-1", "not-the-password").connect().is_failure
    assert not client("sq-1").connect().is_failure


# collector.workers > 1 subscribes through a shared subscription (collector/workers.py).
@pytest.mark.parametrize("subscription", ["netroom/v1/#", "$share/netroom-collector/netroom/v1/#"])
def test_site_user_publishes_only_under_its_own_site(client: Callable[..., Client],
                                                     subscription: str) -> None:
    collector = client("netroom-collector")
    collector.connect()
    assert collector.subscribe(subscription) == 1  # granted QoS 1
    agent = client("sq-1")
    agent.connect()
    assert agent.publish("netroom/v1/sq-2/pc-01/metrics") == NOT_AUTHORIZED
    assert agent.publish("netroom/v1/sq-1x/pc-01/metrics") == NOT_AUTHORIZED
    assert agent.publish("other/topic") == NOT_AUTHORIZED
    assert agent.publish("netroom/v1/sq-1/pc-01/metrics") == 0
    # One publisher, one subscriber, QoS 1: order is kept, so once the allowed
    # message is in, a wrongly delivered one would be in too.
    assert wait_until(lambda: collector.topics() != [], 10)
    assert collector.topics() == ["netroom/v1/sq-1/pc-01/metrics"]


def test_agents_cannot_read(client: Callable[..., Client]) -> None:
    """mosquitto 2.0 grants the SUBSCRIBE and filters each message by read access."""
    collector = client("netroom-collector")
    collector.connect()
    collector.subscribe("netroom/v1/#")
    spy = client("sq-1")
    spy.connect()
    spy.subscribe("netroom/v1/#")
    other = client("sq-2")
    other.connect()
    assert other.publish("netroom/v1/sq-2/pc-01/metrics") == 0
    assert wait_until(lambda: collector.topics() != [], 10)
    # The broker fans a message out to all subscribers at once; a SUBACK to
    # the spy, sent after that, arrives after anything queued for it before.
    spy.subscribe("netroom/v1/sq-1/#")
    assert spy.topics() == []


def test_collector_queue_survives_broker_restart(broker: ProductionMosquitto,
                                                 client: Callable[..., Client]) -> None:
    """The persistent session's queue is saved at a clean stop and served after it."""
    collector = client("netroom-collector", client_id="netroom-collector", persistent=True)
    collector.connect()
    collector.subscribe("netroom/v1/#")
    collector.close()
    agent = client("sq-1")
    agent.connect()
    sent = [f"netroom/v1/sq-1/pc-0{i}/metrics" for i in range(1, 6)]
    assert [agent.publish(t) for t in sent] == [0] * 5
    agent.close()
    broker.stop()  # SIGTERM: mosquitto writes mosquitto.db
    assert (broker.datadir / "mosquitto.db").exists()
    broker.start()
    again = client("netroom-collector", client_id="netroom-collector", persistent=True)
    assert again.connect().value == 0
    assert wait_until(lambda: len(again.topics()) >= 5, 10), again.topics()
    assert again.topics() == sent


def test_real_agent_and_collector_with_passwords_from_env(
        broker: ProductionMosquitto, influxd: Influxd, influx_db: str, tmp_path: Path,
        run_collector: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped ACL lets the real collector subscribe and the real agent publish."""
    cfg = write_config(tmp_path, broker, influxd, influx_db,
                       mqtt={"host": broker.host, "port": broker.port,
                             "username": "netroom-collector"})
    monkeypatch.setenv("NETROOM_MQTT_PASSWORD", USERS["netroom-collector"])
    run_collector(cfg)
    pc = tmp_path / "pc"
    pc.mkdir()
    agent_cfg = write_config(pc, broker, mqtt={"host": broker.host, "port": broker.port,
                                               "username": "sq-1"})
    ok = run_cli("agent", "--config", str(agent_cfg), "--once", "--timeout", "20",
                 env={"NETROOM_MQTT_PASSWORD": USERS["sq-1"]})
    assert ok.returncode == 0, ok.stderr
    assert wait_count(influxd, influx_db, "metrics", "uptime_s", 1) == 1
    # The same PC with another site's password: the broker refuses the login,
    # the agent says so and keeps the round in its outbox.
    bad = run_cli("agent", "--config", str(agent_cfg), "--once", "--timeout", "3",
                  env={"NETROOM_MQTT_PASSWORD": USERS["sq-2"]})
    assert bad.returncode == 1
    assert "did not acknowledge" in bad.stderr
    assert count(influxd, influx_db, "metrics", "uptime_s") == 1
