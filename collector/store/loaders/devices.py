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
from netroom import schema

SERIES = (schema.HOST, schema.SITE, schema.NETWORK, schema.ROLE)  # one per PC placement
GROUP = schema.group_by(*SERIES)


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    where = f"WHERE time > {since}ms"
    # Only numbers we computed go into the query text.
    inventory = schema.ident(schema.INVENTORY)
    last = read(f'SELECT last("host_id") AS host_id FROM {inventory} {where} {GROUP}')  # noqa: S608
    first = read(f'SELECT first("host_id") AS host_id FROM {inventory} {where} {GROUP}')  # noqa: S608
    return assemble(last, first, org)


def assemble(last: list[Row], first: list[Row], org: Org) -> Loaded:
    """Pure: rows of the two queries -> devices per site and strays."""
    started = {_series(r): int(r["time"]) for r in first}
    by_pc: dict[tuple[str, str], list[Row]] = {}
    for r in last:
        by_pc.setdefault((r[schema.HOST], str(r["host_id"])), []).append(r)
    devices: dict[str, list[Device]] = {}
    strays: list[Stray] = []
    for rows in by_pc.values():
        newest = max(rows, key=lambda r: int(r["time"]))
        began = started.get(_series(newest), int(newest["time"]))
        for r in rows:
            if r is not newest and int(r["time"]) < began:
                continue  # an older placement of the same PC
            seen = int(r["time"])
            site, host, network, role = (r[k] for k in (schema.SITE, schema.HOST,
                                                         schema.NETWORK, schema.ROLE))
            if org.site(site) is None:
                strays.append(Stray(site, host, network, role, seen))
            else:
                devices.setdefault(site, []).append(Device(host, network, role, seen))
    facts = {site: {"devices": tuple(sorted(ds, key=lambda d: d.host))}
             for site, ds in devices.items()}
    return Loaded(facts, tuple(strays))


def _series(r: Row) -> tuple[Any, ...]:
    return tuple(r[k] for k in SERIES)
