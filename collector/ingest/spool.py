"""Durable buffer between ingest and InfluxDB: one fsync'd file per batch.

When InfluxDB cannot take a batch, the batch is written here so the MQTT
messages can still be acknowledged; a drainer thread replays it, oldest
first, with backoff. What is here survives SIGKILL and power loss (file and
folder fsync'd before the ack).

Files, not a database, because a full disk must never wedge it: a write that
meets ENOSPC leaves nothing behind (the temporary file is removed), and
deleting a drained batch is an unlink, which frees space even on a full disk
(SQLite's DELETE needs journal space first). The spool is bounded by
``max_bytes`` and keeps ``min_free_bytes`` free on its filesystem; when it
cannot take a batch it raises ``SpoolFull`` and the writer stops
acknowledging until it can.

A batch file holds one JSON array per line and message: ``[topic, payload,
lines]``; the raw payload travels along so a message InfluxDB later refuses
can be dead-lettered exactly as it arrived.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from typing import Iterable, Iterator

from collector.ingest.entry import Entry
from netroom.durable import fsync_dir

log = logging.getLogger(__name__)

SUFFIX = ".batch"
LEGACY_SQLITE = "spool.sqlite"  # the spool of netroom <= 0.8, imported at start



def default_spool_dir() -> str:
    # systemd's StateDirectory= sets this (deploy/systemd/netroom-collector.service).
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/netroom/spool"
    return os.path.join(os.path.expanduser("~"), ".local", "state", "netroom", "spool")

class SpoolFull(OSError):
    """The spool cannot take a batch now (bound reached, disk full, I/O error)."""


class Spool:
    """Thread-safe FIFO of batches of entries."""

    def __init__(self, folder: str, max_bytes: int = 0, min_free_bytes: int = 0) -> None:
        self.folder = os.path.join(folder, "batches")
        os.makedirs(self.folder, exist_ok=True)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._lock = threading.Lock()
        self._files: dict[int, int] = {}  # seq -> bytes, oldest first
        for name in sorted(os.listdir(self.folder)):
            stem, ext = os.path.splitext(name)
            path = os.path.join(self.folder, name)
            if ext == SUFFIX and stem.isdigit():
                self._files[int(stem)] = os.path.getsize(path)
            elif ext == ".tmp":  # cut short by a crash: never acknowledged
                os.unlink(path)
        self._next = max(self._files, default=0) + 1
        self._import_legacy(os.path.join(folder, LEGACY_SQLITE))

    def __len__(self) -> int:
        """Batches waiting."""
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return sum(self._files.values())

    def _path(self, seq: int) -> str:
        return os.path.join(self.folder, f"{seq:016d}{SUFFIX}")

    def put(self, entries: list[Entry]) -> None:
        """Append one batch durably, or raise SpoolFull (nothing written)."""
        data = b"".join(encode(e) for e in entries if e.lines)
        if not data:
            return
        with self._lock:
            self._check_room(len(data))
            seq = self._next
            tmp = self._path(seq) + ".tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self._path(seq))
                fsync_dir(self.folder)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise SpoolFull(f"spool {self.folder}: {exc.strerror or exc}") from exc
            self._next += 1
            self._files[seq] = len(data)

    def _check_room(self, n: int) -> None:
        if self.max_bytes and self.size_bytes + n > self.max_bytes:
            raise SpoolFull(f"spool {self.folder} holds {self.size_bytes} bytes, "
                            f"its bound is {self.max_bytes} (collector.spool_max_bytes)")
        try:
            st = os.statvfs(self.folder)
        except OSError as exc:
            raise SpoolFull(f"spool {self.folder}: {exc.strerror or exc}") from exc
        free = st.f_bavail * st.f_frsize
        if free - n < self.min_free_bytes:
            raise SpoolFull(f"spool {self.folder}: disk full ({free} bytes free, "
                            f"keeping {self.min_free_bytes})")

    def oldest(self) -> tuple[int, list[Entry]] | None:
        """The oldest batch (its id and entries), left in place; None if empty.

        OSError or ValueError: the batch cannot be read or parsed.
        """
        raw = self.oldest_raw()
        return None if raw is None else (raw[0], list(decode(raw[1].splitlines())))

    def oldest_raw(self) -> tuple[int, bytes] | None:
        """The oldest batch's id and bytes, left in place; None if empty."""
        with self._lock:
            seq = next(iter(self._files), None)
        if seq is None:
            return None
        with open(self._path(seq), "rb") as fh:
            return seq, fh.read()

    def delete(self, seq: int) -> None:
        with self._lock:
            if self._files.pop(seq, None) is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(seq))

    def _import_legacy(self, path: str) -> None:
        """Move batches of the old SQLite spool here, then remove it."""
        if not os.path.exists(path):
            return
        db = sqlite3.connect(path)
        try:
            rows = db.execute("SELECT item FROM q ORDER BY id").fetchall()
        finally:
            db.close()
        # Not bounded: these were acknowledged long ago and must not be lost.
        # A full disk (SpoolFull, an OSError) ends the start with one line; the
        # old file stays, and batches imported twice store their lines once.
        max_bytes, min_free = self.max_bytes, self.min_free_bytes
        self.max_bytes = self.min_free_bytes = 0
        try:
            for (blob,) in rows:
                self.put([Entry(0, 0, bytes(blob).decode().split("\n"))])
        finally:
            self.max_bytes, self.min_free_bytes = max_bytes, min_free
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
        log.info("imported %d batches from the old spool %s", len(rows), path)

    def close(self) -> None:
        """Nothing to release: every batch is a closed file."""


def encode(e: Entry) -> bytes:
    # ASCII JSON: whatever the payload's bytes, the file is valid UTF-8 and
    # the bytes come back exactly (surrogateescape round-trips invalid ones).
    payload = e.payload.decode("utf-8", "surrogateescape")
    return json.dumps([e.topic, payload, e.lines]).encode() + b"\n"


def decode(lines: Iterable[bytes]) -> Iterator[Entry]:
    for raw in lines:
        item = json.loads(raw)
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], str) and isinstance(item[2], list)
                and all(isinstance(line, str) for line in item[2])):
            raise ValueError("not a [topic, payload, lines] record")
        topic, payload, body = item
        yield Entry(0, 0, body, topic=topic, payload=payload.encode("utf-8", "surrogateescape"))
