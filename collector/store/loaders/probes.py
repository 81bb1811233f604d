"""probes: each host's latest result of each probe, for portal_reachable.

Looks back ``rules.freshness_days``; the rule applies its own, shorter age.
"""
from __future__ import annotations

from collector.compliance.facts import ProbeResult
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import schema

SERIES = (schema.SITE, schema.HOST, schema.NETWORK, schema.PROBE_TAG)


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    rows = read(f'SELECT "ok" FROM "{schema.PROBE}" WHERE time > {since}ms '  # noqa: S608
                f"{schema.group_by(*SERIES)} ORDER BY time DESC LIMIT 1")
    return assemble(rows, org)


def assemble(rows: list[Row], org: Org) -> Loaded:
    """Pure: the latest row per (site, host, network, probe) -> ProbeResults per site."""
    by_site: dict[str, list[ProbeResult]] = {}
    for r in rows:
        site = r[schema.SITE]
        if org.site(site) is None or r.get("ok") is None:
            continue  # strays are the devices loader's to report
        by_site.setdefault(site, []).append(ProbeResult(
            r[schema.HOST], r[schema.NETWORK], r[schema.PROBE_TAG], bool(r["ok"]), int(r["time"])))
    return Loaded({s: {"probes": tuple(sorted(ps, key=lambda p: (p.probe, p.host)))}
                   for s, ps in by_site.items()})
