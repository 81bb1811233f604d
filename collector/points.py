"""Maps a validated message to InfluxDB points and line protocol.

A kind's scalar fields go to measurement ``<kind>``; each section item goes
to ``<kind>_<section>`` with the item's key as a tag (``metrics_nics`` tagged
``nic=eth0``...). Tags: site, host, network, role and the site's org path,
plus the kind's own tag fields (``Kind.tags``: ``probe=portal``).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from influxdb.line_protocol import _escape_tag, make_line, quote_ident

from agent.protocol import KINDS, Message

SERIES_CACHE_MAX = 200_000


class Point(NamedTuple):
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Any]
    time_ms: int


def section_tag(kind: str, section: str) -> str:
    """The tag name an item of ``section`` is keyed by (e.g. nic, disk)."""
    key = KINDS[kind].sections[section].key
    if key != "name":
        return key
    return {"nics": "nic", "diskio": "disk"}.get(section, section.rstrip("s"))


def to_points(msg: Message, extra_tags: Mapping[str, str] | None = None,
              time_ms: int | None = None) -> list[Point]:
    """All points of one message; ``time_ms`` overrides the payload's ts."""
    tags = {"site": msg.site, "host": msg.host, "network": msg.network, "role": msg.role}
    if extra_tags:
        tags.update(extra_tags)
    t = round(msg.ts * 1000) if time_ms is None else time_ms
    points = []
    spec = KINDS[msg.kind]
    fields = msg.fields
    if spec.tags:  # e.g. probe=portal: one series per probe, not one per host
        tags = {**tags, **{k: str(fields[k]) for k in spec.tags}}
        fields = {k: v for k, v in fields.items() if k not in spec.tags}
    if fields:
        points.append(Point(msg.kind, tags, fields, t))
    for name, items in msg.sections.items():
        key = spec.sections[name].key
        tag = section_tag(msg.kind, name)
        for item in items:
            fields = {k: v for k, v in item.items() if k != key}
            if fields:
                points.append(Point(f"{msg.kind}_{name}", {**tags, tag: str(item[key])},
                                    fields, t))
    return points


class LineEncoder:
    """Line protocol identical to the influxdb library's make_line, faster.

    A host sends the same series and field names every round, so their
    escaped forms (made by the library) are cached; values are formatted by
    the library's own rules (tests/test_points.py checks equality with
    make_line on every kind of value).
    """

    def __init__(self) -> None:
        self._series: dict[tuple[Any, ...], str] = {}
        self._keys: dict[str, str] = {}

    def line(self, p: Point) -> str:
        key = (p.measurement, *sorted(p.tags.items()))
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= SERIES_CACHE_MAX:
                self._series.clear()
            series = self._series[key] = str(make_line(p.measurement, p.tags))
        fields = []
        for name in sorted(p.fields):
            value = p.fields[name]
            if value is None:
                continue  # make_line drops None too
            k = self._keys.get(name)
            if k is None:
                k = self._keys[name] = _escape_tag(name) + "="
            if value is True or value is False:
                fields.append(k + str(value))
            elif isinstance(value, int):
                fields.append(f"{k}{value}i")
            elif isinstance(value, float):
                fields.append(k + repr(value))
            else:
                fields.append(k + quote_ident(str(value)))
        return f"{series} {','.join(fields)} {int(p.time_ms)}"

    def lines(self, points: list[Point]) -> list[str]:
        return [self.line(p) for p in points]
