"""Verdicts for every site, roll-ups per unit, the procurement list, points.

Pure: takes Snapshots (see collector.snapshot) and returns values; the
collector's thread and ``netroom report`` do the reading and writing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from collector import rules
from collector.points import Point
from collector.rules import Result
from collector.sites import Node, Org, Site
from collector.snapshot import Snapshots, Stray

ALL = "all"  # the `rule` tag of a site's overall point


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


def points(ev: Evaluation, org: Org) -> list[Point]:
    """``compliance`` points: one per site and rule, one per site with rule=all.

    Fields: required, actual (the rule's unit), ok (1 pass / 0 fail, so that
    mean(ok) is the share passing), waived (1/0), shortfall (sum of the
    rule's shortfall values) and shortfall_<key> per key.
    """
    out = []
    for v in ev.verdicts:
        tags = {**org.tags_for(v.site.id), "site": v.site.id}
        for r in v.results:
            fields: dict[str, Any] = {
                "required": float(r.required), "actual": float(r.actual),
                "ok": int(r.ok), "waived": int(bool(r.waived)),
                "shortfall": float(sum(r.shortfall.values())),
            }
            fields.update({f"shortfall_{k}": float(n) for k, n in r.shortfall.items()})
            out.append(Point("compliance", {**tags, "rule": r.rule}, fields, ev.now_ms))
        failed = sum(not r.ok for r in v.results)
        out.append(Point("compliance", {**tags, "rule": ALL},
                         {"ok": int(v.ok), "failed": failed}, ev.now_ms))
    return out
