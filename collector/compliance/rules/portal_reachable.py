"""portal_reachable: the political-work portal answers every gov PC.

Notice 5: 提高政工网联通率. The share of the site's gov PCs whose latest
result of the probe named ``probe`` (agent config ``probes:``), no older
than ``max_age_min`` minutes, succeeded must reach ``min_share``. Gov PCs
are those of the inventory, plus any host that reported the probe from the
gov network (within the loader's look-back, rules.freshness_days).

Only fresh results are evidence. A gov PC that never ran the probe (not
configured there) or whose latest result is older (switched off, agent
stopped) says nothing about the portal. So: pass once the PCs that reached
the portal make ``min_share``; fail once even every PC without a fresh
result reaching it could not make it; no data in between (e.g. no PC runs
the probe). No data when no PC of the site reports; does not apply to a
site whose PCs report but none from the gov network.
"""
from __future__ import annotations

from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import (
    NO_DATA,
    NOT_APPLICABLE,
    Reason,
    Result,
    hosts_text,
    judged,
    why,
)
from netroom import schema

NAME = "portal_reachable"
TITLE = {"zh": "政工网联通率", "en": "Portal reachable"}
DEFAULTS: dict[str, Any] = {"min_share": 1.0, "probe": "portal", "max_age_min": 30}
LIMITS = {"min_share": (0, 1), "max_age_min": (1, 10080)}
UNIT = "share"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    name = str(params["probe"])
    need = float(params["min_share"])
    max_age = int(params["max_age_min"])
    fresh = snap.now_ms - max_age * schema.MINUTE_MS
    mine = [p for p in snap.probes if p.probe == name and p.network == "gov"]
    ran = {p.host for p in mine}
    gov = {d.host for d in snap.devices if d.network == "gov"} | ran
    if not gov:
        if not snap.devices:
            return Result(NAME, NO_DATA, need, None, reasons=(why("no_pcs"),))
        return Result(NAME, NOT_APPLICABLE, need, None, reasons=(why("no_gov_pcs"),))
    results = {p.host: p.ok for p in mine if p.time_ms >= fresh}
    reached = sorted(h for h, ok in results.items() if ok)
    failed = sorted(h for h, ok in results.items() if not ok)
    unknown: list[Reason] = []
    if gov - ran:
        unknown.append(why("probe_not_configured", n=len(gov - ran), probe=name))
    if ran - set(results):
        unknown.append(why("probe_stale", n=len(ran - set(results)), minutes=max_age))
    share = len(reached) / len(gov)
    best = (len(gov) - len(failed)) / len(gov)  # every PC without a fresh result reaching it
    note = why("portal_share", reached=len(reached), gov=len(gov))
    ok = share >= need - 1e-9
    if ok or best < need - 1e-9:
        bad = (why("portal_unreachable", n=len(failed), hosts=hosts_text(failed)),) \
            if failed else ()
        return judged(NAME, ok, need, round(share, 4), None, (*bad, *unknown),
                      (note, *unknown) if ok else (note,))
    return Result(NAME, NO_DATA, need, None, reasons=tuple(unknown), notes=(note,))
