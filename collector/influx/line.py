"""InfluxDB line protocol: a Point and its encoding.

Times are epoch milliseconds (writes use precision=ms).

Escaping follows the line-protocol spec, byte for byte as the influxdb-python
library (make_line) did, so stored series keys do not change:

- measurement: comma and space (newline written as ``\\n``);
- tag keys, tag values, field keys: comma, equals sign and space, plus
  backslash (doubled) and newline (written as ``\\n``);
- string field values: in double quotes, with double quote and backslash
  escaped (and newline written as ``\\n``);
- integers with an ``i`` suffix, booleans ``True``/``False`` (both accepted
  by InfluxDB as booleans), floats as ``repr``; None fields are left out;
- empty tag keys or values are left out (InfluxDB rejects them).

Known limits of that (inherited) escaping, as InfluxDB 1.6 reads it: a
backslash inside a tag value is stored doubled, a newline in a tag or string
value is stored as the two characters ``\\n``, and a tag value ending in a
backslash (a Windows mount ``C:\\``) makes the point unparseable (400).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

SERIES_CACHE_MAX = 200_000

_NAME_ESCAPES = str.maketrans({"\\": "\\\\", " ": "\\ ", ",": "\\,", "=": "\\=",
                               "\n": "\\n"})
_MEASUREMENT_ESCAPES = str.maketrans({" ": "\\ ", ",": "\\,", "\n": "\\n"})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


class Point(NamedTuple):
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Any]
    time_ms: int


def escape_measurement(name: str) -> str:
    return str(name).translate(_MEASUREMENT_ESCAPES)


def escape_name(name: Any) -> str:
    """A tag key, tag value or field key."""
    return str(name).translate(_NAME_ESCAPES)


def quote_string(value: str) -> str:
    """A string field value, quoted."""
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def series_key(measurement: str, tags: Mapping[str, Any]) -> str:
    """``measurement,k=v,...`` with tags sorted by key; empty keys/values dropped."""
    parts = [escape_measurement(measurement)]
    for k in sorted(tags):
        key, value = escape_name(k), escape_name(tags[k])
        if key and value:
            parts.append(f"{key}={value}")
    return ",".join(parts)


class LineEncoder:
    """Points to line protocol.

    A host sends the same series and field names every round, so their
    escaped forms are cached (tests/test_points.py pins the output).
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
            series = self._series[key] = series_key(p.measurement, p.tags)
        fields = []
        for name in sorted(p.fields):
            value = p.fields[name]
            if value is None:
                continue
            k = self._keys.get(name)
            if k is None:
                escaped = escape_name(name)
                if not escaped:
                    continue
                k = self._keys[name] = escaped + "="
            if value is True or value is False:
                fields.append(k + str(value))
            elif isinstance(value, int):
                fields.append(f"{k}{value}i")
            elif isinstance(value, float):
                fields.append(k + repr(value))
            else:
                fields.append(k + quote_string(str(value)))
        return f"{series} {','.join(fields)} {int(p.time_ms)}"

    def lines(self, points: list[Point]) -> list[str]:
        return [self.line(p) for p in points]
