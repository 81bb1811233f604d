"""Agent versions and self-update on the collector's side (issue 14).

Statuses carrying update fields go through the real pipeline (mosquitto, the
collector, influxd) into the state; `netroom versions` reads them back per
site with names, each PC's target from the `sites` tree (a unit's version, a
pilot PC's `hosts` section); the state rebuilt from InfluxDB gives what
InfluxDB gives; an evaluation writes the roll-up the fleet board reads, and
its panels show the newest evaluation only. The wire contract: the fields
are accepted, a bad update_state is not.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from grafana_influxql import Grafana
from harness import Publisher, message, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto, wait_until

from collector.compliance import rollout
from collector.compliance.rollout import AgentState
from collector.config import load
from collector.influx.client import InfluxSink
from collector.store.loaders import agents
from collector.store.rows import reader
from collector.store.state import rebuild
from collector.store.state import snapshot as state_snapshot
from collector.store.state.db import StateDB, path_in
from netroom import protocol

REPO = Path(__file__).resolve().parent.parent
URL = "http://collector.example:8090/releases"
TREE = [{"id": "bj", "name": "局", "children": [
    {"id": "zd-1", "name": "一支队", "agents": {"update": {"version": "1.5.0", "url": URL}},
     "children": [{"id": "dd-1", "name": "一大队", "children": [
         {"id": "sq-1", "name": "一中队", "cadres": 1, "staff": 1},
         # A pilot PC, by its hostname: the next version before the others.
         {"id": "sq-2", "name": "二中队", "cadres": 1, "staff": 1,
          "agents": {"hosts": {"PILOT-PC": {"update": {"version": "1.6.0"}}}}}]}]},
    {"id": "zd-2", "name": "二支队", "children": [{"id": "dd-2", "name": "二大队", "children": [
        {"id": "sq-3", "name": "三中队", "cadres": 1, "staff": 1}]}]}]}]
HOUR = 3600.0
# (site, host, hostname, status fields, age of status and inventory in hours,
# the phase it must be in); "SETTINGS": the site's current settings version.
PCS: list[tuple[str, str, str, dict[str, Any], float, str]] = [
    ("sq-1", "a1", "a1", {"agent_version": "1.5.0", "update_state": "current",
                          "update_version": "1.5.0"}, 0.1, "current"),
    ("sq-1", "a2", "a2", {"agent_version": "1.4.0", "update_state": "updating",
                          "update_version": "1.5.0"}, 0.1, "updating"),
    ("sq-1", "a3", "a3", {"agent_version": "1.4.0", "update_state": "rolled_back",
                          "update_version": "1.5.0",
                          "update_error": "1.5.0 did not report within 600 s"}, 0.1,
     "rolled_back"),
    ("sq-1", "a4", "a4", {"agent_version": "1.4.0", "update_state": "unsupported",
                          "update_version": "1.5.0",
                          "update_error": "no agent.update_keys in this PC's config"}, 0.1,
     "unsupported"),
    # Has the settings naming 1.5.0 and says nothing of updates: too old to.
    ("sq-1", "a5", "a5", {"agent_version": "1.3.0", "settings_version": "SETTINGS"}, 0.1,
     "unsupported"),
    # Has not had the new settings yet.
    ("sq-1", "a6", "a6", {"agent_version": "1.4.0"}, 0.1, "pending"),
    # Updating when last heard of, three days ago.
    ("sq-1", "a7", "a7", {"agent_version": "1.4.0", "update_state": "updating",
                          "update_version": "1.5.0"}, 72, "silent"),
    ("sq-2", "b1", "PILOT-PC", {"agent_version": "1.6.0", "update_state": "current",
                                "update_version": "1.6.0"}, 0.1, "current"),
    ("sq-2", "b2", "b2", {"agent_version": "1.4.0", "update_state": "failed",
                          "update_version": "1.5.0",
                          "update_error": "manifest.json: signature does not verify"}, 0.1,
     "failed"),
    ("sq-3", "c1", "c1", {"agent_version": "1.4.0"}, 0.1, "current"),
]


def _messages(cfg: Path, now: float) -> list[tuple[str, bytes]]:
    org = load(cfg).org
    out = []
    for site, host, hostname, fields, age, _ in PCS:
        body = {"state": "online", "interval_s": 60.0, **fields}
        site_obj = org.site(site)
        assert site_obj is not None
        if body.get("settings_version") == "SETTINGS":
            body["settings_version"] = site_obj.settings.version
        ts = now - age * HOUR
        out.append(message("status", body, site=site, host=host, role="cadre", ts=ts))
        out.append(message("inventory", {"hostname": hostname, "host_id": f"id-{host}"},
                           site=site, host=host, role="cadre", ts=ts))
    return out


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
          run_collector: Callable[[Path], Any]) -> tuple[Path, Any]:
    """The PCs' statuses and inventories through the real collector, in its state."""
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=TREE)
    svc = run_collector(cfg)
    pub = Publisher(mosquitto)
    pub.publish_many(_messages(cfg, time.time()))
    pub.close()
    wait_count(influxd, influx_db, "status", "state", len(PCS))
    path = path_in(load(cfg).spool_dir)

    def landed() -> bool:
        if not os.path.exists(path):
            return False
        db = StateDB(path, readonly=True)
        try:
            n = db.db.execute("SELECT count(*) FROM online").fetchone()[0]
            return bool(db.complete and n == len(PCS))
        finally:
            db.close()

    assert wait_until(landed, 20), "the statuses never reached a complete state"
    return cfg, svc


def versions(cfg: Path, *args: str) -> Any:
    return run_cli("collector.cli.main", "versions", "--config", str(cfg), *args)


def test_versions_shows_each_site_against_its_target_by_name(fleet: tuple[Path, Any]) -> None:
    cfg, _ = fleet
    r = versions(cfg, "--format", "json")
    assert r.returncode == 1, r.stderr  # a PC rolled back, one failed
    doc = json.loads(r.stdout)
    rows = {row["site"]: row for row in doc["rows"]}
    assert [row["name"] for row in doc["rows"]] == ["一中队", "二中队", "三中队"]
    assert rows["sq-1"]["unit"] == "一支队 / 一大队"
    assert rows["sq-1"]["target"] == "1.5.0" and rows["sq-3"]["target"] == ""
    want = {site: {p: sum(1 for s, *_, ph in PCS if s == site and ph == p)
                   for p in rollout.PHASES} for site in rows}
    for site, row in rows.items():
        assert {p: row[p] for p in rollout.PHASES} == want[site], site
    assert rows["sq-1"]["reporting"] == 6 and rows["sq-1"]["pcs"] == 7  # a7 is silent
    # The pilot PC's own target, from the hosts section keyed by its hostname.
    assert rows["sq-2"]["targets"] == {"1.5.0": 1, "1.6.0": 1}
    assert rows["sq-1"]["versions"] == {"1.4.0": 5, "1.5.0": 1, "1.3.0": 1}
    assert doc["total"]["failed"] == 1 and doc["total"]["rolled_back"] == 1

    r = versions(cfg)  # the table, in Chinese by default, with names
    assert r.returncode == 1, r.stderr
    text = r.stdout
    for word in ("客户端版本与自动升级", "一支队 / 一大队", "一中队", "二中队", "三中队",
                 "目标版本", "已是目标版本/上报", "升级失败", "已回退", "不支持自动升级",
                 "失联", "小计", "合计", "1.5.0（1.6.0 1 台）", "未指定", "1.4.0 5台"):
        assert word in text, word
    assert "1 台电脑升级失败或已回退" not in text and "2 台电脑升级失败或已回退" in text
    line = next(x for x in text.splitlines() if x.startswith("一支队 / 一大队  一中队"))
    assert "1/6" in line  # on target / reporting
    assert "sq-1" not in text and "zd-1" not in text  # names, not ids

    en = versions(cfg, "--lang", "en")
    assert "Agent versions and self-update" in en.stdout and "rolled back" in en.stdout
    assert "升级" not in en.stdout and "一中队" in en.stdout  # words in English, names as given
    assert "2 PCs failed or rolled back" in en.stdout

    # Only the second detachment: nothing failed there.
    r = versions(cfg, "--unit", "zd-2", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [row["site"] for row in json.loads(r.stdout)["rows"]] == ["sq-3"]
    r = versions(cfg, "--site", "sq-2", "--format", "csv")
    assert r.returncode == 1 and r.stdout.startswith("\ufeff所属单位,站点,目标版本")
    assert r.stdout.count("\n") == 2


def test_versions_failed_lists_the_pcs_and_why(fleet: tuple[Path, Any]) -> None:
    cfg, _ = fleet
    r = versions(cfg, "--failed", "--format", "json")
    assert r.returncode == 1, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert [(x["host"], x["phase"]) for x in rows] == [
        ("b2", "failed"), ("a3", "rolled_back"), ("a4", "unsupported"), ("a5", "unsupported")]
    why = {x["host"]: x["reason"] for x in rows}
    assert why["b2"] == "manifest.json: signature does not verify"
    assert why["a5"].startswith("客户端版本过旧")
    assert rows[0]["site"] == "二中队" and rows[0]["state"] == "升级失败"
    table = versions(cfg, "--failed").stdout
    for word in ("升级失败", "已回退", "不支持自动升级", "二中队", "signature does not verify"):
        assert word in table, word
    assert "a1" not in table.split() and "a7" not in table.split()
    assert "--failed" in run_cli("collector.cli.main", "versions", "--help").stdout
    assert "exit codes" in run_cli("collector.cli.main", "versions", "--help").stdout


def test_state_and_influxdb_and_a_rebuild_agree(fleet: tuple[Path, Any],
                                                tmp_path: Path) -> None:
    cfg, _ = fleet
    state = versions(cfg, "--format", "json", "--source", "state")
    influx = versions(cfg, "--format", "json", "--source", "influxdb")
    assert state.returncode == influx.returncode == 1, (state.stderr, influx.stderr)
    assert json.loads(state.stdout) == json.loads(influx.stdout)
    # A state rebuilt from InfluxDB alone holds the same agents.
    c = load(cfg)
    now = int(time.time() * 1000)
    sink = InfluxSink(c.influxdb)
    try:
        db = StateDB(str(tmp_path / "rebuilt.sqlite"))
        asked: list[str] = []
        read = reader(sink)

        def counted(q: str) -> list[dict[str, Any]]:
            asked.append(q)
            return read(q)

        rebuild.rebuild(db, counted, c.org, now)
        # A fixed number of queries and the room statuses' slices, not one per PC.
        assert rebuild.FIXED_QUERIES < len(asked) <= rebuild.max_queries(c.org, now)
        from_influx = agents.load(reader(sink), c.org, now).facts
    finally:
        sink.close()
    rebuilt = state_snapshot.load_agents(db, c.org, now).facts
    db.close()
    assert rebuilt == from_influx
    assert {a.host: rollout.phase(a, now) for f in rebuilt.values() for a in f["agents"]} == {
        host: ph for _, host, _, _, _, ph in PCS}


def test_an_evaluation_writes_the_roll_up_the_fleet_board_reads(
        fleet: tuple[Path, Any], mosquitto: Mosquitto, influxd: Influxd, influx_db: str) -> None:
    _, svc = fleet
    sink = InfluxSink(svc.cfg.influxdb)
    svc.evaluate_now(reader(sink))
    wait_count(influxd, influx_db, "agent_failures", "evaluated_ms", 2)
    board = json.loads((REPO / "dashboards" / "generated" / "netroom-fleet-zh.json")
                       .read_text("utf-8"))
    versions_panel = next(p for p in board["panels"] if p["title"] == "各中队客户端版本")
    failed_panel = next(p for p in board["panels"] if p["title"] == "升级失败或已回退的电脑")
    now = time.time()
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))

    def shown() -> tuple[dict[tuple[str, str, str, str], int], list[tuple[str, str, str, str]]]:
        g = Grafana(influxd, influx_db, board, {}, *span)
        counts = {(r["site_name"], r["target"], r["version"], r["state"]): r["pcs"]
                  for r in g.panel(versions_panel)}
        failed = sorted((r["site_name"], r["host"], r["state"], r["update_error"])
                        for r in g.panel(failed_panel))
        return counts, failed

    counts, failed = shown()
    assert counts == {
        ("一中队", "1.5.0", "1.5.0", "current"): 1, ("一中队", "1.5.0", "1.4.0", "updating"): 1,
        ("一中队", "1.5.0", "1.4.0", "rolled_back"): 1,
        ("一中队", "1.5.0", "1.4.0", "unsupported"): 1,
        ("一中队", "1.5.0", "1.3.0", "unsupported"): 1, ("一中队", "1.5.0", "1.4.0", "pending"): 1,
        ("一中队", "1.5.0", "1.4.0", "silent"): 1, ("二中队", "1.6.0", "1.6.0", "current"): 1,
        ("二中队", "1.5.0", "1.4.0", "failed"): 1, ("三中队", "none", "1.4.0", "current"): 1}
    assert failed == [("一中队", "a3", "rolled_back", "1.5.0 did not report within 600 s"),
                      ("二中队", "b2", "failed", "manifest.json: signature does not verify")]
    # b2 updates after all: the next evaluation's tables no longer list it,
    # though its old series keep their last point.
    pub = Publisher(mosquitto)
    pub.publish(*message("status", {"state": "online", "agent_version": "1.5.0",
                                    "update_state": "current", "update_version": "1.5.0"},
                         site="sq-2", host="b2", role="cadre"))
    pub.close()

    def updated() -> bool:
        db = StateDB(path_in(svc.cfg.spool_dir), readonly=True)
        try:
            row = db.db.execute("SELECT agent FROM online WHERE host = 'b2'").fetchone()
            return bool(row and row[0] == "1.5.0")
        finally:
            db.close()

    assert wait_until(updated, 20)
    time.sleep(0.002)  # a new evaluation time
    svc.evaluate_now(reader(sink))
    sink.close()
    assert wait_until(lambda: ("二中队", "1.5.0", "1.5.0", "current") in shown()[0], 20)
    counts, failed = shown()
    assert ("二中队", "1.5.0", "1.4.0", "failed") not in counts
    assert [f[1] for f in failed] == ["a3"]
    # The Chinese board shows the stages in Chinese.
    stage = next(o for o in versions_panel["fieldConfig"]["overrides"]
                 if o["matcher"]["options"] == "状态")
    texts = {k: v["text"] for k, v in stage["properties"][0]["value"][0]["options"].items()}
    assert texts["rolled_back"] == "已回退" and texts["failed"] == "升级失败"


# --- the pure parts -----------------------------------------------------------

NOW = 1_800_000_000_000


def _pc(**kw: Any) -> AgentState:
    base: dict[str, Any] = {"site": "s", "host": "h", "hostname": "h", "target": "1.5.0",
                            "running": "1.4.0", "seen_ms": NOW, "heard_ms": NOW}
    return AgentState(**{**base, **kw})


@pytest.mark.parametrize(("kw", "want"), [
    ({"running": "1.5.0", "state": "current"}, "current"),
    ({"target": ""}, "current"),  # nothing named: nothing to do
    ({"state": "updating"}, "updating"),
    ({"state": "failed"}, "failed"),
    ({"state": "failed", "heard_ms": NOW - 3 * 86_400_000}, "failed"),  # still needs a look
    ({"state": "rolled_back"}, "rolled_back"),
    ({"state": "unsupported"}, "unsupported"),
    ({"on_settings": True}, "unsupported"),  # too old to say anything
    ({}, "pending"),
    ({"state": "current", "version": "1.4.0"}, "pending"),  # its settings are older
    ({"state": "updating", "heard_ms": NOW - 3 * 86_400_000}, "silent"),
])
def test_phase(kw: dict[str, Any], want: str) -> None:
    assert rollout.phase(_pc(**kw), NOW) == want


def test_status_carries_the_update_fields_and_refuses_a_bad_state() -> None:
    def status(**fields: Any) -> bytes:
        body = {**protocol.envelope("sq-1", "pc-1", "gov", "room", 1764000000.0),
                "state": "online", **fields}
        return protocol.encode(body)

    topic = protocol.topic("sq-1", "pc-1", "status")
    msg = protocol.decode(topic, status(update_state="rolled_back", update_version="1.5.0",
                                        update_error="did not report"))
    assert msg.fields["update_state"] == "rolled_back"
    assert msg.fields["update_version"] == "1.5.0"
    assert msg.fields["update_error"] == "did not report"
    for state in protocol.UPDATE_STATES:
        assert protocol.decode(topic, status(update_state=state)).fields["update_state"] == state
    with pytest.raises(protocol.ProtocolError, match="update_state: must be one of"):
        protocol.decode(topic, status(update_state="done"))
    with pytest.raises(protocol.ProtocolError, match="update_version: longer than 32"):
        protocol.decode(topic, status(update_version="1" * 33))
    fitted = protocol.fit("status", {"update_error": "x" * 600})
    assert len(fitted["update_error"]) == 512
