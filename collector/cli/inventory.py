"""``netroom inventory`` (the hardware register) and ``netroom changes`` (its
history): read from InfluxDB, shown by site and unit names (docs/inventory.md).

CSV starts with a UTF-8 BOM, on stdout too: spreadsheet programs need it to
read UTF-8 (Chinese) as such. Output is written as UTF-8 whatever the locale.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

from collector.cli.report import read_config, write_output
from collector.compliance.model import Org
from collector.influx.client import InfluxSink
from collector.influx.errors import SinkError
from collector.influx.retention_settings import duration_s
from collector.report import register as out
from collector.report.i18n import LANGS
from collector.store import inventory
from collector.store.rows import Read, reader
from netroom.settings import ConfigError

Sub = argparse._SubParsersAction  # argparse's own type for add_parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--site", help="only this site, or the sites under this unit")
    p.add_argument("--format", choices=out.FORMATS, default="table")
    p.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")


def add_inventory(sub: Sub[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inventory", help="the hardware register: one row per PC",
                       description="Every PC's newest inventory (site and unit, OS, CPU, "
                       "memory, disks, NICs, serial, agent, last seen), PCs below their "
                       "site's min_spec marked to replace, duplicate serials and MACs flagged.")
    _common(p)
    p.add_argument("--since", default="30d",
                   help="PCs that sent an inventory within this: 30d (default), 12w")
    p.set_defaults(run=run_inventory)


def add_changes(sub: Sub[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("changes", help="hardware changes: memory, disks, NICs, CPU, OS...",
                       description="The hardware changes the collector recorded "
                       "(inventory_change): what changed, before and after, when.")
    _common(p)
    p.add_argument("--since", default="30d", help="how far back: 30d (default), 36h, 8w")
    p.set_defaults(run=run_changes)


def run_inventory(args: argparse.Namespace) -> int:
    since_s = duration_s(args.since, "--since", False)
    influx, org, _ = read_config(args.config)
    wanted = _sites(org, args.site)
    now = int(time.time() * 1000)
    pcs = _read(influx, lambda read: inventory.register(read, org, now, since_s / 86400))
    pcs = [p for p in pcs if wanted is None or p.site in wanted]
    rows = out.inventory_rows(pcs, org, args.lang)
    write_output(args, out.render(args.format, "inventory_title", out.INVENTORY_COLUMNS,
                            out.INVENTORY_TABLE, rows, args.lang))
    return 0


def run_changes(args: argparse.Namespace) -> int:
    since_s = duration_s(args.since, "--since", False)
    influx, org, _ = read_config(args.config)
    wanted = _sites(org, args.site)
    now = int(time.time() * 1000)
    points = _read(influx, lambda read: inventory.changes(read, now - since_s * 1000, now))
    points = [r for r in points if wanted is None or r.get("site") in wanted]
    rows = out.change_rows(points, org, args.lang)
    write_output(args, out.render(args.format, "changes_title", out.CHANGE_COLUMNS,
                            out.CHANGE_COLUMNS, rows, args.lang))
    return 0


def _sites(org: Org, node: str | None) -> set[str] | None:
    """The site ids under ``--site`` (None: every PC, registered or not)."""
    if node is None:
        return None
    if node not in org.nodes:
        raise ConfigError(f"--site: {node!r} is not a node of the sites tree")
    return {s.id for s in org.sites_under(node)}


def _read(influx: Any, work: Callable[[Read], Any]) -> Any:
    sink = InfluxSink(influx)
    try:
        return work(reader(sink))
    except SinkError as exc:
        raise SinkError(f"cannot read InfluxDB at {influx.url} (database "
                        f"{influx.database!r}): {exc}") from exc
    finally:
        sink.close()


