"""availability: each room's last complete days and its state now.

Days already in the ``availability`` measurement are read back; missing ones
are computed from the heartbeats (collector.store.heartbeats) and written back
by collector.store.writeback once they are an hour old, so late ticks from
agents' outboxes still count. The state now needs only each room PC's
last heartbeat and statuses. ``rooms`` is also what ``netroom availability``
shows, for days of its choosing.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping, Sequence

from zoneinfo import ZoneInfo

from collector.compliance import skew
from collector.compliance.availability import (
    DayOpen,
    RoomNow,
    Timeline,
    complete_days,
    room_now,
)
from collector.compliance.model import Org, Site
from collector.compliance.rules import room_open_all_day
from collector.store import heartbeats
from collector.store.rows import Loaded, Read
from netroom import schema

# The days to show of a site, given room_open_all_day's parameters for it.
Dates = Callable[[Site, Mapping[str, Any]], Sequence[dt.date]]


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    sites = org.sites
    if not sites:
        return Loaded()

    def span(p: Mapping[str, Any]) -> int:
        return max(int(p["days"]), int(p["rolling_days"]))

    longest = max(span(room_open_all_day.site_params(org, s)) for s in sites)
    got = rooms(read, org, sites, now_ms, now_ms - (longest + 2) * schema.DAY_MS,
                lambda site, p: complete_days(now_ms, ZoneInfo(site.room.timezone), span(p)))
    first = heartbeats.first_reports(read, now_ms)
    return Loaded({sid: {"availability": days, "room_now": now,
                         "room_first_ms": first.get(sid)}
                   for sid, (days, now) in got.items()})


def rooms(read: Read, org: Org, sites: Sequence[Site], now_ms: int, stored_since_ms: int,
          dates: Dates) -> dict[str, tuple[tuple[DayOpen, ...], RoomNow]]:
    """Per site id: its room's ``dates(site, params)`` (read back from the
    ``availability`` measurement since ``stored_since_ms``, else computed from
    the heartbeats) and the room now."""
    stored = heartbeats.stored_days(read, stored_since_ms)
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Each room PC's last tick, a fast clock's included (it counts as now).
    live: dict[str, dict[str, Timeline]] = {}
    for (sid, host), t in heartbeats.timelines(read, None, since, skew.horizon(now_ms),
                                               last_only=True).items():
        live.setdefault(sid, {})[host] = t
    out = {}
    for site in sites:
        p = room_open_all_day.site_params(org, site)
        missing = float(p["missing_intervals"])
        have = stored.get(site.id, {})
        days = []
        for d in dates(site, p):
            got = have.get(d.isoformat())
            if got is None:
                got = heartbeats.day(read, site, d, now_ms, missing)
            days.append(got)
        out[site.id] = (tuple(days), room_now(live.get(site.id, {}), now_ms,
                                              site.room.min_online, missing))
    return out
