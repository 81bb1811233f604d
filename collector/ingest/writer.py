"""Batches entries, makes them durable, then acknowledges them.

Durable means: InfluxDB answered 204 to the batch, or the batch is in the
fsync'd spool. While the spool holds anything, new batches go to the spool
too, so a slow or hung InfluxDB costs one timeout, not one per batch.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from collector.influx.client import Rejected, SinkError
from collector.ingest.spool import Spool
from collector.ingest.subscriber import Counters, Entry
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


class Writer:
    def __init__(self, write: Callable[[list[str]], None], spool: Spool,
                 ack: Callable[[int, int], None], counters: Counters,
                 batch_size: int, flush_interval_s: float) -> None:
        self.write = write
        self.spool = spool
        self.ack = ack
        self.counters = counters
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.queue: queue.SimpleQueue[Entry] = queue.SimpleQueue()
        self._errors = RateLimitedLog(log, 30)

    def put(self, entry: Entry) -> None:
        self.queue.put(entry)

    def run(self, stop: threading.Event) -> None:
        """Flush batches until ``stop``; then flush what is queued and return."""
        while True:
            batch = self._collect(stop)
            if batch:
                self._flush(batch)
            elif stop.is_set():
                return

    def _collect(self, stop: threading.Event) -> list[Entry]:
        """Up to batch_size entries, waiting at most flush_interval for more."""
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + (0 if stop.is_set() else self.flush_interval_s)
        while len(batch) < self.batch_size:
            timeout = deadline - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=timeout) if timeout > 0
                             else self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _flush(self, batch: list[Entry]) -> None:
        lines = [line for e in batch for line in e.lines]
        self._make_durable(lines)
        for e in batch:
            self.ack(e.mid, e.qos)

    def _make_durable(self, lines: list[str]) -> None:
        if not lines:
            return
        if not len(self.spool):
            try:
                self.write(lines)
                with self.counters.lock:
                    self.counters.written += len(lines)
                return
            except Rejected as exc:
                # 400 is about the points, not the server: InfluxDB 1.x still
                # wrote the good ones of the batch (partial write).
                with self.counters.lock:
                    self.counters.rejected += len(lines)
                self._errors.log(logging.ERROR, "rejected", "InfluxDB rejected points: %s", exc)
                return
            except SinkError as exc:
                with self.counters.lock:
                    self.counters.write_errors += 1
                self._errors.log(logging.WARNING, "sink",
                                 "InfluxDB write failed, spooling to disk: %s", exc)
        self.spool.put(lines)
        with self.counters.lock:
            self.counters.spooled += len(lines)
