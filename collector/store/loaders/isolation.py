"""isolation: each gov PC's latest isolation report, for gov_isolation.

Looks back ``rules.freshness_days``: a PC that reported a violation and then
fell silent keeps failing its site until then. ``latest`` is also what
``netroom isolation`` lists.
"""
from __future__ import annotations

from collector.compliance.facts import IsolationReport
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import schema


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    return assemble(latest(read, org, now_ms), org)


def latest(read: Read, org: Org, now_ms: int) -> list[Row]:
    """The latest isolation row per gov (site, host) within ``rules.freshness_days``,
    strays included: time, site, host, violated, reasons, reached."""
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Only numbers we computed go into the query text.
    return read(f'SELECT "violated", "reasons", "reached" FROM "{schema.ISOLATION}" '  # noqa: S608
                f"WHERE {schema.tag_is(schema.NETWORK, 'gov')} AND time > {since}ms "
                f"{schema.BY_SITE_HOST} ORDER BY time DESC LIMIT 1")


def assemble(rows: list[Row], org: Org) -> Loaded:
    """Pure: the latest row per (site, host) -> IsolationReports per site."""
    by_site: dict[str, list[IsolationReport]] = {}
    for r in rows:
        site = r[schema.SITE]
        if org.site(site) is None or r.get("violated") is None:
            continue
        by_site.setdefault(site, []).append(IsolationReport(
            r[schema.HOST], bool(r["violated"]), str(r.get("reasons") or ""), int(r["time"])))
    return Loaded({s: {"isolation": tuple(sorted(rs, key=lambda x: x.host))}
                   for s, rs in by_site.items()})
