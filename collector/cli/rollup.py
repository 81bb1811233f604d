"""``netroom rollup``: set up the retention tiers, and backfill the roll-ups.

The continuous queries recompute only the last ``influxdb.retention.resample_for``
(5-minute tiers) or 2 days (daily tiers); points that arrived later (an
agent's outbox after days offline, a spool replayed after an outage) are in
raw but not in the roll-ups until this runs the same SELECT ... INTO over
the past range (collector/influx/retention.py).
"""
from __future__ import annotations

import argparse
import sys
import time

from collector.compliance.orgconfig import read_org
from collector.influx import retention
from collector.influx.client import InfluxSink
from collector.influx.retention_settings import duration_s
from collector.influx.settings import read_influx
from netroom import schema
from netroom.settings import load_yaml


def add_rollup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rollup", help="create the retention policies and roll-ups, backfill",
                       description="Create or update the retention policies and continuous "
                       "queries (as the collector does at start), then recompute the "
                       "roll-ups over the past --since from the raw points: for data that "
                       "arrived later than the continuous queries' window. Safe to repeat.")
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--since", default="2d", help="how far back: 2d, 36h, 8w (default 2d)")
    p.add_argument("--chunk", default="6h", help="time per SELECT ... INTO (default 6h; "
                   "smaller uses less InfluxDB memory on large fleets)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(run=run_rollup)


def run_rollup(args: argparse.Namespace) -> int:
    since = duration_s(args.since, "--since", False)
    chunk = duration_s(args.chunk, "--chunk", False)
    data = load_yaml(args.config)
    influx = read_influx(data.get("influxdb"))
    levels = read_org(data.get("sites"), data.get("rules")).level_tags()
    now_ms = int(time.time() * 1000)
    sink = InfluxSink(influx)
    try:
        sink.ensure_database()
        for what in retention.ensure(sink, influx, levels):
            print(f"netroom rollup: {what}", file=sys.stderr)

        def progress(name: str, a: int, b: int, n: int) -> None:
            if not args.quiet:
                print(f"netroom rollup: {name} {_iso(a)} .. {_iso(b)}: {n} points",
                      file=sys.stderr, flush=True)

        done = retention.backfill(sink, influx, now_ms - since * 1000, now_ms, levels,
                                  chunk * 1000, progress)
    finally:
        sink.close()
    for name, n in done.items():
        print(f"{name}\t{n}")
    return 0


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / schema.SECOND_MS))
