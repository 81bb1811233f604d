"""The agent's outbox: messages the broker has not accepted yet, on disk.

One file per message in a folder (written to a temporary name, then renamed,
so a crash never leaves half a message), deleted when the broker accepts it
(a PUBACK with a success code; a refused message stays). A PC sends one or
two messages a minute, so this is cheaper than a database in CPU (one write
and one unlink per message) and in memory (no SQLite in the agent process);
a long broker outage costs one small file per message, up to ``max_items``.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from typing import Container, Iterable, Sequence

log = logging.getLogger(__name__)
SUFFIX = ".msg"
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class Outbox:
    """A durable FIFO of byte strings with integer ids; thread-safe.

    ``max_items``: beyond it the oldest are dropped (0: no limit).
    """

    def __init__(self, folder: str, max_items: int = 0) -> None:
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.max_items = max_items
        self.dropped = 0
        self._lock = threading.Lock()
        ids = []
        for name in os.listdir(folder):
            stem, ext = os.path.splitext(name)
            if ext == SUFFIX and stem.isdigit():
                ids.append(int(stem))
            elif ext == ".tmp":  # a write cut short by a crash: never acknowledged
                os.unlink(os.path.join(folder, name))
        # Insertion-ordered: acks come roughly in order, so everything before
        # the publish cursor is the small in-flight window and peek() stays cheap.
        self._ids: dict[int, None] = dict.fromkeys(sorted(ids))
        self._next = max(ids) + 1 if ids else 1

    @property
    def next_id(self) -> int:
        """The id the next put() gives: every id below it was there before."""
        with self._lock:
            return self._next

    def __len__(self) -> int:
        return len(self._ids)

    def _path(self, oid: int) -> str:
        return os.path.join(self.folder, f"{oid:012d}{SUFFIX}")

    def put(self, items: Iterable[bytes]) -> list[int]:
        """Store items; return their ids (increasing)."""
        with self._lock:
            ids = []
            for item in items:
                oid = self._next
                self._next += 1
                tmp = self._path(oid) + ".tmp"
                # os-level calls: a third of open()'s CPU, on every message.
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
                try:
                    os.write(fd, item)
                finally:
                    os.close(fd)
                os.replace(tmp, self._path(oid))
                self._ids[oid] = None
                ids.append(oid)
            excess = len(self._ids) - self.max_items if self.max_items else 0
            if excess > 0:
                for oid in list(itertools.islice(self._ids, excess)):
                    self._unlink(oid)
                    del self._ids[oid]
                self.dropped += excess
                log.warning("outbox %s full at %d messages: dropped the %d oldest",
                            self.folder, self.max_items, excess)
            return ids

    def peek(self, limit: int, after: int = 0,
             skip: Container[int] = ()) -> list[tuple[int, bytes]]:
        """Up to ``limit`` oldest items with id > ``after`` and not in ``skip``, left in place."""
        with self._lock:
            chosen = list(itertools.islice(
                (i for i in self._ids if i > after and i not in skip), limit))
        out = []
        for oid in chosen:
            item = self.get(oid)
            if item is not None:  # else acknowledged and deleted meanwhile
                out.append((oid, item))
        return out

    def get(self, oid: int) -> bytes | None:
        """One item, or None if it is gone (acknowledged, or dropped when full)."""
        try:
            with open(self._path(oid), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def first_after(self, after: int, skip: Container[int] = ()) -> int | None:
        """The oldest id greater than ``after`` and not in ``skip``, or None."""
        with self._lock:
            return next((i for i in self._ids if i > after and i not in skip), None)

    def delete(self, ids: Sequence[int]) -> None:
        with self._lock:
            for oid in ids:
                if self._ids.pop(oid, 0) is None:
                    self._unlink(oid)

    def _unlink(self, oid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(oid))

    def close(self) -> None:
        """Nothing to release; kept for symmetry with other queues."""
