"""What travels the write path: one message (or internal batch) and the counters.

An ``Entry`` keeps the raw MQTT payload next to its encoded lines, so that a
message InfluxDB refuses can be set aside exactly as it arrived.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass
class Entry:
    """One received message on its way to durability.

    ``mid``/``qos``/``gen``: what to acknowledge, on which broker connection
    (0 for the collector's own points, which need no ack). ``reason`` is set
    when the message is to be set aside (dead-lettered) instead of written.
    ``facts``: what Ingest's ``facts_of`` made of a valid message, for the
    writer's ``on_durable`` (None for the rest).
    """

    mid: int
    qos: int
    lines: list[str]
    topic: str = ""
    payload: bytes = b""
    reason: str = ""  # dead-letter reason: "invalid", "unencodable", ...
    detail: str = ""  # human-readable why, e.g. the protocol error
    gen: int = 0  # connection generation the mid belongs to
    facts: Any = None  # what the collector's state keeps of it (Ingest's facts_of)

    @cached_property
    def size(self) -> int:
        """Bytes held in memory (payload + lines), roughly: for the queue bound.
        Read once the lines are set (the writer's put)."""
        return len(self.payload) + sum(len(line) + 1 for line in self.lines)


def add(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclass
class Counters:
    """The collector's own counters, cumulative since start (take ``lock``)."""

    received: int = 0
    invalid: dict[str, int] = field(default_factory=dict)  # per protocol error code
    written: int = 0  # lines InfluxDB accepted (directly or from the spool)
    spooled: int = 0  # lines put in the spool
    rejected: int = 0  # lines InfluxDB refused for good (400/413 down to one line)
    deadlettered: dict[str, int] = field(default_factory=dict)  # messages, per reason
    write_errors: int = 0  # failed write requests (InfluxDB down, 5xx, timeouts)
    clock_skew: int = 0  # messages re-stamped at receive time
    lock: threading.Lock = field(default_factory=threading.Lock)
