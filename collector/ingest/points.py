r"""Maps a validated message to InfluxDB points and line protocol.

A kind's scalar fields go to measurement ``<kind>``; each section item goes
to ``<kind>_<section>`` with the item's key as a tag (``metrics_nics`` tagged
``nic=eth0``...). Tags: site, host, network, role and the site's org path,
plus the kind's own tag fields (``Kind.tags``: ``probe=portal``).

Path keys (``Section.path``: the disks' ``mount``) can be text InfluxDB 1.x
cannot store as a tag value, whatever the escaping: a Windows mount ``C:\``
ends in a backslash. Their tag is ``protocol.path_tag(mount)`` (trailing
backslashes dropped, line feeds made spaces: ``C:\`` is tagged ``C:``,
``/home`` stays ``/home``) and the exact mount is kept in the string field
``path`` (schema.PATH) of every such point, which reads back byte for byte.
"""
from __future__ import annotations

from typing import Mapping

from collector.influx.line import Point
from netroom import schema
from netroom.protocol import KINDS, Message, path_tag


def to_points(msg: Message, extra_tags: Mapping[str, str] | None = None,
              time_ms: int | None = None) -> list[Point]:
    """All points of one message; ``time_ms`` overrides the payload's ts."""
    tags = {schema.SITE: msg.site, schema.HOST: msg.host, schema.NETWORK: msg.network,
            schema.ROLE: msg.role}
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
