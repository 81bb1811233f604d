"""netroom report: which sites meet which standard, now.

Reads the collector's state file (docs/scale.md) when it is complete, else
InfluxDB. The HTTP client (requests) is imported only for the InfluxDB path:
it is most of a report's start-up time, and the state path does not need it.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import sys
import time

from collector import gcpause
from collector.compliance import evaluate as compliance
from collector.compliance import register
from collector.compliance.evaluate import Evaluation
from collector.compliance.facts import Snapshots
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.compliance.register import MinSpec, Replace
from collector.influx.errors import SinkError
from collector.influx.settings import InfluxConfig, read_influx
from collector.ingest.spool import default_spool_dir
from collector.report.i18n import LANGS
from collector.report.output import FORMATS, write
from collector.store import inventory, snapshot
from collector.store.state import snapshot as state_snapshot
from collector.store.state.db import StateDB, StateError, path_in
from netroom.settings import ConfigError, load_yaml

SOURCES = ("auto", "state", "influxdb")


def read_config(path: str) -> tuple[InfluxConfig, Org, str]:
    """The sections a report needs (influxdb, sites, rules) and where the
    collector of this config keeps its state (collector.spool_dir); raise ConfigError."""
    data = load_yaml(path)
    section = data.get("collector")
    spool = section.get("spool_dir") if isinstance(section, dict) else None
    return (read_influx(data.get("influxdb")), read_org(data.get("sites"), data.get("rules")),
            path_in(str(spool) if spool else default_spool_dir()))


def add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="which sites meet which standard, now",
                       description="Evaluate every site now (from the collector's state "
                       "file, or from InfluxDB) and print the verdicts. Exits 0 whether or "
                       "not sites pass.")
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--site", help="only this site, or the sites under this unit")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="state: the collector's state file (fast; what the collector "
                   "evaluates); influxdb: read the fleet from InfluxDB (slow at scale); "
                   "auto (default): the state when it is complete, else InfluxDB")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    with gcpause.paused():  # a short process allocating much and nothing cyclic
        ev, org = _evaluate(args)
        if args.output:
            # Spreadsheet programs need the BOM to read UTF-8 CSV as such.
            enc = "utf-8-sig" if args.format == "csv" else "utf-8"
            with open(args.output, "w", encoding=enc, newline="") as fh:
                write(args.format, ev, org, args.lang, fh)
        else:
            write(args.format, ev, org, args.lang, sys.stdout)
    return 0


def write_output(args: argparse.Namespace, text: str) -> None:
    """``text`` to ``args.output`` or standard output; CSV with the BOM that
    spreadsheet programs need to read UTF-8 as such."""
    data = text.encode("utf-8-sig" if args.format == "csv" else "utf-8")
    if args.output:
        with open(args.output, "wb") as fh:
            fh.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _evaluate(args: argparse.Namespace) -> tuple[Evaluation, Org]:
    influx, org, state = read_config(args.config)
    if not org.sites:
        raise ConfigError("sites: no sites configured, nothing to report on")
    if args.site is not None and args.site not in org.nodes:
        raise ConfigError(f"--site: {args.site!r} is not a node of the sites tree")
    wanted = [s.id for s in org.sites_under(args.site)] if args.site else None
    snaps = _from_state(args, org, state) if args.source != "influxdb" else None
    if snaps is None:
        snaps = _from_influxdb(influx, org)
    ev = compliance.evaluate_all(org, snaps, wanted)
    specs = {s.id: s.min_spec for s in org.sites
             if s.min_spec is not None and (wanted is None or s.id in wanted)}
    if specs:
        ev = dataclasses.replace(ev, replace=_to_replace(influx, org, specs, ev.now_ms))
    return ev, org


def open_state(source: str, path: str) -> StateDB | None:
    """The collector's state file at ``path``, read-only; None (--source auto)
    when it is missing or not yet complete; with --source state, that is an
    error."""
    try:
        db = StateDB(path, readonly=True) if os.path.exists(path) else None
        if db is not None and not db.complete:
            db.close()
            db = None
    except StateError as exc:
        if source == "state":
            raise OSError(f"{exc} (run as the collector's user)") from exc
        return None
    if db is None and source == "state":
        raise ConfigError(f"--source state: {path} is missing, not yet complete, or "
                          "from another netroom version (is the collector running with "
                          "this config, and restarted since an upgrade?)")
    return db


def _from_state(args: argparse.Namespace, org: Org, path: str) -> Snapshots | None:
    """The sites from the collector's state file at ``path`` (open_state)."""
    db = open_state(args.source, path)
    if db is None:
        return None
    try:
        return state_snapshot.build(db, org, int(time.time() * 1000),
                                    state_snapshot.VERDICT_LOADERS)
    finally:
        db.close()


def _from_influxdb(influx: InfluxConfig, org: Org) -> Snapshots:
    """The sites read from InfluxDB (the collector's first way; slow at scale)."""
    client = importlib.import_module("collector.influx.client")  # requests: see the docstring
    sink = client.InfluxSink(influx)
    try:
        got: Snapshots = snapshot.build(snapshot.reader(sink), org, int(time.time() * 1000),
                                        snapshot.VERDICT_LOADERS)
        return got
    except SinkError as exc:
        raise SinkError(f"cannot read InfluxDB at {influx.url} (database "
                        f"{influx.database!r}): {_reason(exc)}") from exc
    finally:
        sink.close()


def _to_replace(influx: InfluxConfig, org: Org, specs: dict[str, MinSpec], now_ms: int
                ) -> tuple[Replace, ...]:
    """The PCs below their site's min_spec, from the hardware register in
    InfluxDB (the state keeps no hardware details; read only when a site has a
    min_spec, which is off by default)."""
    client = importlib.import_module("collector.influx.client")  # requests: see the docstring
    sink = client.InfluxSink(influx)
    try:
        pcs = inventory.register(snapshot.reader(sink), org, now_ms, org.freshness_days)
    except SinkError as exc:
        raise SinkError(f"cannot read the hardware register (min_spec) from InfluxDB at "
                        f"{influx.url}: {_reason(exc)}") from exc
    finally:
        sink.close()
    return register.to_replace(pcs, specs)


def _reason(exc: Exception) -> str:
    """The useful end of a requests/urllib3 error chain, e.g. 'Connection refused'."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return m.group(1).strip() if m else text
