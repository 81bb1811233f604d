"""Reads room PCs' heartbeats from InfluxDB and computes their room's availability.

A heartbeat is an ``online`` status or a metrics message (every agent's
carries ``collect_ms``). Queries go one site at a time, so memory stays
bounded by one site-day of ticks. The arithmetic is collector.compliance.availability's.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from zoneinfo import ZoneInfo

from collector.compliance import skew
from collector.compliance.availability import (
    DayOpen,
    Timeline,
    day_open,
    online_spans,
    required_spans,
    room_open_spans,
)
from collector.compliance.model import Site
from collector.store.rows import Read, Row
from netroom import protocol, schema

# Heartbeats read around a window to know whether a PC was already (or
# still) online at its edges: enough for agent.interval up to 20 min with
# missing_intervals 3.
LOOK_MS = schema.HOUR_MS
DEFAULT_INTERVAL_S = 60.0


def _where(site: str | None, start_ms: int, end_ms: int | None) -> str:
    # Only validated ids and numbers we computed go into the query text.
    cond = [schema.tag_is(schema.ROLE, "room"), f"time >= {start_ms}ms"]
    if site is not None:
        cond.insert(0, schema.tag_is(schema.SITE, site))
    # Never open-ended: one tick stamped 2099 would be every later last().
    cond.append(f"time <= {end_ms}ms" if end_ms is not None
                else f"time <= now() + {skew.AHEAD_MS}ms")
    return " AND ".join(cond)


def build(ticks: Iterable[Row], statuses: Iterable[Row],
          runs: Iterable[tuple[str, str, int, int]] = ()) -> dict[tuple[str, str], Timeline]:
    """Pure: metrics rows, status rows and runs (site, host, first, last tick:
    collector/store/state/) -> a Timeline per (site, host).

    A host's interval is the longest its statuses announced (60 s if none):
    the longer one is the kinder judge of a silence.
    """
    beats: dict[tuple[str, str], list[int]] = {}
    offline: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    interval: dict[tuple[str, str], float] = {}
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for site, host, first, last in runs:
        spans.setdefault((site, host), []).append((first, last))
    for r in ticks:
        beats.setdefault((r[schema.SITE], r[schema.HOST]), []).append(int(r["time"]))
    for r in statuses:
        key = (r[schema.SITE], r[schema.HOST])
        t = int(r["time"])
        if r.get(protocol.STATE) == protocol.ONLINE:
            beats.setdefault(key, []).append(t)
        elif r.get(protocol.STATE) == protocol.OFFLINE:
            offline.setdefault(key, []).append((t, bool(r.get("will"))))
        if r.get("interval_s") is not None:
            interval[key] = max(interval.get(key, 0.0), float(r["interval_s"]))
    return {k: Timeline(tuple(sorted(beats.get(k, ()))), tuple(sorted(offline.get(k, ()))),
                        interval.get(k, DEFAULT_INTERVAL_S), tuple(sorted(spans.get(k, ()))))
            for k in sorted(set(beats) | set(offline) | set(spans))}


def timelines(read: Read, site: str | None, start_ms: int, end_ms: int | None,
              last_only: bool = False) -> dict[tuple[str, str], Timeline]:
    """Room PCs' timelines between the two times (``end_ms`` None: up to InfluxDB's
    now() plus collector.compliance.skew.AHEAD_MS, as far as a fast clock may stamp).

    ``last_only``: only each host's last tick (and its statuses): enough to
    tell whether the room is open now and since when it is closed.
    """
    where = _where(site, start_ms, end_ms)
    group = schema.BY_SITE_HOST
    sel = 'last("collect_ms") AS "collect_ms"' if last_only else '"collect_ms"'
    ticks = read(f'SELECT {sel} FROM "{schema.METRICS}" WHERE {where} {group}')  # noqa: S608
    # Statuses from a day earlier: the host's announced interval.
    swhere = _where(site, start_ms - schema.DAY_MS, end_ms)
    statuses = read(f'SELECT "state", "will", "interval_s" FROM "{schema.STATUS}" '  # noqa: S608
                    f"WHERE {swhere} {group}")
    return build(ticks, statuses)


def day(read: Read, site: Site, date: dt.date, now_ms: int,
        missing_intervals: float = 3) -> DayOpen:
    """One day of ``site``'s room, computed from the heartbeats (up to now for today)."""
    span = day_window(site, date, now_ms)
    if span is None:
        return day_of(site, date, now_ms, {}, missing_intervals)
    # Ticks a fast clock stamped after the horizon count at the horizon.
    hosts = timelines(read, site.id, span[0], skew.horizon(span[1]))
    return day_of(site, date, now_ms, hosts, missing_intervals)


def day_window(site: Site, date: dt.date, now_ms: int) -> tuple[int, int] | None:
    """(first, last) epoch ms of the heartbeats that decide ``date`` for ``site``'s
    room (its required windows, an hour around them, up to now); None if nothing
    was required (a day off) or it is all still ahead."""
    room = site.room
    return _window(required_spans(room, date, ZoneInfo(room.timezone), room.holidays), now_ms)


def _window(required: list[tuple[int, int]], now_ms: int) -> tuple[int, int] | None:
    if not required or required[0][0] >= now_ms:
        return None
    return required[0][0] - LOOK_MS, min(required[-1][1] + LOOK_MS, now_ms)


def day_of(site: Site, date: dt.date, now_ms: int, hosts: Mapping[tuple[str, str], Timeline],
           missing_intervals: float = 3) -> DayOpen:
    """Pure: one day of ``site``'s room from its room PCs' timelines over ``day_window``."""
    room = site.room
    tz = ZoneInfo(room.timezone)
    required = required_spans(room, date, tz, room.holidays)
    span = _window(required, now_ms)
    spans = [] if span is None else room_open_spans(
        [online_spans(t, span[1], missing_intervals) for t in hosts.values()], room.min_online)
    return day_open(room, date, tz, spans, now_ms, room.holidays, required)


def stored_days(read: Read, since_ms: int) -> dict[str, dict[str, DayOpen]]:
    """Days already in the ``availability`` measurement, by site and ISO date."""
    rows = read(f'SELECT "day", "required_s", "open_s" FROM "{schema.AVAILABILITY}" '  # noqa: S608
                f"WHERE time >= {since_ms}ms {schema.group_by(schema.SITE)}")
    out: dict[str, dict[str, DayOpen]] = {}
    for r in rows:
        if r.get("day") is None or r.get("required_s") is None:
            continue
        start = int(r["time"])
        out.setdefault(r[schema.SITE], {})[r["day"]] = DayOpen(
            r["day"], start, start + schema.DAY_MS, float(r["required_s"]),
            float(r.get("open_s") or 0.0), stored=True)
    return out


def first_reports(read: Read, now_ms: int) -> dict[str, int]:
    """Per site id: the time of its room PCs' first report still stored (a
    metrics tick or a status), epoch ms; a fast clock's counts as now."""
    where = (f"{schema.tag_is(schema.ROLE, 'room')} "
             f"AND time <= {skew.horizon(now_ms)}ms {schema.group_by(schema.SITE)}")
    out: dict[str, int] = {}
    for measurement, field in ((schema.METRICS, "collect_ms"), (schema.STATUS, "state")):
        for r in read(f'SELECT first("{field}") FROM "{measurement}" WHERE {where}'):  # noqa: S608
            t = min(int(r["time"]), now_ms)
            out[r[schema.SITE]] = min(out.get(r[schema.SITE], t), t)
    return out
