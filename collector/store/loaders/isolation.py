"""isolation: each gov PC's latest isolation report, for gov_isolation.

Looks back ``rules.freshness_days``: a PC that reported a violation and then
fell silent keeps failing its site until then. "Latest" is the newest report
stamped at or before now, unless the PC also sent a violation stamped ahead
of now (its clock runs fast, at most collector.compliance.skew.AHEAD_MS):
that one counts at once, while a clean report stamped ahead waits for its
time, so a report from a fast (or once fast) clock never hides a violation
sent after it (docs/compliance.md, "Clocks"). ``latest`` is also what
``netroom isolation`` lists.
"""
from __future__ import annotations

from operator import attrgetter
from sys import intern
from typing import Any, Iterable

from collector.compliance import skew
from collector.compliance.facts import IsolationReport
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row, latest_known
from netroom import schema

KEY = (schema.SITE, schema.HOST)


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    return assemble([(r[schema.SITE], r[schema.HOST], r.get("violated"), r.get("reasons"),
                      r.get("canaries_checked"), int(r["time"]))
                     for r in latest(read, org, now_ms)], org)


def queries(org: Org, now_ms: int) -> tuple[str, str]:
    """(the newest report per gov PC up to now, its newest violation stamped ahead)."""
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Only numbers we computed go into the query text.
    select = (f'SELECT "violated", "reasons", "reached", "canaries_checked" '  # noqa: S608
              f"FROM {schema.ident(schema.ISOLATION)} "
              f"WHERE {schema.tag_is(schema.NETWORK, 'gov')}")
    last = f"{schema.BY_SITE_HOST} ORDER BY time DESC LIMIT 1"
    return (f"{select} AND time > {since}ms AND time <= {now_ms}ms {last}",
            f'{select} AND "violated" = true AND time > {now_ms}ms '
            f"AND time <= {skew.horizon(now_ms)}ms {last}")


def latest(read: Read, org: Org, now_ms: int) -> list[Row]:
    """The latest isolation row per gov (site, host) within ``rules.freshness_days``,
    strays included: time, site, host, violated, reasons, reached, canaries_checked."""
    known, ahead = (read(q) for q in queries(org, now_ms))
    return latest_known(known, ahead, KEY)


def assemble(reports: Iterable[tuple[str, str, Any, Any, Any, int]], org: Org) -> Loaded:
    """Pure: the latest (site, host, violated, reasons, canaries_checked, epoch ms)
    per gov PC -> IsolationReports per site in ``org``."""
    by_site: dict[str, list[IsolationReport]] = {}
    for site, host, violated, reasons, checked, time_ms in reports:
        if violated is None or site not in org.site_ids:
            continue
        # checked: how many canaries it has; absent: not said.
        by_site.setdefault(site, []).append(IsolationReport(
            intern(host), bool(violated), str(reasons or ""), time_ms,
            None if checked is None else int(checked)))
    return Loaded({s: {"isolation": tuple(sorted(rs, key=attrgetter("host")))}
                   for s, rs in by_site.items()})
