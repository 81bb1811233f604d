"""Bandwidth on the real pipeline: agent / agent-shaped messages -> mosquitto
-> collector -> InfluxDB, then the bandwidth loader, the rules and `netroom
report`; and the utilisation queries of docs/bandwidth.md run on influxd.

Every expected figure is worked out by hand in the comments.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import (
    REPO,
    Publisher,
    count,
    message,
    run_cli,
    series,
    wait_count,
    write_config,
)
from servers import Influxd, Mosquitto, free_port

from collector.compliance.facts import Bandwidth
from collector.compliance.orgconfig import read_org
from collector.store.loaders import bandwidth as loader

HOUR, DAY = 3600.0, 86400.0
MINE = ("room_video", "gov_bandwidth")


def rules_section() -> dict[str, Any]:
    """Only the bandwidth rules, so the verdicts do not depend on the others."""
    from collector.compliance.rules import registry

    return {"evaluate_interval": 3600,
            **{r.NAME: {"enabled": False} for r in registry() if r.NAME not in MINE}}


def test_a_failed_test_lands_as_an_error_record(tmp_path: Path, mosquitto: Mosquitto,
                                                influxd: Influxd, influx_db: str,
                                                run_collector: Callable[[Path], Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, agent={
        "network": "internet", "host": "tester",
        "bandwidth": {"tester": True, "method": "intranet", "url": dead, "duration": 1}})
    run_collector(cfg)
    r = run_cli("agent", "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert wait_count(influxd, influx_db, "bandwidth", "method", 1) == 1
    rows = list(series(influxd.query(
        'SELECT "method", "server", "error", "download_mbps", "duration_s" FROM "bandwidth"',
        influx_db)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["method"], row["server"], row["download_mbps"]) == ("intranet", dead, None)
    assert row["error"].startswith(f"latency: {dead}: ConnectionRefusedError")
    assert row["duration_s"] >= 0
    # The rest of the round went out as usual.
    assert wait_count(influxd, influx_db, "metrics", "cpu_percent", 1) == 1


TREE = [{"id": "bj", "name": "北京局", "children": [
    {"id": "sq-fast", "name": "快中队", "cadres": 0, "staff": 0},
    {"id": "sq-slow", "name": "慢中队", "cadres": 0, "staff": 0},
    {"id": "sq-stale", "name": "旧中队", "cadres": 0, "staff": 0},
]}]
# (site, host, network) of room PCs
ROOM = ([("sq-fast", f"g{i}", "gov") for i in range(4)]
        + [("sq-fast", f"i{i}", "internet") for i in range(2)]
        + [("sq-slow", f"g{i}", "gov") for i in range(10)]
        + [("sq-stale", f"i{i}", "internet") for i in range(2)])
OK = {"method": "intranet", "server": "http://10.0.0.1:8090", "upload_mbps": 5.0,
      "latency_ms": 3.0, "jitter_ms": 0.5, "bytes": 1000, "duration_s": 25.0, "streams": 4}


def speed_tests(now: float) -> list[tuple[str, bytes]]:
    def bw(site: str, host: str, net: str, age_s: float, **fields: Any) -> tuple[str, bytes]:
        body = {**OK, **fields}
        if net == "internet":
            body["method"] = "speedtest"
        return message("bandwidth", body, site=site, host=host, network=net, ts=now - age_s)

    return [
        # sq-fast gov: 20 Mbit/s 8, 9 and 10 days ago; 26 two days ago (by two testers,
        # same instant); 30 an hour ago by t1.
        *(bw("sq-fast", "t1", "gov", d * DAY, download_mbps=20.0) for d in (8, 9, 10)),
        bw("sq-fast", "t1", "gov", 2 * DAY, download_mbps=26.0),
        bw("sq-fast", "t2", "gov", 2 * DAY, download_mbps=26.0),
        bw("sq-fast", "t1", "gov", HOUR, download_mbps=30.0),
        bw("sq-fast", "ti", "internet", 2 * HOUR, download_mbps=10.0),
        # sq-slow gov: 18.3 three hours ago, then a failure an hour ago.
        bw("sq-slow", "t1", "gov", 3 * HOUR, download_mbps=18.3),
        message("bandwidth", {"method": "intranet", "error": "latency: refused"},
                site="sq-slow", host="t1", network="gov", ts=now - HOUR),
        # sq-stale internet: 30 hours ago, older than the 24 h freshness.
        bw("sq-stale", "ti", "internet", 30 * HOUR, download_mbps=50.0),
    ]


def test_report_shows_bandwidth_verdicts_and_mbit_to_buy(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="bw", sites=TREE, rules=rules_section())
    run_collector(cfg)
    now = time.time()
    pub = Publisher(mosquitto)
    inv = [message("inventory", {"hostname": h, "host_id": f"{s}-{h}"}, site=s, host=h,
                   network=n, role="room", ts=now - HOUR) for s, h, n in ROOM]
    tests = speed_tests(now)
    pub.publish_many(inv + tests)
    pub.close()
    wait_count(influxd, "bw", "inventory", "host_id", len(inv))
    wait_count(influxd, "bw", "bandwidth", "method", len(tests))

    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json",
                "--lang", "en")
    assert r.returncode == 0, r.stderr
    sites = {s["site"]: s for s in json.loads(r.stdout)["sites"]}
    got = {sid: {x["rule"]: x for x in s["rules"]} for sid, s in sites.items()}

    # sq-fast: gov 30 / 4 = 7.5, internet 10 / 2 = 5 per PC: both >= 2.5; lowest 5.
    v = got["sq-fast"]["room_video"]
    assert (v["required"], v["actual"], v["ok"], v["shortfall"]) == (2.5, 5, True, {})
    # gov 30 >= 20; trend: recent days 30 and 26 -> 28, the week before 20 -> +8.0.
    g = got["sq-fast"]["gov_bandwidth"]
    assert (g["required"], g["actual"], g["ok"], g["shortfall"]) == (20, 30, True, {})
    assert "trend +8.0 Mbit/s (7 d mean 28.0 vs 20.0 before)" in g["detail"]
    assert "2 testers (t1, t2)" in g["detail"]
    assert sites["sq-fast"]["ok"] is True and sites["sq-fast"]["needs"] == {}

    # sq-slow: 18.3 / 10 = 1.83 < 2.5; 10 x 2.5 - 18.3 = 6.7 to add. 20 - 18.3 = 1.7.
    v = got["sq-slow"]["room_video"]
    assert (v["actual"], v["ok"], v["shortfall"]) == (1.83, False, {"gov_mbps": 6.7})
    g = got["sq-slow"]["gov_bandwidth"]
    assert (g["actual"], g["ok"], g["shortfall"]) == (18.3, False, {"gov_mbps": 1.7})
    assert "last test failed: latency: refused" in g["detail"]
    # One purchase serves both: the larger, not the sum.
    assert sites["sq-slow"]["needs"] == {"gov_mbps": 6.7}

    # sq-stale: the internet test is 30 h old: no proof, nothing countable to buy;
    # no gov test at all.
    v = got["sq-stale"]["room_video"]
    assert (v["status"], v["actual"], v["ok"], v["shortfall"]) == ("no_data", None, False, {})
    assert "internet: no speed test in 24 h" in v["detail"]
    g = got["sq-stale"]["gov_bandwidth"]
    assert (g["status"], g["actual"], g["ok"], g["shortfall"]) == ("no_data", None, False, {})

    table = run_cli("collector.cli.main", "report", "--config", str(cfg))
    assert table.returncode == 0, table.stderr
    assert "网络室电脑可观看视频" in table.stdout and "政务网带宽" in table.stdout
    assert "需增政务网带宽(Mbit/s)" in table.stdout  # the procurement list's column


def test_loader_assembles_the_newest_success_error_and_days() -> None:
    org = read_org([{"id": "s1", "cadres": 0, "staff": 0}], None)
    ok = [{"time": 1000, "site": "s1", "network": "gov", "host": "a", "download_mbps": 10,
           "upload_mbps": None, "latency_ms": 2},
          {"time": 3000, "site": "s1", "network": "gov", "host": "b", "download_mbps": 12,
           "upload_mbps": 4, "latency_ms": None},
          {"time": 500, "site": "nowhere", "network": "gov", "host": "x", "download_mbps": 1}]
    newest = [{"time": 4000, "site": "s1", "network": "gov", "host": "a", "error": "boom"},
              {"time": 3000, "site": "s1", "network": "gov", "host": "b", "error": None},
              {"time": 2000, "site": "s1", "network": "internet", "host": "c", "error": "x"}]
    daily = [{"time": 86_400_000, "site": "s1", "network": "gov", "mbps": 11},
             {"time": 0, "site": "s1", "network": "gov", "mbps": 10},
             {"time": 0, "site": "s1", "network": "internet", "mbps": None}]
    facts = loader.assemble(ok, newest, daily, org).facts
    assert facts == {"s1": {"bandwidth": (
        Bandwidth("gov", "b", 3000, 12.0, 4.0, None, "boom", 4000, ("a", "b"),
                  ((0, 10.0), (86_400_000, 11.0))),
        Bandwidth("internet", "", 0, 0.0, None, None, "x", 2000, ("c",), ()),
    )}}


# --- utilisation: the queries documented in docs/bandwidth.md ---------------

def doc_queries() -> dict[str, str]:
    """The named InfluxQL blocks of docs/bandwidth.md (``-- name`` first line)."""
    text = (REPO / "docs" / "bandwidth.md").read_text(encoding="utf-8")
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        first, _, rest = block.partition("\n")
        out[first.removeprefix("-- ").strip()] = " ".join(rest.split())
    return out


def test_documented_utilisation_queries_survive_a_counter_reset(
        influxd: Influxd, influx_db: str) -> None:
    base = 1_700_000_040  # a minute boundary (UTC)
    # pc-1 and pc-2 receive 60 MB and 120 MB a minute, then reboot (counters restart)
    # and receive 7.5 MB and 15 MB in the next minute; sent is half of received.
    recv = [0, 60_000_000, 120_000_000, 7_500_000, 15_000_000]
    lines = []
    for i, v in enumerate(recv):
        for host, k, speed in (("pc-1", 1, 100), ("pc-2", 2, 1000)):
            lines.append(f"metrics_nics,site=s1,host={host},network=gov,role=room,nic=eth0 "
                         f"bytes_recv={v * k}i,bytes_sent={v * k // 2}i,speed_mbps={speed}i "
                         f"{(base + 60 * i) * 1000}")
    influxd.write("\n".join(lines), influx_db)
    qs = doc_queries()

    def run(name: str) -> list[dict[str, Any]]:
        q = (qs[name].replace("$timeFilter", f"time >= {base}s AND time < {base + 300}s")
             .replace("$__interval", "1m"))
        return list(series(influxd.query(q, influx_db)))

    # 60 MB / 60 s = 1 MB/s = 8 Mbit/s; the reset minute is dropped, not negative;
    # then 7.5 MB / 60 s = 1 Mbit/s. pc-2: twice that.
    per_nic = {(r["host"], r["time"]): (r["recv_mbps"], r["sent_mbps"]) for r in run("per_nic")}
    t = [(base + 60 * i) * 1000 for i in range(5)]
    assert per_nic == {("pc-1", t[1]): (8, 4), ("pc-1", t[2]): (8, 4), ("pc-1", t[4]): (1, 0.5),
                       ("pc-2", t[1]): (16, 8), ("pc-2", t[2]): (16, 8), ("pc-2", t[4]): (2, 1)}
    # Percent of link speed: 8 of 100 = 8 %; 16 of 1000 = 1.6 %.
    pct = {(r["host"], r["time"]): r["recv_pct"] for r in run("nic_percent")
           if r["recv_pct"] is not None}
    assert pct == {("pc-1", t[1]): 8, ("pc-1", t[2]): 8, ("pc-1", t[4]): 1,
                   ("pc-2", t[1]): 1.6, ("pc-2", t[2]): 1.6, ("pc-2", t[4]): 0.2}
    # The site's gov traffic: 8 + 16 = 24, then 1 + 2 = 3.
    site = {r["time"]: (r["recv_mbps"], r["sent_mbps"]) for r in run("site_traffic")}
    assert site == {t[1]: (24, 12), t[2]: (24, 12), t[4]: (3, 1.5)}


def test_documented_bandwidth_trend_query(influxd: Influxd, influx_db: str) -> None:
    day = 86_400
    base = 1_700_006_400  # a UTC midnight
    lines = [f"bandwidth,site=s1,host=t,network=gov,role=room method=\"intranet\","
             f"download_mbps={v} {(base + d * day + 3600 * h) * 1000}"
             for d, h, v in ((0, 1, 10.0), (0, 5, 20.0), (1, 2, 30.0))]
    lines.append(f"bandwidth,site=s1,host=t,network=gov,role=room method=\"intranet\","
                 f"error=\"x\" {(base + 2 * day) * 1000}")
    influxd.write("\n".join(lines), influx_db)
    q = (doc_queries()["daily_download"]
         .replace("$timeFilter", f"time >= {base}s AND time < {base + 3 * day}s"))
    got = {r["time"]: r["download_mbps"] for r in series(influxd.query(q, influx_db))}
    # Day 0: mean(10, 20) = 15; day 1: 30; day 2: only a failure, no row.
    assert got == {base * 1000: 15, (base + day) * 1000: 30}


@pytest.mark.parametrize("name", ["per_nic", "nic_percent", "site_traffic", "daily_download"])
def test_documented_queries_exist(name: str) -> None:
    assert name in doc_queries()


def test_pc_totals_give_the_pcs_traffic_through_the_pipeline(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    # At default settings a PC's NIC counters arrive summed on its `metrics`
    # point (net_bytes_recv ...), the rate taken the same way as per NIC.
    run_collector(write_config(tmp_path, mosquitto, influxd, db=influx_db))
    base = (int(time.time()) // 60 - 10) * 60  # a minute boundary, 10 minutes ago
    # eth0 receives 30 MB a minute, wlan0 (down) 15 MB, loopback ignored; the
    # PC reboots before minute 3 (both counters restart).
    eth0 = [0, 30_000_000, 60_000_000, 3_000_000, 6_000_000]
    msgs = []
    for i, v in enumerate(eth0):
        nics = [{"name": "eth0", "bytes_recv": v, "bytes_sent": v // 2, "speed_mbps": 100,
                 "is_up": True},
                {"name": "wlan0", "bytes_recv": v // 2, "bytes_sent": 0, "speed_mbps": 300,
                 "is_up": False},
                {"name": "lo", "bytes_recv": 10**12 * (i + 1), "is_up": True}]
        msgs.append(message("metrics", {"nics": nics}, host="pc-1", ts=base + 60 * i))
    pub = Publisher(mosquitto)
    pub.publish_many(msgs)
    pub.close()
    assert wait_count(influxd, influx_db, "metrics", "net_bytes_recv", 5) == 5
    q = ('SELECT non_negative_derivative(last("net_bytes_recv"), 1s) * 8 / 1000000 '
         'AS "recv_mbps", last("net_speed_mbps") AS "speed", last("nics_up") AS "up" '
         f'FROM "metrics" WHERE time >= {base}s AND time < {base + 300}s '
         'GROUP BY time(1m), "host" fill(none)')
    rows = {r["time"]: r for r in series(influxd.query(q, influx_db))}
    t = [(base + 60 * i) * 1000 for i in range(5)]
    # 45 MB a minute = 0.75 MB/s = 6 Mbit/s; the reset minute gives nothing; then
    # 4.5 MB a minute = 0.6 Mbit/s. Link speed: eth0's only (wlan0 is down).
    assert {k: r["recv_mbps"] for k, r in rows.items() if r["recv_mbps"] is not None} == {
        t[1]: 6, t[2]: 6, t[4]: 0.6}
    assert all((r["speed"], r["up"]) == (100, 1) for r in rows.values())
    assert count(influxd, influx_db, "metrics_nics", "bytes_recv") == 0  # no per-NIC series
