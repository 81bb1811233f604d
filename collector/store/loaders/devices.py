"""devices: the PCs of each site, from each host's latest inventory.

An inventory counts while it is younger than ``rules.freshness_days``. A PC
is known by its host name together with its machine id (inventory
``host_id``): PCs called pc-01 at two sites are two PCs, and so are cloned
images with different names. When one PC has inventories under several
(site, network, role) series, only its newest series counts (it moved or was
re-assigned), unless the series overlap in time: then they are different
PCs that share a name and a cloned machine id, and each counts where it is.
"""
from __future__ import annotations

from typing import Any

from collector.compliance.facts import Device, Stray
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row

DAY_MS = 86_400_000
GROUP = 'GROUP BY "host", "site", "network", "role"'


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    since = now_ms - round(org.freshness_days * DAY_MS)
    where = f"WHERE time > {since}ms"
    # Only numbers we computed go into the query text.
    last = read(f'SELECT last("host_id") AS host_id FROM "inventory" {where} {GROUP}')  # noqa: S608
    first = read(f'SELECT first("host_id") AS host_id FROM "inventory" {where} {GROUP}')  # noqa: S608
    return assemble(last, first, org)


def assemble(last: list[Row], first: list[Row], org: Org) -> Loaded:
    """Pure: rows of the two queries -> devices per site and strays."""
    started = {_series(r): int(r["time"]) for r in first}
    by_pc: dict[tuple[str, str], list[Row]] = {}
    for r in last:
        by_pc.setdefault((r["host"], str(r["host_id"])), []).append(r)
    devices: dict[str, list[Device]] = {}
    strays: list[Stray] = []
    for rows in by_pc.values():
        newest = max(rows, key=lambda r: int(r["time"]))
        began = started.get(_series(newest), int(newest["time"]))
        for r in rows:
            if r is not newest and int(r["time"]) < began:
                continue  # an older placement of the same PC
            seen = int(r["time"])
            if org.site(r["site"]) is None:
                strays.append(Stray(r["site"], r["host"], r["network"], r["role"], seen))
            else:
                devices.setdefault(r["site"], []).append(
                    Device(r["host"], r["network"], r["role"], seen))
    facts = {site: {"devices": tuple(sorted(ds, key=lambda d: d.host))}
             for site, ds in devices.items()}
    return Loaded(facts, tuple(strays))


def _series(r: Row) -> tuple[Any, ...]:
    return (r["host"], r["site"], r["network"], r["role"])
