"""Wires the collector: ingest -> writer -> InfluxDB | spool | dead letters, the
spool's drainer, its own stats, the systemd watchdog, the periodic
compliance evaluation of every site, and the agents' settings (publish.py)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from collector import passes
from collector.changelog import ChangeLog
from collector.compliance import evaluate as compliance
from collector.compliance.rules import room_open_all_day
from collector.config import CollectorConfig
from collector.influx import retention
from collector.influx.client import InfluxSink, Rejected, SinkError, TooLarge
from collector.influx.line import LineEncoder, Point
from collector.ingest.deadletter import DeadLetters
from collector.ingest.delivery import Delivery
from collector.ingest.drainer import Drainer
from collector.ingest.entry import Counters, Entry
from collector.ingest.spool import Spool
from collector.ingest.subscriber import Ingest
from collector.ingest.writer import NotDurable, Writer
from collector.publish import SettingsPublisher, settings_login
from collector.speedtest.server import SpeedServer
from collector.store.rows import Read, reader
from collector.store.state import rebuild
from collector.store.state import records as state_records
from collector.store.state.db import StateDB, StateError, path_in
from collector.watchdog import Notifier
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
        # The collector's own stats go straight to InfluxDB, never behind the
        # spool or a stalled batch: they are how a stall shows.
        self._stats_sink = InfluxSink(cfg.influxdb)
        self._stats_lock = threading.Lock()
        self.spool = Spool(cfg.spool_dir, cfg.spool_max_bytes, cfg.spool_min_free_bytes)
        self.deadletters = DeadLetters(cfg.spool_dir, cfg.deadletter_max_bytes)
        # Set when a thread cannot go on; the entry point then ends the process
        # with a non-zero exit so the service manager restarts it.
        self.failed = threading.Event()
        self.failure = ""
        # The state the rules read (collector/store/state/): the writer's ack
        # stage (collector/ingest/stage.py) applies each durable batch's
        # records before acking it; the
        # evaluation reads on its own connection, one pass at a time.
        self.state_path = path_in(cfg.state_dir or cfg.spool_dir)
        self.state = StateDB(self.state_path, self._missing_of())
        self._eval_state = StateDB(self.state_path, self._missing_of())
        self._eval_lock = threading.Lock()
        self.ingest = Ingest(cfg.subscriber, self._handle, self.counters,
                             tags_for or cfg.org.tags_for, on_valid, on_fatal=self.fail,
                             facts_of=state_records.record_of,
                             handle_many=self._handle_many)
        self.writer = Writer(Delivery(self.sink.write, cfg.max_body_bytes), self.spool,
                             self.deadletters, self.ingest.ack, self.counters,
                             cfg.batch_size, cfg.flush_interval_s, cfg.queue_max_bytes,
                             on_durable=self._durable)
        # Hardware changes the state finds, written through the writer (changelog.py).
        self.changelog = ChangeLog(self.state_path, self._handle, self.ingest.tags_for,
                                   cfg.influxdb)
        self.drainer = Drainer(self.spool, Delivery(self._drain_sink.write, cfg.max_body_bytes),
                               self.deadletters, self.counters)
        # Only the main process talks to systemd (NotifyAccess=main); extra
        # workers are watched by the Supervisor, which restarts them.
        self.notifier = Notifier() if cfg.primary else Notifier({})
        self._accepting = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()
        self._encoder = LineEncoder()
        self._stats_errors = RateLimitedLog(log, 600)
        # Bound here, so a port in use fails at start-up (OSError), not later;
        # by the primary process only (extra workers would take the same port).
        self.speedserver = (SpeedServer(cfg.speedtest)
                            if cfg.speedtest.listen and cfg.primary else None)
        # The agents' settings from the `sites` tree (docs/settings.md), by the
        # primary process only, on a connection of its own.
        self.settings = (SettingsPublisher(settings_login(cfg.mqtt, cfg.workers),
                                           f"{cfg.client_id}-settings", cfg.org)
                         if cfg.primary and cfg.org.sites else None)

    def start(self) -> None:
        try:
            self.sink.ensure_database()
        except SinkError as exc:
            # Not fatal: the spool holds data until InfluxDB is there.
            log.warning("%s; will spool until InfluxDB answers", exc)
        threads: list[tuple[str, Callable[[threading.Event], None]]] = [
            ("writer", self.writer.run), ("spool", self.drainer.run), ("stats", self._stats)]
        if self.cfg.primary:  # the hardware changes' one writer (changelog.py)
            threads.append(("changes", self.changelog.run))
        if self.cfg.org.sites and self.cfg.primary:
            threads.append(("compliance", self._comply))
        if self.notifier.enabled:
            threads.append(("watchdog", self._watchdog))
        if self.cfg.primary:
            # Retention policies and roll-ups (docs/operations.md); retried in
            # the background while InfluxDB is down, so start never waits.
            threads.append(("retention", self._retention))
        for name, target in threads:
            t = threading.Thread(target=self._guarded, args=(name, target), name=name,
                                 daemon=True)
            t.start()
            self._threads.append(t)
        if self.speedserver is not None:
            self.speedserver.start()
        self.ingest.start()
        if self.settings is not None:
            self.settings.start()
        self.notifier.notify("READY=1", "STATUS=collecting")

    def login_refused(self, timeout_s: float) -> str:
        """Wait up to ``timeout_s`` for the broker's first answer; why it refused
        the login or the subscription ("" when it took them, or has not
        answered: the broker keeps the agents' messages until it does)."""
        ingest = self.ingest
        if not ingest.answered.wait(timeout_s):
            log.warning("the broker %s:%s has not answered within %g s; still trying",
                        self.cfg.mqtt.host, self.cfg.mqtt.port, timeout_s)
        return ingest.refused

    def stop(self) -> None:
        """Stop taking messages, make what was taken durable, ack it, disconnect."""
        self._accepting = False  # later messages stay unacked: the broker keeps them
        self.notifier.notify("STOPPING=1")
        self.writer.close()
        self._stop.set()
        if self.speedserver is not None:
            self.speedserver.stop()
        for t in self._threads:
            t.join(timeout=30)
        if self.settings is not None:
            self.settings.stop()
        self.ingest.stop()
        self.spool.close()
        self.deadletters.close()
        self.state.close()
        self._eval_state.close()
        self.sink.close()
        self._drain_sink.close()
        self._stats_sink.close()

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

    def _retention(self, stop: threading.Event) -> None:
        org = self.cfg.org
        levels = org.level_tags()
        retention.keep(self.cfg.influxdb, levels, stop)

    def _handle(self, entry: Entry) -> bool:
        return self._accepting and self.writer.put(entry)

    def _handle_many(self, entries: list[Entry]) -> bool:
        return self._accepting and self.writer.put_many(entries)

    def _missing_of(self) -> Callable[[str], float]:
        """Each site's room_open_all_day.missing_intervals (the default for others)."""
        org = self.cfg.org
        default = float(room_open_all_day.DEFAULTS["missing_intervals"])
        known = {s.id: float(room_open_all_day.site_params(org, s)["missing_intervals"])
                 for s in org.sites}
        return lambda site: known.get(site, default)

    def _durable(self, entries: list[Entry]) -> None:
        records: list[Any] = []
        for e in entries:
            if isinstance(e.facts, list):
                records.extend(e.facts)
            elif e.facts is not None:
                records.append(e.facts)
        self._apply(records)
        if any(isinstance(r, state_records.Inventory) for r in records):
            self.changelog.wake()  # the state may have found hardware changes

    def _apply(self, records: list[Any]) -> None:
        """Apply a durable batch's records to the state before its acks. A full
        disk under the state is the writer's stall, as a full spool is (the
        broker keeps the messages until space is freed); any other state
        error ends the writer with the batch unacknowledged."""
        try:
            self.state.apply(records)
        except StateError as exc:
            if exc.full:
                raise NotDurable(str(exc)) from exc
            raise

    def _stats(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.stats_interval_s):
            self.write_stats()

    def stuck(self) -> list[str]:
        """Threads that have not turned within the watchdog period plus the
        longest legitimate wait for InfluxDB (a write, and a second one after
        the spool refused, each up to influxdb.timeout_s, after a flush interval)."""
        limit = ((self.notifier.watchdog_s or 60.0) + 2 * self.cfg.influxdb.timeout_s
                 + self.cfg.flush_interval_s)
        now = time.monotonic()
        return [name for name, beat in (("writer", self.writer.beat),
                                        ("spool", self.drainer.beat))
                if now - beat > limit]

    def _watchdog(self, stop: threading.Event) -> None:
        # Half the period, as sd_watchdog_enabled(3) advises.
        interval = self.notifier.watchdog_s / 2 if self.notifier.watchdog_s else 10.0
        while not stop.wait(interval):
            stuck = self.stuck()
            if stuck:
                log.error("threads not turning: %s; not pinging the watchdog",
                          ", ".join(stuck))
                self.notifier.notify(f"STATUS=stuck: {', '.join(stuck)}")
                continue
            status = f"stalled: {self.writer.stalled}" if self.writer.stalled else "collecting"
            self.notifier.notify("WATCHDOG=1", f"STATUS={status[:200]}")

    def _comply(self, stop: threading.Event) -> None:
        # Its own client: the writer's HTTP session is not shared across threads.
        sink = InfluxSink(self.cfg.influxdb)
        errors = RateLimitedLog(log, 600)
        try:
            # A missing state is rebuilt at once; the first pass waits a period,
            # so that what the broker kept while the collector was away lands
            # before a day is judged and stored.
            self._rebuild(reader(sink), errors)
            while not stop.wait(self.cfg.org.evaluate_interval_s):
                try:
                    self.evaluate_now(reader(sink), errors)
                except SinkError as exc:
                    errors.log(logging.WARNING, "query", "compliance: cannot read InfluxDB "
                               "to rebuild the state, retrying next period: %s", exc)
                except Exception:  # evaluation must outlive one bad period
                    log.exception("compliance: evaluation failed; retrying next period")
        finally:
            sink.close()

    def _rebuild(self, read: Read, errors: RateLimitedLog) -> None:
        try:
            with self._eval_lock:
                self._ensure_state(read)
        except SinkError as exc:
            errors.log(logging.WARNING, "query", "compliance: cannot read InfluxDB to rebuild "
                       "the state, retrying at the next pass: %s", exc)
        except Exception:  # the evaluation tries again each pass
            log.exception("compliance: cannot rebuild the state; retrying at the next pass")

    def _ensure_state(self, read: Read) -> bool:
        """Rebuild a missing state from InfluxDB; False while that must wait.

        Spooled batches are not in InfluxDB yet (nor in a new state file): the
        rebuild waits until the spool is drained, or they would never be read.
        """
        if self._eval_state.complete:
            return True
        if len(self.spool):
            log.warning("state: rebuild from InfluxDB waits for the spool to drain "
                        "(%d batches)", len(self.spool))
            return False
        rebuild.rebuild(self._eval_state, read, self.cfg.org, int(time.time() * 1000))
        return True

    def evaluate_now(self, read: Read, errors: RateLimitedLog | None = None
                     ) -> compliance.Evaluation:
        """Evaluate every site now from the state (rebuilt first through ``read``
        if it is incomplete) and queue its ``compliance`` and ``unit_compliance``
        points (and the rooms' ``availability`` and ``room_state``)."""
        org = self.cfg.org
        with self._eval_lock:
            if not self._ensure_state(read):
                raise SinkError("the state is being rebuilt once the spool has drained")
            upto = self._eval_state.late_upto()  # the late marks this pass accounts for
            snaps = passes.snapshots(self._eval_state, org, int(time.time() * 1000))
        ev, lines, days = passes.outcome(org, snaps)
        # The days written are read back from the state once they are durable,
        # and the late marks they account for cleared with them.
        facts: list[Any] = [*days, state_records.LateSeen(upto)] if upto else list(days)
        self.writer.put(Entry(0, 0, lines, facts=facts))  # blocks while the queue is full
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
                "written": c.written,
                "spooled": c.spooled,
                "rejected": c.rejected,
                "deadlettered": sum(c.deadlettered.values()),
                "write_errors": c.write_errors,
                "clock_skew": c.clock_skew,
            }
            fields.update({f"invalid_{k}": v for k, v in c.invalid.items()})
            fields.update({f"deadlettered_{k}": v for k, v in c.deadlettered.items()})
        fields.update({
            "spool_batches": len(self.spool),
            "spool_bytes": self.spool.size_bytes,
            "queue_bytes": self.writer.queued_bytes,
            "deadletters_stored": len(self.deadletters),
            "deadletters_dropped": self.deadletters.dropped,
            "stalled": bool(self.writer.stalled),
            "uptime_s": round(time.time() - self.started_at, 3),
        })
        return fields

    def write_stats(self) -> None:
        """Write a ``collector`` point straight to InfluxDB (lost if it is down:
        these are a liveness signal, not data)."""
        p = Point(schema.SELF, {schema.SELF_TAG: self.cfg.client_id}, self.stats_fields(),
                  int(time.time() * 1000))
        with self._stats_lock:
            try:
                self._stats_sink.write([self._encoder.line(p)])
            except (SinkError, Rejected, TooLarge) as exc:
                self._stats_errors.log(logging.WARNING, "stats",
                                       "cannot write the collector's stats: %s", exc)
