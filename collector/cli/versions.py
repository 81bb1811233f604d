"""``netroom versions``: where an agent rollout stands, for IT staff.

Each PC's latest online status (the agent version it runs, its self-update's
state and why it failed) comes from the collector's state file when that is
complete, else from InfluxDB (``--source``, as ``netroom report``); the
version the centre names for each PC comes from this config's `sites` tree
(netroom.central.for_host: a unit's, a site's or a ``hosts`` section's
``update.version``), so a pilot site or pilot PCs show as such. Tables and
words: collector/report/versions.py. Registered in collector/cli/main.py.
"""
from __future__ import annotations

import argparse
import importlib
import time
from typing import Any, Mapping, Sequence

from collector.cli.report import SOURCES, open_state, read_config, write_output
from collector.compliance import rollout
from collector.compliance.model import Org, Site
from collector.compliance.rollout import AgentState
from collector.influx.errors import SinkError
from collector.influx.settings import InfluxConfig
from collector.report import versions as out
from collector.report.i18n import LANGS
from collector.store.loaders import agents
from collector.store.rows import reader
from collector.store.state import snapshot as state_snapshot
from netroom.settings import ConfigError

Agents = Mapping[str, Sequence[AgentState]]

EXIT_CODES = """exit codes:
  0  no PC of the chosen sites failed to update or was rolled back
  1  at least one did (PCs that cannot self-update do not count), or the
     state file and InfluxDB could not be read (the error says which)
  2  bad arguments or config (the error says which)"""


def add_versions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "versions", help="agent versions and self-update: where a rollout stands",
        # Wrapped by hand: the raw formatter keeps the exit codes' layout.
        description="Per site, under its units: the agent version the centre names\n"
        "(agents.update.version in config.yaml), PCs on it among those reporting,\n"
        "and PCs pending, updating, failed, rolled back, unable to self-update, or\n"
        "silent (nothing heard for 2 days). --failed lists the PCs that failed,\n"
        "were rolled back or cannot self-update, with why.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--site", help="only this site (a unit's id: its sites)")
    p.add_argument("--unit", help="only the sites under this unit")
    p.add_argument("--failed", action="store_true",
                   help="list the PCs that failed, were rolled back or cannot self-update")
    p.add_argument("--format", choices=out.FORMATS, default="table")
    p.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="state: the collector's state file; influxdb: InfluxDB; auto "
                   "(default): the state when it is complete, else InfluxDB")
    p.set_defaults(run=run_versions)


def run_versions(args: argparse.Namespace) -> int:
    influx, org, state = read_config(args.config)
    sites = _sites(org, args.site, args.unit)
    now = int(time.time() * 1000)
    found = _from_state(args.source, org, state, now) if args.source != "influxdb" else None
    if found is None:
        found = _from_influxdb(influx, org, now)
    wanted = {s.id for s in sites}
    chosen = {site: pcs for site, pcs in found.items() if site in wanted}
    if args.failed:
        text = out.render_pcs(args.format, out.pc_rows(org, chosen, now, args.lang), args.lang)
    else:
        text = out.render_sites(args.format, out.site_rows(org, sites, chosen, now), args.lang)
    write_output(args, text)
    return 1 if any(rollout.phase(a, now) in rollout.BROKEN
                    for pcs in chosen.values() for a in pcs) else 0


def _sites(org: Org, site: str | None, unit: str | None) -> list[Site]:
    """The sites chosen by --site and --unit (both: those under both), in tree order."""
    chosen = org.sites
    for flag, node in (("--site", site), ("--unit", unit)):
        if node is None:
            continue
        if node not in org.nodes:
            raise ConfigError(f"{flag}: {node!r} is not a node of the sites tree")
        under = {s.id for s in org.sites_under(node)}
        chosen = [s for s in chosen if s.id in under]
    return chosen


def _from_state(source: str, org: Org, path: str, now_ms: int) -> Agents | None:
    """Each site's AgentStates from the collector's state file (open_state)."""
    db = open_state(source, path)
    if db is None:
        return None
    try:
        return _agents(state_snapshot.load_agents(db, org, now_ms).facts)
    finally:
        db.close()


def _from_influxdb(influx: InfluxConfig, org: Org, now_ms: int) -> Agents:
    # requests (the HTTP client) only on this path: most of a CLI's start-up time.
    client = importlib.import_module("collector.influx.client")
    sink = client.InfluxSink(influx)
    try:
        return _agents(agents.load(reader(sink), org, now_ms).facts)
    except SinkError as exc:
        raise SinkError(f"cannot read InfluxDB at {influx.url} (database "
                        f"{influx.database!r}): {exc}") from exc
    finally:
        sink.close()


def _agents(facts: Mapping[str, Mapping[str, Any]]) -> Agents:
    return {site: tuple(f["agents"]) for site, f in facts.items() if "agents" in f}
