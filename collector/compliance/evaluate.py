"""Verdicts for every site, roll-ups per unit, the procurement list, points.

Pure: takes Snapshots (see collector.store.snapshot) and returns values; the
collector's thread and ``netroom report`` do the reading and writing.

A site's status: ``fail`` if any rule fails, else ``no_data`` if any rule
that applies has no data (or nothing at all was heard from the site), else
``pass`` (waived rules count as passing).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Mapping

from collector.compliance import rules
from collector.compliance.facts import Clone, Snapshot, Snapshots, Stray
from collector.compliance.model import Node, Org, Site
from collector.compliance.register import Replace
from collector.compliance.rules.base import (
    FAIL,
    NO_DATA,
    NOT_APPLICABLE,
    PASS,
    WAIVED,
    Reason,
    Result,
    why,
)
from netroom.central import SettingsState

SITE_STATUSES = (PASS, FAIL, NO_DATA)  # what a site can be


@dataclass(frozen=True)
class Verdict:
    """One site's results, one per rule (every rule, in RULES order).

    ``reasons``: why the site as a whole has no data (it sent nothing).
    ``clones``: its PCs cloned from one image (``Snapshot.clones``), to be
    fixed; they do not change any verdict (each clone counts as a PC).
    ``settings``: what settings each PC runs (``Snapshot.settings``); PCs
    not on their site's settings do not change any verdict either.
    """

    site: Site
    results: tuple[Result, ...]
    reasons: tuple[Reason, ...] = ()
    clones: tuple[Clone, ...] = ()
    settings: tuple[SettingsState, ...] = ()

    @property
    def status(self) -> str:
        """fail if any rule fails; else no_data if a rule that applies has no
        data, or the site is silent; else pass."""
        states = {r.status for r in self.results}
        if FAIL in states:
            return FAIL
        if NO_DATA in states or self.reasons:
            return NO_DATA
        return PASS

    @property
    def ok(self) -> bool:
        """The site passes: every rule that applies passes (waived ones do)."""
        return self.status == PASS

    @property
    def needs(self) -> dict[str, float]:
        return needs(self.results)


@dataclass(frozen=True)
class Evaluation:
    now_ms: int  # when, epoch ms
    verdicts: tuple[Verdict, ...]
    unregistered: tuple[Stray, ...]
    # PCs below their site's min_spec (register.to_replace; the report reads
    # the register only when some site has one).
    replace: tuple[Replace, ...] = ()


@dataclass(frozen=True)
class Purchase:
    """One line of the procurement list (``procurement``).

    ``kind``: ``site`` (what one site needs), ``unit`` (the subtotal of a
    unit's sites, after them) or ``total`` (the grand total, last).
    ``node``: the site's or unit's node, None for the total; ``path``: its
    ancestors, root first; ``needs``: to add, by shortfall key (a key
    missing is 0); ``sites``: the sites with a need it counts.
    """

    kind: str
    node: Node | None
    path: tuple[Node, ...]
    needs: Mapping[str, float]
    sites: int


@dataclass(frozen=True)
class Rollup:
    """A unit's sites: how many, how many per site status (pass, fail,
    no_data), and per rule how many sites per rule status (the five)."""

    node: Node
    sites: int
    statuses: Mapping[str, int]
    rules: Mapping[str, Mapping[str, int]]

    @property
    def passing(self) -> int:
        return self.statuses.get(PASS, 0)

    @property
    def failing(self) -> int:
        return self.statuses.get(FAIL, 0)

    @property
    def no_data(self) -> int:
        return self.statuses.get(NO_DATA, 0)


def silent(snap: Snapshot) -> bool:
    """Nothing at all heard from the site: no PC, probe, isolation report,
    speed test or room heartbeat in the loaders' windows."""
    return not (snap.devices or snap.probes or snap.isolation
                or any(b.ts_ms or b.error_ms for b in snap.bandwidth)
                or (snap.room_now is not None and snap.room_now.room_pcs > 0)
                or any(d.open_s > 0 for d in snap.availability))


def evaluate_all(org: Org, snaps: Snapshots, site_ids: Iterable[str] | None = None
                 ) -> Evaluation:
    """Evaluate the sites in ``site_ids`` (default: all, in tree order)."""
    wanted = None if site_ids is None else set(site_ids)
    verdicts = tuple(verdict(org, site, snaps.by_site[site.id])
                     for site in org.sites if wanted is None or site.id in wanted)
    return Evaluation(snaps.now_ms, verdicts, snaps.unregistered)


def verdict(org: Org, site: Site, snap: Snapshot) -> Verdict:
    """Every rule on one site; a silent site's no-data results all say so."""
    results = tuple(rules.evaluate(snap, org.params(site)))
    if not silent(snap):
        return Verdict(site, results, clones=snap.clones, settings=snap.settings)
    reason = why("site_silent", days=org.freshness_days)
    results = tuple(dataclasses.replace(r, reasons=(reason,)) if r.status == NO_DATA else r
                    for r in results)
    return Verdict(site, results, (reason,), snap.clones, snap.settings)


def needs(results: Iterable[Result]) -> dict[str, float]:
    """What to buy so that every failing rule passes, by shortfall key.

    Only failures carry a shortfall (no data is no evidence of a need). Rules
    of one POOL are fixed by the same purchase (a gov PC for the room also
    serves staff): take the largest shortfall per key within a pool, then
    add the pools up.
    """
    pool_of = {r.NAME: getattr(r, "POOL", r.NAME) for r in rules.registry()}
    pools: dict[str, dict[str, float]] = {}
    for r in results:
        if r.status != FAIL:
            continue
        pool = pools.setdefault(pool_of.get(r.rule, r.rule), {})
        for key, n in r.shortfall.items():
            pool[key] = max(pool.get(key, 0.0), n)
    total: dict[str, float] = {}
    for pool in pools.values():
        for key, n in pool.items():
            total[key] = total.get(key, 0.0) + n
    return {k: v for k, v in total.items() if v > 0}


def procurement(org: Org, verdicts: Iterable[Verdict]) -> list[Purchase]:
    """The procurement list, in tree order: each site that needs something,
    each unit's subtotal after its sites and sub-units (a lone root's is the
    grand total, not repeated), then the grand total; [] when nothing is
    needed. Only failures with a shortfall buy anything (``needs``)."""
    wanted = {v.site.id: got for v in verdicts if (got := v.needs)}
    if not wanted:
        return []
    lines: list[Purchase] = []
    subtotals = len(org.roots) > 1

    def walk(node: Node, path: tuple[Node, ...]) -> tuple[dict[str, float], int]:
        if node.site is not None:
            need = wanted.get(node.id)
            if need is None:
                return {}, 0
            lines.append(Purchase("site", node, path, need, 1))
            return dict(need), 1
        total: dict[str, float] = {}
        count = 0
        for child in node.children:
            need, n = walk(child, (*path, node))
            for key, x in need.items():
                total[key] = total.get(key, 0.0) + x
            count += n
        if count and (path or subtotals):
            lines.append(Purchase("unit", node, path, total, count))
        return total, count

    grand: dict[str, float] = {}
    count = 0
    for root in org.roots:
        need, n = walk(root, ())
        for key, x in need.items():
            grand[key] = grand.get(key, 0.0) + x
        count += n
    lines.append(Purchase("total", None, (), grand, count))
    return lines


def rollups(org: Org, verdicts: Iterable[Verdict]) -> list[Rollup]:
    """One Rollup per unit (every node with children) that has a verdict below it.

    Rules switched off for a site are not counted for it.
    """
    under: dict[str, list[Verdict]] = {}
    for v in verdicts:
        for _, unit in v.site.path:
            under.setdefault(unit, []).append(v)
    out = []
    for node in org.nodes.values():
        if node.site is not None:
            continue
        below = under.get(node.id, [])
        if not below:
            continue
        statuses = dict.fromkeys(SITE_STATUSES, 0)
        per_rule: dict[str, dict[str, int]] = {}
        for v in below:
            statuses[v.status] += 1
            for r in v.results:
                if not r.disabled:
                    counts = per_rule.setdefault(r.rule, dict.fromkeys(rules.STATUSES, 0))
                    counts[r.status] += 1
        out.append(Rollup(node, len(below), statuses, per_rule))
    return out


def passing(counts: Mapping[str, int]) -> int:
    """Sites passing a rule, waivers included."""
    return counts.get(PASS, 0) + counts.get(WAIVED, 0)


def checked(counts: Mapping[str, int]) -> int:
    """Sites with a verdict on a rule (pass, fail or waived): those it applies to
    that had data."""
    return sum(n for s, n in counts.items() if s not in (NO_DATA, NOT_APPLICABLE))
