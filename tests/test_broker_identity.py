"""Broker identities: no credential can use another principal's session.

Everything runs on the real mosquitto 2.0.11 with deploy/mosquitto/netroom.conf
as shipped (Debian's main config + the fragment) and users made by
deploy/mosquitto/netroom_credentials.py (tests/servers.py ProductionMosquitto).
The attacks are the ones issue 9 found with the former password file + ACL:
a site credential connecting as `netroom-collector` with a clean start (the
collector's queue wiped, the collector kicked), the same against another PC
(kicked, its Last Will a false "offline"), a site credential joining the
collector's shared group (half the messages gone), and a broker SIGKILL
before the collector's new session had been saved.
"""
from __future__ import annotations

import importlib.util
import json
import signal
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import pytest
from harness import run_cli, start_collector, stop_process, wait_count, write_config
from mqttclient import Client
from servers import CREDENTIALS_TOOL, Influxd, Mosquitto, ProductionMosquitto, wait_until

from netroom import protocol, schema

PCS = [("sq-1", "pc-01"), ("sq-1", "pc-02"), ("sq-2", "pc-01")]
COLLECTOR = "netroom-collector"
NOT_AUTHORIZED = 0x87
PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("netroom_credentials", CREDENTIALS_TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProductionMosquitto]:
    """The production broker; ``indirect`` params: netroom.conf lines replaced."""
    server = ProductionMosquitto(workdir=tmp_path / "broker", pcs=PCS, workers=2,
                                 replacing=getattr(request, "param", None))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def client(broker: ProductionMosquitto) -> Iterator[Callable[..., Client]]:
    """``client(user, client_id=..., persistent=..., will=...)``, logged in with its password."""
    made: list[Client] = []

    def make(user: str, client_id: str = "", **kw: Any) -> Client:
        c = Client(broker, user, broker.passwords[user],
                   client_id or f"t-{uuid.uuid4().hex[:8]}", **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def topic(user: str, kind: str = "metrics") -> str:
    return f"netroom/v1/{user}/{kind}"


def test_the_tool_checks_ids_as_the_protocol_does() -> None:
    tool = load_tool()
    assert tool.SITE_RE.pattern == schema.SITE_ID_RE.pattern
    assert tool.HOST_RE.pattern == protocol.ID_RE.pattern
    assert tool.parse_pcs("# site,host\nsq-1, pc-01\n\nsq-2,pc.7\n") == [
        ("sq-1", "pc-01"), ("sq-2", "pc.7")]
    for bad in ("sq-1", "SQ-1,pc-01", "sq-1,pc/01", "sq-1,+", "sq-1,pc-01,x",
                "sq-1,pc-01\nsq-1,pc-01"):
        with pytest.raises(tool.Error):
            tool.parse_pcs(bad)


def test_sync_keeps_passwords_and_prunes(tmp_path: Path) -> None:
    """Re-running sync never changes a password; new PCs get theirs in <site>.txt."""
    server = ProductionMosquitto(workdir=tmp_path / "b", pcs=PCS[:2])
    first = dict(server.passwords)
    assert set(first) >= {COLLECTOR, "netroom-admin", "sq-1/pc-01", "sq-1/pc-02"}
    doc = json.loads(server.dynsec_path.read_text())
    assert server.dynsec_path.stat().st_mode & 0o777 == 0o600
    server.provision(PCS, workers=2)
    assert {k: server.passwords[k] for k in first} == first
    assert (server.datadir / "passwords" / "sq-2.txt").read_text().startswith("sq-2/pc-01:")
    again = json.loads(server.dynsec_path.read_text())
    old = {c["username"]: c["password"] for c in doc["clients"]}
    assert all(c["password"] == old[c["username"]] for c in again["clients"]
               if c["username"] in old)
    # Workers and the settings user share the collector's password; every
    # user is bound to its own id.
    tool = load_tool()
    by_user = {c["username"]: c for c in again["clients"]}
    assert tool.check_password(by_user[f"{COLLECTOR}-1"], first[COLLECTOR])
    assert tool.check_password(by_user[f"{COLLECTOR}-settings"], first[COLLECTOR])
    assert all(c["clientid"] == c["username"] for c in again["clients"])
    pruned = server.credentials("sync", "--pcs", "-", "--out", str(tmp_path / "o"), "--prune",
                                stdin="sq-1,pc-01\n")
    assert pruned.returncode == 0, pruned.stderr
    users = {c["username"] for c in json.loads(server.dynsec_path.read_text())["clients"]}
    assert users == {COLLECTOR, f"{COLLECTOR}-settings", "netroom-admin", "sq-1/pc-01"}
    assert not (tmp_path / "o").exists()  # nobody new, no password file


def test_takeover_of_the_collector_session_fails(client: Callable[..., Client]) -> None:
    """Any credential connecting as `netroom-collector` with a clean start gets
    its own session: the collector's queue is kept and delivered in full."""
    collector = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    assert collector.connect().value == 0
    assert collector.subscribe("netroom/v1/#") == 1
    collector.close()
    agent = client("sq-1/pc-01")
    assert agent.connect().value == 0
    sent = [f"m{i}".encode() for i in range(50)]
    assert [agent.publish(topic("sq-1/pc-01"), p) for p in sent] == [0] * 50
    for user in ("sq-2/pc-01", "sq-1/pc-02", "netroom-admin"):
        thief = client(user, client_id=COLLECTOR)  # clean start, the collector's id
        assert thief.connect().value == 0  # accepted, as the session named `user`
        assert thief.subscribe("netroom/v1/#") == NOT_AUTHORIZED or user == "netroom-admin"
        thief.close()
    again = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    assert again.connect().value == 0
    assert again.session_present
    assert wait_until(lambda: len(again.payloads()) >= 50, 10), len(again.payloads())
    assert again.payloads() == sent


def test_no_credential_kicks_another_session(client: Callable[..., Client]) -> None:
    """Connecting with a connected PC's or the collector's client id kicks nobody
    and fires no Last Will (no false "offline")."""
    collector = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    collector.connect()
    assert collector.subscribe("netroom/v1/#") == 1
    victim_id = "netroom-agent-sq-1-pc-01-3f0c9a"  # what the agent sends
    victim = client("sq-1/pc-01", client_id=victim_id, will=topic("sq-1/pc-01", "status"))
    assert victim.connect().value == 0
    for user in ("sq-1/pc-02", "sq-2/pc-01"):
        for stolen in (victim_id, "sq-1/pc-01", COLLECTOR):
            thief = client(user, client_id=stolen)
            assert thief.connect().value == 0
    # After the thieves' CONNACKs: a kick (and its Last Will) would have come first.
    assert victim.publish(topic("sq-1/pc-01"), b"still here") == 0
    assert wait_until(lambda: b"still here" in collector.payloads(), 10)
    assert collector.topics() == [topic("sq-1/pc-01")]  # no status: no Last Will
    assert victim.disconnects == [] and collector.disconnects == []


def test_users_are_bound_to_their_client_id_without_the_broker_setting(
        tmp_path: Path) -> None:
    """The second lock: without use_username_as_clientid, the users' file still
    lets each user in only under its own client id (refused, not opened)."""
    server = ProductionMosquitto(workdir=tmp_path / "b", pcs=PCS,
                                 without=["use_username_as_clientid true"])
    server.start()
    try:
        pw = server.passwords
        thief = Client(server, "sq-2/pc-01", pw["sq-2/pc-01"], COLLECTOR)
        assert thief.connect().is_failure
        thief.close()
        own = Client(server, "sq-2/pc-01", pw["sq-2/pc-01"], "sq-2/pc-01")
        assert own.connect().value == 0
        own.close()
    finally:
        server.kill()


def test_shared_group_and_every_other_read_is_refused(client: Callable[..., Client]) -> None:
    """collector.workers > 1 share `$share/netroom-collector/...`: no PC (nor
    the admin) can join it, so no message is diverted; PCs read nothing."""
    workers = [client(f"{COLLECTOR}-{i}", persistent=True) for i in (0, 1)]
    for w in workers:
        assert w.connect().value == 0
        assert w.subscribe(f"$share/{COLLECTOR}/netroom/v1/#") == 1
    for filt in (f"$share/{COLLECTOR}/netroom/v1/#", "$share/other/netroom/v1/#",
                 "netroom/v1/#", "netroom/v1/sq-1/pc-01/#", "#", "$SYS/#"):
        spy = client("sq-1/pc-02")
        spy.connect()
        assert spy.subscribe(filt) == NOT_AUTHORIZED, filt
    admin = client("netroom-admin")
    admin.connect()
    assert admin.subscribe(f"$share/{COLLECTOR}/netroom/v1/#") == NOT_AUTHORIZED
    assert admin.subscribe("netroom/v1/#") == 1
    # A worker of the collector can only be in its own group.
    assert workers[0].subscribe("$share/other/netroom/v1/#") == NOT_AUTHORIZED
    agent = client("sq-1/pc-01")
    agent.connect()
    sent = {f"m{i}".encode() for i in range(100)}
    assert {agent.publish(topic("sq-1/pc-01"), p) for p in sent} == {0}
    assert wait_until(lambda: len(workers[0].payloads()) + len(workers[1].payloads()) >= 100,
                      10)
    got = workers[0].payloads() + workers[1].payloads()
    assert sorted(got) == sorted(sent)


@pytest.mark.parametrize(("user", "to", "code"), [
    ("sq-1/pc-01", topic("sq-1/pc-01"), 0),
    ("sq-1/pc-01", topic("sq-1/pc-01", "status"), 0),
    ("sq-1/pc-01", topic("sq-1/pc-02"), NOT_AUTHORIZED),  # another PC of its site
    ("sq-1/pc-01", topic("sq-2/pc-01"), NOT_AUTHORIZED),  # another site
    ("sq-1/pc-01", "netroom/v1/sq-1/pc-01/metrics/x", NOT_AUTHORIZED),
    ("sq-1/pc-01", "$CONTROL/dynamic-security/v1", NOT_AUTHORIZED),
    ("sq-1/pc-01", "netroom/settings/v1/sq-1", NOT_AUTHORIZED),  # settings are the centre's
    (COLLECTOR, topic("sq-1/pc-01"), NOT_AUTHORIZED),  # the collector forges nothing
    (COLLECTOR, "netroom/settings/v1/sq-1", NOT_AUTHORIZED),
    (f"{COLLECTOR}-settings", "netroom/settings/v1/sq-2", 0),
    (f"{COLLECTOR}-settings", topic("sq-1/pc-01"), NOT_AUTHORIZED),
    ("netroom-admin", topic("sq-1/pc-01"), NOT_AUTHORIZED),
])
def test_each_user_publishes_only_as_itself(client: Callable[..., Client], user: str, to: str,
                                            code: int) -> None:
    # mosquitto 2.0.11 closes the connection after refusing a publish: one client each.
    sender = client(user)
    sender.connect()
    rc = sender.publish(to, retain=to.endswith("/status"))
    # Accepted: 0, or 0x10 "no matching subscribers" (nobody subscribed here).
    assert (0 if rc in (0, 0x10) else rc) == code


def test_a_pc_reads_only_its_own_sites_settings(client: Callable[..., Client]) -> None:
    """The one read a PC has (docs/settings.md): its site's retained settings."""
    publisher = client(f"{COLLECTOR}-settings")
    publisher.connect()
    for site in ("sq-1", "sq-2"):
        assert publisher.publish(f"netroom/settings/v1/{site}", site.encode(), retain=True) \
            in (0, 0x10)
    pc = client("sq-1/pc-02")
    pc.connect()
    assert pc.subscribe("netroom/settings/v1/sq-1") == 1
    assert wait_until(lambda: pc.payloads() == [b"sq-1"], 10), pc.payloads()
    for filt in ("netroom/settings/v1/sq-2", "netroom/settings/v1/+", "netroom/settings/#"):
        other = client("sq-1/pc-02")
        other.connect()
        assert other.subscribe(filt) == NOT_AUTHORIZED, filt


# netroom.conf saves every 60 s; here every second, so the test waits 1 s, not 60.
@pytest.mark.parametrize("broker", [{"autosave_interval 60": "autosave_interval 1"}],
                         indirect=True)
def test_broker_sigkill_keeps_the_collector_session(broker: ProductionMosquitto,
                                                    client: Callable[..., Client]) -> None:
    """The collector subscribes, the broker autosaves (netroom.conf: within 60 s)
    and is SIGKILLed; agents publish to the restarted broker before the collector
    is back: its session is there and gets every message."""
    collector = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    collector.connect()
    assert collector.subscribe("netroom/v1/#") == 1
    db = broker.datadir / "mosquitto.db"
    # The first autosave after the subscription (bounded; the file is new).
    assert wait_until(db.exists, 10, 0.2)
    broker.kill()
    collector.c.loop_stop()  # it must not be back before the agent
    broker.start()
    agent = client("sq-1/pc-01")
    assert agent.connect().value == 0
    sent = [f"after-{i}".encode() for i in range(20)]
    assert [agent.publish(topic("sq-1/pc-01"), p) for p in sent] == [0] * 20
    back = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    assert back.connect().value == 0
    assert back.session_present
    assert wait_until(lambda: len(back.payloads()) >= 20, 10), back.payloads()
    assert back.payloads() == sent


def test_users_file_is_read_at_start_and_a_restart_keeps_the_queue(
        broker: ProductionMosquitto, client: Callable[..., Client]) -> None:
    """The provisioning procedure: sync, then a clean restart (SIGHUP does not
    reload dynamic security in 2.0.11); the collector's queue survives it."""
    collector = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    collector.connect()
    collector.subscribe("netroom/v1/#")
    collector.close()
    agent = client("sq-1/pc-01")
    agent.connect()
    assert agent.publish(topic("sq-1/pc-01"), b"before") == 0
    agent.close()
    broker.provision([*PCS, ("sq-3", "pc-09")])
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)
    newcomer = client("sq-3/pc-09")
    assert newcomer.connect().is_failure  # not yet
    broker.stop()  # SIGTERM: saves the queue
    broker.start()
    newcomer = client("sq-3/pc-09")
    assert newcomer.connect().value == 0
    assert newcomer.publish(topic("sq-3/pc-09"), b"new pc") == 0
    again = client(COLLECTOR, client_id=COLLECTOR, persistent=True)
    again.connect()
    assert wait_until(lambda: len(again.payloads()) >= 2, 10)
    assert again.payloads() == [b"before", b"new pc"]


def test_mosquitto_2_0_11_dynsec_has_no_user_substitution(mosquitto_factory: Callable[
        ..., Mosquitto], tmp_path: Path) -> None:
    """Why the tool makes one role per PC: an ACL with %u grants nothing."""
    tool = load_tool()
    doc = {"clients": [tool.client("sq-1/pc-01", "pcs", tool.hash_password("pw"))],
           "roles": [{"rolename": "pcs", "acls": [
               tool._acl("publishClientSend", "netroom/v1/%u/+")]}],
           "defaultACLAccess": tool.DENY_ALL}
    path = tmp_path / "dynsec.json"
    path.write_text(json.dumps(doc))
    server = mosquitto_factory(extra_config=[
        "allow_anonymous false", "use_username_as_clientid true",
        f"plugin {PLUGIN}", f"plugin_opt_config_file {path}"])
    pc = Client(server, "sq-1/pc-01", "pw", "x")
    try:
        assert pc.connect().value == 0
        assert pc.publish("netroom/v1/sq-1/pc-01/metrics") == NOT_AUTHORIZED
    finally:
        pc.close()


def test_real_collector_workers_and_agent(broker: ProductionMosquitto, influxd: Influxd,
                                          influx_db: str, tmp_path: Path) -> None:
    """collector.workers: 2 log in as netroom-collector-0/-1 (collector/workers.py)
    and share the one group the broker allows; a real agent logs in as its PC."""
    cfg = write_config(tmp_path, broker, influxd, influx_db,
                       mqtt={"host": broker.host, "port": broker.port, "username": COLLECTOR,
                             "password": broker.passwords[COLLECTOR]},
                       collector={"workers": 2, "spool_dir": str(tmp_path / "spool"),
                                  "batch_size": 100, "flush_interval": 0.2,
                                  "stats_interval": 1})
    log = tmp_path / "collector.log"
    main = start_collector(cfg, log)
    try:
        # Both workers subscribed: the broker logs each session by its user.
        mlog = broker.datadir / "mosquitto.log"
        assert wait_until(lambda: all(f"as {COLLECTOR}-{i} " in mlog.read_text()
                                      for i in (0, 1)), 30), log.read_text()
        pc = tmp_path / "pc"
        pc.mkdir()
        agent_cfg = write_config(pc, broker, mqtt={"host": broker.host, "port": broker.port,
                                                   "username": "sq-1/pc-01"},
                                 agent={"site": "sq-1", "host": "pc-01", "network": "gov",
                                        "role": "room", "state_dir": str(pc / "state")})
        ok = run_cli("agent", "--config", str(agent_cfg), "--once", "--timeout", "20",
                     env={"NETROOM_MQTT_PASSWORD": broker.passwords["sq-1/pc-01"]})
        assert ok.returncode == 0, ok.stderr
        assert wait_count(influxd, influx_db, "metrics", "uptime_s", 1, timeout=30) == 1
        assert "not authori" not in log.read_text()
    finally:
        assert stop_process(main) == 0
