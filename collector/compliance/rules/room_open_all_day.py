"""room_open_all_day: the network room was open through its required hours.

Notice 5: 中队网络室全天开放. The share of the required opening windows
(``sites.<id>.room``: windows, weekdays, holidays, time zone) in which at
least ``room.min_online`` room PCs were online, over the last ``days``
complete days in the site's time zone (default 1: yesterday), must reach
``target``. The share over ``rolling_days`` and the room's state now go in
the detail. Days with nothing required (days off, holidays) do not count;
when the whole period is off, the rule does not apply.
``missing_intervals``: silent intervals after which a PC counts as offline
from its last heartbeat (used by the loader, collector/store/loaders/availability.py).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from zoneinfo import ZoneInfo

from collector.compliance.availability import period_share
from collector.compliance.facts import Snapshot
from collector.compliance.model import Org, Site
from collector.compliance.rules.base import Result

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


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result | None:
    target = float(params["target"])
    period = snap.availability[-int(params["days"]):]
    share, required_s, open_s = period_share(period)
    if share is None:
        return None
    notes = [f"open {open_s / 3600:.1f} h of {required_s / 3600:.1f} h "
             f"({period[0].day}..{period[-1].day})" if len(period) > 1 else
             f"open {open_s / 3600:.1f} h of {required_s / 3600:.1f} h on {period[-1].day}"]
    rolling, _, _ = period_share(snap.availability[-int(params["rolling_days"]):])
    if rolling is not None:
        notes.append(f"{int(params['rolling_days'])} days: {rolling:.1%}")
    now = snap.room_now
    if now is not None and now.open:
        notes.append(f"open now ({now.online} of {now.room_pcs} room PCs online)")
    elif now is not None and now.closed_since_ms is not None:
        tz = ZoneInfo(snap.site.room.timezone)
        since = dt.datetime.fromtimestamp(now.closed_since_ms / 1000, tz)
        notes.append(f"closed since {since:%m-%d %H:%M}")
    elif now is not None:
        notes.append("closed now")
    return Result(NAME, target, round(share, 4), share >= target, {}, "; ".join(notes))
