"""Wires the collector: ingest -> writer -> InfluxDB | spool, its own stats, and
the periodic compliance evaluation of every site."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from collector.compliance import evaluate as compliance
from collector.config import CollectorConfig
from collector.influx.client import InfluxSink, SinkError
from collector.influx.line import LineEncoder, Point
from collector.ingest.spool import Spool
from collector.ingest.subscriber import Counters, Entry, Ingest
from collector.ingest.writer import Writer
from collector.speedtest.server import SpeedServer
from collector.store import snapshot, writeback
from collector.store.rows import Read, reader
from netroom import protocol, schema
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


class Collector:
    """The running collector; start(), then stop() from any thread."""

    def __init__(self, cfg: CollectorConfig,
                 tags_for: Callable[[str], Mapping[str, str]] | None = None,
                 on_valid: Callable[[protocol.Message], None] | None = None) -> None:
        """``tags_for(site)``: extra tags per point; default: the site's org path."""
        self.cfg = cfg
        self.counters = Counters()
        self.sink = InfluxSink(cfg.influxdb)
        # One HTTP session per thread that writes: requests does not promise
        # that a Session is thread-safe.
        self._drain_sink = InfluxSink(cfg.influxdb)
        self.spool = Spool(cfg.spool_dir)
        # Set when a thread cannot go on; the entry point then ends the process
        # with a non-zero exit so the service manager restarts it.
        self.failed = threading.Event()
        self.failure = ""
        self.ingest = Ingest(cfg.subscriber, self._handle, self.counters,
                             tags_for or cfg.org.tags_for, on_valid, on_fatal=self.fail)
        self.writer = Writer(self.sink.write, self.spool, self.ingest.ack, self.counters,
                             cfg.batch_size, cfg.flush_interval_s)
        self._accepting = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()
        self._encoder = LineEncoder()
        # Bound here, so a port in use fails at start-up (OSError), not later;
        # by the primary process only (extra workers would take the same port).
        self.speedserver = (SpeedServer(cfg.speedtest)
                            if cfg.speedtest.listen and cfg.primary else None)

    def start(self) -> None:
        try:
            self.sink.ensure_database()
        except SinkError as exc:
            # Not fatal: the spool holds data until InfluxDB is there.
            log.warning("%s; will spool until InfluxDB answers", exc)
        for name, target in (("writer", self.writer.run), ("spool", self._drain),
                             ("stats", self._stats)):
            t = threading.Thread(target=self._guarded, args=(name, target), name=name,
                                 daemon=True)
            t.start()
            self._threads.append(t)
        if self.cfg.org.sites and self.cfg.primary:
            t = threading.Thread(target=self._guarded, args=("compliance", self._comply),
                                 name="compliance", daemon=True)
            t.start()
            self._threads.append(t)
        if self.speedserver is not None:
            self.speedserver.start()
        self.ingest.start()

    def stop(self) -> None:
        """Stop taking messages, make what was taken durable, ack it, disconnect."""
        self._accepting = False  # later messages stay unacked: the broker keeps them
        self._stop.set()
        if self.speedserver is not None:
            self.speedserver.stop()
        for t in self._threads:
            t.join(timeout=30)
        self.ingest.stop()
        self.spool.close()
        self.sink.close()
        self._drain_sink.close()

    def fail(self, reason: str) -> None:
        """A part of the collector cannot go on: ask the process to end."""
        if not self.failed.is_set():
            self.failure = reason
            self.failed.set()

    def _guarded(self, name: str, target: Callable[[threading.Event], None]) -> None:
        # The one place a thread's unexpected exception is caught: it is
        # logged with its traceback and ends the process, never the thread alone.
        try:
            target(self._stop)
        except Exception as exc:  # logged, then the process ends
            log.critical("thread %s died: %s: %s", name, type(exc).__name__, exc, exc_info=True)
            self.fail(f"{name}: {type(exc).__name__}: {exc}")

    def _handle(self, entry: Entry) -> None:
        if self._accepting:
            self.writer.put(entry)

    def _drain(self, stop: threading.Event) -> None:
        self.spool.drain(self._drain_sink.write, stop)

    def _stats(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.stats_interval_s):
            self.write_stats()

    def _comply(self, stop: threading.Event) -> None:
        # Its own client: the writer's HTTP session is not shared across threads.
        sink = InfluxSink(self.cfg.influxdb)
        errors = RateLimitedLog(log, 600)
        try:
            while not stop.wait(self.cfg.org.evaluate_interval_s):
                try:
                    self.evaluate_now(reader(sink), errors)
                except SinkError as exc:
                    errors.log(logging.WARNING, "query", "compliance: cannot read InfluxDB, "
                               "retrying next period: %s", exc)
                except Exception:  # evaluation must outlive one bad period
                    log.exception("compliance: evaluation failed; retrying next period")
        finally:
            sink.close()

    def evaluate_now(self, read: Read, errors: RateLimitedLog | None = None
                     ) -> compliance.Evaluation:
        """Evaluate every site now and queue its ``compliance`` points (and the
        rooms' ``availability`` and ``room_state``)."""
        org = self.cfg.org
        snaps = snapshot.build(read, org, int(time.time() * 1000))
        ev = compliance.evaluate_all(org, snaps)
        lines = LineEncoder().lines([*writeback.compliance_points(ev, org),
                                     *writeback.availability_points(snaps, org)])
        self.writer.put(Entry(0, 0, lines))
        if ev.unregistered and errors is not None:
            errors.log(logging.WARNING, "unregistered", "%d hosts report sites not in the "
                       "sites tree, e.g. %s/%s", len(ev.unregistered),
                       ev.unregistered[0].site, ev.unregistered[0].host)
        return ev

    def stats_fields(self) -> dict[str, Any]:
        c = self.counters
        with c.lock:
            fields: dict[str, Any] = {
                "received": c.received,
                "invalid": sum(c.invalid.values()),
                "written": c.written + self.spool.drained,
                "spooled": c.spooled,
                "rejected": c.rejected + self.spool.rejected,
                "write_errors": c.write_errors,
                "spool_batches": len(self.spool),
                "uptime_s": round(time.time() - self.started_at, 3),
            }
            fields.update({f"invalid_{k}": v for k, v in c.invalid.items()})
        return fields

    def write_stats(self) -> None:
        """Queue a ``collector`` point; it travels like any message (no ack)."""
        p = Point(schema.SELF, {schema.SELF_TAG: self.cfg.client_id}, self.stats_fields(),
                  int(time.time() * 1000))
        self.writer.put(Entry(0, 0, [self._encoder.line(p)]))
