"""availability: each room's last complete days and its state now; their points.

Days already in the ``availability`` measurement are read back; missing ones
are computed from the heartbeats (collector/heartbeats.py) and written by the
collector's evaluation (``points``) once they are an hour old, so late ticks
from agents' outboxes still count. The state now needs only each room PC's
last heartbeat and statuses.
"""
from __future__ import annotations

from typing import Any

from zoneinfo import ZoneInfo

from collector import heartbeats
from collector.availability import complete_days, room_now
from collector.points import Point
from collector.rules import room_open_all_day
from collector.sites import Org, Site
from collector.snapshot import Loaded, Read, Snapshots

DAY_MS = 86_400_000
GRACE_MS = 3_600_000  # a day is written once it ended this long ago


def params(org: Org, site: Site) -> dict[str, Any]:
    return {**room_open_all_day.DEFAULTS, **org.params(site).get(room_open_all_day.NAME, {})}


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    sites = org.sites
    if not sites:
        return Loaded()
    want = {s.id: params(org, s) for s in sites}
    longest = max(max(int(p["days"]), int(p["rolling_days"])) for p in want.values())
    stored = heartbeats.stored_days(read, now_ms - (longest + 2) * DAY_MS)
    since = now_ms - round(org.freshness_days * DAY_MS)
    live = heartbeats.timelines(read, None, since, None, last_only=True)
    facts = {}
    for site in sites:
        p = want[site.id]
        tz = ZoneInfo(site.room.timezone)
        have = stored.get(site.id, {})
        days = []
        for d in complete_days(now_ms, tz, max(int(p["days"]), int(p["rolling_days"]))):
            got = have.get(d.isoformat())
            if got is None:
                got = heartbeats.day(read, site, d, now_ms, float(p["missing_intervals"]))
            days.append(got)
        hosts = {h: t for (s, h), t in live.items() if s == site.id}
        now = room_now(hosts, now_ms, site.room.min_online, float(p["missing_intervals"]))
        facts[site.id] = {"availability": tuple(days), "room_now": now}
    return Loaded(facts)


def points(snaps: Snapshots, org: Org) -> list[Point]:
    """``availability`` points for newly computed days old enough to keep, one per
    site and day at local midnight, and a ``room_state`` point per site now.

    availability fields: day (ISO date), required_s, open_s (s), open_share
    (0-1, absent on days off), target, ok (1/0). room_state fields: open
    (1/0), online, room_pcs, min_online, closed_since_ms (epoch ms, when closed).
    """
    out = []
    for site in org.sites:
        snap = snaps.by_site.get(site.id)
        if snap is None:
            continue
        tags = {**org.tags_for(site.id), "site": site.id}
        target = float(params(org, site)["target"])
        for d in snap.availability:
            if d.stored or snaps.now_ms < d.end_ms + GRACE_MS:
                continue
            fields: dict[str, Any] = {"day": d.day, "required_s": d.required_s,
                                      "open_s": d.open_s, "target": target,
                                      "ok": int(d.share is None or d.share >= target)}
            if d.share is not None:
                fields["open_share"] = round(d.share, 6)
            out.append(Point("availability", tags, fields, d.start_ms))
        now = snap.room_now
        if now is not None:
            fields = {"open": int(now.open), "online": now.online, "room_pcs": now.room_pcs,
                      "min_online": site.room.min_online}
            if now.closed_since_ms is not None:
                fields["closed_since_ms"] = now.closed_since_ms
            out.append(Point("room_state", tags, fields, snaps.now_ms))
    return out


