"""portal_reachable: the political-work portal answers every gov PC.

Notice 5: 提高政工网联通率. The share of the site's gov PCs whose latest
result of the probe named ``probe`` (agent config ``probes:``), no older
than ``max_age_min`` minutes, succeeded must reach ``min_share``. A gov PC
without a fresh result counts as not reaching the portal. Gov PCs are those
of the inventory, plus any host that reported the probe from the gov network
(within the loader's look-back, rules.freshness_days).
When no gov PC of the site reported the probe at all, it is not deployed
there and the rule does not apply.
"""
from __future__ import annotations

from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result
from netroom import schema

NAME = "portal_reachable"
TITLE = {"zh": "政工网联通率", "en": "Portal reachable"}
DEFAULTS: dict[str, Any] = {"min_share": 1.0, "probe": "portal", "max_age_min": 30}
LIMITS = {"min_share": (0, 1), "max_age_min": (1, 10080)}
UNIT = "share"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result | None:
    name = str(params["probe"])
    fresh = snap.now_ms - int(params["max_age_min"]) * schema.MINUTE_MS
    results = [p for p in snap.probes
               if p.probe == name and p.network == "gov" and p.time_ms >= fresh]
    ran = {p.host for p in snap.probes if p.probe == name and p.network == "gov"}
    if not ran:
        return None  # not deployed here; a stale result still counts as a failure
    gov = {d.host for d in snap.devices if d.network == "gov"} | ran
    reached = {p.host for p in results if p.ok}
    share = len(reached) / len(gov)
    failing = sorted(gov - reached)
    detail = f"{len(reached)} of {len(gov)} gov PCs reach probe {name!r}"
    if failing:
        detail += ": not " + ", ".join(failing[:5]) + (" ..." if len(failing) > 5 else "")
    return Result(NAME, float(params["min_share"]), round(share, 4),
                  share >= float(params["min_share"]), {}, detail)
