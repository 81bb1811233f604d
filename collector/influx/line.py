"""InfluxDB line protocol: a Point and its encoding.

Times are epoch milliseconds (writes use precision=ms).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from influxdb.line_protocol import _escape_tag, make_line, quote_ident

SERIES_CACHE_MAX = 200_000


class Point(NamedTuple):
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Any]
    time_ms: int


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
