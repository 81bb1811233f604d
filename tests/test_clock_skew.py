"""Time you can trust (issue 9): PCs' clocks must not bend the verdicts.

Each finding, on the real pipeline (agent-shaped messages -> mosquitto ->
the real collector -> influxd -> `netroom` and the collector's evaluation):
- an isolation report stamped 2099 with violated=false hid every later
  violation from `netroom isolation` and gov_isolation;
- a probe ok=true stamped 2099 kept portal_reachable passing;
- a room PC whose clock is 120 s fast made its room "closed".
Points stamped 2099 are written straight into influxd: they are what an
older collector stored (the ingest now re-stamps such messages at their
arrival, tested with the ingest), so these tests need no particular ingest.
Points stamped up to 10 minutes ahead go through the pipeline: the ingest
keeps their time. And the agent's own clock offset, measured against real
HTTP servers' Date headers (docs/collectors.md).
"""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from harness import Publisher, message, run_cli, series, wait_count, write_config
from servers import Influxd, Mosquitto, free_port
from zoneinfo import ZoneInfo

from agent.__main__ import Agent
from agent.collectors.status import ClockError, Sample, Status, estimate, parse_date
from agent.config import ConfigError
from agent.config import load as load_agent
from collector.compliance.availability import Timeline, online_spans, room_now
from collector.config import load
from collector.influx.client import InfluxSink
from collector.speedtest.server import SpeedServer, SpeedServerConfig
from collector.store.snapshot import reader
from netroom import protocol

FUTURE_MS = 4_070_908_800_000  # 2099-01-01T00:00:00Z
SH = ZoneInfo("Asia/Shanghai")
TREE = [{"id": "bureau", "name": "局", "children": [
    {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 0,
     "room": {"timezone": "Asia/Shanghai"}}]}]
# What the collector tags a sq-1 point with (the org path: the root's level is "bureau").
TAGS = "site=sq-1,host={host},network=gov,role={role},bureau=bureau"


@pytest.fixture
def pipeline(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
             run_collector: Callable[[Path], Any]) -> tuple[Path, Any]:
    base = write_config(tmp_path, mosquitto, influxd, influx_db, sites=TREE)
    return base, run_collector(base)


def send(mosq: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    pub = Publisher(mosq)
    pub.publish_many(msgs)
    pub.close()


def legacy(influxd: Influxd, db: str, measurement: str, host: str, role: str,
           fields: str) -> None:
    """A point stamped 2099, as an older collector stored a broken clock's message."""
    influxd.write(f"{measurement},{TAGS.format(host=host, role=role)} {fields} {FUTURE_MS}", db)


def rule(base: Path, name: str) -> dict[str, Any]:
    r = run_cli("collector.cli.main", "report", "--config", str(base), "--format", "json")
    assert r.returncode == 0, r.stderr
    [out] = [x for x in json.loads(r.stdout)["sites"][0]["rules"] if x["rule"] == name]
    return dict(out)


def evaluated(base: Path, svc: Any, influxd: Influxd, db: str, name: str) -> dict[str, Any]:
    """The collector's own evaluation, run now: its `compliance` point for ``name``."""
    since = int(time.time() * 1000) - 1
    sink = InfluxSink(load(base).influxdb)
    svc.evaluate_now(reader(sink))
    sink.close()
    where = f"\"rule\" = '{name}' AND time > {since}ms"
    wait_count(influxd, db, "compliance", "ok", 1, where)
    [row] = series(influxd.query(f'SELECT "ok", "actual" FROM "compliance" WHERE {where}', db))
    return row


def test_an_isolation_pass_stamped_2099_hides_no_later_violation(
        pipeline: tuple[Path, Any], mosquitto: Mosquitto, influxd: Influxd,
        influx_db: str) -> None:
    base, svc = pipeline
    now = time.time()
    legacy(influxd, influx_db, "isolation", "pc-g1", "cadre",
           'violated=false,reasons="",bridges_up=0i')

    def report(host: str, ts: float, violated: bool) -> tuple[str, bytes]:
        body = {"violated": violated, "reasons": "usb interface usb0 is up" if violated else ""}
        return message("isolation", body, host=host, role="cadre", ts=ts)

    send(mosquitto, [
        report("pc-g1", now - 30, True),  # today's violation, after the 2099 pass
        # A clock 9 min 50 s fast, then set right: the pass stamped ahead was
        # sent before the violation.
        report("pc-g2", now + 590, False), report("pc-g2", now, True),
        # A clock 2 min fast, still fast: its violation is the newest report.
        report("pc-g3", now - 60, False), report("pc-g3", now + 120, True),
        # A right clock: the next clean report clears a violation, as ever.
        report("pc-g4", now - 120, True), report("pc-g4", now - 60, False),
    ])
    wait_count(influxd, influx_db, "isolation", "violated", 8)

    r = run_cli("collector.cli.main", "isolation", "--config", str(base), "--all",
                "--format", "json")
    assert r.returncode == 1, r.stderr  # violations: exit 1
    assert [(x["host"], x["violated"]) for x in json.loads(r.stdout)] == [
        ("pc-g1", True), ("pc-g2", True), ("pc-g3", True), ("pc-g4", False)]
    r = run_cli("collector.cli.main", "isolation", "--config", str(base))
    assert "pc-g1" in r.stdout and "USB 共享网卡 usb0 已启用" in r.stdout
    assert "3 台政务网电脑违规（共 4 台上报）" in r.stdout

    verdict = rule(base, "gov_isolation")
    assert (verdict["ok"], verdict["actual"]) == (False, 3)
    assert "pc-g1: USB 共享网卡 usb0 已启用" in verdict["detail"]
    row = evaluated(base, svc, influxd, influx_db, "gov_isolation")
    assert (row["ok"], row["actual"]) == (0, 3)


def test_a_probe_success_stamped_2099_does_not_keep_the_portal_reachable(
        pipeline: tuple[Path, Any], mosquitto: Mosquitto, influxd: Influxd,
        influx_db: str) -> None:
    base, svc = pipeline
    now = time.time()
    legacy(influxd, influx_db, "probe", "pc-g1", "room",
           'method="http",target="http://zgw.example.gov/",ok=true')

    def probe(host: str, ts: float, ok: bool) -> tuple[str, bytes]:
        body: dict[str, Any] = {"probe": "portal", "method": "http",
                                "target": "http://zgw.example.gov/", "ok": ok}
        if not ok:
            body["error"] = "ConnectionRefusedError: [Errno 111] Connection refused"
        return message("probe", body, host=host, ts=ts)

    send(mosquitto, [
        probe("pc-g1", now - 30, False),  # the portal fails today, after the 2099 success
        probe("pc-g2", now + 590, True), probe("pc-g2", now, False),  # fast, then set right
        probe("pc-g3", now - 120, False), probe("pc-g3", now - 60, True),  # recovered
    ])
    wait_count(influxd, influx_db, "probe", "ok", 6)

    verdict = rule(base, "portal_reachable")
    assert (verdict["ok"], verdict["actual"]) == (False, pytest.approx(1 / 3, abs=1e-4))
    assert verdict["detail"] == "2 台电脑无法访问政工网：pc-g1, pc-g2；1/3 台政务网电脑可访问政工网"
    row = evaluated(base, svc, influxd, influx_db, "portal_reachable")
    assert (row["ok"], row["actual"]) == (0, pytest.approx(1 / 3, abs=1e-4))


def test_a_room_pc_two_minutes_fast_keeps_its_room_open(
        pipeline: tuple[Path, Any], mosquitto: Mosquitto, influxd: Influxd,
        influx_db: str) -> None:
    base, svc = pipeline
    now = time.time()
    fast = 120.0  # pc-r1's clock runs two minutes ahead
    status = {"agent_version": "0.1.0", "interval_s": 60.0}
    msgs = [message("status", {"state": "online", **status}, host="pc-r1",
                    ts=now - 3600 + fast)]
    msgs += [message("metrics", {"cpu_percent": 3.0, "collect_ms": 2.0}, host="pc-r1",
                     ts=now - 60 * k + fast) for k in range(60, -1, -1)]
    # pc-r2 was switched off an hour ago; a tick of it stamped 2099 is in the database.
    msgs += [message("status", {"state": "online", **status}, host="pc-r2", ts=now - 7200)]
    msgs += [message("metrics", {"cpu_percent": 3.0, "collect_ms": 2.0}, host="pc-r2",
                     ts=now - 3600 - 60 * k) for k in range(60, -1, -1)]
    send(mosquitto, msgs)
    legacy(influxd, influx_db, "metrics", "pc-r2", "room", "cpu_percent=3,collect_ms=2")
    wait_count(influxd, influx_db, "metrics", "collect_ms", 2 * 61 + 1)

    since = int(time.time() * 1000) - 1
    sink = InfluxSink(load(base).influxdb)
    svc.evaluate_now(reader(sink))
    sink.close()
    wait_count(influxd, influx_db, "room_state", "open", 1, f"time > {since}ms")
    [state] = series(influxd.query(f'SELECT "open", "online", "room_pcs" FROM "room_state" '
                                   f"WHERE time > {since}ms", influx_db))
    assert (state["open"], state["online"], state["room_pcs"]) == (1, 1, 2)

    today = dt.datetime.fromtimestamp(now, SH).date().isoformat()
    r = run_cli("collector.cli.main", "availability", "--config", str(base), "--date", today,
                "--format", "json")
    assert r.returncode == 0, r.stderr
    [got] = json.loads(r.stdout)
    assert (got["open_now"], got["online"], got["room_pcs"]) == (True, 1, 2)


def test_heartbeats_ahead_of_now_count_as_now_within_the_tolerance() -> None:
    now = 1_800_000_000_000
    fast = Timeline((now - 3_480_000, now + 120_000))  # connected an hour ago, a tick ahead
    assert online_spans(fast, now) == []  # one instant at now: no length yet
    assert room_now({"pc-r1": fast}, now).open is True
    ticking = Timeline(tuple(range(now - 600_000 + 120_000, now + 120_001, 60_000)))
    assert online_spans(ticking, now) == [(now - 480_000, now)]
    # A clean offline stamped ahead has happened: offline now.
    stopped = Timeline(ticking.beats, ((now + 121_000, False),))
    assert room_now({"pc-r1": stopped}, now).open is False
    # Further ahead than 10 minutes: not read at all.
    broken = Timeline((now - 3_600_000, now + 601_000))
    state = room_now({"pc-r2": broken}, now)
    assert (state.open, state.closed_since_ms) == (False, now - 3_600_000)


# --- the agent's clock offset ---

def test_http_dates_and_the_offset_they_bound() -> None:
    assert parse_date("Thu, 03 Dec 2026 14:02:21 GMT") == 1_796_306_541.0
    with pytest.raises(ValueError):
        parse_date("yesterday")
    # This clock is 300.4 s ahead; the server's second ticks between the 2nd and 3rd.
    t = 1_796_306_541.0
    samples = [Sample(t + 300.4 + d, t + 300.4 + d + 0.01, float(int(t + d)))
               for d in (0.5, 0.75, 1.0, 1.25)]
    off = estimate(samples)
    assert abs(off.offset_s - 300.4) <= off.error_s <= 0.13
    # One sample alone: within half a second and half the round trip.
    one = estimate(samples[:1])
    assert abs(one.offset_s - 300.4) <= one.error_s <= 0.51
    # A server clock stepped between two answers: the quickest answer decides.
    stepped = [Sample(t, t + 0.2, t - 10), Sample(t + 1, t + 1.01, t + 1)]
    assert estimate(stepped) == (-0.495, 0.505)


class _Behind(BaseHTTPRequestHandler):
    """An HTTP server whose clock is five minutes behind this one's."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(time.time() - 300 if timestamp is None else timestamp,
                                      usegmt=True)

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def behind() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Behind)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def agent_config(tmp_path: Path, mosquitto: Mosquitto, clock: dict[str, Any]) -> Path:
    return write_config(tmp_path, mosquitto, agent={"clock": clock, "role": "room"})


def test_the_agent_sends_its_offset_in_an_online_status(tmp_path: Path, mosquitto: Mosquitto,
                                                        behind: str) -> None:
    cfg = agent_config(tmp_path, mosquitto, {"url": behind, "timeout": 5})
    r = run_cli("agent", "--config", str(cfg), "--once", "--print")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    [status] = [x for x in lines if x["topic"].endswith("/status")]
    body = status["payload"]
    assert status["retain"] is True and body["state"] == "online"
    # The reference is 300 s behind: this clock is 300 s ahead of it.
    assert abs(body["clock_offset_s"] - 300) <= body["clock_error_s"] < 1
    # The collector accepts it (fields it does not know yet are skipped).
    topic, payload = status["topic"], json.dumps(body).encode()
    assert protocol.decode(topic, payload).fields["state"] == "online"


def test_against_the_collectors_speed_server_the_offset_is_nil(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0"))
    srv.start()
    try:
        cfg = load_agent(agent_config(tmp_path, mosquitto, {"url": srv.url}))
        agent = Agent(cfg)
        [job] = [j for j in agent.jobs() if j.key == "clock"]
        assert (job.interval_s, job.timeout_s) == (3600, 10)
        off = agent.state.measure()
    finally:
        srv.stop()
    assert abs(off.offset_s) <= off.error_s < 1  # one clock on both ends
    _, payload = agent.status("online")
    body = json.loads(payload)
    assert (body["clock_offset_s"], body["clock_error_s"]) == off
    assert "clock_offset_s" not in json.loads(agent.status("offline")[1])


def test_an_unreachable_reference_reports_no_offset(tmp_path: Path,
                                                    mosquitto: Mosquitto) -> None:
    cfg = load_agent(agent_config(tmp_path, mosquitto,
                                  {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2}))
    state = Status(cfg)
    with pytest.raises(ClockError, match="ConnectionRefusedError"):
        state.collect()
    assert state.offset is None and "clock_offset_s" not in state.body("online")
    # Without agent.clock.url nothing is measured and no clock job runs.
    plain = Agent(load_agent(write_config(tmp_path, mosquitto)))
    assert not [j for j in plain.jobs() if j.key == "clock"]


@pytest.mark.parametrize("clock,text", [
    ({"url": "ftp://collector"}, "agent.clock.url: must be http(s)://host[:port][/path]"),
    ({"interval": 10}, "agent.clock.interval: must be between 60"),
    ({"server": "x"}, "agent.clock.server: unknown key"),
])
def test_bad_clock_config_is_one_line_naming_the_key(tmp_path: Path, mosquitto: Mosquitto,
                                                     clock: dict[str, Any], text: str) -> None:
    path = agent_config(tmp_path, mosquitto, clock)
    with pytest.raises(ConfigError, match=re.escape(text)):
        load_agent(path)
    assert yaml.safe_load(path.read_text())["agent"]["clock"] == clock
