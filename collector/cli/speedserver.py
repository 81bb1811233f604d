"""``netroom speedserver``: the intranet speed-test server alone, without the collector."""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading

from collector.speedtest.server import (
    SpeedServer,
    SpeedServerConfig,
    read_config,
    releases_error,
)
from netroom.settings import ConfigError, Section, load_yaml


def add_speedserver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``netroom speedserver``: serve alone, without the collector."""
    p = sub.add_parser("speedserver", help="run the intranet speed-test server alone",
                       description="Serve the speed-test endpoints the gov PCs' agents "
                       "measure against, until SIGINT or SIGTERM.")
    p.add_argument("--config", "-c", help="config.yaml: serve as collector.speedtest says")
    p.add_argument("--listen", help="host:port, e.g. 0.0.0.0:8090 (overrides --config)")
    p.add_argument("--releases", metavar="DIR", help="also serve the agents' releases in DIR "
                   "under /releases (docs/updates.md; overrides --config)")
    p.set_defaults(run=run_speedserver)


def run_speedserver(args: argparse.Namespace) -> int:
    cfg = SpeedServerConfig()
    if args.config:
        cfg = read_config(Section(load_yaml(args.config).get("collector"), "collector")
                          .raw("speedtest"))
    if args.listen:
        cfg = dataclasses.replace(cfg, listen=args.listen)
    if args.releases:
        if why := releases_error(args.releases):
            raise ConfigError(f"--releases: {why}")
        cfg = dataclasses.replace(cfg, releases=args.releases)
    if not cfg.listen:
        raise ConfigError("collector.speedtest.listen: not set; give it or --listen host:port")
    server = SpeedServer(cfg)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    releases = f", releases from {cfg.releases} under /releases" if cfg.releases else ""
    print(f"netroom speedserver: serving on {server.url} ({cfg.max_clients} requests at "
          f"once, {cfg.max_connections} connections){releases}", file=sys.stderr, flush=True)
    stop.wait()
    server.stop()
    return 0
