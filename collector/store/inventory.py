"""The hardware register and its change history, read from InfluxDB.

``register``: every PC's newest ``inventory`` of the last ``days`` (its
sections are the JSON string fields ``disks`` and ``nics``), placed as the
devices loader places PCs (a PC that moved or was renamed counts once, where
it reports now; an upgraded agent's bare id gives way), with its settings
version (the settings loader's query) and when it was last seen: the newest
of its inventory, its statuses and its metrics of the last hour (one
``last()`` per series over an hour: cheap at bureau scale). Four queries
for the fleet. ``changes``: the ``inventory_change`` points of a window.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from collector.compliance import skew
from collector.compliance.model import Org
from collector.compliance.register import Disk, Nic, Pc
from collector.store.loaders import devices, settings
from collector.store.rows import Read, Row
from netroom import central, schema

LAST_SEEN_METRICS_MS = schema.HOUR_MS  # metrics looked at for "last seen"
BY_PC = schema.group_by(*schema.MESSAGE_TAGS)


def register(read: Read, org: Org, now_ms: int, days: float) -> list[Pc]:
    """Every PC that sent an inventory in the last ``days`` days, sorted by site and host."""
    since = now_ms - round(days * schema.DAY_MS)
    where = f"WHERE time > {since}ms AND time <= {skew.horizon(now_ms)}ms"
    # Only numbers we computed and our constants go into the query texts.
    rows = read(f"SELECT * FROM {schema.ident(schema.INVENTORY)} {where} {BY_PC} "  # noqa: S608
                "ORDER BY time DESC LIMIT 1")
    statuses = read(f'SELECT last("state") FROM {schema.ident(schema.STATUS)} '  # noqa: S608
                    f"{where} {schema.BY_SITE_HOST}")
    metrics = read(f'SELECT last("collect_ms") FROM {schema.ident(schema.METRICS)} '  # noqa: S608
                   f"WHERE time > {now_ms - LAST_SEEN_METRICS_MS}ms "
                   f"AND time <= {skew.horizon(now_ms)}ms {schema.BY_SITE_HOST}")
    versions = read(settings.query(org, now_ms))
    return assemble(rows, statuses + metrics, versions, org)


def assemble(rows: list[Row], seen: Iterable[Row], versions: Iterable[Row], org: Org) -> list[Pc]:
    """Pure: newest inventory rows per series, rows with each (site, host)'s
    other latest times, and their newest online statuses -> the register."""
    last: dict[tuple[str, str], int] = {}
    for r in seen:
        key = (r[schema.SITE], r[schema.HOST])
        last[key] = max(last.get(key, 0), int(r["time"]))
    version = {(r[schema.SITE], r[schema.HOST]): str(r.get(central.VERSION_FIELD) or "")
               for r in versions}
    kept = _placed(rows, org)
    out = []
    for r in rows:
        series = tuple(r[k] for k in devices.SERIES)
        if (*series, str(r.get("host_id"))) not in kept:
            continue
        key = (r[schema.SITE], r[schema.HOST])
        out.append(pc(r, max(last.get(key, 0), int(r["time"])), version.get(key, "")))
    out.sort(key=lambda p: (p.site, p.host, p.network, p.role))
    return out


def _placed(rows: list[Row], org: Org) -> set[tuple[str, ...]]:
    """The (host, site, network, role, host_id) the devices loader counts, and strays."""
    pcs = [devices.pc(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
                      str(r["host_id"]), r.get("hostname"), int(r["time"]), int(r["time"]))
           for r in rows if r.get("host_id") is not None]
    loaded = devices.resolve(pcs, org)
    kept: set[tuple[str, ...]] = {(d.host, site, d.network, d.role, d.host_id)
            for site, facts in loaded.facts.items() for d in facts["devices"]}
    strays = {(s.host, s.site, s.network, s.role) for s in loaded.unregistered}
    kept.update((*p.series, p.host_id) for p in pcs if p.series in strays)
    return kept


def pc(r: Row, last_seen_ms: int, settings_version: str) -> Pc:
    """One ``inventory`` row -> its register record."""
    disks = tuple(Disk(str(d.get("mount", "")), str(d.get("device") or ""),
                       str(d.get("fstype") or ""), int(d.get("total_bytes") or 0))
                  for d in items(r.get(schema.INVENTORY_DISKS_JSON)))
    nics = tuple(Nic(str(n.get("name", "")), str(n.get("mac") or ""))
                 for n in items(r.get(schema.INVENTORY_NICS_JSON)))
    return Pc(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
              str(r.get("host_id") or ""), _s(r, "hostname"), _s(r, "os_name"),
              _s(r, "os_version"), _s(r, "arch"), _s(r, "cpu_model"), _i(r, "cpu_cores"),
              _i(r, "cpu_threads"), _i(r, "mem_total_bytes"), disks, nics, _s(r, "vendor"),
              _s(r, "model"), _s(r, "serial"), _s(r, "agent_version"), int(r["time"]),
              last_seen_ms, settings_version)


def changes(read: Read, since_ms: int, now_ms: int) -> list[Row]:
    """The ``inventory_change`` points stamped after ``since_ms``, oldest first."""
    return read(f"SELECT * FROM {schema.ident(schema.INVENTORY_CHANGE)} "  # noqa: S608
                f"WHERE time > {since_ms}ms AND time <= {skew.horizon(now_ms)}ms")


def items(text: Any) -> list[dict[str, Any]]:
    """A section stored as a JSON string field -> its items ([] if not a list of objects)."""
    try:
        items = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _s(r: Row, name: str) -> str:
    v = r.get(name)
    return "" if v is None else str(v)


def _i(r: Row, name: str) -> int | None:
    v = r.get(name)
    return None if v is None else int(v)
