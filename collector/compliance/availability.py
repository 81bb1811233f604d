"""Room availability as pure functions of heartbeat timelines (times in epoch ms).

A host is online from a heartbeat (an ``online`` status or a metrics tick) as
long as the next one follows within ``missing_intervals`` x its interval; a
longer silence (power cut, no Last Will) makes it offline from its last
heartbeat. A clean ``offline`` status ends it at once. A Last Will only
matters when no heartbeat follows it (contact may be lost while the PC works
on and its outbox later delivers the ticks): then, too, the host is offline
from its last heartbeat. A room is open while at least ``min_online`` of its
room PCs are online. A heartbeat stamped a little ahead of the evaluation
time (a PC whose clock runs fast, up to collector.compliance.skew.AHEAD_MS)
counts as one at that time. docs/availability.md has a worked example.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Tuple

from zoneinfo import ZoneInfo

from collector.compliance import skew
from collector.compliance.model import Room
from netroom import schema

Span = Tuple[int, int]  # [start, end) in epoch ms


@dataclass(frozen=True)
class Timeline:
    """One host's heartbeats: ``beats`` (epoch ms of online statuses and metrics),
    ``offline`` statuses as (epoch ms, is a Last Will), ``interval_s`` (s), and
    ``runs``: [first, last] heartbeats between which none was missing (the
    collector's state keeps heartbeats so: collector/store/state/db.py)."""

    beats: tuple[int, ...] = ()
    offline: tuple[tuple[int, bool], ...] = ()
    interval_s: float = 60.0
    runs: tuple[Span, ...] = ()


@dataclass(frozen=True)
class DayOpen:
    """How long a room was open within one day's required windows.

    ``day``: ISO date in the site's time zone; ``start_ms``/``end_ms``: that
    day's bounds (epoch ms); ``required_s``/``open_s``: seconds (for today,
    only up to now); ``stored``: read back from the ``availability``
    measurement rather than computed now.
    """

    day: str
    start_ms: int
    end_ms: int
    required_s: float
    open_s: float
    stored: bool = False

    @property
    def share(self) -> float | None:
        """open_s / required_s; None when nothing was required (a day off)."""
        return self.open_s / self.required_s if self.required_s > 0 else None


@dataclass(frozen=True)
class RoomNow:
    """The room at ``now_ms``: open or not, room PCs online / known.

    ``closed_since_ms``: when it closed (epoch ms); None while open, or when
    it was never open in the known history.
    """

    open: bool
    online: int
    room_pcs: int
    closed_since_ms: int | None = None


def online_spans(t: Timeline, now_ms: int, missing_intervals: float = 3,
                 ahead_ms: int = skew.AHEAD_MS) -> list[Span]:
    """The spans in which the host was online, up to ``now_ms`` (what is known).

    A heartbeat or status stamped up to ``ahead_ms`` after ``now_ms`` (a PC
    whose clock runs fast) counts as one at ``now_ms``; later ones are not read.
    """
    spans, _ = _walk(t, now_ms, missing_intervals, ahead_ms)
    return [(s, e) for s, e in spans if e > s]


def _walk(t: Timeline, now_ms: int, missing_intervals: float,
          ahead_ms: int) -> tuple[list[Span], bool]:
    """(spans, including empty ones, and whether the host is online at ``now_ms``)."""
    limit = missing_intervals * t.interval_s * 1000
    # Events: (known time, what, own time, until). At one instant a heartbeat
    # sorts before an offline status. A run's first heartbeat carries ``until``,
    # the run's last: none was missing up to there (runs may overlap).
    events: list[tuple[int, int, int, int]] = [
        (k, 0, ts, 0) for ts in t.beats if (k := skew.clamp(ts, now_ms, ahead_ms)) is not None]
    events += [(k, 2 if will else 1, ts, 0) for ts, will in t.offline
               if (k := skew.clamp(ts, now_ms, ahead_ms)) is not None]
    for first, end in t.runs:
        if (k := skew.clamp(first, now_ms, ahead_ms)) is not None:
            last_known = min(end, now_ms)
            events += [(k, 0, first, last_known), (last_known, 0, end, 0)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))  # stable: a run's first before its last
    spans: list[Span] = []
    start: int | None = None
    last = 0
    covered = 0  # heartbeats up to here are inside a run
    will_after = False
    for ts, what, _, until in events:
        if what == 0:
            if start is not None and ts - last > limit and ts > covered:
                spans.append((start, last))
                start = None
            if start is None:
                start = ts
            last, will_after = ts, False
            covered = max(covered, until)
        elif what == 1 and start is not None:
            spans.append((start, ts if ts - last <= limit else last))
            start = None
        elif what == 2:
            will_after = True
    online = False
    if start is not None:
        online = not will_after and now_ms - last <= limit
        spans.append((start, now_ms if online else last))
    return spans, online


def room_open_spans(hosts: Iterable[Sequence[Span]], min_online: int = 1) -> list[Span]:
    """Spans in which at least ``min_online`` of the hosts were online."""
    # Starts sort before ends at one instant, so a hand-over leaves no gap.
    events = sorted((t, order) for spans in hosts for s, e in spans
                    for t, order in ((s, 0), (e, 1)))
    out: list[Span] = []
    count = 0
    opened = 0
    for t, order in events:
        if order == 0:
            count += 1
            if count == min_online:
                opened = t
        else:
            if count == min_online and t > opened:
                out.append((opened, t))
            count -= 1
    return out


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Intersection of two sorted lists of disjoint spans."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def measure_s(spans: Iterable[Span]) -> float:
    """Total length of disjoint spans, seconds."""
    return sum(e - s for s, e in spans) / 1000


def _at(day: dt.date, minutes: int, tz: dt.tzinfo) -> int:
    """Epoch ms of wall-clock ``minutes`` after local midnight (24:00 = next midnight)."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=tz) + dt.timedelta(minutes=minutes)
    # Adding a timedelta keeps the wall clock; timestamp() takes the offset in
    # force at that wall time (a DST change inside the day is accounted for).
    return round(local.timestamp() * 1000)


def day_bounds(day: dt.date, tz: dt.tzinfo) -> Span:
    return _at(day, 0, tz), _at(day, schema.DAY_MINUTES, tz)


def required_stretch(room: Room, now_ms: int) -> int | None:
    """When the required opening that ``now_ms`` falls in began (epoch ms; windows
    that meet across midnight count as one); None when nothing is required now."""
    tz = ZoneInfo(room.timezone)
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz).date()
    spans = [s for d in (today - dt.timedelta(days=k) for k in (2, 1, 0))
             for s in required_spans(room, d, tz, room.holidays)]
    start: int | None = None  # the start of the stretch of adjoining spans so far
    end = 0
    for a, b in sorted(spans):
        start = start if start is not None and a <= end else a
        end = b
        if a <= now_ms < b:
            return start
    return None


def required_spans(room: Room, day: dt.date, tz: dt.tzinfo,
                   holidays: Iterable[str] = ()) -> list[Span]:
    """The day's required opening windows, empty on days off and holidays (ISO dates)."""
    if day.isoweekday() not in room.days or day.isoformat() in set(holidays):
        return []
    return sorted((_at(day, s, tz), _at(day, e, tz)) for s, e in room.windows)


def day_open(room: Room, day: dt.date, tz: dt.tzinfo, open_spans: Sequence[Span],
             now_ms: int, holidays: Iterable[str] = (),
             required: Sequence[Span] | None = None) -> DayOpen:
    """Required and open seconds of ``day`` (only up to ``now_ms`` for today).
    ``required``: required_spans(room, day, tz, holidays), if already known."""
    start, end = day_bounds(day, tz)
    if required is None:
        required = required_spans(room, day, tz, holidays)
    due = intersect(required, [(start, min(end, now_ms))])
    return DayOpen(day.isoformat(), start, end, measure_s(due),
                   measure_s(intersect(due, open_spans)))


def complete_days(now_ms: int, tz: dt.tzinfo, n: int) -> list[dt.date]:
    """The ``n`` whole days before today (in ``tz``), oldest first."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz).date()
    return [today - dt.timedelta(days=k) for k in range(n, 0, -1)]


def period_share(days: Sequence[DayOpen]) -> tuple[float | None, float, float]:
    """(open share, required s, open s) over several days; share None if none required."""
    required = sum(d.required_s for d in days)
    opened = sum(d.open_s for d in days)
    return (opened / required if required > 0 else None), required, opened


def room_now(timelines: Mapping[str, Timeline], now_ms: int, min_online: int = 1,
             missing_intervals: float = 3, ahead_ms: int = skew.AHEAD_MS) -> RoomNow:
    """Open now or not, and closed since when, from the room PCs' timelines.

    Only each host's last heartbeats are needed: with ``n`` online now, the
    room closed when the (min_online - n)-th latest of the others went offline.
    A heartbeat stamped up to ``ahead_ms`` after ``now_ms`` is one at ``now_ms``:
    a room PC whose clock runs fast is online, not silent.
    """
    online = 0
    gone: list[int] = []  # when each offline host went offline
    for t in timelines.values():
        if len(t.beats) == 1 and not t.offline and not t.runs:
            # Only its last tick, nothing after it (most room PCs): _walk's
            # answer without its events.
            last = skew.clamp(t.beats[0], now_ms, ahead_ms)
            if last is not None and now_ms - last <= missing_intervals * t.interval_s * 1000:
                online += 1
            elif last is not None:
                gone.append(last)
            continue
        spans, is_online = _walk(t, now_ms, missing_intervals, ahead_ms)
        if is_online:
            online += 1
            continue
        ends = [e for s, e in spans if e > s][-1:]
        ends += [known for b in t.beats
                 if (known := skew.clamp(b, now_ms, ahead_ms)) is not None]
        ends += [min(e, now_ms) for s, e in t.runs if skew.clamp(s, now_ms, ahead_ms) is not None]
        if ends:
            gone.append(max(ends))
    if online >= min_online:
        return RoomNow(True, online, len(timelines))
    need = min_online - online
    gone.sort(reverse=True)
    return RoomNow(False, online, len(timelines), gone[need - 1] if len(gone) >= need else None)
