"""Site and host settings from the centre (issue 10, item 1; docs/settings.md).

The collector publishes each site's `agents:` settings from its `sites` tree,
retained, on netroom/settings/v1/<site>; agents installed with identity and
broker only apply them without a restart, keep them on disk, refuse a bad
document (and say so in their status), and let their own file win.

The pipeline tests run real mosquitto with passwords and the production ACL
plus the settings lines (ACL below), real influxd, the real collector and
real agents (subprocesses). The "portal" is an HTTP server on 127.0.0.1,
the isolation canary a TCP port on 127.0.0.1 that nothing listens on.
"""
from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
import yaml
from harness import REPO, count, run_cli, series, wait_count
from paho.mqtt.enums import CallbackAPIVersion
from servers import Influxd, Mosquitto, free_port, password_file, wait_until

from agent import identity
from agent.collectors.base import Job
from agent.config import load, local_keys, read, with_central
from agent.runner import Runner
from agent.settings import KEPT_FILE, Central
from collector.config import load as load_collector
from collector.service import Collector
from netroom import central
from netroom.settings import ConfigError

PASSWORDS = {"sq-1": "pw-site", "netroom-collector": "pw-collector",
             "netroom-collector-settings": "pw-collector", "netroom-admin": "pw-admin"}
# the per-site ACL lines netroom used before dynamic security, and the settings lines this feature
# needs there (docs/settings.md): the collector's settings connection (its
# own user, same password) writes every site's settings, a site's PCs read
# their own site's.
ACL = """pattern write netroom/v1/%u/+/+
pattern read netroom/settings/v1/%u

user netroom-collector
topic read netroom/v1/#

user netroom-collector-settings
topic write netroom/settings/v1/+

user netroom-admin
topic read netroom/#
topic read $SYS/#
"""
SITE = "sq-1"
# docs/settings.md: the settings each PC runs, from its latest online status.
RUNNING = """SELECT "settings_version", "settings_error", "settings_local" FROM "status"
WHERE "state" = 'online' AND time > now() - 1d
GROUP BY "site", "host" ORDER BY time DESC LIMIT 1"""


# -- the document, the merge, the agent's keeping: no servers --------------

PORTAL = {"name": "portal", "kind": "http", "target": "http://10.0.0.80/", "networks": ["gov"]}
CANARY = {"name": "inet", "kind": "tcp", "target": "198.18.0.2:443"}


def site_settings(**kw: Any) -> central.Settings:
    base: dict[str, Any] = {"interval": 30, "probes": [PORTAL],
                            "isolation": {"interval": 20, "canaries": [CANARY]},
                            "bandwidth": {"url": "http://10.0.0.5:8090"}}
    return central.Settings(SITE, {**base, **kw.pop("settings", {})}, **kw)


def test_a_document_round_trips_and_its_version_is_its_content() -> None:
    s = site_settings(testers={"gov": "pc-07"}, hosts={"pc-07": {"interval": 10}})
    doc = central.document(s, 1764063744.25)
    back = central.decode(central.encode(doc), SITE)
    assert back == doc and back.settings.version == s.version == doc.version
    assert len(doc.version) == 16
    # The time it was issued is not content: a collector restart keeps the version.
    assert central.document(s, 1864063744.0).version == doc.version
    assert site_settings(settings={"interval": 31}).version != doc.version
    assert central.Settings("sq-2", s.settings, s.testers, s.hosts).version != doc.version
    assert central.topic(SITE) == "netroom/settings/v1/sq-1"
    assert central.site_of("netroom/settings/v1/sq-1") == SITE
    assert central.site_of("netroom/v1/sq-1/pc-1/status") is None


def tampered(**change: Any) -> bytes:
    obj = json.loads(central.encode(central.document(site_settings(), 1.0)))
    obj.update(change)
    return json.dumps(obj).encode()


REFUSED = [
    (b"{not json", "not JSON"),
    (b"[1]", "not a JSON object"),
    (tampered(schema=2), "schema must be 1, got 2"),
    (tampered(site="sq-2"), "for site 'sq-2', this PC is in 'sq-1'"),
    (tampered(version=""), "version: required"),
    (tampered(settings={"interval": 30, "probes": [PORTAL],
                        "isolation": {"interval": 20, "canaries": [CANARY]},
                        "bandwidth": {"url": "http://10.0.0.5:8090"}, "tick": 1}),
     "settings.tick: unknown key"),
    (tampered(settings={"probes": [{**PORTAL, "target": "portal"}]}),
     "settings.probes[0].target: must be an http:// or https:// URL, got 'portal'"),
    (tampered(settings={"interval": 5}), "version '"),  # content changed, version not
    (tampered(hosts={"pc-7": {"bandwidth": {"tester": True}}}),
     "settings.hosts.pc-7.bandwidth.tester: name the site's tester PCs"),
    (tampered(testers={"gov": "pc-7"}, settings={}),
     "settings.testers.gov: pc-7 runs the speed tests: settings.bandwidth.url: required"),
    (b" " * (central.MAX_BYTES + 1), f"limit {central.MAX_BYTES}"),
]


@pytest.mark.parametrize(("payload", "reason"), REFUSED)
def test_a_bad_document_is_refused_with_one_line(payload: bytes, reason: str) -> None:
    with pytest.raises(central.SettingsError) as e:
        central.decode(payload, SITE)
    assert reason in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_pc_gets_its_site_then_hostname_then_host_section_and_its_tester_role() -> None:
    s = site_settings(testers={"gov": "pc-07", "internet": "pc-09-abc123"},
                      hosts={"pc-07": {"interval": 10, "bandwidth": {"interval": 3600}},
                             "pc-07-3fa2b1": {"interval": 5}})
    mine = central.for_host(s, "pc-07-3fa2b1", "pc-07", "gov")
    assert mine["interval"] == 5  # the host's own section is nearest
    assert mine["bandwidth"] == {"url": "http://10.0.0.5:8090", "interval": 3600,
                                 "tester": True}  # merged key by key; tester by hostname
    clone = central.for_host(s, "pc-07-9d8e7f", "pc-07", "gov")
    assert clone["interval"] == 10 and clone["bandwidth"]["tester"] is True  # same hostname
    other = central.for_host(s, "pc-09-abc123", "pc-09", "gov")
    assert other["interval"] == 30 and "tester" not in other["bandwidth"]  # not on gov
    assert central.for_host(s, "pc-09-abc123", "pc-09", "internet")["bandwidth"]["tester"]


def agent_file(tmp: Path, **agent: Any) -> dict[str, Any]:
    return {"mqtt": {"host": "127.0.0.1"},
            "agent": {"site": SITE, "network": "gov", "role": "room", "host": "pc-07",
                      "state_dir": str(tmp / "state"), **agent}}


def test_the_agents_own_file_wins_where_it_sets_a_key(tmp_path: Path) -> None:
    data = agent_file(tmp_path, interval=15, isolation={"canaries": [], "bridges_violate": False},
                      bandwidth=None)  # a key with nothing after it sets nothing
    data["probes"] = [{"name": "mine", "kind": "tcp", "target": "10.0.0.9:80"}]
    base = read(data)
    assert (base.interval_s, base.isolation.interval_s, base.bandwidth.url) == (15, 60, "")
    cfg = with_central(base, data, site_settings(testers={"gov": "pc-07"}))
    assert cfg.interval_s == 15  # the file's
    assert [p.check.name for p in cfg.probes] == ["mine"]  # a list replaces the centre's
    assert cfg.isolation.canaries == () and cfg.isolation.bridges_violate is False
    assert cfg.isolation.interval_s == 20  # the centre's, merged key by key
    assert cfg.bandwidth.tester and cfg.bandwidth.url == "http://10.0.0.5:8090"
    assert (cfg.site, cfg.host, cfg.network, cfg.mqtt) == (base.site, base.host, base.network,
                                                           base.mqtt)
    assert local_keys(data) == ("interval", "isolation.bridges_violate",
                                "isolation.canaries", "probes")
    # Together invalid: refused as a whole (the agent keeps what it runs).
    data["agent"]["bandwidth"] = {"timeout": 30}
    assert read(data).bandwidth.timeout_s == 30  # valid alone
    with pytest.raises(ConfigError, match=r"agent\.bandwidth\.timeout: must be at least"):
        with_central(base, data, site_settings(settings={"bandwidth": {"duration": 20}}))


def test_the_agent_keeps_the_last_good_document_and_refuses_a_bad_one(tmp_path: Path) -> None:
    data = agent_file(tmp_path)
    base = read(data)
    changes: list[str] = []
    c = Central(data, base, on_change=lambda: changes.append(c.version))
    c.load_kept()  # nothing kept yet: the file's own
    assert (c.cfg, c.version, c.status_fields()) == (base, "", {})
    good = central.encode(central.document(site_settings(), 1.0))
    c.offer(good)
    kept = tmp_path / "state" / KEPT_FILE
    assert kept.read_bytes() == good and c.cfg.interval_s == 30
    assert c.status_fields() == {"settings_version": site_settings().version}
    c.offer(tampered(settings={"probes": [{**PORTAL, "target": "portal"}]}))
    assert c.cfg.interval_s == 30 and kept.read_bytes() == good  # the old one kept
    assert c.status_fields()["settings_version"] == site_settings().version
    assert "probes[0].target" in c.status_fields()["settings_error"]
    c.offer(b"")  # the retained document cleared: nothing changes
    c.offer(good)  # the good one again (a reconnect): the refusal is over
    assert c.status_fields() == {"settings_version": site_settings().version}
    assert changes == [site_settings().version] * 3
    # A new process starts on the kept copy, before any broker answers.
    again = Central(data, base)
    again.load_kept()
    assert again.version == site_settings().version and again.cfg == c.cfg
    # A PC moved to another site does not run the old site's settings.
    moved = agent_file(tmp_path, site="sq-2")
    elsewhere = Central(moved, read(moved))
    elsewhere.load_kept()
    assert elsewhere.version == "" and elsewhere.cfg.interval_s == 60
    assert not list((tmp_path / "state").glob("*.tmp"))


def test_which_pcs_run_stale_settings() -> None:
    """The report's data: each PC's latest online status against its site's version."""
    got = central.settings_states({"sq-1": "v2", "sq-2": "w1"}, [
        ("sq-1", "pc-2", "v1", "", "", 2000),
        ("sq-1", "pc-1", "v2", "", "probes", 1000),
        ("sq-1", "pc-3", "v1", "refused the settings on ...", "", 3000),
        ("sq-2", "pc-9", "", "", "", 4000),  # an older agent, or nothing reached it
        ("sq-9", "pc-5", "x", "", "", 5000),  # a site not in the tree
    ])
    assert [(s.site, s.host, s.state) for s in got] == [
        ("sq-1", "pc-1", "current"), ("sq-1", "pc-2", "stale"), ("sq-1", "pc-3", "refused"),
        ("sq-2", "pc-9", "none"), ("sq-9", "pc-5", "stale")]
    assert got[0].local == "probes" and got[1].expected == "v2" and got[4].expected == ""
    assert {s.state for s in got} <= set(central.STATES)


def test_the_runner_swaps_its_jobs_without_a_restart() -> None:
    """New settings rebuild the jobs; the runner takes them while it runs: a
    job gone stops, a new one starts, a threaded run still going (a speed
    test) is never started a second time."""
    runs: list[str] = []
    busy: set[str] = set()
    overlap: list[str] = []
    release = threading.Event()

    class Named:
        kind = "status"

        def __init__(self, name: str, block: bool = False) -> None:
            self.name, self.block = name, block

        def collect(self) -> dict[str, Any]:
            if self.name in busy:
                overlap.append(self.name)
            busy.add(self.name)
            runs.append(self.name)
            if self.block:
                release.wait(30)
            busy.discard(self.name)
            return {"state": "online"}

    slow = Job(Named("slow", block=True), 0.01, 0, 60, name="slow")
    runner = Runner([Job(Named("old"), 0.01), slow], lambda *a: None)
    stop = threading.Event()
    t = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: "old" in runs and "slow" in runs, 10)
        runner.replace([Job(Named("new"), 0.01, name="new"),
                        Job(Named("slow", block=True), 0.01, 0, 60, name="slow")])
        assert wait_until(lambda: runs.count("new") >= 2, 10)
        old = runs.count("old")
        assert wait_until(lambda: runs.count("new") >= 5, 10)
        assert runs.count("old") == old and runs.count("slow") == 1  # still the first run
        release.set()
        assert wait_until(lambda: runs.count("slow") >= 2, 10)
        assert overlap == []
    finally:
        release.set()
        stop.set()
        t.join(10)
    assert not t.is_alive()  # a stop set from another thread ends it


# -- through the real pipeline ---------------------------------------------


@pytest.fixture
def broker(tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    passwd = password_file(tmp_path / "passwd", PASSWORDS)
    (tmp_path / "acl").write_text(ACL)
    return mosquitto_factory(extra_config=[
        "allow_anonymous false", f"password_file {passwd}", f"acl_file {tmp_path / 'acl'}",
        "max_queued_messages 1000000"])  # as deploy/mosquitto/netroom.conf


@pytest.fixture
def portal() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 answering 200: the portal the probe checks."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def collector_config(tmp: Path, mosq: Mosquitto, influxd: Influxd, db: str, port: int,
                     canary: int, *extra_probes: dict[str, Any]) -> Path:
    """The collector's file: the tree sets the probes and canaries of every PC."""
    probes = [{"name": "portal", "kind": "http", "target": f"http://127.0.0.1:{port}/",
               "interval": 5, "timeout": 2, "networks": ["gov"]}, *extra_probes]
    sites = [{"id": "bj", "name": "北京局", "agents": {
        "interval": 1, "probes": probes,
        "isolation": {"interval": 5, "timeout": 1, "canaries": [
            {"name": "inet-tcp", "kind": "tcp", "target": f"127.0.0.1:{canary}"}]}},
        "children": [{"id": SITE, "cadres": 1, "staff": 2}]}]
    path = tmp / "collector.yaml"
    path.write_text(yaml.safe_dump({
        "mqtt": {"host": mosq.host, "port": mosq.port, "username": "netroom-collector",
                 "password": PASSWORDS["netroom-collector"]},
        "influxdb": {"url": influxd.url, "database": db},
        "collector": {"spool_dir": str(tmp / "spool"), "flush_interval": 0.2,
                      "stats_interval": 1},
        "sites": sites}, allow_unicode=True), encoding="utf-8")
    return path


def install(tmp: Path, mosq: Mosquitto, name: str, **extra: Any) -> Path:
    """An agent as the installers write it: identity and broker only (+ ``extra``)."""
    data: dict[str, Any] = {
        "mqtt": {"host": mosq.host, "port": mosq.port, "username": SITE},
        "agent": {"site": SITE, "network": "gov", "role": "room",
                  "state_dir": str(tmp / name / "state")}}
    for key, value in extra.items():
        if key == "probes":
            data["probes"] = value
        else:
            data["agent"][key] = value
    (tmp / name).mkdir()
    path = tmp / name / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def env(name: str) -> dict[str, str]:
    # Two agents on one machine share its machine id: a hardware id each.
    return {**os.environ, "NETROOM_MQTT_PASSWORD": PASSWORDS[SITE],
            identity.HARDWARE_ENV: f"test-{name}"}


def host_of(cfg: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(identity.HARDWARE_ENV, f"test-{name}")
    return load(cfg).host


def start_agent(cfg: Path, name: str) -> subprocess.Popen[bytes]:
    log = open(cfg.parent / "agent.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "agent", "--config", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env(name))


def stop_agent(p: subprocess.Popen[bytes], cfg: Path) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(20) == 0, (cfg.parent / "agent.log").read_text(errors="replace")


def client(mosq: Mosquitto, user: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(user, PASSWORDS[user])
    c.connect(mosq.host, mosq.port)
    c.loop_start()
    return c


def publish(mosq: Mosquitto, user: str, topic: str, payload: bytes) -> int:
    """Publish retained, QoS 1; the PUBACK's reason code (>= 0x80: refused)."""
    codes: list[int] = []
    c = client(mosq, user)
    c.on_publish = lambda cl, u, mid, reason, props: codes.append(reason.value)
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    assert wait_until(lambda: bool(codes), 10)
    c.disconnect()
    c.loop_stop()
    return codes[0]


def online(influxd: Influxd, db: str, host: str) -> dict[str, Any]:
    """The host's latest `online` status, as stored."""
    q = (f"SELECT * FROM \"status\" WHERE \"host\" = '{host}' AND \"state\" = 'online' "
         "ORDER BY time DESC LIMIT 1")
    rows = list(series(influxd.query(q, db)))
    return rows[0] if rows else {}


def count_of(influxd: Influxd, db: str, measurement: str, host: str, probe: str = "") -> int:
    where = f"\"host\" = '{host}'" + (f" AND \"probe\" = '{probe}'" if probe else "")
    field = "ok" if measurement == "probe" else "violated"
    return count(influxd, db, measurement, field, where)


@contextmanager
def collector(config: Path) -> Iterator[tuple[Collector, str]]:
    """The real collector in this process, stopped at the end; with the version
    of sq-1's settings it published."""
    svc = Collector(load_collector(config))
    svc.start()
    try:
        assert svc.ingest.subscribed.wait(10), "collector did not subscribe"
        assert svc.settings is not None and svc.settings.published.wait(10)
        assert svc.settings.refused == {}
        site = svc.cfg.org.site(SITE)
        assert site is not None and svc.settings.versions()[SITE] == site.settings.version
        yield svc, site.settings.version
    finally:
        svc.stop()


def test_an_identity_only_agent_runs_its_sites_settings_from_the_collector(
        tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str, portal: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    canary = free_port()  # nothing listens there: the canary is not reached
    plain = install(tmp_path, broker, "plain")
    # A PC whose own file sets its probes, interval and isolation: they win.
    own = install(tmp_path, broker, "own", host="pc-own", interval=2,
                  isolation={"enabled": False},
                  probes=[{"name": "own-tcp", "kind": "tcp", "target": f"127.0.0.1:{canary}",
                           "interval": 5, "timeout": 1}])
    host = host_of(plain, "plain", monkeypatch)
    # The agents start first, with nothing but their identity and broker.
    agents = [start_agent(plain, "plain"), start_agent(own, "own")]
    pids = [a.pid for a in agents]
    try:
        ccfg = collector_config(tmp_path, broker, influxd, influx_db, portal, canary)
        with collector(ccfg) as (svc, v1):
            first_settings(svc, v1, influxd, influx_db, host, broker)
        # New settings from the centre (a probe added), still no restart.
        ccfg = collector_config(tmp_path, broker, influxd, influx_db, portal, canary,
                                {"name": "portal-tcp", "kind": "tcp",
                                 "target": f"127.0.0.1:{portal}", "interval": 5,
                                 "networks": ["gov"]})
        with collector(ccfg) as (svc2, v2):
            assert v2 != v1
            assert wait_count(influxd, influx_db, "probe", "ok", 1,
                              f"\"host\" = '{host}' AND \"probe\" = 'portal-tcp'") >= 1
            assert wait_until(
                lambda: online(influxd, influx_db, host).get("settings_version") == v2, 20)
            assert online(influxd, influx_db, host).get("settings_error") is None
            assert [a.poll() for a in agents] == [None, None]
            assert [a.pid for a in agents] == pids
            # What every PC runs, as docs/settings.md asks InfluxDB.
            assert wait_until(lambda: {r["host"]: r["settings_version"] for r in series(
                influxd.query(RUNNING, influx_db))} == {host: v2, "pc-own": v2}, 20)
            # Ingest never saw a settings document; agents cannot publish one.
            assert svc.counters.invalid == {} and svc2.counters.invalid == {}
            assert publish(broker, SITE, central.topic(SITE), b"{}") == 0x87
    finally:
        for a, cfg in zip(agents, (plain, own)):
            stop_agent(a, cfg)


def first_settings(svc: Collector, v1: str, influxd: Influxd, influx_db: str, host: str,
                   broker: Mosquitto) -> None:
    """With the first settings: plain and own agents, then a malformed document."""
    # Probe and isolation results arrive, with no restart.
    assert wait_count(influxd, influx_db, "probe", "ok", 1, f"\"host\" = '{host}'") >= 1
    assert wait_count(influxd, influx_db, "isolation", "violated", 1,
                      f"\"host\" = '{host}'") >= 1
    [iso] = series(influxd.query(
        f"SELECT last(\"canaries_checked\") AS c, last(\"canaries_reached\") AS r "
        f"FROM \"isolation\" WHERE \"host\" = '{host}'", influx_db))
    assert (iso["c"], iso["r"]) == (1, 0)
    [probe] = series(influxd.query(
        f"SELECT last(\"ok\") AS ok FROM \"probe\" WHERE \"host\" = '{host}' "
        "GROUP BY \"probe\"", influx_db))
    assert (probe["probe"], probe["ok"]) == ("portal", True)
    assert wait_until(lambda: online(influxd, influx_db, host).get("settings_version") == v1,
                      20)
    status = online(influxd, influx_db, host)
    assert status["interval_s"] == 1 and status.get("settings_error") is None

    # The PC with its own settings: its probe, its interval, no isolation.
    assert wait_count(influxd, influx_db, "probe", "ok", 1, "\"host\" = 'pc-own'") >= 1
    assert wait_until(
        lambda: online(influxd, influx_db, "pc-own").get("settings_version") == v1, 20)
    mine = online(influxd, influx_db, "pc-own")
    assert mine["interval_s"] == 2
    assert mine["settings_local"] == "interval,isolation.enabled,probes"
    assert count_of(influxd, influx_db, "probe", "pc-own", "portal") == 0
    assert count_of(influxd, influx_db, "probe", "pc-own", "own-tcp") >= 1
    assert count_of(influxd, influx_db, "isolation", "pc-own") == 0

    # A malformed document (from a client with the collector's settings user):
    # refused, reported in the status, the old settings kept running.
    site = svc.cfg.org.site(SITE)
    assert site is not None
    bad = json.loads(central.encode(central.document(site.settings, 1)))
    bad["settings"]["probes"][0]["target"] = "portal"
    assert publish(broker, "netroom-collector-settings", central.topic(SITE),
                   json.dumps(bad).encode()) < 0x80  # accepted
    assert wait_until(lambda: "probes[0].target" in str(
        online(influxd, influx_db, host).get("settings_error")), 20)
    refused = online(influxd, influx_db, host)
    assert refused["settings_version"] == v1
    assert "refused the settings on netroom/settings/v1/sq-1" in refused["settings_error"]
    before = count_of(influxd, influx_db, "probe", host, "portal")
    assert wait_count(influxd, influx_db, "probe", "ok", before + 2,
                      f"\"host\" = '{host}' AND \"probe\" = 'portal'") >= before + 2


def test_without_collector_and_broker_an_agent_runs_on_its_kept_settings(
        tmp_path: Path, broker: Mosquitto, influxd: Influxd, influx_db: str, portal: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    canary = free_port()
    cfg = install(tmp_path, broker, "pc")
    host = host_of(cfg, "pc", monkeypatch)
    with collector(collector_config(tmp_path, broker, influxd, influx_db, portal,
                                    canary)) as (_, v1):
        agent = start_agent(cfg, "pc")
        try:
            assert wait_count(influxd, influx_db, "probe", "ok", 1,
                              f"\"host\" = '{host}'") >= 1
            assert wait_until(
                lambda: online(influxd, influx_db, host).get("settings_version") == v1, 20)
        finally:
            stop_agent(agent, cfg)
    kept = tmp_path / "pc" / "state" / KEPT_FILE
    assert central.decode(kept.read_bytes(), SITE).version == v1

    # The collector stopped; the broker forgets the document too (an empty
    # retained message clears it): the restarted agent has only its disk.
    assert publish(broker, "netroom-collector-settings", central.topic(SITE), b"") < 0x80
    seen: list[tuple[str, dict[str, Any]]] = []
    reader = client(broker, "netroom-admin")
    reader.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    reader.subscribe(f"netroom/v1/{SITE}/{host}/+", qos=1)
    agent = start_agent(cfg, "pc")
    try:
        assert wait_until(lambda: any(t.endswith("/probe") and p["probe"] == "portal"
                                      for t, p in list(seen)), 30)
        assert wait_until(lambda: any(t.endswith("/isolation") for t, _ in list(seen)), 30)
        statuses = [p for t, p in list(seen) if t.endswith("/status") and p["state"] == "online"]
        assert statuses and statuses[-1]["settings_version"] == v1
        assert statuses[-1]["interval_s"] == 1
    finally:
        stop_agent(agent, cfg)
        reader.disconnect()
        reader.loop_stop()

    # No broker at all: one printed round still runs the kept probes and canaries.
    broker.stop()
    r = run_cli("agent", "--config", str(cfg), "--once", "--print", env=env("pc"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = {line["topic"].rsplit("/", 1)[1] for line in lines}
    assert {"probe", "isolation", "metrics", "inventory"} <= kinds
    [iso] = [line["payload"] for line in lines if line["topic"].endswith("/isolation")]
    assert (iso["canaries_checked"], iso["canaries_reached"]) == (1, 0)
    assert "running the kept settings " + v1 in r.stderr
