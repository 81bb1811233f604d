"""What the state keeps of one valid message: a small record, or None.

Pure. Made by ingest for each valid message (``record_of``), applied to the
state database by the writer once the message is durable (db.py). Times are
the epoch ms the message's points were stored at. Only what the rules read
is kept: inventories (devices, clones), statuses (settings, agent versions;
room PCs' are heartbeats too), room PCs' metrics ticks (heartbeats), probe and isolation
results, speed tests.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, NamedTuple, Union

from collector.compliance import hardware
from netroom import protocol, schema

ROOM = "room"  # the role whose heartbeats make a room open


class Inventory(NamedTuple):
    site: str
    host: str
    network: str
    role: str
    host_id: str
    hostname: str
    ts: int
    # What the hardware register compares (compliance.hardware.document), as
    # JSON; "" when not known (rebuilt from InfluxDB without it).
    doc: str = ""


class Status(NamedTuple):
    site: str
    host: str
    network: str
    role: str
    ts: int
    state: str  # online | offline
    will: bool
    interval_s: float | None  # s, as the agent announced it
    version: str | None  # settings_version
    error: str | None  # settings_error
    local: str | None  # settings_local
    # What the agent runs and its self-update (collector.compliance.rollout);
    # defaults: records made before these were kept.
    agent: str | None = None  # agent_version
    update_state: str | None = None
    update_version: str | None = None
    update_error: str | None = None


class Beat(NamedTuple):
    """A room PC's metrics tick."""

    site: str
    host: str
    ts: int


class Run(NamedTuple):
    """A room PC's ticks from ``ts`` to ``end_ms``, no silence between longer than
    a run bridges (collector/store/state/rebuild.py reads them so from InfluxDB)."""

    site: str
    host: str
    ts: int
    end_ms: int


class Probe(NamedTuple):
    site: str
    host: str
    network: str
    probe: str
    ts: int
    ok: bool


class Isolation(NamedTuple):
    site: str
    host: str
    network: str
    ts: int
    violated: bool
    reasons: str | None
    reached: str | None
    canaries_checked: int | None


class Test(NamedTuple):
    """One speed test; Mbit/s and ms, None where not measured."""

    site: str
    network: str
    host: str
    ts: int
    download_mbps: float | None
    upload_mbps: float | None
    latency_ms: float | None
    method: str
    error: str | None


class Day(NamedTuple):
    """A room's complete day as the collector stored it (``availability``)."""

    site: str
    day: str  # ISO date in the site's time zone
    start_ms: int
    required_s: float
    open_s: float


class First(NamedTuple):
    """The first report of a site's room PCs known to a rebuild (epoch ms);
    ingest finds it from Beat and Status records."""

    site: str
    ts: int


class ChangesWritten(NamedTuple):
    """Hardware changes (collector/store/state/hardware.py) now durable in
    InfluxDB, by (host_id, ts, aspect, item): no longer pending."""

    keys: tuple[tuple[str, int, str, str], ...]
    ts: int = 0  # applied with the timed records; the order does not matter


class LateSeen(NamedTuple):
    """A pass accounted for the late marks up to ``upto`` (StateDB.late_upto):
    the days they reached are durable again, computed with them."""

    upto: int
    ts: int = 0  # applied with the timed records; the order does not matter


Record = Union[Inventory, Status, Beat, Run, Probe, Isolation, Test, Day, First,
               ChangesWritten, LateSeen]


def time_of(r: Record) -> int:
    """When ``r`` happened, epoch ms (a day: its start): records apply in this order."""
    return r.start_ms if isinstance(r, Day) else r.ts


def record_of(msg: protocol.Message, stored_ms: int) -> Record | None:
    """The record the state keeps of ``msg``, stored at ``stored_ms`` (epoch ms)."""
    f = msg.fields
    kind = msg.kind
    if kind == schema.METRICS:
        return Beat(msg.site, msg.host, stored_ms) if msg.role == ROOM else None
    if kind == schema.INVENTORY:
        doc = hardware.document(msg.site, f, msg.sections)
        return Inventory(msg.site, msg.host, msg.network, msg.role, str(f["host_id"]),
                         str(f.get("hostname") or ""), stored_ms,
                         json.dumps(doc, sort_keys=True, separators=(",", ":")))
    if kind == schema.STATUS:
        interval = f.get("interval_s")
        return Status(msg.site, msg.host, msg.network, msg.role, stored_ms, str(f[protocol.STATE]),
                      bool(f.get("will")), None if interval is None else float(interval),
                      text(f, "settings_version"), text(f, "settings_error"),
                      text(f, "settings_local"), text(f, "agent_version"),
                      text(f, "update_state"), text(f, "update_version"),
                      text(f, "update_error"))
    if kind == schema.PROBE:
        return Probe(msg.site, msg.host, msg.network, str(f["probe"]), stored_ms, bool(f["ok"]))
    if kind == schema.ISOLATION:
        checked = f.get("canaries_checked")
        return Isolation(msg.site, msg.host, msg.network, stored_ms, bool(f["violated"]),
                         text(f, "reasons"), text(f, "reached"),
                         None if checked is None else int(checked))
    if kind == schema.BANDWIDTH:
        return Test(msg.site, msg.network, msg.host, stored_ms, number(f, "download_mbps"),
                    number(f, "upload_mbps"), number(f, "latency_ms"), str(f["method"]),
                    text(f, "error"))
    return None


def text(fields: Mapping[str, Any], name: str) -> str | None:
    """``fields[name]`` as text; None if absent."""
    v = fields.get(name)
    return None if v is None else str(v)


def number(fields: Mapping[str, Any], name: str) -> float | None:
    """``fields[name]`` as a float; None if absent."""
    v = fields.get(name)
    return None if v is None else float(v)
