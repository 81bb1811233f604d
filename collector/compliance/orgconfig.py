"""The org tree (bureau -> detachment -> battalion -> squadron) and its sites.

``sites:`` in config.yaml is a list of nodes; a node with ``children`` is a
unit, a node without is a site (a squadron, with headcounts and a room).
``rules:`` holds the defaults for every rule, a site's own ``rules:``
override them. Any node may hold an ``agents:`` block, the settings its
agents run (netroom.central), inherited down the tree; a site's block may
also name its speed ``testers`` and per-PC ``hosts`` sections. All are
parsed once, at start-up, into a frozen Org; every problem is one
ConfigError line naming the key, and settings an agent would refuse are
refused here. docs/compliance.md and docs/settings.md show the layout.
"""
from __future__ import annotations

import re
from datetime import date
from types import ModuleType
from typing import Any, Mapping

import zoneinfo

from collector.compliance.model import Node, Org, Room, Site
from collector.compliance.register import MinSpec, read_min_spec
from collector.compliance.ruleparams import read_rules
from collector.compliance.rules import registry
from netroom import central, protocol, schema
from netroom.schema import SITE_ID_RE, SITE_ID_TEXT, parse_window, reserved_tags
from netroom.settings import ConfigError, Section

LEVELS = ("bureau", "detachment", "battalion", "squadron")
LEVEL_RE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
GLOBAL_RULE_KEYS = ("freshness_days", "evaluate_interval")


def read_org(sites: Any, rules: Any) -> Org:
    """Parse the ``sites`` and ``rules`` sections; raise ConfigError."""
    known = {r.NAME: r for r in registry()}
    s = Section(rules, "rules")
    freshness = s.number("freshness_days", 7, 0.01, 3650)
    interval = s.number("evaluate_interval", 300, 1, 86400)
    defaults = read_rules(s, known, GLOBAL_RULE_KEYS)
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        raise ConfigError("sites: must be a list of nodes (id, name, children or headcounts)")
    nodes: dict[str, Node] = {}
    seen: set[str] = set()  # agent settings found good (central.check)
    roots = tuple(_read_node(item, f"sites[{i}]", "sites", (), known, nodes, reserved_tags(),
                             {}, seen)
                  for i, item in enumerate(sites))
    return Org(roots, nodes, defaults, freshness, interval)


def _read_node(data: Any, where: str, parent: str, ancestors: tuple[tuple[str, str], ...],
               known: Mapping[str, ModuleType], nodes: dict[str, Node],
               reserved: frozenset[str], inherited: Mapping[str, Any], seen: set[str],
               spec: MinSpec | None = None) -> Node:
    """``where``: the node's key until its id is known; then keys are ``parent.id``.
    ``inherited``: the agent settings of the node's units, merged (nearest wins);
    ``spec``: their minimum specification (hardware register), likewise."""
    s = Section(data, where)
    node_id = s.text("id")
    if not SITE_ID_RE.match(node_id):
        raise ConfigError(f"{where}.id: must be {SITE_ID_TEXT}, got {node_id!r}")
    if node_id in nodes:
        raise ConfigError(f"{where}.id: {node_id!r} is used twice in the tree")
    s.path = key = f"{parent}.{node_id}"
    name = s.text("name", node_id)
    depth = len(ancestors)
    children = s.raw("children")
    block, testers, hosts = central.read_block(s.raw("agents"), f"{key}.agents",
                                               site=children is None)
    effective = central.merge(inherited, block)
    spec = read_min_spec(s.raw("min_spec"), f"{key}.min_spec", spec)
    if children is None:  # a leaf: a site
        level = s.text("level", "squadron")
        agents = central.Settings(node_id, effective, testers, hosts)
        central.check_site(agents, f"{key}.agents", seen)
        site = Site(
            id=node_id, name=name, path=ancestors,
            cadres=_headcount(s, "cadres"),
            staff=_headcount(s, "staff"),
            classes=s.integer("classes", 0, 0, 100_000),
            room=_read_room(s.raw("room"), f"{key}.room"),
            rules=read_rules(Section(s.raw("rules"), f"{key}.rules"), known, ()),
            agents=agents,
            min_spec=spec,
        )
        s.done()
        nodes[node_id] = Node(node_id, name, level, (), site, block)
        return nodes[node_id]
    level = s.text("level", LEVELS[depth] if depth < len(LEVELS) else f"level{depth + 1}")
    if not LEVEL_RE.match(level) or level in reserved:
        raise ConfigError(f"{key}.level: {level!r} cannot be a tag name (a-z, 0-9, '_'; "
                          f"not {', '.join(sorted(reserved))})")
    if any(lv == level for lv, _ in ancestors):
        raise ConfigError(f"{key}.level: {level!r} is already an ancestor's level")
    if level.endswith((schema.NAME_SUFFIX, schema.LABEL_SUFFIX)):
        raise ConfigError(f"{key}.level: {level!r} cannot end in {schema.NAME_SUFFIX!r} or "
                          f"{schema.LABEL_SUFFIX!r} (the tags of units' names are so called)")
    if not isinstance(children, list) or not children:
        raise ConfigError(f"{key}.children: must be a non-empty list (a site has no children)")
    for head in ("cadres", "staff", "classes", "room", "rules"):
        if head in s.data:
            raise ConfigError(f"{key}.{head}: only sites (nodes without children) have {head}")
    s.done()
    for network in protocol.NETWORKS:  # a unit's errors name the unit, not each site
        central.check(effective, f"{key}.agents", network, seen)
    nodes[node_id] = Node(node_id, name, level)  # claim the id and tree order first
    path = (*ancestors, (level, node_id))
    kids = tuple(_read_node(c, f"{key}.children[{i}]", key, path, known, nodes, reserved,
                            effective, seen, spec)
                 for i, c in enumerate(children))
    nodes[node_id] = Node(node_id, name, level, kids, agents=block)
    return nodes[node_id]


def _headcount(s: Section, name: str) -> int:
    if s.raw(name) is None:
        raise ConfigError(f"{s.key(name)}: required (a number of people, 0 if none)")
    return s.integer(name, None, 0, 100_000)


def _read_room(data: Any, key: str) -> Room:
    s = Section(data, key)
    raw_open = s.raw("open")
    windows = tuple(Room().open if raw_open is None else s.seq("open"))
    if not windows:
        raise ConfigError(f"{key}.open: must list at least one window, e.g. \"00:00-24:00\"")
    spans = sorted(_window(f"{key}.open[{i}]", w) for i, w in enumerate(windows))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise ConfigError(f"{key}.open: windows overlap")
    days = s.seq("days") if s.raw("days") is not None else list(Room().days)
    for d in days:
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7:
            raise ConfigError(f"{key}.days: must be ISO weekdays 1 (Monday) to 7, got {d!r}")
    if not days or len(set(days)) != len(days):
        raise ConfigError(f"{key}.days: must list each weekday at most once, at least one")
    tz = s.text("timezone", Room().timezone)
    if not _valid_timezone(tz):
        raise ConfigError(f"{key}.timezone: unknown time zone {tz!r} (e.g. Asia/Shanghai)")
    room = Room(tuple(str(w) for w in windows), tuple(sorted(days)), tz,
                s.integer("min_online", 1, 1, 10_000),
                tuple(_holiday(f"{key}.holidays[{i}]", d)
                      for i, d in enumerate(s.seq("holidays"))))
    s.done()
    return room


def _holiday(key: str, value: Any) -> str:
    """A date as YAML reads it (unquoted 2025-10-01 is a date) -> "2025-10-01"."""
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(f"{key}: must be a date YYYY-MM-DD, got {value!r}") from None


def _window(key: str, value: Any) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> (start, end) in minutes of the day; 24:00 ends a day."""
    window = parse_window(value) if isinstance(value, str) else None
    # Written as reports show it: two-digit hours, no spaces.
    if window is None or value != schema.format_window(*window):
        raise ConfigError(f"{key}: must be \"HH:MM-HH:MM\", got {value!r}")
    start, end = window
    if start >= schema.DAY_MINUTES or end > schema.DAY_MINUTES or start >= end:
        raise ConfigError(f"{key}: {value!r} must start before it ends, within 00:00-24:00 "
                          "(split a window that crosses midnight in two)")
    return start, end


def _valid_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
