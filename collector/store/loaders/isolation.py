"""isolation: each gov PC's latest isolation report, for gov_isolation.

Looks back ``rules.freshness_days``: a PC that reported a violation and then
fell silent keeps failing its site until then.
"""
from __future__ import annotations

from collector.compliance.facts import IsolationReport
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row

DAY_MS = 86_400_000


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    since = now_ms - round(org.freshness_days * DAY_MS)
    rows = read('SELECT "violated", "reasons" FROM "isolation" '  # noqa: S608
                f"WHERE \"network\" = 'gov' AND time > {since}ms "
                'GROUP BY "site", "host" ORDER BY time DESC LIMIT 1')
    return assemble(rows, org)


def assemble(rows: list[Row], org: Org) -> Loaded:
    """Pure: the latest row per (site, host) -> IsolationReports per site."""
    by_site: dict[str, list[IsolationReport]] = {}
    for r in rows:
        if org.site(r["site"]) is None or r.get("violated") is None:
            continue
        by_site.setdefault(r["site"], []).append(IsolationReport(
            r["host"], bool(r["violated"]), str(r.get("reasons") or ""), int(r["time"])))
    return Loaded({s: {"isolation": tuple(sorted(rs, key=lambda x: x.host))}
                   for s, rs in by_site.items()})
