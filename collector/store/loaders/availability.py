"""availability: each room's last complete days and its state now.

Days already in the ``availability`` measurement are read back; missing ones
are computed from the heartbeats (collector.store.heartbeats) and written back
by collector.store.writeback once they are an hour old, so late ticks from
agents' outboxes still count. The state now needs only each room PC's
last heartbeat and statuses.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from collector.compliance.availability import complete_days, room_now
from collector.compliance.model import Org
from collector.compliance.rules import room_open_all_day
from collector.store import heartbeats
from collector.store.rows import Loaded, Read

DAY_MS = 86_400_000


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    sites = org.sites
    if not sites:
        return Loaded()
    want = {s.id: room_open_all_day.site_params(org, s) for s in sites}
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
