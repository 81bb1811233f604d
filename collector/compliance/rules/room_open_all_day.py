"""room_open_all_day: the network room was open through its required hours.

Notice 5: 中队网络室全天开放. The share of the required opening windows
(``sites.<id>.room``: windows, weekdays, holidays, time zone) in which at
least ``room.min_online`` room PCs were online, over the last ``days``
complete days in the site's time zone (default 1: yesterday), must reach
``target``. The share over ``rolling_days`` and the room's state now go in
the notes. Days with nothing required (days off, holidays) do not count;
when the whole period is off, the rule does not apply. No data while no
room PC has sent a heartbeat (within ``rules.freshness_days``) and nothing
shows the room open in the period: the room's PCs are unknown, or their
agents send no heartbeats, which says nothing about the room. Room PCs that
do send heartbeats but were off in the period fail it. Days that ended
before the room PCs' first report ever (``Snapshot.room_first_ms``) and show
no opening are left out, as unknown: the agents were not installed yet.
``missing_intervals``: silent intervals after which a PC counts as offline
from its last heartbeat (used by the loader, collector/store/loaders/availability.py).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from zoneinfo import ZoneInfo

from collector.compliance.availability import DayOpen, period_share
from collector.compliance.facts import Snapshot
from collector.compliance.model import Org, Site
from collector.compliance.rules.base import NO_DATA, NOT_APPLICABLE, Reason, Result, judged, why

NAME = "room_open_all_day"
TITLE = {"zh": "网络室全天开放", "en": "Room open all day"}
DEFAULTS: dict[str, Any] = {"target": 0.95, "days": 1, "rolling_days": 7,
                            "missing_intervals": 3}
LIMITS = {"target": (0, 1), "days": (1, 31), "rolling_days": (1, 31),
          "missing_intervals": (1, 100)}
UNIT = "share"


def site_params(org: Org, site: Site) -> dict[str, Any]:
    """This rule's effective parameters for ``site`` (defaults, globals, the site's own)."""
    return {**DEFAULTS, **org.params(site).get(NAME, {})}


def known_days(snap: Snapshot, days: int) -> tuple[DayOpen, ...]:
    """The last ``days`` complete days, without those that say nothing: ended
    before the room's first report, with no opening seen."""
    first = snap.room_first_ms
    last = snap.availability[-days:]
    if first is None:
        return last
    return tuple(d for d in last if d.open_s > 0 or d.end_ms > first)


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    target = float(params["target"])
    if not snap.availability:  # nothing computed for this room
        return Result(NAME, NO_DATA, target, None, reasons=(why("no_heartbeats"),))
    period = known_days(snap, int(params["days"]))
    if not period:
        return Result(NAME, NO_DATA, target, None, reasons=(why("before_first_report"),))
    share, required_s, open_s = period_share(period)
    if share is None:
        return Result(NAME, NOT_APPLICABLE, target, None, reasons=(why("day_off"),))
    now = snap.room_now
    if open_s <= 0 and (now is None or now.room_pcs == 0):
        return Result(NAME, NO_DATA, target, None, reasons=(why("no_heartbeats"),))
    hours = {"open_h": round(open_s / 3600, 1), "required_h": round(required_s / 3600, 1)}
    opened = (why("open_days", **hours, first=period[0].day, last=period[-1].day)
              if len(period) > 1 else why("open_day", **hours, day=period[-1].day))
    notes: list[Reason] = []
    rolling, _, _ = period_share(known_days(snap, int(params["rolling_days"])))
    if rolling is not None:
        notes.append(why("rolling_share", days=int(params["rolling_days"]),
                         share=round(rolling, 4)))
    if now is not None and now.open:
        notes.append(why("open_now", online=now.online, pcs=now.room_pcs))
    elif now is not None and now.closed_since_ms is not None:
        tz = ZoneInfo(snap.site.room.timezone)
        since = dt.datetime.fromtimestamp(now.closed_since_ms / 1000, tz)
        notes.append(why("closed_since", since=f"{since:%m-%d %H:%M}"))
    elif now is not None:
        notes.append(why("closed_now"))
    ok = share >= target
    return judged(NAME, ok, target, round(share, 4), None, (opened,),
                  tuple(notes) if not ok else (opened, *notes))
