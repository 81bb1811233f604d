"""Wires the collector: ingest -> writer -> InfluxDB | spool, plus its own stats."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

from agent import protocol
from collector.config import CollectorConfig
from collector.influx import InfluxSink, SinkError
from collector.ingest import Counters, Entry, Ingest
from collector.points import LineEncoder, Point
from collector.spool import Spool
from collector.writer import Writer

log = logging.getLogger(__name__)


class Collector:
    """The running collector; start(), then stop() from any thread."""

    def __init__(self, cfg: CollectorConfig,
                 tags_for: Callable[[str], Mapping[str, str]] = lambda site: {},
                 on_valid: Callable[[protocol.Message], None] | None = None) -> None:
        self.cfg = cfg
        self.counters = Counters()
        self.sink = InfluxSink(cfg.influxdb)
        self.spool = Spool(cfg.spool_dir)
        self.ingest = Ingest(cfg, self._handle, self.counters, tags_for, on_valid)
        self.writer = Writer(self.sink.write, self.spool, self.ingest.ack, self.counters,
                             cfg.batch_size, cfg.flush_interval_s)
        self._accepting = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()
        self._encoder = LineEncoder()

    def start(self) -> None:
        try:
            self.sink.ensure_database()
        except SinkError as exc:
            # Not fatal: the spool holds data until InfluxDB is there.
            log.warning("%s; will spool until InfluxDB answers", exc)
        for name, target in (("writer", self.writer.run), ("spool", self._drain),
                             ("stats", self._stats)):
            t = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.ingest.start()

    def stop(self) -> None:
        """Stop taking messages, make what was taken durable, ack it, disconnect."""
        self._accepting = False  # later messages stay unacked: the broker keeps them
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.ingest.stop()
        self.spool.close()
        self.sink.close()

    def _handle(self, entry: Entry) -> None:
        if self._accepting:
            self.writer.put(entry)

    def _drain(self, stop: threading.Event) -> None:
        self.spool.drain(self.sink.write, stop)

    def _stats(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.stats_interval_s):
            self.write_stats()

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
        p = Point("collector", {"collector": self.cfg.client_id}, self.stats_fields(),
                  int(time.time() * 1000))
        self.writer.put(Entry(0, 0, [self._encoder.line(p)]))
