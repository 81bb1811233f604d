"""InfluxDB line protocol: a Point and its encoding.

Times are epoch milliseconds (writes use precision=ms).

Escaping is what InfluxDB 1.x reads back byte for byte, found by writing
every case to a real influxd 1.6 and querying it back
(tests/test_lineprotocol_roundtrip.py keeps checking it):

- measurement: comma and space;
- tag keys, tag values, field keys: comma, equals sign and space, each
  after a backslash. A backslash itself is written as is: InfluxDB keeps a
  backslash that does not precede one of those three, so doubling it (as
  influxdb-python did) stores it doubled;
- string field values: in double quotes, with double quote and backslash
  after a backslash; every other character as is, line feeds included;
- integers with an ``i`` suffix, booleans ``True``/``False`` (both accepted
  by InfluxDB as booleans), floats as ``repr``; None fields are left out;
- an empty tag key or value leaves the tag out: InfluxDB has no empty tag
  values (``missing tag value``), and InfluxQL reads an absent tag as ''.

A name InfluxDB 1.x cannot store, whatever the escaping, raises ValueError
rather than making a line that is refused (400), stored altered, or split in
two (a line feed in a tag would start a line of the sender's choosing): a
measurement, tag key, tag value or field key that ends in a backslash (it
escapes the separator after it) or holds a line feed (a raw one ends the
line, an escaped one is stored with its backslash); so does a point without
fields. Names are checked once per series (cached), values are not checked
on this hot path: netroom.protocol.decode() refuses NaN, infinities,
integers outside int64 and strings that are not UTF-8 (lone surrogates),
refuses item keys that are not tag values, and collector.ingest.points
normalises path tags (mount ``C:\\`` is tagged ``C:``), so for a decoded
message nothing here raises and InfluxDB takes every line.

What differs from influxdb-python's make_line, the encoder used before: a
backslash in a name is no longer doubled, a line feed in a string value is
written as is (make_line wrote ``\\n``, stored as backslash and ``n``), and
the names above that InfluxDB cannot store raise ValueError. Series keys
without backslashes (every id: letters, digits, ``-``, ``_``, ``.``; Linux
mounts; NIC names) are the same as before.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, NamedTuple

SERIES_CACHE_MAX = 200_000

_NAME_ESCAPES = str.maketrans({" ": "\\ ", ",": "\\,", "=": "\\="})
_MEASUREMENT_ESCAPES = str.maketrans({" ": "\\ ", ",": "\\,"})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


class Point(NamedTuple):
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Any]
    time_ms: int


def escape_measurement(name: str) -> str:
    text = str(name)
    if not text or text[-1] == "\\" or "\n" in text:
        raise ValueError(f"measurement {text!r} cannot be written to InfluxDB")
    return text.translate(_MEASUREMENT_ESCAPES)


def escape_name(name: Any) -> str:
    """A tag key, tag value or field key; ValueError if InfluxDB cannot store it."""
    text = str(name)
    if text and (text[-1] == "\\" or "\n" in text):
        what = "ends in a backslash" if text[-1] == "\\" else "holds a line feed"
        raise ValueError(f"{text!r} {what}: not storable as an InfluxDB tag or field key")
    return text.translate(_NAME_ESCAPES)


def quote_string(value: str) -> str:
    """A string field value, quoted."""
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def series_key(measurement: str, tags: Mapping[str, Any]) -> str:
    """``measurement,k=v,...`` with tags sorted by key; empty keys/values dropped."""
    return _joined(measurement, sorted(tags.items()), escape_name)


def _joined(measurement: str, items: Iterable[tuple[Any, Any]],
            escape: Callable[[Any], str]) -> str:
    """series_key of tag (key, value) pairs already sorted by key, each escaped by
    ``escape`` (escape_name, or a memo of it)."""
    parts = [escape_measurement(measurement)]
    for k, v in items:
        key, value = escape(k), escape(v)
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
        self._names: dict[str, str] = {}  # tag keys and values, escaped

    def line(self, p: Point) -> str:
        """One line; ValueError for what InfluxDB cannot store (module docstring)."""
        key = (p.measurement, *sorted(p.tags.items()))
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= SERIES_CACHE_MAX:
                self._series.clear()
            series = self._series[key] = self._series_key(key)
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
        if not fields:
            raise ValueError(f"{p.measurement}: a point needs at least one field")
        return f"{series} {','.join(fields)} {int(p.time_ms)}"

    def _series_key(self, key: tuple[Any, ...]) -> str:
        """series_key of (measurement, *tags sorted by key), each tag key and value
        escaped once: the points of one write-back share most of them (their org
        path's ids and names), though each is a series of its own."""
        if len(self._names) >= SERIES_CACHE_MAX:
            self._names.clear()
        return _joined(key[0], key[1:], self._escaped)

    def _escaped(self, name: str) -> str:
        escaped = self._names.get(name)
        if escaped is None:
            escaped = self._names[name] = escape_name(name)
        return escaped

    def lines(self, points: list[Point]) -> list[str]:
        return [self.line(p) for p in points]
