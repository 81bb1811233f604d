"""Bureau scale: one evaluation pass and `netroom report`, old path beside new, same run.

Method (docs/benchmarks.md, "Bureau scale: evaluation and report"):
1. Start a temporary influxd on loopback (tests/servers.py). Build a fleet of
   --sites x --pcs PCs (collector/simulate/fleet.py; 20 % of the sites shaped
   to fail room_gov_share, room_open_all_day and portal_reachable) and replay
   its history over --hours up to now (collector/simulate/messages.py), one tick
   every --interval s (default 300 s: honest, but 5x cheaper to generate than
   the agents' 60 s; the state keeps runs, not ticks, so only the InfluxDB side
   grows with a shorter interval). Every message goes the collector's own way:
   protocol.decode -> subscriber.encode_message (MessageEncoder, org path tags)
   -> line protocol POSTed in big batches to /write (precision ms), and
   records.record_of -> StateDB.apply into a state file: both stores hold the
   same fleet. --workers processes generate, the main one writes both stores.
   The sites' time zone is picked so that "now" is 01:xx local (--timezone to
   choose another): yesterday is complete, more than the collector's hour of
   grace old, and inside 26 h of history. The state is pruned as the
   service prunes it before each pass; then one pass of the service writes
   the rooms' complete days back (``availability`` points to InfluxDB, days
   to the state), as a running collector would have.
2. Each measurement runs in a fresh subprocess (peak RSS: its VmHWM),
   medians of --repeat, all at the same "now" (the history's end):
   old   snapshot.build(reader(InfluxSink)) + evaluate_all: CPU and wall s,
         queries, and influxd's own CPU s during the pass;
   new   state snapshot.build(StateDB) + evaluate_all;
   midnight: new with the state's ``days`` emptied, and old before any
         ``availability`` point was written: every day of the rolling window
         computed from heartbeats/runs (the worst hour after midnight);
   cold  rebuild.rebuild(empty StateDB, reader(sink)) then a pass;
   report `netroom report --format json --source state|influxdb` (its own
         clock: minutes after the history's end): wall s and peak RSS.
3. The curve: new-path pass CPU per PC at each of --curve site counts, the
   state filled the same way (state only) over --curve-hours of history.
4. --series N: series per PC, SHOW SERIES EXACT CARDINALITY over the whole
   database / PCs, on an N-site fleet (see series()).
Run: python3 bench/scale.py [--sites 1000] [--pcs 40] [--hours 26] [--interval 300]
     [--repeat 3] [--curve 100,500,1000,2000] [--curve-hours 2] [--series 25] [--json FILE]
     (--sites 0 --curve '' --series 25: the series count alone, ~2 minutes)
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from procmeter import CLI_CHILD, INSTALLED_ENV, peak_rss_mb  # noqa: E402
from servers import OPENER, Influxd  # noqa: E402

from collector import gcpause, passes  # noqa: E402
from collector.compliance import skew  # noqa: E402
from collector.compliance.evaluate import evaluate_all  # noqa: E402
from collector.compliance.model import Org  # noqa: E402
from collector.compliance.orgconfig import read_org  # noqa: E402
from collector.influx import retention  # noqa: E402
from collector.influx.client import InfluxSink  # noqa: E402
from collector.influx.line import LineEncoder  # noqa: E402
from collector.influx.settings import InfluxConfig  # noqa: E402
from collector.ingest.points import MessageEncoder  # noqa: E402
from collector.ingest.subscriber import SubscriberConfig, encode_message, stored_at  # noqa: E402
from collector.simulate import fleet as simfleet  # noqa: E402
from collector.simulate import messages as simmsg  # noqa: E402
from collector.store import snapshot as influx_snapshot  # noqa: E402
from collector.store import writeback  # noqa: E402
from collector.store.rows import Read, reader  # noqa: E402
from collector.store.state import rebuild  # noqa: E402
from collector.store.state import records as rec  # noqa: E402
from collector.store.state import snapshot as state_snapshot  # noqa: E402
from collector.store.state.db import StateDB  # noqa: E402
from netroom import protocol, schema  # noqa: E402

FAIL = ("room_gov_share", "room_open_all_day", "portal_reachable")
DB = "netroom"
CHUNK_LINES = 5_000  # lines per POST to /write (~2.5 MB; well within influxd's write timeout)
# The subscriber's clock bounds; MessageEncoder keeps no item series (the default).
BOUNDS = SubscriberConfig(mqtt=None, client_id="bench", subscription="#",  # type: ignore[arg-type]
                          receive_maximum=1)


# --- the fleet --------------------------------------------------------------

def local_one_am(now_s: float) -> str:
    """A fixed-offset zone (no DST) in which ``now_s`` is 01:xx local time."""
    hour = dt.datetime.fromtimestamp(now_s, dt.timezone.utc).hour
    off = (1 - hour) % 24
    off = off - 24 if off > 11 else off  # Etc/GMT covers -12..+14
    return "Etc/GMT" if off == 0 else f"Etc/GMT{-off:+d}"  # Etc/GMT-8 is UTC+8


def make_fleet(sites: int, pcs: int, interval: float, tz: str
               ) -> tuple[simfleet.Fleet, list[dict[str, Any]]]:
    fl = simfleet.build(sites, pcs, fail=FAIL, seed=1, interval_s=interval)
    fl = dataclasses.replace(fl, timezone=tz)
    tree = simfleet.sites_tree(fl)

    def walk(nodes: list[dict[str, Any]]) -> None:
        for n in nodes:
            if "room" in n:
                n["room"]["timezone"] = tz
            walk(n.get("children", []))

    walk(tree)
    return fl, tree


# --- generation: worker processes make lines and records, the main one stores them ---

def _produce(fl: simfleet.Fleet, tree: list[dict[str, Any]], mine: list[int], start: float,
             end: float, lines_too: bool, q: Any) -> None:
    """Worker: the history of sites ``mine`` through the collector's decode/encode."""
    org = read_org(tree, {})
    sub = dataclasses.replace(fl, sites=tuple(fl.sites[i] for i in mine))
    enc = MessageEncoder(())
    tags: dict[str, dict[str, str]] = {}
    lines: list[str] = []
    records: list[rec.Record] = []
    n = 0
    for out in simmsg.history(sub, start, end, check=False):
        msg = protocol.decode(out.topic, out.payload)
        received = round(out.ts * 1000)  # received as sent
        n += 1
        stored, _ = stored_at(msg, received, BOUNDS)
        r = rec.record_of(msg, stored)
        if r is not None:
            records.append(r)
        if lines_too:
            t = tags.get(msg.site)
            if t is None:
                t = tags[msg.site] = org.tags_for(msg.site)
            lines += encode_message(msg, enc, t, received, BOUNDS)[0]
        if n % CHUNK_LINES == 0:
            q.put(("\n".join(lines).encode(), records, n))
            lines, records, n = [], [], 0
    q.put(("\n".join(lines).encode(), records, n))
    q.put(None)


def post(url: str, body: bytes, tries: int = 8) -> None:
    """POST line protocol; a 5xx (influxd's write timeout on a busy machine) is
    retried with backoff: InfluxDB stores a point written twice once."""
    if not body:
        return
    req = urllib.request.Request(f"{url}/write?" + urllib.parse.urlencode(
        {"db": DB, "precision": "ms"}), data=body, method="POST")
    for i in range(tries):
        try:
            with OPENER.open(req, timeout=120) as r:
                if r.status // 100 == 2:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or i == tries - 1:
                raise RuntimeError(f"/write: {exc.code}: {exc.read()[:300]!r}") from exc
        time.sleep(min(2 ** i, 30))


def _post(url: str, body: bytes, failed: list[Exception]) -> None:
    try:
        post(url, body)
    except Exception as exc:  # handed to the main thread, which stops the run
        failed.append(exc)


def generate(fl: simfleet.Fleet, tree: list[dict[str, Any]], start: float, end: float,
             db: StateDB, url: str | None, workers: int) -> dict[str, Any]:
    """Fill the state (and InfluxDB, if ``url``) with the history; counts and times."""
    ctx = mp.get_context("fork")
    q = ctx.Queue(maxsize=4 * workers)
    shares = [list(range(i, len(fl.sites), workers)) for i in range(workers)]
    procs = [ctx.Process(target=_produce, args=(fl, tree, mine, start, end, url is not None, q),
                         daemon=True) for mine in shares if mine]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    msgs = points = nrec = 0
    posting: threading.Thread | None = None
    failed: list[Exception] = []
    left = len(procs)
    while left:
        item = q.get(timeout=600)
        if item is None:
            left -= 1
            continue
        body, records, n = item
        msgs += n
        nrec += len(records)
        if url is not None and body:
            points += body.count(b"\n") + 1
            if posting is not None:
                posting.join()
                if failed:
                    raise failed[0]
            posting = threading.Thread(target=_post, args=(url, body, failed))
            posting.start()  # the next apply overlaps this POST
        db.apply(records)
    if posting is not None:
        posting.join()
    if failed:
        raise failed[0]
    for p in procs:
        p.join(60)
    return {"messages": msgs, "points": points, "records": nrec,
            "generate_s": time.perf_counter() - t0}


def settle(db: StateDB, org: Org, now_ms: int) -> float:
    """Prune as the service does before a pass; the wall s it took."""
    t = time.perf_counter()
    db.prune(rebuild.keep(org, now_ms), now_ms - skew.AHEAD_MS)
    db.put("complete", "1")
    return time.perf_counter() - t


def write_back(db: StateDB, org: Org, now_ms: int, url: str | None) -> int:
    """The service's write-back of one pass: complete days to InfluxDB (if ``url``)
    and to the state."""
    snaps = state_snapshot.build(db, org, now_ms)
    points = [p for p in writeback.availability_points(snaps, org)
              if p.measurement == schema.AVAILABILITY]
    if url is not None:
        post(url, "\n".join(LineEncoder().lines(points)).encode())
    db.apply([rec.Day(p.tags[schema.SITE], p.fields["day"], p.time_ms, p.fields["required_s"],
                      p.fields["open_s"]) for p in points])
    return len(points)


def copy_state(src: str, dst: str) -> None:
    """A consistent copy of a (WAL) state file."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    a = sqlite3.connect(src)
    b = sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


# --- measurements, each in a fresh process ------------------------------------

def counted(read: Read) -> tuple[Read, list[int]]:
    n = [0]

    def r(q: str) -> list[dict[str, Any]]:
        n[0] += 1
        return read(q)

    return r, n


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement (``spec['what']``): old | new | cold."""
    org = read_org(yaml.safe_load(Path(spec["config"]).read_text(encoding="utf-8"))["sites"], {})
    now = int(spec["now_ms"])
    out: dict[str, Any] = {}
    if spec["what"] == "old":
        sink = InfluxSink(InfluxConfig(url=spec["url"], database=DB))
        read, n = counted(reader(sink))
        c, w = time.process_time(), time.perf_counter()
        ev = evaluate_all(org, influx_snapshot.build(read, org, now))
        out.update(cpu_s=time.process_time() - c, wall_s=time.perf_counter() - w, queries=n[0])
    elif spec["what"] == "new":
        db = StateDB(spec["state"], readonly=True)
        c, w = time.process_time(), time.perf_counter()
        with gcpause.paused():  # as the service runs a pass
            ev = evaluate_all(org, state_snapshot.build(db, org, now))
        out.update(cpu_s=time.process_time() - c, wall_s=time.perf_counter() - w)
    else:  # cold: rebuild an empty state from InfluxDB, then a pass
        sink = InfluxSink(InfluxConfig(url=spec["url"], database=DB))
        read, n = counted(reader(sink))
        db = StateDB(spec["state"])
        c, w = time.process_time(), time.perf_counter()
        out["kinds"] = rebuild.rebuild(db, read, org, now)
        out["records"] = sum(out["kinds"].values())
        rc, rw = time.process_time() - c, time.perf_counter() - w
        with gcpause.paused():
            ev = evaluate_all(org, state_snapshot.build(db, org, now))
        out.update(cpu_s=time.process_time() - c, wall_s=time.perf_counter() - w,
                   rebuild_cpu_s=rc, rebuild_wall_s=rw, queries=n[0])
    out["rss_mb"] = peak_rss_mb()
    out["verdicts"] = {s: sum(v.status == s for v in ev.verdicts)
                       for s in ("pass", "fail", "no_data")}
    return out


def proc_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (s), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(spec: dict[str, Any], influxd_pid: int | None = None) -> dict[str, Any]:
    before = proc_cpu_s(influxd_pid) if influxd_pid else 0.0
    r = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                       check=False, capture_output=True, text=True, cwd=REPO,
                       timeout=1800)
    if r.returncode:
        raise SystemExit(f"measurement {spec['what']} failed:\n{r.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    if influxd_pid:
        out["influxd_cpu_s"] = proc_cpu_s(influxd_pid) - before
    return out


def report(cfg: Path, source: str, out: Path) -> dict[str, Any]:
    """`netroom report --format json --source ...`: wall s (process start to exit), RSS."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CLI_CHILD, "report", "--config", str(cfg),
                        "--format", "json", "--source", source, "--output", str(out)],
                       check=False, capture_output=True, text=True, cwd=REPO,
                       timeout=1800, env=INSTALLED_ENV)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"report --source {source} failed:\n{r.stderr[-3000:]}")
    return {"wall_s": wall, "rss_mb": int(r.stderr.strip().splitlines()[-1]) / 1024}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = statistics.median(r[k] for r in runs)
        else:
            out[k] = v
    out["runs"] = len(runs)
    return out


# --- the run ------------------------------------------------------------------

def write_config(path: Path, spool: Path, url: str, tree: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"collector": {"spool_dir": str(spool)},
                                    "influxdb": {"url": url, "database": DB},
                                    "sites": tree}, allow_unicode=True), encoding="utf-8")


@contextmanager
def started_influxd(prefix: str) -> Iterator[tuple[Path, Influxd]]:
    """A temporary directory with an influxd in it holding the bench's (empty)
    database; stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        tmp = Path(tmpdir)
        influxd = Influxd(tmp / "influxd")
        influxd.start()
        try:
            influxd.post(f"CREATE DATABASE {DB}")
            yield tmp, influxd
        finally:
            influxd.stop()


def main_run(a: argparse.Namespace) -> dict[str, Any]:
    now_s = time.time()
    tz = a.timezone or local_one_am(now_s)
    end = now_s
    start = end - a.hours * 3600
    now_ms = round(end * 1000)
    res: dict[str, Any] = {"sites": a.sites, "pcs_per_site": a.pcs, "pcs": a.sites * a.pcs,
                           "hours": a.hours, "interval_s": a.interval, "repeat": a.repeat,
                           "old_repeat": a.old_repeat or a.repeat,
                           "timezone": tz, "now_local": dt.datetime.fromtimestamp(
                               end, ZoneInfo(tz)).isoformat()}
    with started_influxd("netroom-scale-") as (tmp, influxd):
        fl, tree = make_fleet(a.sites, a.pcs, a.interval, tz)
        org = read_org(tree, {})
        spool = tmp / "spool"
        state = str(spool / "state.sqlite")
        db = StateDB(state)
        print(f"generating {a.sites} x {a.pcs} PCs, {a.hours:g} h at {a.interval:g} s "
              f"(time zone {tz}, now {res['now_local']}) ...", flush=True)
        got = generate(fl, tree, start, end, db, influxd.url, a.workers)
        res["generate"] = got
        res["prune_s"] = settle(db, org, now_ms)
        midnight = str(tmp / "midnight" / "state.sqlite")
        copy_state(state, midnight)
        m = sqlite3.connect(midnight)
        m.execute("DELETE FROM days")
        m.commit()
        m.close()
        print(f"  {got['messages']:,} messages -> {got['points']:,} points, "
              f"{got['records']:,} records in {got['generate_s']:.0f} s", flush=True)
        cfg = tmp / "config.yaml"
        write_config(cfg, spool, influxd.url, tree)
        base = {"config": str(cfg), "now_ms": now_ms, "url": influxd.url}
        pid = influxd.proc.pid if influxd.proc else None
        R = range(a.repeat)
        old_r = range(a.old_repeat or a.repeat)
        # The old path before any availability point exists: the hour after midnight.
        res["old_midnight"] = medians([run_child({**base, "what": "old"}, pid)
                                       for _ in old_r])
        res["availability_points"] = write_back(db, org, now_ms, influxd.url)
        db.close()
        res["state_mb"] = os.path.getsize(state) / 2**20
        res["old"] = medians([run_child({**base, "what": "old"}, pid) for _ in old_r])
        res["new"] = medians([run_child({**base, "what": "new", "state": state})
                              for _ in R])
        res["new_midnight"] = medians([run_child({**base, "what": "new", "state": midnight})
                                       for _ in R])
        res["cold"] = medians([run_child({**base, "what": "cold",
                                          "state": str(tmp / f"cold{i}" / "state.sqlite")},
                                         pid) for i in R])
        out = tmp / "report.json"
        res["report_state"] = medians([report(cfg, "state", out) for _ in R])
        res["report_influxdb"] = medians([report(cfg, "influxdb", out) for _ in old_r])
    return res


def curve(a: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in (int(x) for x in a.curve.split(",") if x.strip()):
        now_s = time.time()
        tz = a.timezone or local_one_am(now_s)
        with tempfile.TemporaryDirectory(prefix="netroom-curve-") as tmpdir:
            tmp = Path(tmpdir)
            fl, tree = make_fleet(n, a.pcs, a.interval, tz)
            org = read_org(tree, {})
            state = str(tmp / "spool" / "state.sqlite")
            db = StateDB(state)
            got = generate(fl, tree, now_s - a.curve_hours * 3600, now_s, db, None, a.workers)
            now_ms = round(now_s * 1000)
            settle(db, org, now_ms)
            write_back(db, org, now_ms, None)
            db.close()
            cfg = tmp / "config.yaml"
            write_config(cfg, tmp / "spool", "http://127.0.0.1:9", tree)
            m = medians([run_child({"config": str(cfg), "now_ms": now_ms, "what": "new",
                                    "state": state}) for _ in range(a.repeat)])
        pcs = n * a.pcs
        row = {"sites": n, "pcs": pcs, "records": got["records"],
               "generate_s": got["generate_s"], "cpu_s": m["cpu_s"], "wall_s": m["wall_s"],
               "rss_mb": m["rss_mb"], "us_per_pc": m["cpu_s"] / pcs * 1e6}
        print(f"  curve {n:>5} sites {pcs:>6} PCs: pass {m['cpu_s']:.2f} s CPU, "
              f"{row['us_per_pc']:.1f} us/PC, RSS {m['rss_mb']:.0f} MB "
              f"(generated in {got['generate_s']:.0f} s)", flush=True)
        rows.append(row)
    return rows


def series(a: argparse.Namespace) -> dict[str, Any]:
    """Series per PC as the issue defines it: SHOW SERIES EXACT CARDINALITY over
    the whole database (every retention policy, site-level series included) /
    PCs, for PCs with one disk, one NIC and one probe (gov PCs also report
    isolation), after --series-hours of history, one pass's write-back
    (compliance and availability points) and the roll-ups backfilled. Sites
    have 40 PCs as at full size, so the per-site series weigh as they would."""
    now_s = time.time()
    tz = a.timezone or local_one_am(now_s - 12 * 3600)  # now is 13:xx: every PC is on
    now_local = dt.datetime.fromtimestamp(now_s, ZoneInfo(tz)).strftime("%H:%M")
    with started_influxd("netroom-series-") as (tmp, influxd):
        fl, tree = make_fleet(a.series, a.pcs, a.interval, tz)
        org = read_org(tree, {})
        db = StateDB(str(tmp / "spool" / "state.sqlite"))
        generate(fl, tree, now_s - a.series_hours * 3600, now_s, db, influxd.url, a.workers)
        now_ms = round(now_s * 1000)
        settle(db, org, now_ms)
        # The service's pass and its write-back (collector/passes.py).
        post(influxd.url, "\n".join(
            passes.outcome(org, state_snapshot.build(db, org, now_ms)).lines).encode())
        db.close()
        influx = InfluxConfig(url=influxd.url, database=DB, timeout_s=600.0)
        sink = InfluxSink(influx)
        try:
            levels = org.level_tags()
            retention.ensure(sink, influx, levels)
            rolled = retention.backfill(
                sink, influx, round((now_s - a.series_hours * 3600) * 1000), now_ms, levels)
        finally:
            sink.close()
        per = exact_series(influxd)
        estimate = influxd.query("SHOW SERIES CARDINALITY", db=DB)
    pcs = a.series * a.pcs
    total = sum(per.values())
    est = int(estimate["results"][0]["series"][0]["values"][0][0])
    print(f"\nseries: {a.series} sites x {a.pcs} PCs, {a.series_hours:g} h up to {now_local}: "
          f"{total:,} series (SHOW SERIES EXACT CARDINALITY, every retention policy) = "
          f"{total / pcs:.2f} per PC; InfluxDB's estimate (SHOW SERIES CARDINALITY) {est:,}; "
          f"roll-up points backfilled per CQ: {rolled}", flush=True)
    for name, n in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {n:>7,}  {n / pcs:.3f} per PC")
    return {"sites": a.series, "pcs": pcs, "series": total, "per_pc": total / pcs,
            "estimate": est, "by_measurement": per}


def exact_series(influxd: Influxd) -> dict[str, int]:
    """Series per measurement over every retention policy. SHOW SERIES EXACT
    CARDINALITY alone counts the default policy's; a roll-up keeps its
    source's series key (per-PC and daily tiers), so a measurement's series
    are those of the policy that has most of them."""
    per: dict[str, int] = {}
    rps = influxd.query("SHOW RETENTION POLICIES", db=DB)["results"][0]["series"][0]["values"]
    for rp in (r[0] for r in rps):
        got = influxd.query(f'SHOW SERIES EXACT CARDINALITY FROM "{rp}"./.*/', db=DB)
        for s in got["results"][0].get("series", []):
            per[s["name"]] = max(per.get(s["name"], 0), int(s["values"][0][0]))
    return per


TARGET_CPU_S = 2.0
TARGET_WALL_S = 2.0
TARGET_RSS_MB = 150.0


def table(res: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"\n{res['sites']} sites x {res['pcs_per_site']} PCs = {res['pcs']:,} PCs, "
          f"{res['hours']:g} h of history at {res['interval_s']:g} s "
          f"(the agents' default is 60 s), medians of {res['repeat']}; "
          f"now = {res['now_local']}")
    g = res["generate"]
    print(f"InfluxDB: {g['points']:,} points; state: {g['records']:,} records applied, "
          f"{res['state_mb']:.0f} MB after prune; generated in {g['generate_s']:.0f} s")
    print(f"{'measurement':<34} {'CPU s':>7} {'wall s':>7} {'RSS MB':>7} {'queries':>8} "
          f"{'influxd CPU s':>13}  target")
    rows = [
        ("old: InfluxDB pass", res["old"], "cpu"),
        ("new: state pass", res["new"], "cpu"),
        ("old: pass after midnight", res["old_midnight"], "cpu"),
        ("new: pass after midnight", res["new_midnight"], "cpu"),
        ("new: cold start (rebuild + pass)", res["cold"], "cpu"),
        ("report --source influxdb", res["report_influxdb"], "wall"),
        ("report --source state", res["report_state"], "wall"),
    ]
    for name, r, kind in rows:
        cpu = r.get("cpu_s")
        ok = (cpu is not None and cpu <= TARGET_CPU_S) if kind == "cpu" \
            else r["wall_s"] <= TARGET_WALL_S
        ok_rss = r["rss_mb"] <= TARGET_RSS_MB
        tgt = (f"<= {TARGET_CPU_S:g} s CPU" if kind == "cpu" else f"<= {TARGET_WALL_S:g} s wall")
        print(f"{name:<34} {'' if cpu is None else f'{cpu:.2f}':>7} {r['wall_s']:>7.2f} "
              f"{r['rss_mb']:>7.0f} {r.get('queries', ''):>8} "
              f"{'' if 'influxd_cpu_s' not in r else format(r['influxd_cpu_s'], '.2f'):>13}  "
              f"{tgt}: {mark(ok)}; RSS: {mark(ok_rss)}")
    c = res["cold"]
    print(f"cold start: rebuild {c['rebuild_cpu_s']:.2f} s CPU / {c['rebuild_wall_s']:.2f} s "
          f"wall, {c['queries']} queries, {c['records']:,} records")
    print("  of them: " + ", ".join(f"{k} {n:,}" for k, n in c.get("kinds", {}).items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--pcs", type=int, default=40)
    ap.add_argument("--hours", type=float, default=26.0)
    ap.add_argument("--interval", type=float, default=300.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--old-repeat", type=int, default=0,
                    help="runs of the InfluxDB path (default: --repeat; at 1,000 sites a "
                    "pass after midnight takes minutes)")
    ap.add_argument("--curve", default="100,500,1000,2000", help="site counts ('' for none)")
    ap.add_argument("--curve-hours", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="generating processes")
    ap.add_argument("--timezone", help="the sites' time zone (default: one where now is 01:xx)")
    ap.add_argument("--series", type=int, default=0,
                    help="also count series per PC on a fleet of this many sites (e.g. 25)")
    ap.add_argument("--series-hours", type=float, default=1.0)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(json.loads(a.child))))
        return 0
    t0 = time.perf_counter()
    res = main_run(a) if a.sites > 0 else {}
    if res:
        table(res)
    if a.curve.strip():
        print(f"\ncurve: new-path pass CPU per PC ({a.pcs} PCs a site, {a.curve_hours:g} h "
              f"of history at {a.interval:g} s, state only)", flush=True)
        res["curve"] = curve(a)
    if a.series:
        res["series"] = series(a)
    res["command"] = " ".join(["python3", "bench/scale.py", *sys.argv[1:]])
    res["total_s"] = time.perf_counter() - t0
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
