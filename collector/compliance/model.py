"""The org tree as data: units, sites (squadrons) with headcounts, rooms.

Parsed once from config.yaml by collector.compliance.orgconfig; everything
else reads these frozen values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from collector.compliance.register import MinSpec
from netroom.central import Settings
from netroom.schema import SITE, name_tag, parse_window, tag_text


@dataclass(frozen=True)
class Room:
    """The network room's required opening: windows "HH:MM-HH:MM" in ``timezone``.

    ``days``: ISO weekdays (1 = Monday) the windows apply on.
    """

    open: tuple[str, ...] = ("00:00-24:00",)
    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    timezone: str = "Asia/Shanghai"
    min_online: int = 1
    holidays: tuple[str, ...] = ()  # ISO dates (local) on which no opening is required

    @cached_property
    def windows(self) -> tuple[tuple[int, int], ...]:
        """``open`` as (start, end) minutes of the day (parsed once: a pass over a
        bureau's rooms asks for them tens of thousands of times)."""
        out = []
        for text in self.open:
            window = parse_window(text)
            if window is None:  # orgconfig refuses these; a Room built in code may not
                raise ValueError(f"not a window: {text!r}")
            out.append(window)
        return tuple(out)


@dataclass(frozen=True)
class Site:
    """A leaf of the tree: one squadron with its headcounts."""

    id: str
    name: str
    path: tuple[tuple[str, str], ...]  # ancestors as (level, id), root first
    cadres: int = 0
    staff: int = 0
    classes: int = 0
    room: Room = field(default_factory=Room)
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What its agents run (netroom.central): its `agents:` block over its
    # units', with its testers and per-PC sections; published by the collector.
    agents: Settings | None = None
    # The least its PCs must have (its `min_spec:` over its units'); None: no minimum.
    min_spec: MinSpec | None = None

    @property
    def settings(self) -> Settings:
        return self.agents if self.agents is not None else Settings(self.id, {})


@dataclass(frozen=True)
class Node:
    """One node of the tree; ``site`` is set on leaves, ``children`` on units.

    ``agents``: the node's own `agents:` block (settings keys only), as written.
    """

    id: str
    name: str
    level: str
    children: tuple[Node, ...] = ()
    site: Site | None = None
    agents: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Org:
    """The parsed ``sites`` and ``rules`` sections.

    ``rules``: the configured (not default) parameters per rule name;
    ``freshness_days``: how old (days) an inventory may be and still count;
    ``evaluate_interval_s``: seconds between the collector's evaluations.
    """

    roots: tuple[Node, ...] = ()
    nodes: Mapping[str, Node] = field(default_factory=dict)  # every node by id, tree order
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    freshness_days: float = 7.0
    evaluate_interval_s: float = 300.0

    @cached_property
    def sites(self) -> list[Site]:
        """Every site, in tree order (computed once: the tree does not change)."""
        return [n.site for n in self.nodes.values() if n.site is not None]

    @cached_property
    def site_ids(self) -> frozenset[str]:
        """Every site's id (computed once)."""
        return frozenset(s.id for s in self.sites)

    def site(self, site_id: str) -> Site | None:
        node = self.nodes.get(site_id)
        return node.site if node is not None else None

    def sites_under(self, node_id: str) -> list[Site]:
        """The sites at or below ``node_id``, in tree order."""
        return [s for s in self.sites
                if s.id == node_id or any(i == node_id for _, i in s.path)]

    def params(self, site: Site) -> dict[str, dict[str, Any]]:
        """Configured rule parameters for ``site``: its own over the globals."""
        names = set(self.rules) | set(site.rules)
        return {n: {**self.rules.get(n, {}), **site.rules.get(n, {})} for n in names}

    def settings_versions(self) -> dict[str, str]:
        """The version of every site's agent settings (netroom.central), by site id."""
        return {s.id: s.settings.version for s in self.sites}

    def tags_for(self, site_id: str) -> dict[str, str]:
        """The org path tags for points of ``site_id``: level -> ancestor id,
        ``<level>_name`` -> its name, and ``site_name`` (one value per site: no
        series of their own; legends, tables and alerts show names, filters
        use ids). {} for a stray site."""
        return dict(self._path_tags.get(site_id, {}))

    def level_tags(self) -> list[str]:
        """The tag keys of the units above the sites (levels and their names),
        sorted: what the roll-ups group a unit by (not ``site_name``)."""
        site_name = name_tag(SITE)
        return sorted({k for tags in self._path_tags.values() for k in tags if k != site_name})

    @cached_property
    def _path_tags(self) -> dict[str, dict[str, str]]:
        """tags_for of every site, computed once (ingest asks for every message)."""
        out = {}
        for site in self.sites:
            tags = dict(site.path)
            for level, unit in site.path:
                node = self.nodes.get(unit)
                tags[name_tag(level)] = tag_text(node.name if node else unit, unit)
            tags[name_tag(SITE)] = tag_text(site.name, site.id)
            out[site.id] = tags
        return out
