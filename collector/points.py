"""Maps a validated message to InfluxDB points and line protocol.

A kind's scalar fields go to measurement ``<kind>``; each section item goes
to ``<kind>_<section>`` with the item's key as a tag (``metrics_nics`` tagged
``nic=eth0``...). Tags: site, host, network, role and the site's org path.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from influxdb.line_protocol import make_line

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
    if msg.fields:
        points.append(Point(msg.kind, tags, msg.fields, t))
    spec = KINDS[msg.kind]
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
    """Line protocol via the influxdb library, caching escaped series keys.

    A host sends the same series every round, so escaping its measurement
    and tags once saves about two thirds of the encoding time.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[Any, ...], str] = {}

    def line(self, p: Point) -> str:
        key = (p.measurement, *sorted(p.tags.items()))
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= SERIES_CACHE_MAX:
                self._series.clear()
            series = self._series[key] = str(make_line(p.measurement, p.tags))
        # make_line with an empty measurement yields " fields time".
        return series + str(make_line("", None, p.fields, p.time_ms))

    def lines(self, points: list[Point]) -> list[str]:
        return [self.line(p) for p in points]
