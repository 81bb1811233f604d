"""Writes entries' lines to InfluxDB so that one bad line costs one message.

Requests are cut so no body exceeds ``max_body_bytes`` (below InfluxDB's
``max-body-size``, 25 MB by default). When InfluxDB refuses a request (400,
or 2.x's 422: a line it cannot parse or store; 413: body too large for this
server), the request is split in halves, recursively, down to the one message
and then the one line it refuses: its batch-mates land, and only that message is set aside.
InfluxDB 1.x writes the good lines of a 400 request anyway; 2.x and 3.x refuse
the whole request; splitting gives the same outcome on all of them (writing a
line twice stores it once: same series, same time).

Any other failure (server down, 5xx, timeout) raises ``SinkError``: the
caller spools the whole chunk and retries later.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

from collector.influx.client import Rejected, TooLarge
from collector.ingest.entry import Entry

log = logging.getLogger(__name__)

MIN_BODY_BYTES = 4096  # a 413 never makes requests smaller than this


@dataclass
class Refused:
    """A message whose lines InfluxDB refused: to be dead-lettered."""

    entry: Entry
    reason: str  # "rejected" (400) or "too_large" (413 for one line)
    detail: str  # InfluxDB's answer
    lines: list[str]  # the refused lines (the message's other lines landed)


@dataclass
class Outcome:
    written: int = 0  # lines InfluxDB accepted
    refused: list[Refused] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Lines refused for good."""
        return sum(len(r.lines) for r in self.refused)


class Delivery:
    """Not thread-safe: one per writing thread (it learns the body limit)."""

    def __init__(self, write: Callable[[list[str]], None], max_body_bytes: int) -> None:
        self.write = write
        self.max_body_bytes = max_body_bytes

    def deliver(self, entries: Sequence[Entry]) -> Outcome:
        """Write every entry's lines; raise SinkError if InfluxDB is unavailable."""
        out = Outcome()
        for chunk in self._chunks([e for e in entries if e.lines]):
            self._send(chunk, out)
        return out

    def _chunks(self, entries: list[Entry]) -> list[list[Entry]]:
        chunks: list[list[Entry]] = []
        size = self.max_body_bytes
        for e in entries:
            n = _lines_size(e.lines)
            if not chunks or size + n > self.max_body_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(e)
            size += n
        return chunks

    def _send(self, entries: list[Entry], out: Outcome) -> None:
        lines = [line for e in entries for line in e.lines]
        try:
            self.write(lines)
        except (Rejected, TooLarge) as exc:
            self._learn(exc, lines)
            if len(entries) == 1:
                self._send_lines(entries[0], entries[0].lines, out)
                return
            half = len(entries) // 2
            self._send(entries[:half], out)
            self._send(entries[half:], out)
            return
        out.written += len(lines)

    def _send_lines(self, entry: Entry, lines: list[str], out: Outcome) -> None:
        """One message's lines, split down to the ones InfluxDB refuses."""
        try:
            self.write(lines)
        except (Rejected, TooLarge) as exc:
            self._learn(exc, lines)
            if len(lines) > 1:
                half = len(lines) // 2
                self._send_lines(entry, lines[:half], out)
                self._send_lines(entry, lines[half:], out)
                return
            reason = "too_large" if isinstance(exc, TooLarge) else "rejected"
            if out.refused and out.refused[-1].entry is entry:
                out.refused[-1].lines.append(lines[0])
            else:
                out.refused.append(Refused(entry, reason, str(exc), [lines[0]]))
            return
        out.written += len(lines)

    def _learn(self, exc: Exception, lines: list[str]) -> None:
        # A 413 means this server's limit is below ours: stay under it from now on.
        if isinstance(exc, TooLarge):
            size = _lines_size(lines)
            new = max(MIN_BODY_BYTES, size // 2)
            if new < self.max_body_bytes:
                log.warning("InfluxDB refused %d bytes as too large (413); "
                            "sending at most %d bytes per request", size, new)
                self.max_body_bytes = new


def _lines_size(lines: list[str]) -> int:
    """Bytes the lines take in a request body; the common all-ASCII case in C loops."""
    if all(map(str.isascii, lines)):
        return sum(map(len, lines)) + len(lines)
    return sum(_size(line) for line in lines)


def _size(line: str) -> int:
    """Bytes the line takes in a request body (UTF-8, and its newline)."""
    return (len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))) + 1
