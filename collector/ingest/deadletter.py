"""The dead-letter store: messages set aside, exactly as they arrived.

A message lands here, instead of InfluxDB, when it is invalid (the protocol
refuses it), cannot be encoded, or InfluxDB refuses its lines. Each letter
keeps the raw payload, its topic, the reason, InfluxDB's answer and the
refused lines, so an operator can see what happened (``netroom deadletter
list|show``), fix the cause and ``replay`` it, or ``purge`` it.

One SQLite file, fsync'd on every put (letters are acknowledged to the broker
once stored). It is bounded in bytes: beyond ``max_bytes`` the oldest letters
are deleted (counted in ``dropped`` and logged), so a PC sending garbage for
weeks cannot fill the disk.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Sequence

log = logging.getLogger(__name__)

FILENAME = "deadletter.sqlite"
_COLUMNS = "id, time_ms, reason, detail, topic, payload, lines"


class StoreError(Exception):
    """The store cannot be written (disk full, I/O error): do not acknowledge."""


@dataclass(frozen=True)
class Letter:
    """One message set aside. ``time_ms``: when (epoch ms); ``lines``: the
    line-protocol lines InfluxDB refused (empty for invalid messages)."""

    time_ms: int
    reason: str
    detail: str
    topic: str
    payload: bytes
    lines: tuple[str, ...] = ()
    id: int = 0

    @property
    def size(self) -> int:
        """Bytes stored, roughly."""
        return len(self.payload) + sum(len(line) + 1 for line in self.lines) + len(self.detail)


class DeadLetters:
    """Thread-safe; ``max_bytes`` 0 means unbounded."""

    def __init__(self, folder: str, max_bytes: int = 0) -> None:
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, FILENAME)
        self.max_bytes = max_bytes
        self.dropped = 0  # letters deleted to stay under max_bytes
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS letters (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " time_ms INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,"
                " topic TEXT NOT NULL, payload BLOB NOT NULL, lines TEXT NOT NULL,"
                " size INTEGER NOT NULL)")
            row = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM letters"
                                   ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"dead-letter store {self.path}: {exc}") from exc
        self._count, self._bytes = int(row[0]), int(row[1])

    def __len__(self) -> int:
        """Letters stored, as of this process's last put or trim."""
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def put(self, letters: Sequence[Letter]) -> None:
        """Store letters durably in one transaction; StoreError if impossible."""
        if not letters:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO letters (time_ms, reason, detail, topic, payload, lines, size)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(x.time_ms, x.reason, x.detail, x.topic, x.payload, "\n".join(x.lines),
                      x.size) for x in letters])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"dead-letter store {self.path}: {exc}") from exc
            self._count += len(letters)
            self._bytes += sum(x.size for x in letters)
            if self.max_bytes and self._bytes > self.max_bytes:
                self._trim()

    def _refresh(self) -> None:
        """Re-read count and size: `netroom deadletter purge|replay` delete
        rows from another process."""
        row = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM letters").fetchone()
        self._count, self._bytes = int(row[0]), int(row[1])

    def _trim(self) -> None:
        # Oldest first, down to 90 % of the bound so that not every later put
        # trims again; if the disk is too full even for that, the store stays
        # over its bound until the next put.
        try:
            self._refresh()
            if self._bytes <= self.max_bytes:
                return
            excess = self._bytes - self.max_bytes * 9 // 10
            ids, freed = [], 0
            for oid, size in self._db.execute("SELECT id, size FROM letters ORDER BY id"):
                if freed >= excess:
                    break
                ids.append(oid)
                freed += size
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM letters WHERE id = ?", [(i,) for i in ids])
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            log.warning("dead-letter store over %d bytes and cannot trim: %s", self.max_bytes, exc)
            return
        self._count -= len(ids)
        self._bytes -= freed
        self.dropped += len(ids)
        log.warning("dead-letter store full (%d bytes): deleted the %d oldest letters",
                    self.max_bytes, len(ids))

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction open: nothing to undo
            self._db.execute("ROLLBACK")

    def newest(self, limit: int = 100, reason: str = "") -> list[Letter]:
        """The newest ``limit`` letters (optionally of one reason), newest first."""
        q = f"SELECT {_COLUMNS} FROM letters"  # noqa: S608 - constants; values are bound
        args: list[Any] = []
        if reason:
            q += " WHERE reason = ?"
            args.append(reason)
        q += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [self._letter(r) for r in self._select(q, args)]

    def get(self, ids: Sequence[int]) -> list[Letter]:
        """The letters with these ids (missing ones left out), oldest first."""
        marks = ",".join("?" * len(ids))
        return [self._letter(r) for r in self._select(
            f"SELECT {_COLUMNS} FROM letters WHERE id IN ({marks}) ORDER BY id",  # noqa: S608
            list(ids))]

    def ids(self, reason: str = "") -> list[int]:
        """Every letter's id (optionally of one reason), oldest first."""
        if reason:
            rows = self._select("SELECT id FROM letters WHERE reason = ? ORDER BY id", [reason])
        else:
            rows = self._select("SELECT id FROM letters ORDER BY id", [])
        return [int(r[0]) for r in rows]

    def by_reason(self) -> dict[str, int]:
        return {str(r): int(n) for r, n in self._select(
            "SELECT reason, count(*) FROM letters GROUP BY reason ORDER BY reason", [])}

    def delete(self, ids: Sequence[int]) -> int:
        """Delete letters; return how many were there."""
        with self._lock:
            try:
                marks = ",".join("?" * len(ids))
                sizes = self._db.execute(
                    f"SELECT count(*), coalesce(sum(size), 0) FROM letters "  # noqa: S608
                    f"WHERE id IN ({marks})", list(ids)).fetchone()
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM letters WHERE id = ?", [(i,) for i in ids])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"dead-letter store {self.path}: {exc}") from exc
            self._count -= int(sizes[0])
            self._bytes -= int(sizes[1])
            return int(sizes[0])

    def _select(self, q: str, args: list[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(q, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"dead-letter store {self.path}: {exc}") from exc

    @staticmethod
    def _letter(r: Any) -> Letter:
        return Letter(id=int(r[0]), time_ms=int(r[1]), reason=r[2], detail=r[3], topic=r[4],
                      payload=bytes(r[5]), lines=tuple(r[6].split("\n")) if r[6] else ())

    def close(self) -> None:
        with self._lock:
            self._db.close()
