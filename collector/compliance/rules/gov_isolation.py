"""gov_isolation: no gov PC can reach the internet or bridge the networks.

Notice 6 (leak prevention). Fails while the latest isolation report of any
gov PC of the site (within ``rules.freshness_days``; see
agent/collectors/isolation.py) shows a violation: an internet canary
reached, a Wi-Fi / USB / mobile interface up, or default routes through
several interfaces. It clears with the PC's next clean report. ``actual``
is the number of violating PCs; gov PCs that never reported are named in
the detail but do not fail the site.
"""
from __future__ import annotations

from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result

NAME = "gov_isolation"
TITLE = {"zh": "政务网与互联网隔离", "en": "Gov network sealed"}
DEFAULTS: dict[str, Any] = {"max_violations": 0}
LIMITS = {"max_violations": (0, 10_000)}


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result | None:
    reports = {r.host: r for r in snap.isolation}
    gov = {d.host for d in snap.devices if d.network == "gov"} | set(reports)
    if not gov:
        return None
    bad = sorted(h for h, r in reports.items() if r.violated)
    silent = len(gov - set(reports))
    notes = [f"{len(reports)} of {len(gov)} gov PCs reported"]
    notes += [f"{h}: {reports[h].reasons}" for h in bad[:5]]
    if silent:
        notes.append(f"{silent} never reported")
    limit = int(params["max_violations"])
    return Result(NAME, limit, len(bad), len(bad) <= limit, {}, "; ".join(notes))
