r"""Maps a validated message to InfluxDB points and line protocol.

The storage layout (docs/protocol.md, "Storage"): a kind's
scalar fields go to measurement ``<kind>``, tagged with site, host, network,
role and the site's org path, plus the kind's own tag fields (``Kind.tags``:
``probe=portal``). Sections do not make series of their own by default, so a
PC makes at most six series:

- ``inventory``: one point per message; its sections are the string fields
  ``disks`` and ``nics``, the validated items as compact JSON arrays (keys
  sorted), with ``disk_count``, ``disk_total_bytes`` and ``nic_count``;
- ``metrics``: the PC's totals over its sections (``metrics_totals``): disk
  bytes (and the fullest mount's percent), disk I/O counters, NIC counters
  (loopback left out), the speed of the NICs that are up and their count;
- ``metrics_disks``, ``metrics_diskio``, ``metrics_nics``: one point per item,
  only for the sections listed in ``collector.item_series`` (none by
  default), with the item's key as a tag (``nic=eth0``).

A kind added later keeps the general rule for its sections: one point per
item in ``<kind>_<section>`` (docs/extending.md).

Path keys (``Section.path``: the disks' ``mount``) can be text InfluxDB 1.x
cannot store as a tag value, whatever the escaping: a Windows mount ``C:\``
ends in a backslash. Their tag is ``protocol.path_tag(mount)`` (trailing
backslashes dropped, line feeds made spaces: ``C:\`` is tagged ``C:``,
``/home`` stays ``/home``) and the exact mount is kept in the string field
``path`` (schema.PATH) of every such point, which reads back byte for byte.

Two ways to the same lines: ``to_points`` + ``LineEncoder`` (points first:
plain and general, the reference the tests hold the other to) and
``MessageEncoder`` (the ingest's hot path: lines straight from the validated
message, each kind's field order and escaped names worked out once).
Both give byte-identical lines (tests/test_points.py).
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from collector.influx.line import SERIES_CACHE_MAX, Point, escape_name, series_key
from netroom import schema
from netroom.protocol import INT64_MAX, KINDS, Message, path_tag

# Sums over a section's items: (item field, total field).
_DISK_SUMS = (("total_bytes", schema.DISK_TOTAL_BYTES),
              ("used_bytes", schema.DISK_USED_BYTES),
              ("free_bytes", schema.DISK_FREE_BYTES))
_DISKIO_SUMS = (("read_bytes", schema.DISK_READ_BYTES),
                ("write_bytes", schema.DISK_WRITE_BYTES),
                ("read_count", schema.DISK_READ_COUNT),
                ("write_count", schema.DISK_WRITE_COUNT))
_NIC_SUMS = (("bytes_sent", schema.NET_BYTES_SENT), ("bytes_recv", schema.NET_BYTES_RECV),
             ("packets_sent", schema.NET_PACKETS_SENT),
             ("packets_recv", schema.NET_PACKETS_RECV),
             ("errin", schema.NET_ERRIN), ("errout", schema.NET_ERROUT),
             ("dropin", schema.NET_DROPIN), ("dropout", schema.NET_DROPOUT))

# Fields the collector adds to a kind's own point, with their type.
DERIVED: dict[str, dict[str, type]] = {
    schema.INVENTORY: {schema.INVENTORY_DISKS_JSON: str, schema.INVENTORY_NICS_JSON: str,
                       schema.DISK_COUNT: int, schema.DISK_TOTAL_BYTES: int,
                       schema.NIC_COUNT: int},
    schema.METRICS: {**{total: int for _, total in _DISK_SUMS + _DISKIO_SUMS + _NIC_SUMS},
                     schema.DISK_USED_PERCENT: float, schema.NET_SPEED_MBPS: int,
                     schema.NICS_UP: int},
}


def is_loopback(nic: str) -> bool:
    """Loopback by name (Linux ``lo``, Windows ``Loopback Pseudo-Interface 1``).
    The netroom agent never sends it; another agent might."""
    return nic == "lo" or nic.startswith("Loopback Pseudo-Interface")


def _sums(out: dict[str, Any], items: Sequence[Mapping[str, Any]],
          pairs: Iterable[tuple[str, str]]) -> None:
    """``out[total] = sum of item[field]`` where at least one item has it, and the
    sum fits InfluxDB's int64 (every item does; hostile ones could add past it)."""
    if len(items) == 1:  # the common PC: one disk, one NIC
        item = items[0]
        for field, total in pairs:
            if field in item:
                out[total] = item[field]
        return
    for field, total in pairs:
        s = None
        for item in items:
            v = item.get(field)
            if v is not None:
                s = v if s is None else s + v
        if s is not None and s <= INT64_MAX:
            out[total] = s


def metrics_totals(sections: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """A metrics message's PC totals (schema.DISK_* and NET_*, NICS_UP)."""
    out: dict[str, Any] = {}
    disks = sections.get("disks")
    if disks:
        _sums(out, disks, _DISK_SUMS)
        percents = [d["used_percent"] for d in disks if "used_percent" in d]
        if percents:
            out[schema.DISK_USED_PERCENT] = max(percents)
    diskio = sections.get("diskio")
    if diskio:
        _sums(out, diskio, _DISKIO_SUMS)
    nics = [n for n in sections.get("nics", ()) if not is_loopback(n["name"])]
    if nics:
        _sums(out, nics, _NIC_SUMS)
        speed = up = 0
        has_speed = has_up = False
        for n in nics:
            is_up = n.get("is_up")
            mbps = n.get("speed_mbps")
            has_up = has_up or is_up is not None
            has_speed = has_speed or mbps is not None
            if is_up is True:
                up += 1
                speed += mbps or 0
        if has_speed and speed <= INT64_MAX:
            out[schema.NET_SPEED_MBPS] = speed
        if has_up:
            out[schema.NICS_UP] = up
    return out


def compact_json(items: Sequence[Mapping[str, Any]]) -> str:
    """Items as stored in inventory's ``disks``/``nics`` string fields."""
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def inventory_sections(sections: Mapping[str, Sequence[Mapping[str, Any]]]
                       ) -> dict[str, Any]:
    """An inventory message's sections as fields of its one point."""
    out: dict[str, Any] = {}
    disks = sections.get("disks")
    if disks is not None:
        out[schema.INVENTORY_DISKS_JSON] = compact_json(disks)
        out[schema.DISK_COUNT] = len(disks)
        _sums(out, disks, _DISK_SUMS[:1])
    nics = sections.get("nics")
    if nics is not None:
        out[schema.INVENTORY_NICS_JSON] = compact_json(nics)
        out[schema.NIC_COUNT] = len(nics)
    return out


def derived_fields(msg: Message) -> dict[str, Any]:
    """What the collector adds to the kind's own point (DERIVED)."""
    if msg.kind == schema.METRICS:
        return metrics_totals(msg.sections)
    if msg.kind == schema.INVENTORY:
        return inventory_sections(msg.sections)
    return {}


def item_sections(kind: str, item_series: Iterable[str]) -> frozenset[str]:
    """The sections of ``kind`` stored one point per item: metrics' listed in
    ``item_series``, none of inventory's (its JSON fields hold them), every
    section of a kind added later (docs/extending.md)."""
    if kind == schema.METRICS:
        return frozenset(item_series)
    if kind == schema.INVENTORY:
        return frozenset()
    return frozenset(KINDS[kind].sections)


def to_points(msg: Message, extra_tags: Mapping[str, str] | None = None,
              time_ms: int | None = None, item_series: Iterable[str] = ()) -> list[Point]:
    """All points of one message; ``time_ms`` overrides the payload's ts;
    ``item_series``: collector.item_series (metrics sections stored per item)."""
    tags = {schema.SITE: msg.site, schema.HOST: msg.host, schema.NETWORK: msg.network,
            schema.ROLE: msg.role}
    if extra_tags:
        tags.update(extra_tags)
    t = round(msg.ts * 1000) if time_ms is None else time_ms
    points = []
    spec = KINDS[msg.kind]
    fields: Mapping[str, Any] = msg.fields
    if spec.tags:  # e.g. probe=portal: one series per probe, not one per host
        tags = {**tags, **{k: str(fields[k]) for k in spec.tags}}
        fields = {k: v for k, v in fields.items() if k not in spec.tags}
    fields = {**fields, **derived_fields(msg)}
    if fields:
        points.append(Point(msg.kind, tags, fields, t))
    per_item = item_sections(msg.kind, item_series)
    for name, items in msg.sections.items():
        if name not in per_item:
            continue
        sec = spec.sections[name]
        key = sec.key
        tag = schema.section_tag(msg.kind, name)
        measurement = schema.section_measurement(msg.kind, name)
        for item in items:
            fields = {k: v for k, v in item.items() if k != key}
            if not fields:
                continue
            if sec.path:
                fields[schema.PATH] = item[key]
                value = path_tag(item[key])
            else:
                value = str(item[key])
            points.append(Point(measurement, {**tags, tag: value}, fields, t))
    return points


# --- the fused path: validated message -> lines -------------------------------

_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
# How LineEncoder writes a value of each type, as a %-format field (a third
# cheaper than str.format's here; %d of an int is its str, %r of a float its repr).
_FORMATS = {int: "%di", float: "%r", bool: "%s", str: '"%s"'}
SHAPES_MAX = 4096  # field sets remembered per measurement (a few per agent version)


class _Shape(NamedTuple):
    """One set of present fields: their names in line order, which of them
    are strings (escaped before formatting) and the line's field part."""

    names: tuple[str, ...]
    strings: tuple[int, ...]
    template: str


class _Fields:
    """Field part of the lines of one measurement, by the set of fields present.

    Decoded messages hold each field with its declared type, and a host sends
    the same fields every time, so the sorted order, escaped keys and value
    formats are worked out once per set of fields.
    """

    def __init__(self, types: Mapping[str, type]) -> None:
        self.types = dict(types)
        self._shapes: dict[tuple[str, ...], _Shape] = {}

    def shape(self, present: tuple[str, ...]) -> _Shape:
        shape = self._shapes.get(present)
        if shape is None:
            if len(self._shapes) >= SHAPES_MAX:
                self._shapes.clear()
            names = tuple(sorted(present))
            parts = []
            for n in names:
                key = escape_name(n)  # ValueError like LineEncoder's
                if n not in self.types or not key:
                    raise ValueError(f"field {n!r} is not in the protocol")
                parts.append(key.replace("%", "%%") + "=" + _FORMATS[self.types[n]])
            strings = tuple(i for i, n in enumerate(names) if self.types[n] is str)
            shape = self._shapes[present] = _Shape(names, strings, ",".join(parts))
        return shape

    def text(self, values: Mapping[str, Any]) -> str:
        """``k=v,...`` for ``values`` (none of them None, at least one)."""
        shape = self.shape(tuple(values))
        vals = [values[n] for n in shape.names]
        for i in shape.strings:
            vals[i] = vals[i].translate(_STRING_ESCAPES)
        return shape.template % tuple(vals)


class _KindPlan(NamedTuple):
    tags: tuple[str, ...]  # the kind's tag fields (probe)
    fields: _Fields  # its own point: its fields, derived ones, clock skew
    sections: Mapping[str, tuple[str, str, str, bool, _Fields]]
    # section -> (measurement, tag, key, path, fields)


def _kind_plan(kind: str) -> _KindPlan:
    spec = KINDS[kind]
    types = {n: f.type for n, f in spec.fields.items() if n not in spec.tags}
    types.update(DERIVED.get(kind, {}))
    types[schema.CLOCK_SKEW] = float
    sections = {}
    for name, sec in spec.sections.items():
        st = {n: f.type for n, f in sec.fields.items() if n != sec.key}
        if sec.path:
            st[schema.PATH] = str
        st[schema.CLOCK_SKEW] = float
        sections[name] = (schema.section_measurement(kind, name),
                          schema.section_tag(kind, name), sec.key, sec.path, _Fields(st))
    return _KindPlan(spec.tags, _Fields(types), sections)


class MessageEncoder:
    """Validated messages straight to line protocol, byte for byte what
    ``LineEncoder().lines(to_points(...))`` writes (tests/test_points.py).

    Only for messages from ``protocol.decode``: it relies on their values
    having their field's declared type and on None never being one. Series
    keys are cached per host as LineEncoder caches them, so a tag InfluxDB
    cannot store (a config's org level ending in a backslash) raises
    ValueError there as here.
    """

    def __init__(self, item_series: Iterable[str] = ()) -> None:
        self.item_series = frozenset(item_series)
        self._series: dict[tuple[Any, ...], str] = {}
        self._plans = {kind: _kind_plan(kind) for kind in KINDS}
        self._per_item = {kind: item_sections(kind, self.item_series) for kind in KINDS}

    def _new_series(self, key: tuple[Any, ...], measurement: str,
                    tags: Mapping[str, str]) -> str:
        if len(self._series) >= SERIES_CACHE_MAX:
            self._series.clear()
        s = self._series[key] = series_key(measurement, tags)
        return s

    def lines(self, msg: Message, extra_tags: Mapping[str, str] | None = None,
              time_ms: int | None = None, skew_s: float | None = None) -> list[str]:
        """The message's lines (``to_points``' arguments); ``skew_s``: the
        clock_skew_s field added to every point."""
        kind = msg.kind
        plan = self._plans[kind]
        fields = msg.fields
        extra = tuple(extra_tags.items()) if extra_tags else ()
        tag_values = tuple(str(fields[k]) for k in plan.tags) if plan.tags else ()
        base = (msg.site, msg.host, msg.network, msg.role, extra, tag_values)
        suffix = f" {round(msg.ts * 1000) if time_ms is None else int(time_ms)}"
        tags: dict[str, str] | None = None
        out = []
        derived = derived_fields(msg) if kind in DERIVED else None
        values: Mapping[str, Any] = fields
        if derived or skew_s is not None or plan.tags:
            own = {**fields, **derived} if derived else dict(fields)
            for k in plan.tags:
                del own[k]
            if own and skew_s is not None:  # only on a point that has fields
                own[schema.CLOCK_SKEW] = skew_s
            values = own
        if values:
            series = self._series.get((kind, base))
            if series is None:
                tags = self._tags(msg, extra_tags, plan.tags)
                series = self._new_series((kind, base), kind, tags)
            out.append(f"{series} {plan.fields.text(values)}{suffix}")
        per_item = self._per_item[kind]
        if not per_item:
            return out
        for name, items in msg.sections.items():
            if name not in per_item:
                continue
            measurement, tag, key, path, item_fields = plan.sections[name]
            for item in items:
                if len(item) == 1:  # the key alone: no point (as to_points)
                    continue
                item_values: dict[str, Any] = dict(item)
                value = item_values.pop(key)
                if path:
                    item_values[schema.PATH] = value
                    value = path_tag(value)
                if skew_s is not None:
                    item_values[schema.CLOCK_SKEW] = skew_s
                skey = (measurement, base, value)
                s = self._series.get(skey)
                if s is None:
                    if tags is None:
                        tags = self._tags(msg, extra_tags, plan.tags)
                    s = self._new_series(skey, measurement, {**tags, tag: value})
                out.append(f"{s} {item_fields.text(item_values)}{suffix}")
        return out

    @staticmethod
    def _tags(msg: Message, extra_tags: Mapping[str, str] | None,
              kind_tags: tuple[str, ...]) -> dict[str, str]:
        """The point's tags exactly as to_points builds them."""
        tags = {schema.SITE: msg.site, schema.HOST: msg.host, schema.NETWORK: msg.network,
                schema.ROLE: msg.role}
        if extra_tags:
            tags.update(extra_tags)
        if kind_tags:
            tags = {**tags, **{k: str(msg.fields[k]) for k in kind_tags}}
        return tags
