"""Writes the hardware changes the state found (collector/store/state/hardware.py)
to InfluxDB through the collector's write path, and seeds a new state's last
inventories from InfluxDB.

Its own thread: the writer's ack stage finds the changes (in the state's
transaction) and only wakes this thread, since queueing on the writer from
the ack stage could wait on itself when the queue is full. Each change goes
out as an ``inventory_change`` point in an entry whose facts
(records.ChangesWritten) delete it from the outbox once durable. A change put
on the writer is not put again by this process; after a restart, pending
ones are written again, which stores them once (same series, same time).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping

from collector.influx.client import InfluxSink, SinkError
from collector.influx.line import LineEncoder
from collector.influx.settings import InfluxConfig
from collector.ingest.entry import Entry
from collector.store.rows import reader
from collector.store.state import hardware
from collector.store.state import records as rec
from collector.store.state.db import StateDB
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

SWEEP_S = 60.0  # pending changes are looked for at least this often (and on a wake)
BATCH = 1000  # changes per entry
SEED_RETRY_S = 30.0  # between attempts to seed while InfluxDB does not answer


class ChangeLog:
    """``put(entry)``: the writer's put (blocks while its queue is full; False
    once closed); ``tags_for(site)``: the org path tags of a site's points;
    ``seed_from``: InfluxDB to seed a new state from.

    Runs in the primary process only: the outbox is in the state file all
    workers share, so the changes another worker finds go out at the next
    sweep (SWEEP_S), and no change is put by two processes."""

    def __init__(self, state_path: str, put: Callable[[Entry], bool],
                 tags_for: Callable[[str], Mapping[str, str]],
                 seed_from: InfluxConfig) -> None:
        self.state_path = state_path
        self.put = put
        self.tags_for = tags_for
        self.seed_from = seed_from
        self._due = threading.Event()
        self._sent: set[tuple[str, int, str, str]] = set()
        self._errors = RateLimitedLog(log, 600)

    def wake(self) -> None:
        """Changes may be pending (called by the ack stage after a batch with inventories)."""
        self._due.set()

    def run(self, stop: threading.Event) -> None:
        db = StateDB(self.state_path)
        sink = InfluxSink(self.seed_from)
        seeded = False
        next_sweep = next_seed = 0.0
        try:
            while not stop.is_set():
                if not seeded and time.monotonic() >= next_seed:
                    seeded = self._seed(db, sink)
                    next_seed = time.monotonic() + SEED_RETRY_S
                if self._due.is_set() or time.monotonic() >= next_sweep:
                    self._due.clear()
                    next_sweep = time.monotonic() + SWEEP_S
                    self.send(db)
                self._due.wait(0.5)
        finally:
            db.close()
            sink.close()

    def send(self, db: StateDB) -> int:
        """Put the pending changes not yet put on the writer; how many."""
        rows = hardware.pending(db.db, BATCH)
        keys = [hardware.key(r) for r in rows]
        self._sent &= set(keys)  # the rest are durable (deleted) by now
        todo = [(k, r) for k, r in zip(keys, rows) if k not in self._sent]
        if not todo:
            return 0
        lines = LineEncoder().lines([hardware.point(r, self.tags_for(str(r["site"])))
                                     for _, r in todo])
        done = rec.ChangesWritten(tuple(k for k, _ in todo))
        if self.put(Entry(0, 0, lines, facts=[done])):
            self._sent.update(done.keys)
            log.info("hardware changes: %d written", len(todo))
        return len(todo)

    def _seed(self, db: StateDB, sink: InfluxSink) -> bool:
        try:
            n = hardware.seed(db.db, reader(sink), int(time.time() * 1000))
        except SinkError as exc:
            self._errors.log(logging.WARNING, "seed", "hardware register: cannot read the "
                             "last inventories from InfluxDB, retrying: %s", exc)
            return False
        if n:
            log.info("hardware register: %d last inventories read from InfluxDB", n)
        return True
