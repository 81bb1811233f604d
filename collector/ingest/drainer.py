"""Replays the spool to InfluxDB, oldest batch first, with backoff.

A batch leaves the spool only once its lines are in InfluxDB and the
messages InfluxDB refused are in the dead-letter store; until then it is
retried (writing a line twice stores it once).
"""
from __future__ import annotations

import logging
import threading
import time

from collector.influx.client import SinkError
from collector.ingest.deadletter import DeadLetters, Letter, StoreError
from collector.ingest.delivery import Delivery
from collector.ingest.entry import Counters, add
from collector.ingest.spool import Spool
from collector.ingest.writer import count, letters_for
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


class Drainer:
    def __init__(self, spool: Spool, delivery: Delivery, deadletters: DeadLetters,
                 counters: Counters, max_backoff_s: float = 10.0) -> None:
        self.spool = spool
        self.delivery = delivery
        self.deadletters = deadletters
        self.counters = counters
        self.max_backoff_s = max_backoff_s
        self.beat = time.monotonic()  # last loop turn (the watchdog reads it)
        self._errors = RateLimitedLog(log, 60)

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            self.beat = time.monotonic()
            if self._drain_one():
                backoff = 0.5
            elif len(self.spool):
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            else:
                stop.wait(0.5)

    def _drain_one(self) -> bool:
        """Replay the oldest batch; True if it left the spool."""
        now_ms = int(time.time() * 1000)
        try:
            oldest = self.spool.oldest()
        except (OSError, ValueError) as exc:
            # Unreadable batch (disk error, a hand-edited file): set its bytes
            # aside as they are, so the rest of the spool still drains.
            return self._set_aside_corrupt(exc, now_ms)
        if oldest is None:
            return False
        seq, entries = oldest
        try:
            outcome = self.delivery.deliver(entries)
        except SinkError as exc:
            with self.counters.lock:
                self.counters.write_errors += 1
            self._errors.log(logging.WARNING, "sink", "spool: %d batches wait; InfluxDB "
                             "still failing: %s", len(self.spool), exc)
            return False
        letters = letters_for(outcome, now_ms)
        try:
            self.deadletters.put(letters)
        except StoreError as exc:
            self._errors.log(logging.ERROR, "store", "spool: cannot set aside %d refused "
                             "messages, keeping the batch: %s", len(letters), exc)
            return False
        count(self.counters, outcome, letters)
        self.spool.delete(seq)
        return True

    def _set_aside_corrupt(self, exc: Exception, now_ms: int) -> bool:
        oldest = self.spool.oldest_raw()  # an OSError here ends the thread: disk broken
        if oldest is None:
            return False
        seq, raw = oldest
        try:
            self.deadletters.put([Letter(now_ms, "corrupt_spool", f"{type(exc).__name__}: "
                                         f"{exc}", "", raw)])
        except StoreError as err:
            self._errors.log(logging.ERROR, "store", "spool: unreadable batch %d and cannot "
                             "set it aside: %s", seq, err)
            return False
        log.error("spool: batch %d unreadable (%s): set aside as a dead letter", seq, exc)
        with self.counters.lock:
            add(self.counters.deadlettered, "corrupt_spool")
        self.spool.delete(seq)
        return True
