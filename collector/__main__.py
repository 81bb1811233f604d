"""netroom-collector: the command line. The only place that exits.

At start it checks its servers (collector/preflight.py): a wrong password,
an unknown database or a login the broker refuses stops it with one line and
exit status 2 (config-like: systemd does not restart it, RestartPreventExitStatus=2);
a server that does not answer yet is logged and waited for (spool, broker queue).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import netroom
from collector import preflight
from collector.config import ConfigError, load
from collector.service import Collector
from collector.workers import Supervisor, worker_config

log = logging.getLogger("netroom.collector")
BROKER_CHECK_S = 15.0  # how long start-up waits for the broker's first answer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="netroom-collector", description=__doc__)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--version", action="version", version=netroom.__version__)
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load(args.config)
        wcfg = worker_config(cfg, args.worker)
    except ConfigError as exc:
        print(f"netroom-collector: error: {exc}", file=sys.stderr)
        return 2
    found = preflight.check_influx(wcfg.influxdb)
    if found.fatal:
        print(f"netroom-collector: error: {preflight.influx_line(found, wcfg.influxdb)}",
              file=sys.stderr)
        return 2
    if found.code != preflight.OK:
        log.warning("%s", preflight.influx_line(found, wcfg.influxdb))
    try:
        service = Collector(wcfg)
    except OSError as exc:
        print(f"netroom-collector: error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    log.info("collecting %s:%s -> %s db=%s (worker %d of %d)", cfg.mqtt.host, cfg.mqtt.port,
             cfg.influxdb.url, cfg.influxdb.database, args.worker, cfg.workers)
    refused = service.login_refused(BROKER_CHECK_S)
    if refused:
        service.stop()
        print(f"netroom-collector: error: broker {cfg.mqtt.host}:{cfg.mqtt.port}: {refused}",
              file=sys.stderr)
        return 2
    workers = None
    if args.worker == 0 and cfg.workers > 1:
        workers = Supervisor(args.config, cfg.workers, args.log_level)
    while not stop.wait(1.0):
        if service.failed.is_set():
            break
        if workers:
            workers.poll()
    if service.failed.is_set():
        log.critical("stopping after a failure (%s); exit 1 so the service manager "
                     "restarts the collector", service.failure)
    else:
        log.info("stopping: flushing")
    if workers:
        workers.stop()
    service.stop()
    return 1 if service.failed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
