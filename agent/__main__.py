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
from agent.collectors.status import Status
from agent.config import AgentConfig, ConfigError, read, read_file
from agent.runner import Emit, Runner
from agent.settings import Central
from agent.transport import Publisher, outbox_path
from agent.update.job import Updater
from netroom import protocol

log = logging.getLogger("netroom.agent")
EPILOG = """exit status:
  0  done; with --once: the broker accepted every message
  1  with --once: the broker refused a message (e.g. not authorized for its
     topic) or did not acknowledge every message within --timeout; the last
     line on stderr names the cause, and the messages stay in the outbox for
     the next run. Also: the state directory cannot be written.
  2  a bad argument or config file

netroom-agent doctor --config F [--lang en]: check this PC's config, files,
broker login, TLS, rights and clock, one line per finding with its fix
(netroom-agent doctor --help)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netroom-agent", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--once", action="store_true",
                   help="run one round, wait until the broker accepted it, then exit "
                   "(exit status below)")
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
    """Turns collector output into messages for a sink (publisher or stdout).

    ``central``: the settings from the centre; its version (and a refusal)
    goes into every ``online`` status, as does the state of an update
    (``updater``, set when the agent runs as a service).
    """

    def __init__(self, cfg: AgentConfig, central: Central | None = None) -> None:
        self.cfg = cfg
        self.central = central
        self.state = Status(cfg)  # also the clock job's collector: one last offset
        self.updater: Updater | None = None

    def use(self, cfg: AgentConfig) -> None:
        """Run ``cfg`` from now on (new settings; identity and broker stay)."""
        self.cfg = cfg
        self.state.interval_s = cfg.interval_s
        self.state.clock_cfg = cfg.clock
        if self.updater is not None:
            self.updater.use(cfg)

    def message(self, kind: str, body: dict[str, Any], ts: float) -> tuple[str, bytes]:
        c = self.cfg
        if kind == "status" and body.get(protocol.STATE) == protocol.ONLINE:
            if self.central is not None:
                body = {**body, **self.central.status_fields()}
            if self.updater is not None:
                body = {**body, **self.updater.status_fields()}
        payload = protocol.envelope(c.site, c.host, c.network, c.role, ts)
        # The protocol's limits (string lengths, list sizes) applied once here:
        # collectors send what they found.
        payload.update(protocol.fit(kind, body))
        return protocol.topic(c.site, c.host, kind), protocol.encode(payload)

    def status(self, state: str, will: bool = False) -> tuple[str, bytes]:
        return self.message("status", self.state.body(state, will), time.time())

    def jobs(self) -> list[collectors.Job]:
        updates = self.updater.jobs() if self.updater is not None else []
        return [*collectors.jobs(self.cfg, self.state), *updates]


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

    return Runner(a.jobs(), emit)


def publish(a: Agent, once: bool, timeout_s: float) -> int:
    cfg = a.cfg
    client_id = cfg.mqtt.client_id  # set by agent.config: agent.identity.client_id()
    central = a.central
    updater = a.updater
    pub = Publisher(cfg.mqtt, client_id, outbox_path(cfg.state_dir),
                    will=a.status(protocol.OFFLINE, will=True), outbox_max=cfg.outbox_max,
                    birth=None if once else lambda: a.status(protocol.ONLINE),
                    subscribe=None if central is None else {central.topic: central.offer},
                    sub_refused=None if central is None else central.not_subscribed,
                    accepted=None if updater is None else updater.confirm)
    stop = threading.Event()

    def emit(kind: str, body: dict[str, Any], ts: float) -> None:
        topic, payload = a.message(kind, body, ts)
        pub.send(topic, payload, retain=protocol.KINDS[kind].retained)
        if updater is not None and updater.staged:
            stop.set()  # a new version is staged: stop as on SIGTERM, then restart into it

    # Handlers first: a SIGTERM during start-up must still publish offline.
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    runner = Runner(a.jobs(), emit, problems=pub.problem)
    if central is not None:
        central.on_change = lambda: settings_changed(a, runner, emit, once)
    pub.start()
    if once:
        runner.run_once()
        pub.wait_settled(timeout_s)
        pub.close()
        return once_result(pub, timeout_s)
    log.info("agent %s for site %s (%s, %s), every %g s", cfg.host, cfg.site,
             cfg.network, cfg.role, cfg.interval_s)
    runner.run_forever(stop)
    log.info("stopping: publishing offline")
    pub.close(last=a.status(protocol.OFFLINE))
    return 0


def settings_changed(a: Agent, runner: Runner, emit: Emit, once: bool) -> None:
    """New settings applied or a document refused (the network thread): rebuild
    the jobs, say so in an online status. --once only keeps them for the next
    run: its round runs on what was known when it started."""
    if once or a.central is None:
        return
    if a.central.cfg is not a.cfg:
        a.use(a.central.cfg)
        jobs = a.jobs()
        runner.replace(jobs)
        log.info("agent %s now every %g s: %s", a.cfg.host, a.cfg.interval_s,
                 ", ".join(j.key for j in jobs))
    emit("status", a.state.body(protocol.ONLINE), time.time())


def once_result(pub: Publisher, timeout_s: float) -> int:
    """--once's exit status: 0 when the broker accepted every message, else 1
    and one line on stderr naming the cause (the messages stay in the outbox)."""
    pending = pub.pending()
    if not pending:
        return 0
    where = f"broker {pub.cfg.host}:{pub.cfg.port}"
    refused, causes = pub.refusals()
    if causes:
        more = f" (and {len(causes) - 1} other topic(s))" if len(causes) > 1 else ""
        print(f"netroom-agent: error: {where} refused {refused} message(s): {causes[0]}{more}; "
              f"{pending} message(s) stay in the outbox for the next run", file=sys.stderr)
    else:
        print(f"netroom-agent: error: {where} did not acknowledge {pending} message(s) "
              f"within {timeout_s:g} s: {pub.last_error or 'no answer'}; "
              "they stay in the outbox for the next run", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["doctor"]:
        # Imported only for the doctor: its checks and their texts in two
        # languages (netroom.doctor) would otherwise sit in every agent's memory.
        from agent import doctor

        return doctor.main(argv[1:])
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
        data = read_file(args.config)
        cfg = read(data)
    except ConfigError as exc:
        print(f"netroom-agent: error: {exc}", file=sys.stderr)
        return 2
    central = Central(data, cfg)
    central.load_kept()  # the last-known-good settings: the broker may be away
    a = Agent(central.cfg, central)
    if not args.print and not args.once:
        a.updater = Updater(a.cfg, args.config, lambda: a.state.body(protocol.ONLINE))
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
        code = publish(a, args.once, args.timeout)
    except OSError as exc:
        print(f"netroom-agent: error: {exc}", file=sys.stderr)
        return 1
    if a.updater is not None and a.updater.staged:
        try:
            restart(a.updater.launcher(), argv)
        except OSError as exc:  # the service manager's restart goes through it too
            print(f"netroom-agent: error: cannot restart through the launcher: {exc}",
                  file=sys.stderr)
            return 1
    return code


def restart(launcher: str, argv: list[str]) -> None:
    """Become the launcher again, same process id (systemd and the SysV
    script's pid file keep following it); it starts the new version on trial."""
    log.info("restarting through %s", launcher)
    for h in logging.getLogger().handlers:
        h.flush()
    os.execv(launcher, [launcher, *argv])  # noqa: S606 - the launcher is ours, argv the agent's own


if __name__ == "__main__":
    sys.exit(main())
