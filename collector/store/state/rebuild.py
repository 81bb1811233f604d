"""Fills a new state database from InfluxDB, and says how far back it keeps.

Used when the state file is missing (a new collector, a lost disk, a fleet
restored into InfluxDB by other means): a fixed number of fleet-wide queries
(``QUERIES`` of them, however many sites and PCs), whose rows become the
records ingest would have made. Room PCs' ticks are not read one by one:
InfluxDB's ``elapsed()`` finds the silences longer than the shortest gap a
run may bridge, and only the ticks on either side of one come back.
"""
from __future__ import annotations

import bisect
import collections
import logging
from typing import Callable

from collector.compliance import rollout, skew
from collector.compliance.model import Org
from collector.compliance.rules import room_open_all_day
from collector.store import heartbeats
from collector.store.loaders import bandwidth
from collector.store.rows import Read, Row
from collector.store.state import records as rec
from collector.store.state.db import DEFAULT_INTERVAL_S, StateDB
from netroom import central, protocol, schema

log = logging.getLogger(__name__)

QUERIES = 14
CHUNK = 5000  # records per transaction
STATE = schema.ident(protocol.STATE)
ROOM = schema.tag_is(schema.ROLE, rec.ROOM)
NOT_ROOM = f"{schema.ident(schema.ROLE)} != '{rec.ROOM}'"
ONLINE = schema.tag_is(protocol.STATE, protocol.ONLINE)  # a field, compared the same way


def keep(org: Org, now_ms: int) -> dict[str, int]:
    """Per table, the oldest time (epoch ms) any read at ``now_ms`` or later asks for."""
    days = max((max(int(p["days"]), int(p["rolling_days"]))
                for p in (room_open_all_day.site_params(org, s) for s in org.sites)),
               default=1)
    fresh = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Runs also tell when a room PC silent for up to freshness_days was last seen.
    runs = min(now_ms - (days + 3) * schema.DAY_MS, fresh - schema.DAY_MS)
    return {"inventory": fresh, "status": min(fresh, runs) - schema.DAY_MS, "runs": runs,
            "bandwidth": now_ms - bandwidth.LOOKBACK_DAYS * schema.DAY_MS}


def rebuild(db: StateDB, read: Read, org: Org, now_ms: int) -> dict[str, int]:
    """Apply InfluxDB's history to ``db`` and mark it complete; the records
    applied, by kind (records.py's class names).

    Raises collector.influx.client.SinkError when InfluxDB cannot answer (the
    state stays incomplete; the caller tries again later).
    """
    got = records(read, org, now_ms)
    # PC by PC, each in time order (an offline status closes the run before
    # it; PCs are independent), so that a transaction holds whole PCs and
    # writes each one's runs at once (db._spans); in short transactions: the
    # ingest workers write to the same file meanwhile.
    got.sort(key=_by_pc)
    for i in range(0, len(got), CHUNK):
        db.apply(got[i:i + CHUNK])
    db.put("complete", "1")
    kinds = dict(collections.Counter(type(r).__name__ for r in got).most_common())
    log.info("state rebuilt from InfluxDB: %d records%s", len(got),
             f" ({', '.join(f'{k} {n}' for k, n in kinds.items())})" if kinds else "")
    return kinds


def _by_pc(r: rec.Record) -> tuple[str, str, int]:
    """Site, PC (a site's own records first) and time (epoch ms)."""
    return getattr(r, "site", ""), getattr(r, "host", ""), rec.time_of(r)


def records(read: Read, org: Org, now_ms: int) -> list[rec.Record]:
    """The records InfluxDB's history makes, from ``QUERIES`` fleet-wide queries."""
    k = keep(org, now_ms)
    hi = skew.horizon(now_ms)
    by_series = schema.group_by(schema.SITE, schema.HOST, schema.NETWORK, schema.ROLE)
    out: list[rec.Record] = []
    # Only numbers we computed and our constants go into the query texts.
    rows = read(f'SELECT "host_id", "hostname" FROM {schema.ident(schema.INVENTORY)} '  # noqa: S608
                f"WHERE time > {k['inventory']}ms AND time <= {hi}ms {by_series}")
    out += [rec.Inventory(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
                          str(r["host_id"]), str(r.get("hostname") or ""), int(r["time"]))
            for r in rows if r.get("host_id") is not None]
    others = schema.tags("will", "interval_s", central.VERSION_FIELD, central.ERROR_FIELD,
                         central.LOCAL_FIELD, *rollout.STATUS_FIELDS)
    frm = f"FROM {schema.ident(schema.STATUS)} WHERE time >= {k['status']}ms AND time <= {hi}ms"
    # Room PCs' statuses are heartbeats; of other PCs' only the newest online
    # one counts (db._status), and last() picks it with its other fields.
    statuses = read(f"SELECT {STATE}, {others} {frm} AND {ROOM} {by_series}")
    room = room_statuses([r for r in statuses
                          if r.get(protocol.STATE) in (protocol.ONLINE, protocol.OFFLINE)])
    shortest = min([DEFAULT_INTERVAL_S, *(float(r["interval_s"]) for r in statuses
                                          if r.get("interval_s") is not None)])
    del statuses  # the rows, not held while the largest query's are read
    out += [status(r) for r in read(f"SELECT last({STATE}) AS {STATE}, {others} {frm} "
                                     f"AND {NOT_ROOM} AND {ONLINE} {by_series}")]
    runs = _runs(read, org, shortest, k["runs"], hi)
    out += outside(room, runs)
    out += runs
    out += _latest(read, schema.PROBE, ("ok",),
                   schema.group_by(schema.SITE, schema.HOST, schema.NETWORK, schema.PROBE_TAG),
                   k["inventory"], now_ms, hi, _probe)
    out += _latest(read, schema.ISOLATION, ("violated", "reasons", "reached", "canaries_checked"),
                   by_series, k["inventory"],
                   now_ms, hi, _isolation)
    tests = read(f'SELECT "download_mbps", "upload_mbps", "latency_ms", "method", "error" '  # noqa: S608
                 f"FROM {schema.ident(schema.BANDWIDTH)} WHERE time > {k['bandwidth']}ms "
                 f"AND time <= {hi}ms {by_series}")
    out += [rec.Test(r[schema.SITE], r[schema.NETWORK], r[schema.HOST], int(r["time"]),
                     rec.number(r, "download_mbps"), rec.number(r, "upload_mbps"),
                     rec.number(r, "latency_ms"),
                     str(r.get("method") or ""), rec.text(r, "error")) for r in tests]
    out += [rec.First(site, t) for site, t in heartbeats.first_reports(read, now_ms).items()]
    stored = heartbeats.stored_days(read, k["runs"])
    out += [rec.Day(site, day, d.start_ms, d.required_s, d.open_s)
            for site, days in stored.items() for day, d in days.items()]
    return out


def _runs(read: Read, org: Org, shortest_s: float, since: int, hi: int) -> list[rec.Run]:
    """Room PCs' runs of ticks: InfluxDB's elapsed() finds every silence longer
    than the shortest gap any run bridges (``shortest_s``: the shortest interval
    a room PC announced, at most 60 s); the runs lie between them."""
    missing = min((float(room_open_all_day.site_params(org, s)["missing_intervals"])
                   for s in org.sites), default=3.0)
    gap = round(missing * shortest_s * 1000)
    where = f"WHERE {ROOM} AND time >= {since}ms AND time <= {hi}ms"
    frm = f"FROM {schema.ident(schema.METRICS)}"
    ends: dict[tuple[str, str], list[int]] = {}
    for sel in ("first", "last"):
        for r in read(f'SELECT {sel}("collect_ms") {frm} {where} {schema.BY_SITE_HOST}'):
            ends.setdefault((r[schema.SITE], r[schema.HOST]), []).append(int(r["time"]))
    inner = f'SELECT elapsed("collect_ms", 1ms) AS "gap" {frm} {where} {schema.BY_SITE_HOST}'
    for r in read(f'SELECT "gap" FROM ({inner}) WHERE "gap" > {gap} '  # noqa: S608
                  f"{schema.BY_SITE_HOST}"):
        t = int(r["time"])
        ends.setdefault((r[schema.SITE], r[schema.HOST]), []).extend((t - int(r["gap"]), t))
    out: list[rec.Run] = []
    for (site, host), ts in ends.items():
        ts.sort()  # first, (end, start) around each silence, last
        out += [rec.Run(site, host, ts[i], ts[i + 1]) for i in range(0, len(ts) - 1, 2)]
    return out


def _latest(read: Read, measurement: str, fields: tuple[str, ...], group: str, since: int,
            now_ms: int, hi: int, make: Callable[[Row], rec.Record]) -> list[rec.Record]:
    """The newest result per series up to now, and every one stamped after now
    (a clock ahead): all that a read at now or later takes, as the newest
    before a time or bad news stamped ahead of it (snapshot._latest); the
    older ones a prune keeps would never be read. ``fields[0]`` is the one
    every result has."""
    frm = f"SELECT {schema.tags(*fields)} FROM {schema.ident(measurement)}"  # noqa: S608
    newest = read(f"{frm} WHERE time > {since}ms AND time <= {now_ms}ms {group} "
                  "ORDER BY time DESC LIMIT 1")
    ahead = read(f"{frm} WHERE time > {now_ms}ms AND time <= {hi}ms {group}")
    return [make(r) for r in (*newest, *ahead) if r.get(fields[0]) is not None]


def room_statuses(rows: list[Row]) -> list[rec.Record]:
    """Room PCs' statuses as records that make the state all of them make.

    An online status is a heartbeat (a tick), sets the PC's newest ``online``
    row, and announces an interval (first and last time per value, and the
    gap the ticks after it bridge). So only the newest of a PC, and the first
    and last of each run of equal announced intervals, must stay statuses;
    the rest are ticks (rec.Beat), which a batch writes once per PC, not once
    each (db._ticks). Offline statuses all stay.
    """
    rows = sorted(rows, key=lambda r: int(r["time"]))
    online: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        if r[protocol.STATE] == protocol.ONLINE:
            online.setdefault((r[schema.SITE], r[schema.HOST]), []).append(i)
    keep = {i for i, r in enumerate(rows) if r[protocol.STATE] != protocol.ONLINE}
    for idx in online.values():
        keep.add(idx[-1])
        said = [i for i in idx if rows[i].get("interval_s") is not None]
        for a, b, c in zip([None, *said], said, [*said[1:], None]):
            iv = rows[b]["interval_s"]
            if a is None or c is None or rows[a]["interval_s"] != iv \
                    or rows[c]["interval_s"] != iv:
                keep.add(b)
    return [status(r) if i in keep else rec.Beat(r[schema.SITE], r[schema.HOST], int(r["time"]))
            for i, r in enumerate(rows)]


def outside(records: list[rec.Record], runs: list[rec.Run]) -> list[rec.Record]:
    """``records`` but the ticks (rec.Beat) inside a run of their PC: an online
    status is also a metrics tick, which the run already stands for, and a
    tick inside a run changes no row (db._spans; a status between splits
    the run, and the tick lies in one of the parts)."""
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for r in runs:
        spans.setdefault((r.site, r.host), []).append((r.ts, r.end_ms))
    for v in spans.values():
        v.sort()
    starts = {k: [a for a, _ in v] for k, v in spans.items()}

    def inside(b: rec.Beat) -> bool:
        key = (b.site, b.host)
        i = bisect.bisect_right(starts.get(key, ()), b.ts) - 1
        return i >= 0 and b.ts <= spans[key][i][1]

    return [r for r in records if not (type(r) is rec.Beat and inside(r))]


def status(r: Row) -> rec.Status:
    interval = r.get("interval_s")
    return rec.Status(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
                      int(r["time"]), str(r[protocol.STATE]), bool(r.get("will")),
                      None if interval is None else float(interval),
                      rec.text(r, central.VERSION_FIELD), rec.text(r, central.ERROR_FIELD),
                      rec.text(r, central.LOCAL_FIELD), rec.text(r, "agent_version"),
                      rec.text(r, "update_state"), rec.text(r, "update_version"),
                      rec.text(r, "update_error"))


def _probe(r: Row) -> rec.Probe:
    return rec.Probe(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.PROBE_TAG],
                     int(r["time"]), bool(r["ok"]))


def _isolation(r: Row) -> rec.Isolation:
    checked = r.get("canaries_checked")
    return rec.Isolation(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], int(r["time"]),
                         bool(r["violated"]), rec.text(r, "reasons"), rec.text(r, "reached"),
                         None if checked is None else int(checked))
