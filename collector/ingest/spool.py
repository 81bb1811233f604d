"""Durable buffer between ingest and InfluxDB.

When InfluxDB cannot take a batch, the batch is written here (fsync'd) so the
MQTT messages can still be acknowledged; a drainer thread replays it to
InfluxDB with backoff. What is here survives SIGKILL and power loss.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from collector.influx.client import Rejected, SinkError
from collector.ingest.diskqueue import DiskQueue

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, spool_dir: str) -> None:
        self.queue = DiskQueue(os.path.join(spool_dir, "spool.sqlite"), fsync=True)
        self.drained = 0  # lines written from the spool to InfluxDB
        self.rejected = 0  # lines InfluxDB refused for good (400)

    def __len__(self) -> int:
        """Batches waiting."""
        return len(self.queue)

    def put(self, lines: list[str]) -> None:
        self.queue.put(["\n".join(lines).encode()])

    def drain(self, write: Callable[[list[str]], None], stop: threading.Event,
              max_backoff_s: float = 30.0) -> None:
        """Replay batches oldest first until ``stop``; back off while failing."""
        backoff = 0.5
        while not stop.is_set():
            batch = self.queue.peek(1)
            if not batch:
                stop.wait(0.5)
                continue
            oid, blob = batch[0]
            lines = blob.decode().split("\n")
            try:
                write(lines)
                self.drained += len(lines)
            except Rejected as exc:
                self.rejected += len(lines)
                log.error("InfluxDB rejected a spooled batch of %d lines, dropping it: %s",
                          len(lines), exc)
            except SinkError as exc:
                log.warning("spool: %d batches wait; InfluxDB still failing: %s",
                            len(self.queue), exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            self.queue.delete([oid])
            backoff = 0.5

    def close(self) -> None:
        self.queue.close()
