"""Fills a new state database from InfluxDB, and says how far back it keeps.

Used when the state file is missing (a new collector, a lost disk, a fleet
restored into InfluxDB by other means): fleet-wide queries whose rows become
the records ingest would have made; at most ``max_queries`` of them, a
number the config's windows fix and the fleet's size never raises. Room
PCs' ticks are not read one by one: InfluxDB's ``elapsed()`` finds the
silences longer than the shortest gap a run may bridge, and only the ticks on
either side of one come back. Their statuses (hourly with a clock check:
about 260 per room PC in the window) are read a slice of time at a time and
reduced as they come, so memory follows the fleet, not the history.
"""
from __future__ import annotations

import bisect
import collections
import logging
from typing import Callable, Iterable, Iterator

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

FIXED_QUERIES = 14  # besides the slices of room statuses
STATUS_SLICE_MS = 6 * schema.HOUR_MS  # the shortest slice (40,000 PCs, hourly: ~120k rows)
SLICE_ROWS = 100_000  # room statuses one query reads at most, unless 6 hours hold more
CHUNK = 5000  # records per transaction
STATE = schema.ident(protocol.STATE)
ROOM = schema.tag_is(schema.ROLE, rec.ROOM)
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
        db.apply(got[i:i + CHUNK], late=False)  # its stored days came with it
    db.put("complete", "1")
    kinds = dict(collections.Counter(type(r).__name__ for r in got).most_common())
    log.info("state rebuilt from InfluxDB: %d records%s", len(got),
             f" ({', '.join(f'{k} {n}' for k, n in kinds.items())})" if kinds else "")
    return kinds


def max_queries(org: Org, now_ms: int) -> int:
    """The most InfluxDB queries a rebuild at ``now_ms`` makes, whatever the
    fleet: the fixed ones and a slice per STATUS_SLICE_MS of the status window."""
    since, hi = keep(org, now_ms)["status"], skew.horizon(now_ms)
    return FIXED_QUERIES + (hi - since) // STATUS_SLICE_MS + 2


def _slices(counts: list[Row], since: int, hi: int) -> list[tuple[int, int]]:
    """[since, hi] (epoch ms) in slices, oldest first, each up to SLICE_ROWS
    room statuses by ``counts`` (rows per STATUS_SLICE_MS, from the epoch):
    a small fleet's whole window is one slice."""
    out: list[tuple[int, int]] = []
    start, rows = since, 0
    for r in counts:
        n = int(r.get("n") or 0)
        if rows and rows + n > SLICE_ROWS:
            cut = max(int(r["time"]), start + 1)  # this bucket starts the next slice
            out.append((start, cut - 1))
            start, rows = cut, 0
        rows += n
    out.append((start, hi))
    return out


def _by_pc(r: rec.Record) -> tuple[str, str, int]:
    """Site, PC (a site's own records first) and time (epoch ms)."""
    return getattr(r, "site", ""), getattr(r, "host", ""), rec.time_of(r)


def records(read: Read, org: Org, now_ms: int) -> list[rec.Record]:
    """The records InfluxDB's history makes, from at most ``max_queries`` fleet-wide queries."""
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
    table = schema.ident(schema.STATUS)
    frm = f"FROM {table} WHERE time >= {k['status']}ms AND time <= {hi}ms"
    # Room statuses per 6 hours (how to slice them) and the shortest interval
    # they announced (the gap a run bridges).
    counts = read(f'SELECT count({STATE}) AS "n", min("interval_s") AS "shortest" {frm} '
                  f"AND {ROOM} GROUP BY time({STATUS_SLICE_MS}ms) fill(none)")
    shortest = min([DEFAULT_INTERVAL_S, *(float(r["shortest"]) for r in counts
                                          if r.get("shortest") is not None)])
    runs = _runs(read, org, shortest, k["runs"], hi)
    # Room PCs' statuses are heartbeats too: state, will and interval, a
    # slice at a time, reduced as they come (room_statuses, outside).
    lean = f'SELECT {STATE}, "will", "interval_s" FROM {table}'  # noqa: S608
    out += outside(room_statuses(
        read(f"{lean} WHERE time >= {a}ms AND time <= {b}ms AND {ROOM} {by_series}")
        for a, b in _slices(counts, k["status"], hi)), runs)
    # Every PC's newest online status with all its fields: last() picks it
    # with its other fields (db._status keeps only the newest). After the
    # room statuses: the same status read twice, the full one lands last.
    out += [status(r) for r in read(f"SELECT last({STATE}) AS {STATE}, {others} {frm} "
                                     f"AND {ONLINE} {by_series}")]
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


def room_statuses(slices: Iterable[list[Row]]) -> Iterator[rec.Record]:
    """Room PCs' statuses as records that make the state all of them make.

    An online status is a heartbeat (a tick), sets the PC's newest ``online``
    row, and announces an interval (first and last time per value, and the
    gap the ticks after it bridge). So only the newest of a PC, and the first
    and last of each run of equal announced intervals, must stay statuses;
    the rest are ticks (rec.Beat), which a batch writes once per PC, not once
    each (db._ticks). Offline statuses all stay; other states are no heartbeat.

    ``slices``: the rows, a slice of time after another, oldest first (each
    in any order). Records come as soon as they are known; what waits is
    each PC's newest online status and its last two announcing an interval.
    """
    newest: dict[tuple[str, str], Row] = {}
    said: dict[tuple[str, str], tuple[Row | None, Row]] = {}  # (before, last): last undecided
    for rows in slices:
        rows.sort(key=_time)
        for r in rows:
            state = r.get(protocol.STATE)
            if state == protocol.OFFLINE:
                yield status(r)
            if state != protocol.ONLINE:
                continue
            key = (r[schema.SITE], r[schema.HOST])
            old = newest.get(key)
            if old is not None and old.get("interval_s") is None:
                yield _beat(old)  # no longer the newest, announced nothing
            newest[key] = r
            iv = r.get("interval_s")
            if iv is None:
                continue
            before, last = said.get(key, (None, None))
            if last is not None:  # its value's first or last, or a tick
                was = last["interval_s"]
                keep = before is None or before["interval_s"] != was or iv != was
                yield status(last) if keep else _beat(last)
            said[key] = (last, r)
    for _, last in said.values():
        yield status(last)  # the last announcement of its value (and maybe the newest)
    for r in newest.values():
        if r.get("interval_s") is None:
            yield status(r)


def _time(r: Row) -> int:
    return int(r["time"])


def _beat(r: Row) -> rec.Beat:
    return rec.Beat(r[schema.SITE], r[schema.HOST], int(r["time"]))


def outside(records: Iterable[rec.Record], runs: list[rec.Run]) -> list[rec.Record]:
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
