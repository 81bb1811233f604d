"""gov_isolation: no gov PC can reach the internet or bridge the networks.

Notice 6 (leak prevention). Fails while the latest isolation report of
more than ``max_violations`` gov PCs of the site (within
``rules.freshness_days``; see agent/collectors/isolation.py) shows a
violation: an internet canary reached, a Wi-Fi / USB / mobile interface up,
or default routes through several interfaces. It clears with the PC's next
clean report. ``actual`` is the number of violating PCs.

A clean report is evidence only from a PC that checks canaries (payload
``canaries_checked`` > 0): without one, nobody tried to reach the internet.
Gov PCs with no such report (none configured, or no report at all) are
unknown: the site passes only when, even were every unknown PC violating,
the count would stay within ``max_violations``; otherwise it is no data
(with the default 0: any unknown gov PC). No data when no PC of the site
reports; does not apply to a site whose PCs report but none from the gov
network.
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

NAME = "gov_isolation"
TITLE = {"zh": "政务网与互联网隔离", "en": "Gov network sealed"}
DEFAULTS: dict[str, Any] = {"max_violations": 0}
LIMITS = {"max_violations": (0, 10_000)}


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    limit = int(params["max_violations"])
    reports = {r.host: r for r in snap.isolation}
    gov = {d.host for d in snap.devices if d.network == "gov"} | set(reports)
    if not gov:
        if not snap.devices:
            return Result(NAME, NO_DATA, limit, None, reasons=(why("no_pcs"),))
        return Result(NAME, NOT_APPLICABLE, limit, None, reasons=(why("no_gov_pcs"),))
    bad = sorted(h for h, r in reports.items() if r.violated)
    blind = sorted(h for h, r in reports.items() if not r.violated and not r.canaries)
    silent = sorted(gov - set(reports))
    unknown: list[Reason] = []
    if blind:
        unknown.append(why("isolation_not_configured", n=len(blind), hosts=hosts_text(blind)))
    if silent:
        unknown.append(why("isolation_silent", n=len(silent), hosts=hosts_text(silent)))
    note = why("isolation_reported", reported=len(reports), gov=len(gov))
    worst = len(bad) + len(blind) + len(silent)
    if len(bad) > limit or worst <= limit:
        named = "; ".join(f"{h}: {reports[h].reasons}" for h in bad[:5])
        violated = (why("isolation_violated", n=len(bad),
                        hosts=named + (" ..." if len(bad) > 5 else "")),) if bad else ()
        ok = worst <= limit
        return judged(NAME, ok, limit, len(bad), None, (*violated, *unknown),
                      (note, *violated, *unknown) if ok else (note,))
    return Result(NAME, NO_DATA, limit, None, reasons=tuple(unknown), notes=(note,))
