"""PCs' clocks: how far ahead of the evaluation time a stored time may be.

Agents stamp their messages with their own clocks. The collector's ingest
keeps a message's time while it is at most ``collector.clock_ahead``
(default 10 minutes) ahead of the time it arrived, and stores anything
further out at its arrival time with a ``clock_skew_s`` field. So a point
up to AHEAD_MS after "now" can be real: it came from a PC whose clock runs
fast. A point further ahead was written before that bound existed (or by
something else) and is never read as the latest of anything.

What a read makes of a point in ``(now, now + AHEAD_MS]`` depends on what it
says (docs/compliance.md, "Clocks"): a heartbeat counts as one at ``now``;
bad news (a violation, a failed probe) counts at once; good news (a clean
report, a success) waits until its time comes, so that a PC whose clock
was fast and then set right cannot hide what it reported since.
"""
from __future__ import annotations

from netroom import schema

# collector.clock_ahead's default. A larger setting only delays the moment
# points stamped further ahead are read; a smaller one changes nothing here.
AHEAD_MS = schema.CLOCK_AHEAD_MS


def horizon(now_ms: int, ahead_ms: int = AHEAD_MS) -> int:
    """The newest stored time a read at ``now_ms`` looks at (epoch ms)."""
    return now_ms + ahead_ms


def clamp(ts_ms: int, now_ms: int, ahead_ms: int = AHEAD_MS) -> int | None:
    """A heartbeat's time as known at ``now_ms``: ``now_ms`` if it is ahead by
    at most ``ahead_ms``, None (not read) if it is further ahead."""
    if ts_ms <= now_ms:
        return ts_ms
    return now_ms if ts_ms <= now_ms + ahead_ms else None
