"""Builds every site's Snapshot from InfluxDB: one loader per kind of fact.

A loader is a function ``load(read, org, now_ms) -> Loaded`` in its own
module under collector/store/loaders/, registered by one line in ``LOADERS``.
It runs its InfluxQL through ``read`` and returns, per site id, values for
the Snapshot fields it owns (``{"devices": (...)}``), plus the hosts it saw
reporting a site that is not in the tree. Loaders only read; the rules stay
pure because everything they see is in the Snapshot.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from collector.compliance.facts import Snapshot, Snapshots, Stray
from collector.compliance.model import Org
from collector.store.loaders import (
    agents,
    availability,
    bandwidth,
    devices,
    isolation,
    probes,
    settings,
)
from collector.store.rows import Loaded, Loader, Read, reader

__all__ = ["LOADERS", "VERDICT_LOADERS", "build", "reader"]

# What the rules and `netroom report` read; one line each.
VERDICT_LOADERS: tuple[Loader, ...] = (
    devices.load,
    bandwidth.load,
    availability.load,
    probes.load,
    isolation.load,
    settings.load,
)
# Every loader: the collector's pass also writes the agents' roll-up.
LOADERS: tuple[Loader, ...] = (*VERDICT_LOADERS, agents.load)


def build(read: Read, org: Org, now_ms: int,
          loaders: tuple[Loader, ...] = LOADERS) -> Snapshots:
    """Run each loader once and assemble a Snapshot per site of ``org``."""
    return assemble((load(read, org, now_ms) for load in loaders), org, now_ms)


def assemble(found: Iterable[Loaded], org: Org, now_ms: int) -> Snapshots:
    """Pure: loaders' findings -> a Snapshot per site of ``org`` and the strays
    (each host's latest report only). collector/store/state/snapshot.py uses it too."""
    facts: dict[str, dict[str, Any]] = {}
    strays: dict[tuple[str, str], Stray] = {}
    for got in found:
        for site_id, values in got.facts.items():
            facts.setdefault(site_id, {}).update(values)
        for s in got.unregistered:
            old = strays.get((s.site, s.host))
            if old is None or s.last_seen_ms > old.last_seen_ms:
                strays[(s.site, s.host)] = s
    snaps = {
        site.id: dataclasses.replace(Snapshot(site, (), now_ms), **facts.get(site.id, {}))
        for site in org.sites
    }
    return Snapshots(now_ms, snaps, tuple(sorted(strays.values(),
                                                 key=lambda s: (s.site, s.host))))
