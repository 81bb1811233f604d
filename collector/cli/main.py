"""netroom: the administrator's command line. The only place (with the
collector's __main__) that exits.

Each subcommand is an ``add_<name>(subparsers)`` function in its module,
registered by one line in ``COMMANDS``; it sets ``run`` to a function
``(args) -> exit code``. Only the module of the command given is imported
(all of them for --help): a report should not wait for the Grafana client.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

import netroom
from collector.influx.errors import SinkError
from netroom.settings import ConfigError

# (command, module, its add_ function); one line each.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("report", "collector.cli.report", "add_report"),
    ("speedserver", "collector.cli.speedserver", "add_speedserver"),
    ("dashboards", "collector.cli.dashboards", "add_dashboards"),
    ("availability", "collector.cli.rooms", "add_availability"),
    ("isolation", "collector.cli.rooms", "add_isolation"),
    ("deadletter", "collector.cli.deadletter", "add_deadletter"),
    ("simulate", "collector.cli.simulate", "add_simulate"),
    ("rollup", "collector.cli.rollup", "add_rollup"),
    ("doctor", "collector.cli.doctor", "add_doctor"),
    ("inventory", "collector.cli.inventory", "add_inventory"),
    ("changes", "collector.cli.inventory", "add_changes"),
    ("versions", "collector.cli.versions", "add_versions"),
    ("release", "collector.cli.release", "add_release"),
)


def parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser with the subcommand ``argv`` names (every one if it names none)."""
    p = argparse.ArgumentParser(prog="netroom", description="netroom administration")
    p.add_argument("--version", action="version", version=netroom.__version__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    names = {name for name, _, _ in COMMANDS}
    for name, module, add in COMMANDS:
        if chosen not in names or chosen == name:
            getattr(importlib.import_module(module), add)(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(argv).parse_args(argv)
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
