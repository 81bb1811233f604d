"""netroom: the administrator's command line. The only place (with the
collector's __main__) that exits.

Each subcommand is an ``add_<name>(subparsers)`` function registered by one
line in ``COMMANDS``; it sets ``run`` to a function ``(args) -> exit code``.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from typing import Callable

import netroom
from collector.cli.dashboards import add_dashboards
from collector.cli.deadletter import add_deadletter
from collector.cli.rooms import add_availability, add_isolation
from collector.cli.speedserver import add_speedserver
from collector.compliance import evaluate as compliance
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.influx.client import InfluxSink, SinkError
from collector.influx.settings import InfluxConfig, read_influx
from collector.report.i18n import LANGS
from collector.report.output import FORMATS, render
from collector.store import snapshot
from netroom.settings import ConfigError, load_yaml


def read_config(path: str) -> tuple[InfluxConfig, Org]:
    """The sections a report needs (influxdb, sites, rules); raise ConfigError."""
    data = load_yaml(path)
    return read_influx(data.get("influxdb")), read_org(data.get("sites"), data.get("rules"))


def add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="which sites meet which standard, now",
                       description="Evaluate every site from InfluxDB now and print the "
                       "verdicts. Exits 0 whether or not sites pass.")
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--site", help="only this site, or the sites under this unit")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    influx, org = read_config(args.config)
    if not org.sites:
        raise ConfigError("sites: no sites configured, nothing to report on")
    if args.site is not None and args.site not in org.nodes:
        raise ConfigError(f"--site: {args.site!r} is not a node of the sites tree")
    wanted = [s.id for s in org.sites_under(args.site)] if args.site else None
    sink = InfluxSink(influx)
    try:
        snaps = snapshot.build(snapshot.reader(sink), org, int(time.time() * 1000))
    except SinkError as exc:
        raise SinkError(f"cannot read InfluxDB at {influx.url} (database "
                        f"{influx.database!r}): {_reason(exc)}") from exc
    finally:
        sink.close()
    text = render(args.format, compliance.evaluate_all(org, snaps, wanted), org, args.lang)
    if args.output:
        # Spreadsheet programs need the BOM to read UTF-8 CSV as such.
        enc = "utf-8-sig" if args.format == "csv" else "utf-8"
        with open(args.output, "w", encoding=enc, newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _reason(exc: Exception) -> str:
    """The useful end of a requests/urllib3 error chain, e.g. 'Connection refused'."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return m.group(1).strip() if m else text


COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    add_report,
    add_speedserver,
    add_dashboards,
    add_availability,
    add_isolation,
    add_deadletter,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netroom", description="netroom administration")
    parser.add_argument("--version", action="version", version=netroom.__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"netroom {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except SinkError as exc:
        print(f"netroom {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"netroom {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
