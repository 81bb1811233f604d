"""netroom-agent: the command line. The only place that exits."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import netroom
from agent import collectors
from agent.config import AgentConfig, ConfigError, load
from agent.runner import Runner
from agent.transport import Publisher, outbox_path
from netroom import protocol

log = logging.getLogger("netroom.agent")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netroom-agent", description=__doc__)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--once", action="store_true", help="run one round, then exit")
    p.add_argument("--print", action="store_true",
                   help="print messages as JSON lines instead of publishing")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="with --once: seconds to wait for the broker's acks (default 30)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--log-file", help="log here (rotated at 5 MB, 3 kept) instead of stderr; "
                   "for Windows' Task Scheduler, which keeps no output")
    p.add_argument("--version", action="version", version=netroom.__version__)
    return p.parse_args(argv)


class Agent:
    """Turns collector output into messages for a sink (publisher or stdout)."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg

    def message(self, kind: str, body: dict[str, Any], ts: float) -> tuple[str, bytes]:
        c = self.cfg
        payload = protocol.envelope(c.site, c.host, c.network, c.role, ts)
        # The protocol's limits (string lengths, list sizes) applied once here:
        # collectors send what they found.
        payload.update(protocol.fit(kind, body))
        return protocol.topic(c.site, c.host, kind), protocol.encode(payload)

    def status(self, state: str, will: bool = False) -> tuple[str, bytes]:
        body: dict[str, Any] = {"state": state, "agent_version": netroom.__version__,
                                "interval_s": self.cfg.interval_s}
        if will:
            body["will"] = True
        return self.message("status", body, time.time())


def print_runner(a: Agent) -> Runner:
    """A runner whose messages go to stdout as JSON lines."""
    lock = threading.Lock()  # threaded jobs (probes) emit at once: keep lines whole

    def emit(kind: str, body: dict[str, Any], ts: float) -> None:
        topic, payload = a.message(kind, body, ts)
        line = {"topic": topic, "retain": protocol.KINDS[kind].retained,
                "payload": json.loads(payload)}
        with lock:
            try:
                print(json.dumps(line, ensure_ascii=False), flush=True)
            except BrokenPipeError:
                # `| head` closed the pipe: the reader has what it wanted.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    return Runner(collectors.jobs(a.cfg), emit)


def publish(a: Agent, once: bool, timeout_s: float) -> int:
    cfg = a.cfg
    client_id = cfg.mqtt.client_id or f"netroom-agent-{cfg.site}-{cfg.host}"
    pub = Publisher(cfg.mqtt, client_id, outbox_path(cfg.state_dir),
                    will=a.status("offline", will=True), outbox_max=cfg.outbox_max,
                    birth=None if once else lambda: a.status("online"))

    def emit(kind: str, body: dict[str, Any], ts: float) -> None:
        topic, payload = a.message(kind, body, ts)
        pub.send(topic, payload, retain=protocol.KINDS[kind].retained)

    # Handlers first: a SIGTERM during start-up must still publish offline.
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    runner = Runner(collectors.jobs(cfg), emit)
    pub.start()
    if once:
        runner.run_once()
        ok = pub.wait_acked(timeout_s)
        pending = pub.pending()
        pub.close()
        if not ok:
            reason = pub.last_error or "no answer"
            print(f"netroom-agent: error: broker {cfg.mqtt.host}:{cfg.mqtt.port} did not "
                  f"acknowledge {pending} message(s) within {timeout_s:g} s ({reason}); "
                  "they stay in the outbox for the next run", file=sys.stderr)
            return 1
        return 0
    log.info("agent %s for site %s (%s, %s), every %g s", cfg.host, cfg.site,
             cfg.network, cfg.role, cfg.interval_s)
    runner.run_forever(stop)
    log.info("stopping: publishing offline")
    pub.close(last=a.status("offline"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if args.log_file:
        # Only here: logging.handlers pulls in pickle and queue (0.4 MB of RSS).
        from logging.handlers import RotatingFileHandler

        try:
            handler = RotatingFileHandler(
                args.log_file, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
        except OSError as exc:
            print(f"netroom-agent: error: --log-file: {exc}", file=sys.stderr)
            return 2
    logging.basicConfig(level=args.log_level, handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"netroom-agent: error: {exc}", file=sys.stderr)
        return 2
    a = Agent(cfg)
    if args.print:
        runner = print_runner(a)
        if args.once:
            runner.run_once()
        else:  # the agent's own schedule, printed: for watching a PC's output
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            runner.run_forever(stop)
        return 0
    try:
        return publish(a, args.once, args.timeout)
    except OSError as exc:
        print(f"netroom-agent: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
