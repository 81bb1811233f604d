"""Hardware changes, found at ingest: each PC's last inventory in the state file.

The state's ``apply`` (db.py) hands every inventory record here, in the
transaction that makes it part of the state, once the message is durable
and before it is acknowledged. ``track`` compares it with the PC's last
inventory (collector.compliance.hardware: normalised, volatile values left
out) and keeps what changed in ``hardware_changes``, an outbox: the
collector writes those rows to InfluxDB (``inventory_change``) through its
write path and deletes them once that batch is durable
(records.ChangesWritten). So a crash anywhere loses no change and, as the
points' series and times are fixed by the change, writing one twice stores
it once.

Tables (times epoch ms):
- ``hardware``: per host id the PC's newest inventory (placement, time, the
  compared document, merged: parts the agent could not read keep their last
  value). One row per PC ever seen, pruned after KEEP_MS of silence.
- ``hardware_changes``: the changes not yet durable in InfluxDB.

A PC is its host id. A new host id is the same PC as an earlier agent's bare
machine id (an upgrade), or as the newest host id with the same machine part
under the same host name (a new mainboard: its serial changed); that older
row is kept, so clones given one ``agent.host`` make at most one change.
An inventory older than the PC's newest (a late outbox) changes nothing:
it is history, and the newer one stands.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable, Mapping

from collector.compliance import hardware
from collector.influx.line import Point
from collector.store import inventory
from collector.store.rows import Read, Row
from collector.store.state import records as rec
from netroom import protocol, schema

TABLES = (
    "CREATE TABLE IF NOT EXISTS hardware (host_id TEXT PRIMARY KEY, machine TEXT, site TEXT, "
    "host TEXT, network TEXT, role TEXT, ts INTEGER, doc TEXT) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS hardware_machine ON hardware (machine, host)",
    "CREATE TABLE IF NOT EXISTS hardware_changes (host_id TEXT, ts INTEGER, aspect TEXT, "
    "item TEXT, site TEXT, host TEXT, network TEXT, role TEXT, action TEXT, before TEXT, "
    "after TEXT, before_n INTEGER, after_n INTEGER, "
    "PRIMARY KEY (host_id, ts, aspect, item)) WITHOUT ROWID",
)
KEEP_MS = 400 * schema.DAY_MS  # a PC silent this long is retired: forget its last inventory
SEED_DAYS = 30  # how far back a new state reads each PC's last inventory from InfluxDB
SEEDED = "hardware_seeded"  # meta key: the table was filled from InfluxDB once
PENDING_COLUMNS = ("host_id", "ts", "aspect", "item", "site", "host", "network", "role",
                   "action", "before", "after", "before_n", "after_n")


def track(x: Callable[..., sqlite3.Cursor], r: rec.Inventory) -> int:
    """Apply inventory ``r`` (``x``: the connection's execute, inside its
    transaction); keep its changes since the PC's last one. The changes kept."""
    if not r.doc:  # rebuilt from InfluxDB's placement rows: nothing to compare
        return 0
    new = json.loads(r.doc)
    machine, part = protocol.split_host_id(r.host_id)
    last = x("SELECT host_id, ts, doc FROM hardware WHERE host_id = ?", (r.host_id,)).fetchone()
    if last is None and part:
        # Bare machine ids first (the same PC, upgraded), then a board swap.
        last = x("SELECT host_id, ts, doc FROM hardware WHERE host_id = ? OR "
                 "(machine = ? AND host = ? AND host_id != ?) ORDER BY host_id = ? DESC, "
                 "ts DESC LIMIT 1", (machine, machine, r.host, machine, machine)).fetchone()
    changes: list[hardware.Change] = []
    doc = new
    if last is not None:
        if r.ts <= last[1]:
            return 0  # redelivered, or older than what the PC sent since
        old = json.loads(last[2])
        changes = hardware.diff(old, new)
        doc = hardware.merge(old, new)
    x("INSERT OR REPLACE INTO hardware VALUES (?,?,?,?,?,?,?,?)",
      (r.host_id, machine, r.site, r.host, r.network, r.role, r.ts,
       json.dumps(doc, sort_keys=True, separators=(",", ":"))))
    for c in changes:
        x("INSERT OR IGNORE INTO hardware_changes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
          (r.host_id, r.ts, c.aspect, c.item, r.site, r.host, r.network, r.role, c.action,
           c.before, c.after, c.before_n, c.after_n))
    return len(changes)


def written(x: Callable[..., sqlite3.Cursor], r: rec.ChangesWritten) -> None:
    """The changes ``r`` names are durable in InfluxDB: no longer pending."""
    for key in r.keys:
        x("DELETE FROM hardware_changes WHERE host_id=? AND ts=? AND aspect=? AND item=?", key)


def prune(x: Callable[..., sqlite3.Cursor], horizon_ms: int) -> None:
    """Forget PCs silent for KEEP_MS before ``horizon_ms`` (the inventories' freshness
    horizon): retired. Pending changes stay until written."""
    x("DELETE FROM hardware WHERE ts < ?", (horizon_ms - KEEP_MS,))


def pending(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """The oldest changes not yet durable in InfluxDB."""
    cols = ", ".join(PENDING_COLUMNS)
    return [dict(zip(PENDING_COLUMNS, r)) for r in db.execute(
        f"SELECT {cols} FROM hardware_changes ORDER BY ts LIMIT ?", (limit,))]  # noqa: S608


def key(row: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (str(row["host_id"]), int(row["ts"]), str(row["aspect"]), str(row["item"]))


def point(row: Mapping[str, Any], org_tags: Mapping[str, str]) -> Point:
    """A pending change -> its ``inventory_change`` point, at its inventory's time.

    Tags: the inventory's (site, host, network, role, the site's org path),
    ``change`` (the aspect) and ``item`` (a mount's tag value, a NIC's name;
    left out when ""). Fields: action, before, after (text), host_id; for
    memory and disks before_bytes/after_bytes (when known) and delta_bytes
    (after minus before, a side unknown counting 0); for disks the exact mount
    (``path``).
    """
    tags = {**org_tags, **{k: str(row[k]) for k in schema.MESSAGE_TAGS},
            schema.CHANGE_TAG: str(row["aspect"]),
            schema.ITEM_TAG: protocol.path_tag(str(row["item"]))}
    fields: dict[str, Any] = {"action": row["action"], "before": row["before"],
                              "after": row["after"], "host_id": row["host_id"]}
    if row["aspect"] == "disk":
        fields[schema.PATH] = row["item"]  # the exact mount (C:\), as for inventory_disks
    for name in ("before", "after"):
        if row[f"{name}_n"] is not None:
            fields[f"{name}_bytes"] = int(row[f"{name}_n"])
    if row["aspect"] in ("memory", "disk"):
        # Negative when memory or disk space went away: what an alert looks for.
        fields["delta_bytes"] = int(row["after_n"] or 0) - int(row["before_n"] or 0)
    return Point(schema.INVENTORY_CHANGE, tags, fields, int(row["ts"]))


def seed(db: sqlite3.Connection, read: Read, now_ms: int) -> int:
    """Once per state file: each PC's last inventory from InfluxDB where the
    state has none as new (``db``: the state's connection, autocommit); the
    inventories seeded. Raises SinkError when InfluxDB cannot answer."""
    if db.execute("SELECT 1 FROM meta WHERE key = ?", (SEEDED,)).fetchone():
        return 0
    got = seed_records(read, now_ms)
    db.execute("BEGIN IMMEDIATE")
    try:
        for r in got:
            track(db.execute, r)  # never over a newer one: track ignores older
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (SEEDED,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return len(got)


def seed_records(read: Read, now_ms: int) -> list[rec.Inventory]:
    """Each PC's newest inventory of the last SEED_DAYS in InfluxDB, as records
    (a new state file, or one made before the register: its first inventories
    are then compared with these, not taken as first ones). One query."""
    by_series = schema.group_by(*schema.MESSAGE_TAGS)
    rows = read(f"SELECT * FROM {schema.ident(schema.INVENTORY)} "  # noqa: S608
                f"WHERE time > {now_ms - SEED_DAYS * schema.DAY_MS}ms {by_series} "
                "ORDER BY time DESC LIMIT 1")
    return [seed_record(r) for r in rows if r.get("host_id") is not None]


def seed_record(r: Row) -> rec.Inventory:
    """An ``inventory`` row (sections as JSON string fields) -> its record."""
    sections = {name: inventory.items(r.get(field)) for name, field in
                (("disks", schema.INVENTORY_DISKS_JSON), ("nics", schema.INVENTORY_NICS_JSON))}
    doc = hardware.document(r[schema.SITE], r, sections)
    return rec.Inventory(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
                         str(r["host_id"]), str(r.get("hostname") or ""), int(r["time"]),
                         json.dumps(doc, sort_keys=True, separators=(",", ":")))

