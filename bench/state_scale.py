"""Evaluation and report at bureau scale, from the collector's state file.

Method: a fleet of N sites x M PCs (collector/simulate/fleet.py, 20 % of
sites shaped to fail rules) is written into a state database as a day of
ingest leaves it (collector/store/state/records.py records: two inventories
and two online statuses per PC, each room PC's heartbeats as the runs the
state keeps, the latest probe and isolation result, four speed tests per
network and site); then, medians of --repeat:
- one evaluation pass (state snapshot + rules), CPU s, with the week's
  availability stored ("pass"), with all but yesterday's stored ("after
  midnight": the real hour after a site's midnight, yesterday computed from
  the runs) and with none stored ("no day": every day of the rolling week
  from the runs, the worst case);
- the collector's first pass after a restart: a new process loads the
  config, opens the state file and runs the service's pass
  (collector/passes.py: prune, snapshot, rules, the lines it writes back);
  CPU s of its start-up (interpreter, imports, config: "start-up") and of
  the pass ("1st pass");
  with that process's peak RSS (MB);
- `netroom report --format json --source state` as a subprocess: wall s and
  peak RSS (MB);
- CPU per PC across fleet sizes (the curve should be flat; below 1,000
  sites the passes are repeated up to 5 times more, as a short pass is
  noisier).
The InfluxDB-reading path is not run here (tests/test_state.py shows both
paths agree; docs/benchmarks.md quotes its figures from the issue).
Run: python3 bench/state_scale.py [--sites 100,500,1000,2000] [--pcs 40] [--repeat 3]
     [--json FILE]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from procmeter import CLI_CHILD, INSTALLED_ENV  # noqa: E402

from collector import gcpause  # noqa: E402
from collector.compliance.availability import complete_days  # noqa: E402
from collector.compliance.evaluate import evaluate_all  # noqa: E402
from collector.compliance.orgconfig import read_org  # noqa: E402
from collector.simulate import fleet as simfleet  # noqa: E402
from collector.store.state import records as rec  # noqa: E402
from collector.store.state import snapshot  # noqa: E402
from collector.store.state.db import StateDB  # noqa: E402

DAY = 86_400_000
# The collector's first pass in a process of its own; prints the CPU s of
# its start-up (interpreter, imports, config) and of the pass, and its peak
# RSS (MB; VmHWM, see procmeter.CLI_CHILD).
RESTART_CHILD = """\
import sys, time
from collector import passes
from collector.config import load
from collector.store.state.db import StateDB, path_in
cfg = load(sys.argv[1])
db = StateDB(path_in(cfg.state_dir or cfg.spool_dir))
start = time.process_time()
passes.outcome(cfg.org, passes.snapshots(db, cfg.org, int(time.time() * 1000)))
hwm = open("/proc/self/status").read().split("VmHWM:", 1)[1].split()[0]
print(start, time.process_time() - start, int(hwm) / 1024)
"""


def fill(db: StateDB, fl: simfleet.Fleet, now_ms: int, stored: int) -> int:
    """A day of records for ``fl``; ``stored``: how many of its room's complete
    days (the latest last) are already stored: 7 on a normal pass, 6 in the
    hour after midnight (yesterday not yet), 0 when none is."""
    out: list[rec.Record] = []
    for site in fl.sites:
        tz = ZoneInfo("Asia/Shanghai")
        for pc in site.pcs:
            for k in (26, 2):
                t = now_ms - k * 3_600_000
                out.append(rec.Inventory(pc.site, pc.host, pc.network, pc.role, pc.host_id,
                                         pc.hostname, t))
                out.append(rec.Status(pc.site, pc.host, pc.network, pc.role, t, "online",
                                      False, 60.0, "v1", None, None))
            if pc.role == "room":
                gap = 6 * 3_600_000 if site.room_closed else 0
                out.append(rec.Run(pc.site, pc.host, now_ms - 26 * 3_600_000,
                                   now_ms - 12 * 3_600_000))
                out.append(rec.Run(pc.site, pc.host, now_ms - 12 * 3_600_000 + gap, now_ms))
            out.append(rec.Probe(pc.site, pc.host, pc.network, "portal", now_ms - 60_000,
                                 not pc.portal_fails))
            if pc.network == "gov":
                out.append(rec.Isolation(pc.site, pc.host, pc.network, now_ms - 60_000,
                                         pc.isolation_violated, None, None, 2))
            if pc.tester:
                for k in range(4):
                    mbps = site.gov_mbps if pc.network == "gov" else site.internet_mbps
                    out.append(rec.Test(pc.site, pc.network, pc.host,
                                        now_ms - k * 6 * 3_600_000, mbps, mbps / 4, 5.0,
                                        "intranet", None))
        if stored:
            for d in complete_days(now_ms, tz, 7)[:stored]:
                start = round(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)
                out.append(rec.Day(site.id, d.isoformat(), start, 86400.0, 86000.0))
    for i in range(0, len(out), 20_000):
        db.apply(out[i:i + 20_000])
    db.put("complete", "1")
    return len(out)


def one_pass(db: StateDB, org: object, now_ms: int) -> float:
    t = time.process_time()
    with gcpause.paused():  # as the service runs a pass (collector/gcpause.py)
        evaluate_all(org, snapshot.build(db, org, now_ms))  # type: ignore[arg-type]
    return time.process_time() - t


def restart(cfg: Path) -> tuple[float, float, float]:
    """A new collector process's start-up and first pass (CPU s) and its peak
    RSS (MB): RESTART_CHILD."""
    r = subprocess.run([sys.executable, "-c", RESTART_CHILD, str(cfg)],
                       capture_output=True, text=True, cwd=REPO, check=True, env=INSTALLED_ENV)
    start, first, rss = (float(x) for x in r.stdout.split())
    return start, first, rss


def report(cfg: Path) -> tuple[float, float]:
    """(wall s, peak RSS MB) of `netroom report --format json --source state`."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CLI_CHILD, "report", "--config", str(cfg),
                        "--format", "json", "--source", "state"],
                       capture_output=True, text=True, cwd=REPO, check=True, env=INSTALLED_ENV)
    wall = time.perf_counter() - t
    return wall, int(r.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="100,500,1000,2000")
    ap.add_argument("--pcs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    print(f"{'sites':>6} {'PCs':>7} {'records':>8} {'pass s':>7} {'midnight s':>10} "
          f"{'no day s':>8} {'us/PC':>6} {'start-up s':>10} {'1st pass s':>10} {'RSS MB':>7} "
          f"{'report s':>8} {'RSS MB':>7}")
    rows = []
    for n in (int(x) for x in a.sites.split(",")):
        fl = simfleet.build(n, a.pcs, fail=("room_gov_share", "portal_reachable"), seed=1)
        org = read_org(simfleet.sites_tree(fl), {})
        now = int(time.time() * 1000)
        # A small fleet's pass is a tenth of a second, where the machine's
        # noise is a larger share: more repeats, so its cost per PC compares.
        reps = a.repeat * max(1, min(5, 1000 // n))
        got = {}
        with tempfile.TemporaryDirectory() as tmp:
            for stored in (7, 6, 0):
                spool = os.path.join(tmp, f"spool-{stored}")
                db = StateDB(os.path.join(spool, "state.sqlite"))
                recs = fill(db, fl, now, stored)
                got[stored] = statistics.median(one_pass(db, org, now) for _ in range(reps))
                db.close()
                if stored == 7:
                    cfg = Path(tmp) / "config.yaml"
                    cfg.write_text(yaml.safe_dump({"collector": {"spool_dir": spool},
                                                   "sites": simfleet.sites_tree(fl)},
                                                  allow_unicode=True), encoding="utf-8")
                    runs = [report(cfg) for _ in range(a.repeat)]
                    restarts = [restart(cfg) for _ in range(a.repeat)]
        pcs = n * a.pcs
        row = {"sites": n, "pcs": pcs, "records": recs, "pass_cpu_s": got[7],
               "after_midnight_cpu_s": got[6], "no_day_cpu_s": got[0],
               "us_per_pc": got[7] / pcs * 1e6,
               "startup_cpu_s": statistics.median(r[0] for r in restarts),
               "first_pass_cpu_s": statistics.median(r[1] for r in restarts),
               "first_pass_rss_mb": statistics.median(r[2] for r in restarts),
               "report_wall_s": statistics.median(w for w, _ in runs),
               "report_rss_mb": statistics.median(r for _, r in runs)}
        rows.append(row)
        print(f"{n:>6} {pcs:>7} {recs:>8} {got[7]:>7.2f} {got[6]:>10.2f} {got[0]:>8.2f} "
              f"{row['us_per_pc']:>6.1f} {row['startup_cpu_s']:>10.2f} "
              f"{row['first_pass_cpu_s']:>10.2f} {row['first_pass_rss_mb']:>7.0f} "
              f"{row['report_wall_s']:>8.2f} {row['report_rss_mb']:>7.0f}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
