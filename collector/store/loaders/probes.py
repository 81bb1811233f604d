"""probes: each host's latest result of each probe, for portal_reachable.

Looks back ``rules.freshness_days``; the rule applies its own, shorter age.
"Latest" is the newest result stamped at or before now, unless a failure
stamped ahead of now (a fast clock, at most collector.compliance.skew.AHEAD_MS)
exists: it counts at once, while a success stamped ahead waits for its time
(docs/compliance.md, "Clocks").
"""
from __future__ import annotations

from operator import attrgetter
from sys import intern
from typing import Any, Iterable

from collector.compliance import skew
from collector.compliance.facts import ProbeResult
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, latest_known
from netroom import schema

SERIES = (schema.SITE, schema.HOST, schema.NETWORK, schema.PROBE_TAG)


def queries(org: Org, now_ms: int) -> tuple[str, str]:
    """(the newest result per series up to now, its newest failure stamped ahead)."""
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Only numbers we computed go into the query text.
    select = f'SELECT "ok" FROM {schema.ident(schema.PROBE)} WHERE'  # noqa: S608
    last = f"{schema.group_by(*SERIES)} ORDER BY time DESC LIMIT 1"
    return (f"{select} time > {since}ms AND time <= {now_ms}ms {last}",
            f'{select} "ok" = false AND time > {now_ms}ms '
            f"AND time <= {skew.horizon(now_ms)}ms {last}")


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    known, ahead = (read(q) for q in queries(org, now_ms))
    return assemble([(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.PROBE_TAG],
                      r.get("ok"), int(r["time"]))
                     for r in latest_known(known, ahead, SERIES)], org)


def assemble(results: Iterable[tuple[str, str, str, str, Any, int]], org: Org) -> Loaded:
    """Pure: the latest (site, host, network, probe, ok, epoch ms) per series ->
    ProbeResults per site in ``org``."""
    by_site: dict[str, list[ProbeResult]] = {}
    for site, host, network, probe, ok, time_ms in results:
        if ok is None or site not in org.site_ids:
            continue  # strays are the devices loader's to report
        by_site.setdefault(site, []).append(ProbeResult(intern(host), intern(network),
                                                        intern(probe), bool(ok), time_ms))
    return Loaded({s: {"probes": tuple(sorted(ps, key=attrgetter("probe", "host")))}
                   for s, ps in by_site.items()})
