"""deploy/mosquitto/: the production broker config, run for real on loopback.

mosquitto starts from a copy of Debian 12's /etc/mosquitto/mosquitto.conf
with deploy/mosquitto/netroom.conf in its conf.d and the users made by
deploy/mosquitto/netroom_credentials.py (tests/servers.py ProductionMosquitto),
so a duplicate option or a wrong grant fails here as it would on the server.
Only file locations and the port are moved into the test's temp dir. The
attacks on identities and the crash test are in tests/test_broker_identity.py.
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from harness import REPO, count, run_cli, wait_count, write_config
from mqttclient import Client
from servers import Influxd, ProductionMosquitto, wait_until

DEPLOY = REPO / "deploy" / "mosquitto"
PCS = [("sq-1", "pc-01"), ("sq-1", "pc-02"), ("sq-2", "pc-01")]
NOT_AUTHORIZED = 0x87


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    server = ProductionMosquitto(workdir=tmp_path / "broker", pcs=PCS)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def client(broker: ProductionMosquitto) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(user: str | None, password: str | None = None, client_id: str = "",
             **kw: Any) -> Client:
        if password is None:
            password = broker.passwords[user] if user is not None else ""
        c = Client(broker, user, password, client_id or f"t-{uuid.uuid4().hex[:8]}", **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_only_the_configured_listener_opens(broker: ProductionMosquitto) -> None:
    """A listener option written before the first `listener` line makes
    mosquitto open an extra one on port 1883 of every interface."""
    log = (broker.datadir / "mosquitto.log").read_text()
    opened = [line for line in log.splitlines() if "listen socket" in line]
    assert opened and all(line.endswith(f"on port {broker.port}.") for line in opened), opened
    assert "Error" not in log, log


def test_anonymous_and_wrong_password_are_refused(client: Callable[..., Client],
                                                  broker: ProductionMosquitto) -> None:
    assert client(None).connect().is_failure
    assert client("sq-1/pc-01", "not-the-password").connect().is_failure
    # One PC's password is no other's, not even in the same site.
    assert client("sq-1/pc-02", broker.passwords["sq-1/pc-01"]).connect().is_failure
    assert client("sq-1", broker.passwords["sq-1/pc-01"]).connect().is_failure
    assert not client("sq-1/pc-01").connect().is_failure


@pytest.mark.parametrize("subscription", ["netroom/v1/#", "$share/netroom-collector/netroom/v1/#"])
def test_a_pc_publishes_only_as_itself(client: Callable[..., Client],
                                       subscription: str) -> None:
    collector = client("netroom-collector")
    collector.connect()
    assert collector.subscribe(subscription) == 1  # granted QoS 1
    for topic in ("netroom/v1/sq-2/pc-01/metrics", "netroom/v1/sq-1/pc-02/metrics",
                  "netroom/v1/sq-1x/pc-01/metrics", "other/topic"):
        # mosquitto 2.0.11 drops the connection after a refusal: a client each.
        agent = client("sq-1/pc-01")
        agent.connect()
        assert agent.publish(topic) == NOT_AUTHORIZED, topic
    agent = client("sq-1/pc-01")
    agent.connect()
    assert agent.publish("netroom/v1/sq-1/pc-01/metrics") == 0
    # One publisher, one subscriber, QoS 1: order is kept, so once the allowed
    # message is in, a wrongly delivered one would be in too.
    assert wait_until(lambda: collector.topics() != [], 10)
    assert collector.topics() == ["netroom/v1/sq-1/pc-01/metrics"]


def test_agents_cannot_subscribe(client: Callable[..., Client]) -> None:
    """The subscription itself is refused (SUBACK 0x87), not just filtered."""
    spy = client("sq-1/pc-01")
    spy.connect()
    assert spy.subscribe("netroom/v1/sq-1/pc-01/#") == NOT_AUTHORIZED


def test_collector_queue_survives_broker_restart(broker: ProductionMosquitto,
                                                 client: Callable[..., Client]) -> None:
    """The persistent session's queue is saved at a clean stop and served after it."""
    collector = client("netroom-collector", client_id="netroom-collector", persistent=True)
    collector.connect()
    collector.subscribe("netroom/v1/#")
    collector.close()
    agent = client("sq-1/pc-01")
    agent.connect()
    sent = [f"netroom/v1/sq-1/pc-01/k{i}" for i in range(1, 6)]
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
    """The shipped grants let the real collector subscribe and the real agent publish."""
    cfg = write_config(tmp_path, broker, influxd, influx_db,
                       mqtt={"host": broker.host, "port": broker.port,
                             "username": "netroom-collector"})
    monkeypatch.setenv("NETROOM_MQTT_PASSWORD", broker.passwords["netroom-collector"])
    run_collector(cfg)
    pc = tmp_path / "pc"
    pc.mkdir()
    agent_cfg = write_config(pc, broker, mqtt={"host": broker.host, "port": broker.port,
                                               "username": "sq-1/pc-01"},
                             agent={"host": "pc-01"})
    ok = run_cli("agent", "--config", str(agent_cfg), "--once", "--timeout", "20",
                 env={"NETROOM_MQTT_PASSWORD": broker.passwords["sq-1/pc-01"]})
    assert ok.returncode == 0, ok.stderr
    assert wait_count(influxd, influx_db, "metrics", "uptime_s", 1) == 1
    # The same PC with another PC's password: the broker refuses the login,
    # the agent says so and keeps the round in its outbox.
    bad = run_cli("agent", "--config", str(agent_cfg), "--once", "--timeout", "3",
                  env={"NETROOM_MQTT_PASSWORD": broker.passwords["sq-1/pc-02"]})
    assert bad.returncode == 1
    assert "did not acknowledge" in bad.stderr
    assert broker.passwords["sq-1/pc-02"] not in bad.stderr
    assert count(influxd, influx_db, "metrics", "uptime_s") == 1


def test_credentials_tool_runs_with_the_system_python(tmp_path: Path) -> None:
    """The broker host may have no netroom venv: the tool needs only python3."""
    tool = DEPLOY / "netroom_credentials.py"
    pcs = tmp_path / "pcs.csv"
    pcs.write_text("\ufeff# site,host\nsq-1,pc-01\n", encoding="utf-8")  # as Excel saves CSV
    done = subprocess.run(["/usr/bin/python3", str(tool), "--file", str(tmp_path / "d.json"),
                           "sync", "--pcs", str(pcs), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(["/usr/bin/python3", str(tool), "--file", str(tmp_path / "d.json"),
                              "list"], capture_output=True, text=True, check=False)
    assert "sq-1/pc-01: +publishClientSend netroom/v1/sq-1/pc-01/+" in listing.stdout
    secret = (tmp_path / "out" / "sq-1.txt").read_text().split(":", 1)[1].strip()
    assert secret not in listing.stdout + done.stdout
    bad = subprocess.run(["/usr/bin/python3", str(tool), "--file", str(tmp_path / "d.json"),
                          "sync", "--pcs", "-", "--out", str(tmp_path / "out")],
                         input="sq-1,pc 01\n", capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("netroom_credentials.py: error: -:1: host must be")
