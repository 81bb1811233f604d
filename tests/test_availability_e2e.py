"""Availability, probes and isolation end to end: real agents, mosquitto, collector,
InfluxDB and the `netroom` CLI.

Agents are started and stopped (SIGTERM, SIGKILL) on a schedule and the
computed online spans are checked against the process times the test saw.
A day in the past is replayed as agent-shaped messages with their own
timestamps (no sleeping for hours) and checked against hand-computed shares.
"""
from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import fakeinternet
import pytest
import yaml
from harness import REPO, Publisher, count, message, run_cli, series, wait_count, write_config
from servers import Influxd, Mosquitto, free_port, wait_until
from test_probes import portal_up
from zoneinfo import ZoneInfo

from collector.compliance.availability import online_spans, room_now, room_open_spans
from collector.config import load
from collector.influx.client import InfluxSink
from collector.store import heartbeats
from collector.store.snapshot import reader
from collector.store.state.db import StateDB, path_in

SH = ZoneInfo("Asia/Shanghai")
# The two queries of docs/availability.md, verbatim.
CLOSED_NOW = ('SELECT "open", "since" FROM (SELECT last("open") AS "open", '
              'last("closed_since_ms") AS "since" FROM "room_state" WHERE time > now() - 15m '
              'GROUP BY "site") WHERE "open" = 0 GROUP BY "site"')
NOT_OPEN_ALL_DAY = ('SELECT "open_share" FROM "availability" WHERE "day" = \'$day\' '
                    'AND "ok" = 0 GROUP BY "site"')
PLUS8 = dt.timezone(dt.timedelta(hours=8))


def site(**room: Any) -> list[dict[str, Any]]:
    return [{"id": "bureau", "name": "局", "children": [
        {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 0,
         "room": {"timezone": "Asia/Shanghai", **room}}]}]


def agent_config(base: Path, host: str, **agent: Any) -> Path:
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    cfg["agent"].update(host=host, state_dir=str(base.parent / f"state-{host}"), **agent)
    path = base.parent / f"agent-{host}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def last_ms(influxd: Influxd, db: str, host: str) -> int:
    rows = list(series(influxd.query(
        f'SELECT last("collect_ms") FROM "metrics" WHERE "host" = \'{host}\'', db)))
    return int(rows[0]["time"])


def test_agents_started_and_killed_give_the_observed_timeline(
        mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], tmp_path: Path) -> None:
    base = write_config(tmp_path, mosquitto, influxd, influx_db, sites=site())
    svc = run_collector(base)
    hosts = ("pc-a", "pc-b", "pc-c")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    start, ready, kill, gone = {}, {}, {}, {}
    try:
        for h in hosts:
            start[h] = time.time() * 1000 - 1  # payload ts is rounded to the ms
            procs[h] = subprocess.Popen([sys.executable, "-m", "agent", "--config",
                                         str(agent_config(base, h))], cwd=REPO,
                                        stderr=subprocess.DEVNULL)
        for h in hosts:
            wait_count(influxd, influx_db, "metrics", "collect_ms", 2, f"\"host\" = '{h}'")
            ready[h] = time.time() * 1000 + 1
        for h, sig in (("pc-a", signal.SIGTERM), ("pc-b", signal.SIGKILL),
                       ("pc-c", signal.SIGTERM)):
            # Let the agent tick twice more, then stop it.
            n = count(influxd, influx_db, "metrics", "collect_ms", f"\"host\" = '{h}'")
            wait_count(influxd, influx_db, "metrics", "collect_ms", n + 2, f"\"host\" = '{h}'")
            kill[h] = time.time() * 1000 - 1  # payload ts is rounded to the ms
            procs[h].send_signal(sig)
            procs[h].wait(30)
            gone[h] = time.time() * 1000 + 1
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
    # Two clean offlines and the broker's Last Will for the killed one.
    assert wait_until(lambda: count(influxd, influx_db, "status", "state",
                                    "\"state\" = 'offline'") >= 3, 20)

    sink = InfluxSink(load(base).influxdb)
    read = reader(sink)
    now = int(time.time() * 1000)
    timelines = heartbeats.timelines(read, "sq-1", int(min(start.values())) - 60_000, None)
    spans = {h: online_spans(t, now, 5) for (_, h), t in timelines.items()}
    assert sorted(spans) == list(hosts) and all(len(s) == 1 for s in spans.values())
    (sa, ea), (sb, eb), (sc, ec) = (spans[h][0] for h in hosts)
    for h, s in zip(hosts, (sa, sb, sc)):
        assert start[h] <= s <= ready[h]
    # SIGTERM: offline when the agent said so, between the signal and its exit.
    assert kill["pc-a"] <= ea <= gone["pc-a"] and kill["pc-c"] <= ec <= gone["pc-c"]
    # SIGKILL: offline from its last tick, before the kill.
    assert eb == last_ms(influxd, influx_db, "pc-b") and ready["pc-b"] <= eb <= kill["pc-b"]
    all_spans = list(spans.values())
    assert room_open_spans(all_spans, 1) == [(min(sa, sb, sc), ec)]
    # Two PCs online: from the second start until pc-b died (pc-a had left before).
    assert room_open_spans(all_spans, 2) == [(sorted((sa, sb, sc))[1], eb)]
    live = heartbeats.timelines(read, None, now - 86_400_000, None, last_only=True)
    state = room_now({h: t for (_, h), t in live.items()}, now)
    assert (state.open, state.online, state.room_pcs, state.closed_since_ms) == (False, 0, 3, ec)

    # The collector's evaluation writes the live state for dashboards.
    svc.evaluate_now(read)
    assert wait_until(lambda: count(influxd, influx_db, "room_state", "open") >= 1, 20)
    [row] = series(influxd.query('SELECT "open", "closed_since_ms", "room_pcs" '
                                 'FROM "room_state"', influx_db))
    assert (row["open"], row["closed_since_ms"], row["room_pcs"]) == (0, ec, 3)
    # "Which rooms are closed right now", as docs/availability.md writes it.
    closed = influxd.query(CLOSED_NOW, influx_db)
    assert [(r["site"], r["since"]) for r in series(closed)] == [("sq-1", ec)]
    sink.close()

    today = dt.datetime.fromtimestamp(now / 1000, SH).date().isoformat()
    r = run_cli("collector.cli.main", "availability", "--config", str(base), "--date", today,
                "--format", "json")
    assert r.returncode == 0, r.stderr
    [got] = json.loads(r.stdout)
    assert got["date"] == today and got["open_now"] is False
    lo = (kill["pc-c"] - max(ready.values())) / 1000
    hi = (gone["pc-c"] - min(start.values())) / 1000
    assert lo <= got["open_s"] <= hi
    minute = {dt.datetime.fromtimestamp(t / 1000, SH).strftime("%Y-%m-%d %H:%M")
              for t in (kill["pc-c"], gone["pc-c"])}
    assert got["closed_since"] in minute


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> float:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=PLUS8).timestamp()


def replay_day(mosq: Mosquitto, day: dt.date) -> int:
    """pc-a: online 08:00-12:00, clean shutdown 12:00:30; pc-b: 11:00-19:00, power cut."""
    status = {"agent_version": "0.1.0", "interval_s": 60.0}
    msgs = [message("status", {"state": "online", **status}, host="pc-a", ts=at(day, 8)),
            message("status", {"state": "offline", **status}, host="pc-a",
                    ts=at(day, 12, 0, 30)),
            message("status", {"state": "online", **status}, host="pc-b", ts=at(day, 11))]
    for host, first, last in (("pc-a", 8, 12), ("pc-b", 11, 19)):
        for minute in range((last - first) * 60 + 1):
            msgs.append(message("metrics", {"cpu_percent": 3.0, "collect_ms": 2.0}, host=host,
                                ts=at(day, first) + 60 * minute))
    pub = Publisher(mosq)
    pub.publish_many(msgs)
    pub.close()
    return len(msgs) - 3


def test_a_past_day_replayed_gives_the_hand_computed_share(
        mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], tmp_path: Path) -> None:
    base = write_config(tmp_path, mosquitto, influxd, influx_db,
                        sites=site(open=["08:00-20:00"]),
                        rules={"room_open_all_day": {"days": 2}})
    svc = run_collector(base)
    today = dt.datetime.now(SH).date()
    day = today - dt.timedelta(days=2)
    n = replay_day(mosquitto, day)
    assert wait_count(influxd, influx_db, "metrics", "collect_ms", n) == n

    def availability() -> dict[str, Any]:
        r = run_cli("collector.cli.main", "availability", "--config", str(base), "--date",
                    day.isoformat(), "--format", "json")
        assert r.returncode == 0, r.stderr
        [row] = json.loads(r.stdout)
        return dict(row)

    got = availability()
    # Open 08:00-19:00 of the required 08:00-20:00. The 6 days before came before
    # the room's first report: no data, not 0 %, and not in the rolling share.
    assert (got["required_s"], got["open_s"], got["ok"]) == (43200, 39600, False)
    assert abs(got["open_share"] - 11 / 12) < 1e-9
    assert abs(got["rolling_share"] - 11 / 12) < 1e-9
    assert (got["rolling_counted"], got["rolling_unknown"]) == (1, 6)
    assert got["first_report"] == f"{day} 08:00"
    assert got["open_now"] is False and got["closed_since"] == f"{day} 19:00"

    r = run_cli("collector.cli.main", "report", "--config", str(base), "--format", "json")
    assert r.returncode == 0, r.stderr
    [verdict] = [x for x in json.loads(r.stdout)["sites"][0]["rules"]
                 if x["rule"] == "room_open_all_day"]
    # days: 2 -> the replayed day and yesterday (no heartbeat): 11 h of 24 h.
    assert (verdict["ok"], verdict["actual"], verdict["required"]) == (False, 0.4583, 0.95)
    assert "开放 11.0 小时，应开放 24.0 小时" in verdict["detail"]

    # The evaluation stores the replayed day; the CLI then reads it back.
    sink = InfluxSink(load(base).influxdb)
    svc.evaluate_now(reader(sink))
    sink.close()
    where = f"\"day\" = '{day}'"
    assert wait_count(influxd, influx_db, "availability", "open_s", 1, where) == 1
    [stored] = series(influxd.query(f'SELECT * FROM "availability" WHERE {where}', influx_db))
    assert (stored["required_s"], stored["open_s"], stored["ok"]) == (43200, 39600, 0)
    assert stored["time"] == int(at(day, 0) * 1000) and stored["bureau"] == "bureau"
    assert availability()["open_s"] == 39600
    # "Which rooms were not open all day" (that day), as docs/availability.md writes it.
    failed = influxd.query(NOT_OPEN_ALL_DAY.replace("$day", day.isoformat()), influx_db)
    assert [(r["site"], r["open_share"]) for r in series(failed)] == [("sq-1", 0.916667)]

    # The site's link was down that evening: pc-b's outbox delivers its ticks
    # of 19:01-20:00 only now, long after the day was stored.
    late = [message("metrics", {"cpu_percent": 3.0, "collect_ms": 2.0}, host="pc-b",
                    ts=at(day, 19) + 60 * minute) for minute in range(1, 61)]
    pub = Publisher(mosquitto)
    pub.publish_many(late)
    pub.close()
    assert wait_count(influxd, influx_db, "metrics", "collect_ms", n + 60) == n + 60

    def room_rule(source: str) -> dict[str, Any]:
        r = run_cli("collector.cli.main", "report", "--config", str(base), "--format", "json",
                    "--source", source)
        assert r.returncode == 0, r.stderr
        [v] = [x for x in json.loads(r.stdout)["sites"][0]["rules"]
               if x["rule"] == "room_open_all_day"]
        return dict(v)

    # The state counts them at once: open 08:00-20:00, 12 h of the two days' 24.
    assert wait_until(lambda: room_rule("state")["actual"] == 0.5, 20)
    # The next pass stores the day again with them; InfluxDB's readers follow.
    sink = InfluxSink(load(base).influxdb)
    svc.evaluate_now(reader(sink))
    sink.close()

    def stored_day() -> dict[str, Any]:
        [row] = series(influxd.query(f'SELECT * FROM "availability" WHERE {where}', influx_db))
        return dict(row)

    assert wait_until(lambda: stored_day()["open_s"] == 43200, 20)
    assert (stored_day()["ok"], availability()["open_s"], availability()["ok"]) == (1, 43200, True)
    assert room_rule("influxdb")["actual"] == room_rule("state")["actual"] == 0.5
    # The marks are cleared once the day is durable again: the next pass reads it back.
    state = StateDB(path_in(load(base).spool_dir), readonly=True)
    try:
        assert wait_until(
            lambda: not state.db.execute("SELECT count(*) FROM late").fetchone()[0], 20)
    finally:
        state.close()


def probe_config(base: Path, port: int, canary_port: int | None = None) -> None:
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    cfg["probes"] = [{"name": "portal", "kind": "http", "target": f"http://127.0.0.1:{port}/",
                      "timeout": 2, "networks": ["gov"]}]
    if canary_port is not None:
        cfg["agent"]["isolation"] = {"timeout": 1, "canaries": [
            {"name": "inet-tcp", "kind": "tcp", "target": f"127.0.0.1:{canary_port}"}]}
    base.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def once(base: Path, host: str, **agent: Any) -> None:
    r = run_cli("agent", "--config", str(agent_config(base, host, **agent)), "--once")
    assert r.returncode == 0, r.stderr


def rule(base: Path, name: str) -> dict[str, Any]:
    r = run_cli("collector.cli.main", "report", "--config", str(base), "--format", "json")
    assert r.returncode == 0, r.stderr
    [out] = [x for x in json.loads(r.stdout)["sites"][0]["rules"] if x["rule"] == name]
    return dict(out)


def test_portal_going_down_and_up_moves_portal_reachable(
        mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], tmp_path: Path) -> None:
    base = write_config(tmp_path, mosquitto, influxd, influx_db, sites=site())
    port = free_port()
    probe_config(base, port)
    run_collector(base)
    (tmp_path / "www").mkdir()
    portal = portal_up(port, tmp_path / "www")
    seen = 0

    def round_of(*hosts: str) -> None:
        nonlocal seen
        for h in hosts:
            once(base, h)
        seen += len(hosts)
        wait_count(influxd, influx_db, "probe", "ok", seen)

    try:
        round_of("pc-g1", "pc-g2")
        once(base, "pc-i1", network="internet")  # runs no gov probe, is no gov PC
        assert rule(base, "portal_reachable")["actual"] == 1.0
    finally:
        portal.kill()
        portal.wait(10)
    round_of("pc-g1")
    half = rule(base, "portal_reachable")
    assert (half["ok"], half["actual"]) == (False, 0.5)
    assert "无法访问政工网：pc-g1" in half["detail"]
    round_of("pc-g2")
    assert rule(base, "portal_reachable")["actual"] == 0.0
    portal = portal_up(port, tmp_path / "www")
    try:
        round_of("pc-g1", "pc-g2")
    finally:
        portal.kill()
        portal.wait(10)
    back = rule(base, "portal_reachable")
    assert (back["ok"], back["actual"]) == (True, 1.0)


def test_a_gov_pc_reaching_a_canary_is_listed_until_it_clears(
        mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], tmp_path: Path) -> None:
    """The "internet" here is a listener on 127.0.0.1 (the namespace test uses a real
    route); what is checked is the path from agent to `netroom isolation` and the rule."""
    base = write_config(tmp_path, mosquitto, influxd, influx_db, sites=site())
    canary = free_port()
    probe_config(base, free_port(), canary)
    run_collector(base)
    inet = fakeinternet.start([f"--tcp=127.0.0.1:{canary}"])
    try:
        once(base, "pc-g1")
        once(base, "pc-g2")
    finally:
        fakeinternet.stop(inet)
    wait_count(influxd, influx_db, "isolation", "violated", 2)
    once(base, "pc-g2")  # the listener is gone: pc-g2 is clean again
    wait_count(influxd, influx_db, "isolation", "violated", 3)

    r = run_cli("collector.cli.main", "isolation", "--config", str(base))
    assert r.returncode == 1, r.stderr  # a violation: exit 1, for cron and scripts
    assert "pc-g1" in r.stdout and "违规" in r.stdout and "可连通外网探测目标 inet-tcp" in r.stdout
    assert "pc-g2" not in r.stdout and "1 台政务网电脑违规（共 2 台上报）" in r.stdout
    failing = rule(base, "gov_isolation")
    assert (failing["ok"], failing["actual"]) == (False, 1)
    assert "pc-g1: 可连通外网探测目标 inet-tcp" in failing["detail"]

    once(base, "pc-g1")
    wait_count(influxd, influx_db, "isolation", "violated", 4)
    r = run_cli("collector.cli.main", "isolation", "--config", str(base), "--lang", "en",
                "--all", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [(x["host"], x["violated"]) for x in json.loads(r.stdout)] == [
        ("pc-g1", False), ("pc-g2", False)]
    r = run_cli("collector.cli.main", "isolation", "--config", str(base), "--lang", "en")
    assert r.returncode == 0 and "No gov PC can reach the internet" in r.stdout
    assert rule(base, "gov_isolation")["ok"] is True


@pytest.mark.parametrize("args,message", [
    (["availability", "--date", "2025-13-01"], "--date: must be YYYY-MM-DD"),
    (["availability", "--site", "nowhere"], "--site: 'nowhere' is not a node"),
    (["isolation", "--site", "nowhere"], "--site: 'nowhere' is not a node"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                               message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sites": site()}), encoding="utf-8")
    r = run_cli("collector.cli.main", args[0], "--config", str(path), *args[1:])
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
