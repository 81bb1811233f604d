"""Batches entries, makes them durable, then acknowledges them.

Durable means: InfluxDB accepted the lines, or the batch is in the fsync'd
spool, or (for a message set aside) it is in the dead-letter store. While the
spool holds anything, new batches go to the spool too, so a slow or hung
InfluxDB costs one timeout, not one per batch.

A durable batch is applied to the collector's state (``on_durable``) and
acknowledged on a thread of its own while the next batch is written: one
batch there at a time, in order.

When nothing can take a batch (InfluxDB down and the spool full or its disk
full), the writer keeps the batch, says so once a minute, and retries: no
ack goes out, the bounded queue fills, ``put`` blocks the MQTT thread, and
the broker keeps the rest (its session, then MQTT flow control). It resumes
by itself when InfluxDB answers or space returns.
"""
from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from collector.influx.client import SinkError
from collector.ingest.deadletter import DeadLetters, Letter, StoreError
from collector.ingest.delivery import Delivery, Outcome
from collector.ingest.entry import Counters, Entry, add
from collector.ingest.spool import Spool, SpoolFull
from collector.ingest.stage import Stage
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

RETRY_S = 1.0  # between attempts while a batch cannot be made durable
STALL_LOG_S = 60.0  # one line per minute while stalled


class NotDurable(Exception):
    """No sink can take the batch now (or ``on_durable`` cannot record it:
    the state's disk is full); keep it unacknowledged and retry."""


def letters_for(outcome: Outcome, now_ms: int) -> list[Letter]:
    """Dead letters for the messages InfluxDB refused."""
    return [Letter(now_ms, r.reason, r.detail, r.entry.topic, r.entry.payload, tuple(r.lines))
            for r in outcome.refused]


def count(counters: Counters, outcome: Outcome, letters: list[Letter]) -> None:
    with counters.lock:
        counters.written += outcome.written
        counters.rejected += outcome.rejected
        for x in letters:
            add(counters.deadlettered, x.reason)


@dataclass
class _Pending:
    """A batch on its way; what is done is not redone on retry."""

    entries: list[Entry]
    outcome: Outcome | None = None
    letters: list[Letter] = field(default_factory=list)


class Writer:
    def __init__(self, delivery: Delivery, spool: Spool, deadletters: DeadLetters,
                 ack: Callable[[Entry], None], counters: Counters,
                 batch_size: int, flush_interval_s: float, max_queue_bytes: int, *,
                 on_durable: Callable[[list[Entry]], None] | None = None) -> None:
        """``on_durable(entries)``: called with each batch's entries once they
        are durable (written to InfluxDB or spooled), before any of them is
        acknowledged: every entry not set aside (dead letters, lines InfluxDB
        refused, are not passed). It and the acks run on a thread of their own
        ("writer-ack", collector/ingest/stage.py), one batch at a time and in
        order, while the writer writes the next batch. If it raises NotDurable,
        the acks wait and it is called again, as a batch no sink takes is
        retried (``stalled``). If it raises anything else, the writer thread
        fails with it (the process ends) and the batch stays unacknowledged:
        the broker sends it again, so it may see an entry twice."""
        self.delivery = delivery
        self.spool = spool
        self.deadletters = deadletters
        self.ack = ack
        self.on_durable = on_durable
        self.counters = counters
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue_bytes = max_queue_bytes
        self.stalled = ""  # why the current batch cannot be made durable; "" if fine
        self.beat = time.monotonic()  # last loop turn (the watchdog reads it)
        self._stop = threading.Event()  # run()'s: ends a stall of the ack stage too
        self._queue: collections.deque[Entry] = collections.deque()
        # When the queue last went from empty to not: no queued entry is older.
        self._since = time.monotonic()
        self._bytes = 0  # entries queued or in flight, until acked
        self._cond = threading.Condition()
        self._closed = False
        self._errors = RateLimitedLog(log, 60)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, entry: Entry) -> bool:
        """Queue an entry; block while the queue is full (backpressure).

        False when the writer was closed meanwhile: the entry was not taken
        (left unacknowledged, the broker sends it again).
        """
        return self.put_many([entry])

    def put_many(self, entries: list[Entry]) -> bool:
        """Queue entries, in order, taking the lock and waking the writer once
        for all of them while the queue has room; block while it is full, so
        it exceeds its bound by one entry at most, as with ``put``.

        False when the writer was closed meanwhile: the entries from there on
        were not taken (left unacknowledged, the broker sends them again).
        """
        i, n = 0, len(entries)
        with self._cond:
            while i < n:
                while self._bytes >= self.max_queue_bytes and not self._closed:
                    self._cond.wait(0.5)
                if self._closed:
                    return False
                before = len(self._queue)
                if not before:
                    self._since = time.monotonic()
                while i < n and self._bytes < self.max_queue_bytes:
                    e = entries[i]
                    self._queue.append(e)
                    self._bytes += e.size
                    i += 1
                # Wake the writer only when it waits for a first entry or a full
                # batch: a wake-up per message costs more CPU than the message.
                if (before == 0 or before < self.batch_size <= len(self._queue)
                        or self._bytes >= self.max_queue_bytes):
                    self._cond.notify_all()
        return True

    def close(self) -> None:
        """Refuse further puts (and wake blocked ones)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def run(self, stop: threading.Event) -> None:
        """Flush batches until ``stop``; then flush what is queued and return.

        At stop, a batch that cannot be made durable is left unacknowledged.
        """
        self._stop = stop
        # Applying to the state and acking one batch overlaps the next write.
        finishing: Stage[_Pending] = Stage(self._finish, "writer-ack")
        try:
            while True:
                self.beat = time.monotonic()
                finishing.check()  # on_durable raised: the writer fails with it
                batch = self._collect(stop)
                if batch:
                    p = _Pending(batch)
                    if not self._until_durable(functools.partial(self._flush, p), len(p.entries)):
                        return
                    finishing.put(p)
                elif stop.is_set():
                    return
        finally:
            finishing.close()

    def _collect(self, stop: threading.Event) -> list[Entry]:
        """Up to batch_size entries, waiting at most flush_interval for more."""
        deadline = time.monotonic() + 0.2
        with self._cond:
            while not self._queue:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return []
                self._cond.wait(timeout)
            if not stop.is_set():
                # flush_interval counts from the oldest entry's arrival (or
                # earlier), not from now: what queued during a slow write goes
                # at once, so under load batches grow by themselves and the
                # writer never idles while entries wait.
                deadline = self._since + self.flush_interval_s
                while len(self._queue) < self.batch_size and self._bytes < self.max_queue_bytes:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    self._cond.wait(timeout)
            n = min(len(self._queue), self.batch_size)
            return [self._queue.popleft() for _ in range(n)]

    def _until_durable(self, step: Callable[[], None], n: int) -> bool:
        """Run ``step`` until it no longer raises NotDurable (False: stopped
        first); a stall is logged, shown in ``stalled``, and keeps the beat."""
        last_log = 0.0
        while True:
            try:
                step()
            except NotDurable as exc:
                # Said before it shows in `stalled`: whoever sees the flag finds the line.
                if time.monotonic() - last_log >= STALL_LOG_S:
                    last_log = time.monotonic()
                    log.error("cannot make %d messages durable, not acknowledging them "
                              "(the broker keeps them): %s", n, exc)
                self.stalled = str(exc)
                if self._stop.wait(RETRY_S):
                    return False
                self.beat = time.monotonic()
                continue
            if self.stalled:
                log.warning("writing again after a stall: %s", self.stalled)
                self.stalled = ""
            break
        return True

    def _finish(self, p: _Pending) -> None:
        """A durable batch: on_durable, then its acks."""
        if self.on_durable is not None:
            refused = {id(r.entry) for r in p.outcome.refused} if p.outcome else set()
            done = [e for e in p.entries if e.lines and not e.reason and id(e) not in refused]
            if not self._until_durable(functools.partial(self.on_durable, done), len(p.entries)):
                return  # stopped while stalled: the batch stays unacknowledged
        with self._cond:
            self._bytes -= sum(e.size for e in p.entries)
            self._cond.notify_all()
        for e in p.entries:
            self.ack(e)

    def _flush(self, p: _Pending) -> None:
        now_ms = int(time.time() * 1000)
        if p.outcome is None:
            todo = [e for e in p.entries if e.lines and not e.reason]
            p.outcome = self._make_durable(todo)
            p.letters = [Letter(now_ms, e.reason, e.detail, e.topic, e.payload, tuple(e.lines))
                         for e in p.entries if e.reason]
            p.letters += letters_for(p.outcome, now_ms)
        try:
            self.deadletters.put(p.letters)
        except StoreError as exc:
            raise NotDurable(str(exc)) from exc
        count(self.counters, p.outcome, p.letters)

    def _make_durable(self, todo: list[Entry]) -> Outcome:
        if not todo:
            return Outcome()
        if not len(self.spool):
            try:
                return self.delivery.deliver(todo)
            except SinkError as exc:
                with self.counters.lock:
                    self.counters.write_errors += 1
                self._errors.log(logging.WARNING, "sink",
                                 "InfluxDB write failed, spooling to disk: %s", exc)
        try:
            self.spool.put(todo)
        except SpoolFull as full:
            # Maybe InfluxDB is back and the drainer has not caught up yet.
            try:
                return self.delivery.deliver(todo)
            except SinkError as exc:
                raise NotDurable(f"{full}; and InfluxDB: {exc}") from exc
        with self.counters.lock:
            self.counters.spooled += sum(len(e.lines) for e in todo)
        return Outcome()
