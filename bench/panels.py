"""Dashboards at bureau scale: every panel's real query, timed on a real influxd.

    python3 bench/panels.py                 # both fleets: about 8 minutes here
    python3 bench/panels.py --only a        # (a) only: 500 PCs, 7 days, about 3 minutes
    python3 bench/panels.py --only compliance --sites 1000   # the compliance board alone
    python3 bench/panels.py --json out.json

Starts a temporary influxd (tests/servers.py), generates each fleet's points
as line protocol over HTTP in big batches (generation overlaps the writes),
sets up the retention policies and continuous queries
(collector/influx/retention.py) and runs every query of the shipped
dashboards (dashboards/generated/*-en.json; the Chinese files hold the same
queries) with Grafana's macros and variables substituted as Grafana would
(tests/grafana_influxql.py): "All" selected wherever a variable offers it,
i.e. its allValue `.*`; a single-select site (the PC board) takes its first
site, as Grafana does by default. Prints the median of 3 runs per panel (1
run when the first takes over 10 s), each panel against its target (a: 1 s,
b: 2 s), and the database's series per PC.

What is generated (the shortcuts are documented in docs/benchmarks.md,
"Dashboards at bureau scale"):

(a) 500 PCs (50 sites x 10), 7 days: `metrics` every 60 s with the PC
    totals (5.04 M points), the roll-ups made from them by the backfill
    (`netroom rollup`'s SELECT ... INTO, timed), compliance every 5 minutes
    (5 rules + all per site), a speed test per site and network each hour,
    daily availability, status and inventory per PC, collector counters.
(b) 40,000 PCs (1,000 sites x 40), 24 hours: `metrics` every 60 s for the
    last 30 minutes (what "now" panels read) and every 15 minutes before
    (a quarter of the real raw volume: 57.6 M points take ~15 minutes to
    write here); `site_metrics` generated directly for the 24 h, as the
    continuous queries would write it (1,000 sites x 2 networks x 288), and
    `unit_metrics` made from it by the per-unit CQ's own SELECT ... INTO
    (timed); compliance every 30 minutes instead of 5; the rest as in (a).
(compliance) only what the compliance board reads, for ``--sites`` sites (10
    per battalion, 10 battalions per detachment) over 24 hours at the
    collector's default 5-minute evaluation: `compliance` per site and rule
    and its per-unit roll-up `unit_compliance`, both made by the collector's
    own write-back (collector/store/writeback.py) from synthetic evaluations
    of every registered rule, and `site_info` for the filters. Times every
    panel of the shipped board and, beside the two that now read the
    roll-up, their previous texts over every site's points (OLD_COMPLIANCE).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from grafana_influxql import Grafana, interval_for  # noqa: E402
from servers import OPENER, Influxd  # noqa: E402

from collector.compliance.evaluate import Evaluation, Verdict  # noqa: E402
from collector.compliance.model import Org  # noqa: E402
from collector.compliance.orgconfig import read_org  # noqa: E402
from collector.compliance.rules import registry  # noqa: E402
from collector.compliance.rules.base import Result  # noqa: E402
from collector.influx import retention  # noqa: E402
from collector.influx.client import InfluxSink  # noqa: E402
from collector.influx.line import LineEncoder  # noqa: E402
from collector.influx.settings import read_influx  # noqa: E402
from collector.store import writeback  # noqa: E402

GENERATED = ROOT / "dashboards" / "generated"

RULES = ("cadre_gov_pcs", "cadre_internet_pcs", "staff_gov_pcs", "room_gov_share",
         "room_open_all_day")
LEVELS = ("battalion", "detachment")
BATCH = 20_000  # lines per /write: ~14 MB, under influxd's 25 MB max-body-size
SLOW_S = 10.0
TARGET_S = {"a": 1.0, "b": 2.0, "compliance": 2.0}  # issue #11: every panel within this
# The compliance board's two pass-rate panels as they were before the per-unit
# roll-up: every site's `compliance` points (--only compliance times both).
OLD_COMPLIANCE: dict[str, dict[str, Any]] = {
    "Pass rate by unit": {"targets": [{"refId": "A", "query": (
        'SELECT mean("ok") * 100 AS "pass_rate", sum("ok") AS "passing", '
        'count("ok") - sum("ok") - sum("no_data") AS "failing", sum("no_data") AS "no_data", '
        'count("ok") AS "sites" FROM (SELECT last("ok") AS "ok", last("no_data") AS "no_data" '
        "FROM \"compliance\" WHERE $timeFilter AND \"rule\" = 'all' AND "
        '"detachment" =~ /^$detachment$/ AND "battalion" =~ /^$battalion$/ AND '
        '"site" =~ /^$site$/ GROUP BY "site", "detachment", "battalion", "detachment_name", '
        '"battalion_name") GROUP BY "detachment", "battalion", "detachment_name", '
        '"battalion_name"')}]},
    "Pass rate per rule": {"interval": "5m", "maxDataPoints": 300, "targets": [
        {"refId": "A", "query": (
            'SELECT mean("ok") * 100 FROM "$daily"."compliance" WHERE $timeFilter AND '
            '"detachment" =~ /^$detachment$/ AND "battalion" =~ /^$battalion$/ AND '
            '"site" =~ /^$site$/ GROUP BY time($__interval), "rule" fill(none)')}]},
}
# Verdicts of the synthetic evaluations: a site's verdict on a rule is drawn
# with these weights and redrawn at 2 % of the passes (verdicts change slowly).
VERDICT_WEIGHTS = {"pass": 70, "fail": 15, "no_data": 5, "not_applicable": 5, "waived": 5}


def tags(site: int, pc: int, pcs_per_site: int) -> str:
    network = "gov" if pc % 2 == 0 else "internet"
    role = "room" if pc < 4 else ("cadre" if pc < pcs_per_site // 2 else "office")
    return (f"site=sq-{site},host=pc-{site}-{pc},network={network},role={role},"
            f"detachment=zd-{site // 100},battalion=dd-{site // 10}")


def site_tags(site: int) -> str:
    return f"site=sq-{site},detachment=zd-{site // 100},battalion=dd-{site // 10}"


def metrics_line(t: str, ts_s: int, k: int, rnd: random.Random) -> str:
    """One PC's `metrics` point with the totals; counters grow ~k-th sample."""
    return (f"metrics,{t} cpu_percent={rnd.uniform(2, 60):.1f},"
            f"mem_used_percent={rnd.uniform(20, 80):.1f},load1=0.5,uptime_s={k * 60}.0,"
            f"collect_ms=5.0,disk_total_bytes=512000000000i,disk_used_bytes=200000000000i,"
            f"disk_free_bytes=312000000000i,disk_used_percent={rnd.uniform(30, 90):.1f},"
            f"disk_read_bytes={k * 3_000_000}i,disk_write_bytes={k * 5_000_000}i,"
            f"disk_read_count={k * 300}i,disk_write_count={k * 500}i,"
            f"net_bytes_sent={k * 2_000_000}i,net_bytes_recv={k * 9_000_000}i,"
            f"net_packets_sent={k * 3000}i,net_packets_recv={k * 9000}i,net_errin=0i,"
            f"net_errout=0i,net_dropin=0i,net_dropout=0i,net_speed_mbps=1000i,nics_up=1i "
            f"{ts_s * 1000}")


def write(influxd: Influxd, db: str, lines: Iterator[str], rp: str = "") -> int:
    """POST ``lines`` in batches of BATCH; the next batch is generated while
    influxd takes the last (one writer thread, at most 2 batches waiting)."""
    todo: queue.Queue[list[str] | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def post() -> None:
        while (batch := todo.get()) is not None:
            try:
                if not failed:
                    _post(influxd, db, batch, rp)
            except BaseException as exc:  # re-raised below, in the caller
                failed.append(exc)

    writer = threading.Thread(target=post, daemon=True)
    writer.start()
    n, buf = 0, []
    try:
        for line in lines:
            buf.append(line)
            if len(buf) >= BATCH:
                todo.put(buf)
                n += len(buf)
                buf = []
                if failed:
                    break
        if buf and not failed:
            todo.put(buf)
            n += len(buf)
    finally:
        todo.put(None)
        writer.join()
    if failed:
        raise failed[0]
    return n


def _post(influxd: Influxd, db: str, lines: list[str], rp: str) -> None:
    url = f"{influxd.url}/write?db={db}&precision=ms" + (f"&rp={rp}" if rp else "")
    req = urllib.request.Request(url, data="\n".join(lines).encode(), method="POST")
    with OPENER.open(req, timeout=300) as r:
        assert r.status == 204


def fleet_lines(sites: int, per_site: int, now_s: int, span_s: int,
                sparse_every_s: int, dense_s: int) -> Iterator[str]:
    """Raw metrics: every 60 s over the last ``dense_s``, every ``sparse_every_s`` before."""
    rnd = random.Random(1)
    start = now_s - span_s
    for site in range(sites):
        for pc in range(per_site):
            t = tags(site, pc, per_site)
            ts = start + rnd.randrange(60)
            while ts <= now_s:
                yield metrics_line(t, ts, (ts - start) // 60, rnd)
                ts += 60 if ts >= now_s - dense_s else sparse_every_s


def named_tags(site: int) -> str:
    """site_tags plus the display names the collector adds to its own points."""
    return (f"{site_tags(site)},site_name=中队{site},detachment_name=支队{site // 100},"
            f"battalion_name=大队{site // 10}")


def other_lines(sites: int, per_site: int, now_s: int, span_s: int,
                compliance_every_s: int) -> Iterator[str]:
    rnd = random.Random(2)
    start = now_s - span_s
    for site in range(sites):
        st = named_tags(site)
        yield (f"site_info,{st},site_label=sq-{site}:中队{site},"
               f"detachment_label=zd-{site // 100}:支队{site // 100},"
               f'battalion_label=dd-{site // 10}:大队{site // 10} path="x",room_min_online=1i '
               f"{(now_s - 60) * 1000}")
        for ts in range(start - start % compliance_every_s, now_s, compliance_every_s):
            ok = int(rnd.random() < 0.7)
            for rule in RULES:
                yield (f'compliance,{st},rule={rule} status="{"pass" if ok else "fail"}",'
                       f"ok={ok}i,no_data=0i,required=1.0,actual={ok}.0,shortfall={1 - ok}.0 "
                       f"{ts * 1000}")
            yield (f'compliance,{st},rule=all status="{"pass" if ok else "fail"}",ok={ok}i,'
                   f"no_data=0i,failed={1 - ok}i,need_gov_pcs={1 - ok}.0,need_internet_pcs=0.0,"
                   f"need_gov_mbps={5 * (1 - ok)}.0,need_internet_mbps=0.0 {ts * 1000}")
            yield (f"room_state,{st} open={ok}i,online={4 * ok}i,room_pcs=4i,min_online=1i,"
                   f"required_now=1i,closed_required_s={600 * (1 - ok)}.0,target=0.95 "
                   f"{ts * 1000}")
            # The agent-version roll-up of each evaluation (the fleet board's rollout row).
            yield (f"agent_versions,{st},target=1.5.0,version=1.4.0,state=pending "
                   f"pcs={per_site}i,evaluated_ms={ts * 1000}i {ts * 1000}")
            if site % 50 == 0:
                yield (f"agent_failures,{st},host=pc-{site}-0,state=failed "
                       f'agent_version="1.4.0",target="1.5.0",update_version="1.5.0",'
                       f'update_error="x",hostname="pc",seen_ms={ts * 1000}i,'
                       f"evaluated_ms={ts * 1000}i {ts * 1000}")
        for net in ("gov", "internet"):
            for ts in range(start, now_s, 3600):
                yield (f"bandwidth,{st},host=pc-{site}-0,network={net},role=room "
                       f'method="speedtest",download_mbps={rnd.uniform(50, 100):.1f},'
                       f"upload_mbps=40.0,latency_ms=12.0 {ts * 1000}")
        for d in range(1, 8):
            day = (now_s // 86400 - d) * 86400 - 8 * 3600
            yield (f'availability,{st} day="D-{d}",required_s=36000.0,'
                   f"open_s={rnd.uniform(20000, 36000):.0f}.0,target=0.95,ok=1i {day * 1000}")
        for pc in range(per_site):
            t = tags(site, pc, per_site)
            yield f'status,{t} state="online",interval_s=60.0 {(now_s - 3600) * 1000}'
            yield (f'inventory,{t} hostname="pc-{site}-{pc}",host_id="id-{site}-{pc}" '
                   f"{(now_s - 86400) * 1000}")
    for ts in range(start, now_s, 60):
        k = (ts - start) // 60
        yield (f"collector,collector=netroom-collector received={k * 500}i,written={k * 500}i,"
               f"invalid=0i,spooled=0i,spool_batches=0i {ts * 1000}")


def site_metrics_lines(sites: int, per_site: int, now_s: int, span_s: int) -> Iterator[str]:
    """`rollup`.`site_metrics` as the continuous queries write it: per site, network, 5 min."""
    rnd = random.Random(3)
    start = (now_s - span_s) // 300 * 300
    for site in range(sites):
        st = site_tags(site)
        for net in ("gov", "internet"):
            for ts in range(start, now_s, 300):
                yield (f"site_metrics,{st},network={net} pcs={per_site // 2}i,"
                       f"room_pcs=2i,cpu_percent={rnd.uniform(5, 50):.1f},"
                       f"mem_used_percent={rnd.uniform(30, 70):.1f},"
                       f"disk_used_percent={rnd.uniform(50, 95):.1f},"
                       f"net_bytes_recv_per_s={rnd.uniform(1e5, 1e7):.0f},"
                       f"net_bytes_sent_per_s={rnd.uniform(1e4, 1e6):.0f},"
                       f"net_speed_mbps={per_site // 2 * 1000}i {ts * 1000}")


def rollup_metrics_lines(sites: int, per_site: int, now_s: int, span_s: int) -> Iterator[str]:
    """`rollup`.`metrics` as the per-PC continuous query writes it: per PC and 5 min."""
    rnd = random.Random(4)
    start = (now_s - span_s) // 300 * 300
    for site in range(sites):
        for pc in range(per_site):
            t = tags(site, pc, per_site)
            for ts in range(start, now_s, 300):
                k = (ts - start) // 60
                yield (f"metrics,{t} cpu_percent={rnd.uniform(2, 60):.1f},"
                       f"mem_used_percent={rnd.uniform(20, 80):.1f},load1=0.5,"
                       f"disk_used_percent={rnd.uniform(30, 90):.1f},uptime_s={k * 60}.0,"
                       f"disk_total_bytes=512000000000i,disk_used_bytes=200000000000i,"
                       f"disk_free_bytes=312000000000i,disk_read_bytes={k * 3_000_000}i,"
                       f"disk_write_bytes={k * 5_000_000}i,net_bytes_sent={k * 2_000_000}i,"
                       f"net_bytes_recv={k * 9_000_000}i,net_speed_mbps=1000i,nics_up=1i,"
                       f"reports=5i,net_bytes_recv_per_s=150000,net_bytes_sent_per_s=33333 "
                       f"{ts * 1000}")


def compliance_org(sites: int) -> Org:
    """A bureau of ``sites`` squadrons, 10 per battalion, 10 battalions per detachment."""
    def units(n: int, size: int) -> range:
        return range(-(-n // size))

    tree = [{"id": "bj", "name": "局", "children": [
        {"id": f"zd-{d}", "name": f"支队{d}", "children": [
            {"id": f"dd-{b}", "name": f"大队{b}", "children": [
                {"id": f"sq-{q}", "name": f"中队{q}", "cadres": 2, "staff": 6}
                for q in range(b * 10, min(b * 10 + 10, sites))]}
            for b in units(sites, 10) if b // 10 == d]}
        for d in units(sites, 100)]}]
    return read_org(tree, None)


def compliance_lines(org: Org, now_s: int, span_s: int, every_s: int = 300) -> Iterator[str]:
    """One evaluation of every site and registered rule each ``every_s`` over the
    span, written as the collector writes it: `compliance` per site and rule,
    `unit_compliance` per unit and rule (writeback), then `site_info` once."""
    rnd = random.Random(5)
    rules = [r.NAME for r in registry()]
    kinds, weights = list(VERDICT_WEIGHTS), list(VERDICT_WEIGHTS.values())
    # Results are immutable: one per rule and verdict, shared by every site.
    made = {(rule, k): Result(rule, k, 1.0, {"pass": 1.0, "fail": 0.0, "waived": 0.0}.get(k),
                              {"gov_pcs": 1.0} if k == "fail" else {})
            for rule in rules for k in kinds}
    state = {(site.id, rule): rnd.choices(kinds, weights)[0]
             for site in org.sites for rule in rules}
    encoder = LineEncoder()
    start = (now_s - span_s) // every_s * every_s
    for ts in range(start + 17, now_s, every_s):  # a pass takes a few seconds
        for key in state:
            if rnd.random() < 0.02:
                state[key] = rnd.choices(kinds, weights)[0]
        ev = Evaluation(ts * 1000, tuple(
            Verdict(site, tuple(made[(rule, state[(site.id, rule)])] for rule in rules))
            for site in org.sites), ())
        yield from encoder.lines([*writeback.compliance_points(ev, org),
                                  *writeback.unit_compliance_points(ev, org)])
    yield from encoder.lines(writeback.site_info_points(org, (now_s - 60) * 1000))


def wait_for_snapshots(influxd: Influxd, limit_s: float = 180) -> float:
    """Wait until the write cache is on disk as TSM (as for data older than 10
    minutes in production); returns the seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit_s:
        with OPENER.open(influxd.url + "/debug/vars", timeout=30) as r:
            stats = json.load(r)
        cached = sum(v["values"].get("memBytes", 0) for k, v in stats.items()
                     if k.startswith("tsm1_cache"))
        if cached == 0:
            break
        time.sleep(2)
    return time.perf_counter() - t


def wait_for_compactions(influxd: Influxd, limit_s: float = 300, quiet_s: float = 5) -> float:
    """Wait until no TSM compaction has run or been queued for ``quiet_s`` (a full
    compaction of millions of points takes a core for tens of seconds: timings
    taken meanwhile measure it too); returns the seconds waited."""
    t = time.perf_counter()
    quiet_since = t
    while time.perf_counter() - t < limit_s:
        with OPENER.open(influxd.url + "/debug/vars", timeout=30) as r:
            stats = json.load(r)
        busy = sum(x for k, v in stats.items() if k.startswith("tsm1_engine")
                   for name, x in v["values"].items()
                   if name.endswith(("CompactionsActive", "CompactionQueue")))
        now = time.perf_counter()
        if busy:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            break
        time.sleep(1)
    return time.perf_counter() - t


def series_count(influxd: Influxd, db: str) -> int:
    """The database's series (what max-series-per-database limits): /debug/vars numSeries."""
    with OPENER.open(influxd.url + "/debug/vars", timeout=30) as r:
        stats = json.load(r)
    return int(next(v["values"]["numSeries"] for k, v in stats.items()
                    if k.startswith("database") and v["tags"]["database"] == db))


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def fetch(influxd: Influxd, db: str, query: str) -> int:
    """GET /query as Grafana's data source sends it; the answer's size in bytes.

    Timed is InfluxDB's work and the transfer of its JSON on loopback, not
    the parsing of that JSON in Python (Grafana's Go backend parses it far
    faster; a 500-series answer takes seconds in Python's json alone).
    """
    url = f"{influxd.url}/query?" + urllib.parse.urlencode(
        {"db": db, "q": query, "epoch": "ms"})
    with OPENER.open(url, timeout=600) as r:
        body = r.read()
    assert b'"error"' not in body[:2000], body[:500]
    return len(body)


def shipped() -> dict[str, dict[str, Any]]:
    """The dashboards as shipped (English files; the Chinese ones hold the same queries)."""
    return {p.name.removesuffix("-en.json"): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(GENERATED.glob("*-en.json"))}


def time_panel(influxd: Influxd, db: str, g: Grafana, panel: dict[str, Any],
               range_ms: int) -> tuple[list[float], int]:
    """A panel's targets, as Grafana sends them, 3 times (once if the first is
    over SLOW_S): the run times (s) and the answers' size (bytes)."""
    extra = {"__interval": interval_for(panel, range_ms)}
    queries = [g.interpolate(t["query"], extra) for t in panel["targets"]]
    times: list[float] = []
    size = 0
    for _ in range(3):
        t0 = time.perf_counter()
        size = sum(fetch(influxd, db, q) for q in queries)
        times.append(time.perf_counter() - t0)
        if times[0] > SLOW_S:
            break
    return times, size


def run_panels(influxd: Influxd, db: str, from_ms: int, to_ms: int,
               chosen: dict[str, list[str]], only: str = "") -> list[dict[str, Any]]:
    """Every panel of the shipped boards (``only``: of that board, e.g.
    ``netroom-compliance``), timed."""
    out = []
    for name, dash in shipped().items():
        if only and name != only:
            continue
        t_vars = timed(partial(Grafana, influxd, db, dash, chosen, from_ms, to_ms))
        g = Grafana(influxd, db, dash, chosen, from_ms, to_ms)
        for panel in dash["panels"]:
            times, size = time_panel(influxd, db, g, panel, to_ms - from_ms)
            out.append({"board": name, "panel": panel["title"],
                        "median_s": statistics.median(times), "runs": len(times),
                        "bytes": size, "rp": g.values.get("rp", ""),
                        "daily": g.values.get("daily", ""),
                        "site": g.values.get("site", ""), "variables_s": t_vars})
    return out


def scenario(influxd: Influxd, name: str, sites: int, per_site: int, span_s: int,
             sparse_every_s: int, dense_s: int, compliance_every_s: int,
             direct_rollups: bool, one_site: bool) -> dict[str, Any]:
    db = f"bench_{name}"
    now_s = int(time.time())
    cfg = read_influx({"url": influxd.url, "database": db, "timeout_s": 300})
    sink = InfluxSink(cfg)
    sink.ensure_database()
    report: dict[str, Any] = {"scenario": name, "pcs": sites * per_site, "sites": sites,
                              "span_h": span_s / 3600}
    t = time.perf_counter()
    retention.ensure(sink, cfg, LEVELS)
    report["raw_points"] = write(influxd, db, fleet_lines(sites, per_site, now_s, span_s,
                                                          sparse_every_s, dense_s))
    report["other_points"] = write(influxd, db, other_lines(sites, per_site, now_s, span_s,
                                                            compliance_every_s))
    report["write_s"] = time.perf_counter() - t
    print(f"[{name}] wrote {report['raw_points']:,} metrics + {report['other_points']:,} other "
          f"points in {report['write_s']:.0f} s", file=sys.stderr, flush=True)
    if direct_rollups:
        report["site_metrics_points"] = write(
            influxd, db, site_metrics_lines(sites, per_site, now_s, span_s), "rollup")
        if span_s > 86400:  # the per-PC roll-up only serves ranges over switch_after
            report["rollup_metrics_points"] = write(
                influxd, db, rollup_metrics_lines(sites, per_site, now_s, span_s), "rollup")
        # unit_metrics from those site_metrics, by the per-unit CQ's own statement.
        t = time.perf_counter()
        done = retention.backfill(sink, cfg, (now_s - span_s) * 1000, now_s * 1000, LEVELS,
                                  only=("netroom_unit_5m",))
        report["unit_backfill_s"] = time.perf_counter() - t
        report["unit_metrics_points"] = done["netroom_unit_5m"]
        if span_s > 86400:  # (b): ranges under switch_after never read the per-PC roll-up
            # The last hour's roll-ups as the continuous queries would keep them.
            t = time.perf_counter()
            done = retention.backfill(sink, cfg, (now_s - 3600) * 1000, now_s * 1000, LEVELS)
            report["backfill_1h_s"] = time.perf_counter() - t
            report["backfill_1h_points"] = done
    else:
        t = time.perf_counter()
        done = retention.backfill(sink, cfg, (now_s - span_s) * 1000, now_s * 1000, LEVELS)
        report["backfill_s"] = time.perf_counter() - t
        report["backfill_points"] = done
        t = time.perf_counter()
        retention.backfill(sink, cfg, (now_s - 3600) * 1000, now_s * 1000, LEVELS)
        report["backfill_1h_s"] = time.perf_counter() - t
    print(f"[{name}] roll-ups: {json.dumps({k: v for k, v in report.items() if 'backfill' in k})}",
          file=sys.stderr, flush=True)
    sink.close()
    report["snapshot_wait_s"] = wait_for_snapshots(influxd)
    report["series"] = series_count(influxd, db)
    report["series_per_pc"] = report["series"] / report["pcs"]
    span = ((now_s - span_s) * 1000, now_s * 1000)
    report["panels_all"] = run_panels(influxd, db, *span, {})
    if one_site:  # every board narrowed to one site (the PC board: another than its first)
        report["panels_one_site"] = run_panels(influxd, db, *span, {"site": ["sq-7"]})
    return report


def compliance_scenario(influxd: Influxd, sites: int) -> dict[str, Any]:
    """(compliance): the compliance board over 24 h of ``sites`` sites, the two
    pass-rate panels both as shipped (`unit_compliance`) and as they were."""
    db = "bench_compliance"
    now_s = int(time.time())
    span_s = 86400
    cfg = read_influx({"url": influxd.url, "database": db, "timeout_s": 300})
    sink = InfluxSink(cfg)
    sink.ensure_database()
    org = compliance_org(sites)
    levels = org.level_tags()
    report: dict[str, Any] = {"scenario": "compliance", "sites": sites, "span_h": 24,
                              "units": len({s.path for s in org.sites}),
                              "rules": len(registry()),
                              "load_before": os.getloadavg(),
                              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    retention.ensure(sink, cfg, levels)
    t = time.perf_counter()
    report["points"] = write(influxd, db, compliance_lines(org, now_s, span_s))
    report["write_s"] = time.perf_counter() - t
    print(f"[compliance] wrote {report['points']:,} points in {report['write_s']:.0f} s",
          file=sys.stderr, flush=True)
    # The daily tier of the roll-up over the day (its CQ runs once a day over 2).
    t = time.perf_counter()
    done = retention.backfill(sink, cfg, (now_s - span_s) * 1000, now_s * 1000, levels,
                              only=("netroom_unit_compliance_1d",))
    report["unit_daily_s"] = time.perf_counter() - t
    report["unit_daily_points"] = done["netroom_unit_compliance_1d"]
    sink.close()
    report["snapshot_wait_s"] = wait_for_snapshots(influxd)
    report["compaction_wait_s"] = wait_for_compactions(influxd)
    report["series"] = series_count(influxd, db)
    # no_data is on every point of both.
    for measurement in ("compliance", "unit_compliance"):
        answer = influxd.query(f'SELECT count("no_data") FROM "{measurement}"', db)
        report[f"{measurement}_points"] = answer["results"][0]["series"][0]["values"][0][1]
    from_ms, to_ms = (now_s - span_s) * 1000, now_s * 1000
    report["panels_all"] = run_panels(influxd, db, from_ms, to_ms, {}, "netroom-compliance")
    g = Grafana(influxd, db, shipped()["netroom-compliance"], {}, from_ms, to_ms)
    report["old"] = {}
    for title, panel in OLD_COMPLIANCE.items():
        times, size = time_panel(influxd, db, g, panel, to_ms - from_ms)
        report["old"][title] = {"median_s": statistics.median(times), "runs": len(times),
                                "bytes": size}
    # The shipped per-rule query at the default max data points (300: 5-minute
    # buckets over the day instead of 10), what its panel's 150 saves.
    trend = next(p for p in shipped()["netroom-compliance"]["panels"]
                 if p["title"] == "Pass rate per rule")
    times, size = time_panel(influxd, db, g, {**trend, "maxDataPoints": 300}, to_ms - from_ms)
    report["per_rule_5m"] = {"median_s": statistics.median(times), "runs": len(times),
                             "bytes": size}
    report["load_after"] = os.getloadavg()
    return report


def print_compliance(r: dict[str, Any]) -> None:
    print(f"\n== (compliance) {r['sites']:,} sites in {r['units']} units, {r['rules']} rules, "
          f"24 h at a 5-minute evaluation; {r['date']} ==")
    print(f"points: {r['compliance_points']:,} compliance, {r['unit_compliance_points']:,} "
          f"unit_compliance ({r['points']:,} lines with site_info, written in "
          f"{r['write_s']:.0f} s); series {r['series']:,}; daily unit tier over the day: "
          f"{r['unit_daily_s']:.1f} s ({r['unit_daily_points']:,} points); waited "
          f"{r['snapshot_wait_s'] + r['compaction_wait_s']:.0f} s for the TSM compactions")
    print("load average before / after: " + " / ".join(
        ", ".join(f"{x:.2f}" for x in r[k]) for k in ("load_before", "load_after")))
    print(f"{'panel':34s} {'old s':>8s} {'new s':>8s} {'old MB':>8s} {'new MB':>8s}")
    for p in r["panels_all"]:
        old = r["old"].get(p["panel"])
        was = (f"{old['median_s']:8.3f} " if old else f"{'':8s} ")
        was_mb = (f"{old['bytes'] / 1e6:8.2f} " if old else f"{'':8s} ")
        flag = "" if p["median_s"] <= TARGET_S["compliance"] else "  OVER"
        print(f"{p['panel']:34s} {was}{p['median_s']:8.3f} {was_mb}"
              f"{p['bytes'] / 1e6:8.2f}{flag}")
    five = r["per_rule_5m"]
    print(f"{'Pass rate per rule, 5-min buckets':34s} {'':8s} {five['median_s']:8.3f} "
          f"{'':8s} {five['bytes'] / 1e6:8.2f}")
    print("(medians of 3 runs; old: the panel's text before unit_compliance, over every "
          "site's points; the shipped per-rule panel draws a day in 10-minute buckets)")


class CompactingInfluxd(Influxd):
    """influxd that writes its cache to TSM files and fully compacts them after 1 s
    of no writes (defaults: 10 min and 4 h), so shard sizes can be read at once."""

    def _argv(self) -> list[str]:
        argv = super()._argv()
        path = self.datadir / "influxdb.conf"
        path.write_text(path.read_text().replace(
            "  query-log-enabled = false", "  query-log-enabled = false\n"
            '  cache-snapshot-write-cold-duration = "1s"\n'
            '  compact-full-write-cold-duration = "1s"\n  index-version = "tsi1"'))
        return argv


def disk_per_pc(pcs: int = 200) -> dict[str, Any]:
    """A day of ``pcs`` PCs' metrics (every 60 s, the totals layout) plus their
    roll-ups, compacted: bytes per PC and day in each retention policy."""
    influxd = CompactingInfluxd(startup_timeout=60)
    influxd.start()
    try:
        db = "bench_disk"
        now_s = int(time.time()) // 86400 * 86400 - 86400  # yesterday, whole
        cfg = read_influx({"url": influxd.url, "database": db, "timeout_s": 300})
        sink = InfluxSink(cfg)
        sink.ensure_database()
        retention.ensure(sink, cfg, LEVELS)
        n = write(influxd, db, fleet_lines(pcs // 10, 10, now_s + 86400 - 60, 86400 - 60, 60, 0))
        retention.backfill(sink, cfg, now_s * 1000, (now_s + 86400) * 1000, LEVELS)
        sink.close()
        time.sleep(20)  # cache snapshot + full compaction after 1 s cold
        out: dict[str, Any] = {"pcs": pcs, "metrics_points": n}
        for rp in ("autogen", "rollup"):
            files = [f for f in (influxd.datadir / "data" / db / rp).rglob("*") if f.is_file()]
            size = sum(f.stat().st_size for f in files)
            tsm = sum(f.stat().st_size for f in files if f.suffix == ".tsm")
            out[rp] = {"bytes_per_pc_day": size / pcs, "tsm_bytes_per_pc_day": tsm / pcs}
        wal = sum(f.stat().st_size for f in (influxd.datadir / "wal").rglob("*") if f.is_file())
        out["wal_bytes_left"] = wal
        return out
    finally:
        influxd.close()


def print_report(r: dict[str, Any]) -> None:
    print(f"\n== ({r['scenario']}) {r['pcs']:,} PCs in {r['sites']:,} sites, {r['span_h']:g} h ==")
    print(f"series: {r['series']:,} = {r['series_per_pc']:.2f} per PC; generated: "
          f"{r['raw_points']:,} metrics points + {r['other_points']:,} others"
          + (f" + {r['site_metrics_points']:,} site_metrics" if "site_metrics_points" in r
             else "")
          + (f" + {r['rollup_metrics_points']:,} rollup metrics" if "rollup_metrics_points" in r
             else ""))
    for k in ("backfill_s", "backfill_1h_s", "unit_backfill_s"):
        if k in r:
            print(f"{k}: {r[k]:.1f}")
    goal = TARGET_S[r["scenario"]]
    for key in ("panels_all", "panels_one_site"):
        if key not in r:
            continue
        print(f"-- {'All selected' if key == 'panels_all' else 'one site selected'} "
              f"(variables resolved: rp = {'/'.join(sorted({p['rp'] for p in r[key]} - {''}))}, "
              f"daily = {'/'.join(sorted({p['daily'] for p in r[key]} - {''}))}, PC board "
              f"site = {next((p['site'] for p in r[key] if p['board'] == 'netroom-pcs'), '')})")
        for p in r[key]:
            flag = ("" if p["runs"] == 3 else " (1 run)") + (
                f"  OVER {goal:g} s" if p["median_s"] > goal else "")
            print(f"{p['median_s']:8.3f} s {p['bytes'] / 1e6:7.2f} MB  {p['board']:19s} "
                  f"{p['panel']}{flag}")
        slowest = max(r[key], key=lambda p: p["median_s"])
        over = sum(p["median_s"] > goal for p in r[key])
        print(f"max {slowest['median_s']:.3f} s ({slowest['board']}: {slowest['panel']}); "
              f"{over} of {len(r[key])} panels over the {goal:g} s target")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("a", "b", "compliance"))
    ap.add_argument("--sites", type=int, default=1000,
                    help="--only compliance: how many sites (default 1000)")
    ap.add_argument("--disk", action="store_true",
                    help="only measure disk per PC and day (200 PCs, one day, compacted)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--backfill", action="store_true",
                    help="(a): make the roll-ups with the real backfill (13.5 min here) "
                    "instead of writing them directly")
    args = ap.parse_args()
    if args.disk:
        print(json.dumps(disk_per_pc(), indent=2))
        return 0
    influxd = CompactingInfluxd(startup_timeout=60, extra_config=["[continuous_queries]",
                                                                  "  enabled = false"])
    influxd.start()
    reports = []
    try:
        if args.only == "compliance":
            reports.append(compliance_scenario(influxd, args.sites))
            print_compliance(reports[-1])
        if args.only in (None, "a"):
            reports.append(scenario(influxd, "a", 50, 10, 7 * 86400, 60, 0, 300,
                                    not args.backfill, False))
            print_report(reports[-1])
        if args.only in (None, "b"):
            reports.append(scenario(influxd, "b", 1000, 40, 86400, 900, 1800, 1800, True, True))
            print_report(reports[-1])
    finally:
        influxd.close()
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
