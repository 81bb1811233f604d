"""Verdicts for every site, roll-ups per unit, the procurement list, points.

Pure: takes Snapshots (see collector.store.snapshot) and returns values; the
collector's thread and ``netroom report`` do the reading and writing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from collector.compliance import rules
from collector.compliance.facts import Snapshots, Stray
from collector.compliance.model import Node, Org, Site
from collector.compliance.rules.base import Result


@dataclass(frozen=True)
class Verdict:
    """One site's results, one per rule that applies to it."""

    site: Site
    results: tuple[Result, ...]

    @property
    def ok(self) -> bool:
        """A site passes when every rule that applies passes (waived ones do)."""
        return all(r.ok for r in self.results)

    @property
    def needs(self) -> dict[str, float]:
        return needs(self.results)


@dataclass(frozen=True)
class Evaluation:
    now_ms: int  # when, epoch ms
    verdicts: tuple[Verdict, ...]
    unregistered: tuple[Stray, ...]


@dataclass(frozen=True)
class Rollup:
    """A unit's sites: how many, how many pass, and per rule (passing, applying)."""

    node: Node
    sites: int
    passing: int
    rules: Mapping[str, tuple[int, int]]


def evaluate_all(org: Org, snaps: Snapshots, site_ids: Iterable[str] | None = None
                 ) -> Evaluation:
    """Evaluate the sites in ``site_ids`` (default: all, in tree order)."""
    wanted = None if site_ids is None else set(site_ids)
    verdicts = tuple(
        Verdict(site, tuple(rules.evaluate(snaps.by_site[site.id], org.params(site))))
        for site in org.sites if wanted is None or site.id in wanted
    )
    return Evaluation(snaps.now_ms, verdicts, snaps.unregistered)


def needs(results: Iterable[Result]) -> dict[str, float]:
    """What to buy so that every failing rule passes, by shortfall key.

    Rules of one POOL are fixed by the same purchase (a gov PC for the room
    also serves staff): take the largest shortfall per key within a pool,
    then add the pools up.
    """
    pool_of = {r.NAME: getattr(r, "POOL", r.NAME) for r in rules.registry()}
    pools: dict[str, dict[str, float]] = {}
    for r in results:
        pool = pools.setdefault(pool_of.get(r.rule, r.rule), {})
        for key, n in r.shortfall.items():
            pool[key] = max(pool.get(key, 0.0), n)
    total: dict[str, float] = {}
    for pool in pools.values():
        for key, n in pool.items():
            total[key] = total.get(key, 0.0) + n
    return {k: v for k, v in total.items() if v > 0}


def rollups(org: Org, verdicts: Iterable[Verdict]) -> list[Rollup]:
    """One Rollup per unit (every node with children) that has a verdict below it."""
    verdicts = list(verdicts)
    out = []
    for node in org.nodes.values():
        if node.site is not None:
            continue
        below = [v for v in verdicts if any(i == node.id for _, i in v.site.path)]
        if not below:
            continue
        per_rule: dict[str, tuple[int, int]] = {}
        for v in below:
            for r in v.results:
                ok, n = per_rule.get(r.rule, (0, 0))
                per_rule[r.rule] = (ok + r.ok, n + 1)
        out.append(Rollup(node, len(below), sum(v.ok for v in below), per_rule))
    return out
