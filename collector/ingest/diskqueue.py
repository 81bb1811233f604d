"""A durable FIFO of byte strings in one SQLite file.

The agent's outbox (samples not yet acknowledged by the broker) and the
collector's spool (points not yet in InfluxDB) are both this: what is put
here survives a crash of the process, so acknowledging upstream is safe.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Iterable, Sequence

log = logging.getLogger(__name__)


class DiskQueue:
    """FIFO of blobs; thread-safe; ``max_items`` drops the oldest beyond it.

    ``fsync=True`` makes every put() survive power loss, not only a crash of
    this process (SQLite WAL with synchronous=FULL); it costs one fsync per
    put(), so callers put whole batches.
    """

    def __init__(self, path: str, max_items: int = 0, fsync: bool = False) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.max_items = max_items
        self.dropped = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS q"
            " (id INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL)"
        )
        self._count = self._db.execute("SELECT count(*) FROM q").fetchone()[0]

    def __len__(self) -> int:
        return int(self._count)

    def put(self, items: Iterable[bytes]) -> list[int]:
        """Append items in one transaction; return their ids in order."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            ids = []
            for item in items:
                cur.execute("INSERT INTO q (item) VALUES (?)", (item,))
                ids.append(int(cur.lastrowid or 0))
            self._count += len(ids)
            excess = self._count - self.max_items if self.max_items else 0
            if excess > 0:
                cur.execute(
                    "DELETE FROM q WHERE id IN (SELECT id FROM q ORDER BY id LIMIT ?)", (excess,)
                )
                self._count -= excess
                self.dropped += excess
                log.warning("%s: full at %d items, dropped the %d oldest",
                            self.path, self.max_items, excess)
            cur.execute("COMMIT")
            return ids

    def peek(self, limit: int, after: int = 0) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` items with id > ``after``, without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, item FROM q WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [(int(i), bytes(b)) for i, b in rows]

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            cur.executemany("DELETE FROM q WHERE id = ?", [(i,) for i in ids])
            # executemany's rowcount is the sum over all statements.
            self._count -= max(cur.rowcount, 0)
            cur.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
