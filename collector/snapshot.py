"""Builds every site's Snapshot from InfluxDB: one loader per kind of fact.

A loader is a function ``load(read, org, now_ms) -> Loaded`` in its own
module under collector/loaders/, registered by one line in ``loaders()``.
It runs its InfluxQL through ``read`` and returns, per site id, values for
the Snapshot fields it owns (``{"devices": (...)}``), plus the hosts it saw
reporting a site that is not in the tree. Loaders only read; the rules stay
pure because everything they see is in the Snapshot.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping

from collector.influx import InfluxSink
from collector.rules import Snapshot
from collector.sites import Org

Row = Dict[str, Any]  # one InfluxQL result row: columns and the series' tags
Read = Callable[[str], List[Row]]


@dataclass(frozen=True)
class Stray:
    """A host whose latest report names a site missing from the tree.

    ``last_seen_ms``: time of that report, epoch ms.
    """

    site: str
    host: str
    network: str
    role: str
    last_seen_ms: int


@dataclass(frozen=True)
class Loaded:
    """One loader's findings: Snapshot field values by site id, and strays."""

    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    unregistered: tuple[Stray, ...] = ()


Loader = Callable[[Read, Org, int], Loaded]


def loaders() -> tuple[Loader, ...]:
    """Every loader; one line each."""
    from collector.loaders import availability, bandwidth, devices, isolation, probes

    return (
        devices.load,
        bandwidth.load,
        availability.load,
        probes.load,
        isolation.load,
    )


@dataclass(frozen=True)
class Snapshots:
    """Every site's Snapshot at ``now_ms`` (epoch ms), and the strays."""

    now_ms: int
    by_site: Mapping[str, Snapshot]
    unregistered: tuple[Stray, ...]


def build(read: Read, org: Org, now_ms: int) -> Snapshots:
    """Run every loader once and assemble a Snapshot per site of ``org``."""
    facts: dict[str, dict[str, Any]] = {}
    strays: dict[tuple[str, str], Stray] = {}
    for load in loaders():
        got = load(read, org, now_ms)
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


def reader(sink: InfluxSink) -> Read:
    """``read(q)`` over ``sink``: rows with tags merged in, times in epoch ms.

    Raises collector.influx.SinkError when InfluxDB cannot answer.
    """
    def read(q: str) -> list[Row]:
        rows: list[Row] = []
        for (_, tags), points in sink.query(q).items():
            rows.extend({**p, **(tags or {})} for p in points)
        return rows

    return read
