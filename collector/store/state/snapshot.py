"""Builds every site's Snapshot from the state database (db.py), not InfluxDB.

Each fact is read with a fixed number of SQL statements for the whole fleet
and handed, as rows shaped like the InfluxQL rows, to the same pure
``assemble`` functions the InfluxDB loaders use (collector/store/loaders/),
so both paths give one verdict (tests/test_state.py keeps the InfluxDB path
as the oracle). Nothing here loops over sites x PCs.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

from zoneinfo import ZoneInfo

from collector.compliance import skew
from collector.compliance.availability import DayOpen, Timeline, complete_days, room_now
from collector.compliance.facts import Snapshots
from collector.compliance.model import Org
from collector.compliance.rules import room_open_all_day
from collector.store import heartbeats, snapshot
from collector.store.loaders import agents, bandwidth, devices, isolation, probes, settings
from collector.store.rows import Loaded, Row
from collector.store.state.db import StateDB
from netroom import protocol, schema


def _since(org: Org, now_ms: int) -> int:
    return now_ms - round(org.freshness_days * schema.DAY_MS)


_INVENTORY = ("SELECT site, host, network, role, host_id, hostname, first_ts, last_ts "
              "FROM inventory WHERE last_ts > ? AND last_ts <= ?")
# The placements seen under several host ids (clones given one agent.host, an
# upgraded agent): few, and the only ones needing more than their own row.
_SHARED = ("SELECT site, host, network, role FROM inventory WHERE last_ts > ? AND "
           "last_ts <= ? GROUP BY site, host, network, role HAVING count(*) > 1")


def load_devices(db: StateDB, org: Org, now_ms: int) -> Loaded:
    """Every (placement, host id) whose last inventory is in the window, with its
    placement's newest inventory (host name, time) and the placement's first
    (one older than the window is taken to begin at its start)."""
    since = _since(org, now_ms)
    args = (since, skew.horizon(now_ms))
    rows = db.db.execute(_INVENTORY, args).fetchall()
    shared: dict[tuple[str, ...], list[tuple[Any, ...]]] = {
        tuple(r): [] for r in db.db.execute(_SHARED, args)}
    if shared:
        for r in rows:
            if r[:4] in shared:
                shared[r[:4]].append(r)
        # Each shared placement's rows take its newest row's host name and
        # time, and its first time.
        placed = {k: (newest[5], min(r[6] for r in rs), newest[7])
                  for k, rs in shared.items() for newest in (max(rs, key=itemgetter(7)),)}
        rows = [r[:5] + placed[r[:4]] if r[:4] in placed else r for r in rows]
    began = since + 1
    pcs = [devices.pc(site, host, network, role, host_id, hostname, last, max(first, began))
           for site, host, network, role, host_id, hostname, first, last in rows]
    return devices.resolve(pcs, org)


def load_bandwidth(db: StateDB, org: Org, now_ms: int) -> Loaded:
    args = (now_ms - bandwidth.LOOKBACK_DAYS * schema.DAY_MS, now_ms)
    where = "FROM bandwidth WHERE ts > ? AND ts <= ?"
    key = (schema.SITE, schema.NETWORK, schema.HOST)
    ok = db.rows(f"SELECT site, network, host, download, upload, latency, max(ts) {where} "
                 "AND download >= 0 GROUP BY site, network, host", args,
                 (*key, "download_mbps", "upload_mbps", "latency_ms", "time"))
    newest = db.rows(f"SELECT site, network, host, method, error, max(ts) {where} "
                     "GROUP BY site, network, host", args, (*key, "method", "error", "time"))
    # InfluxDB's GROUP BY time(1d): UTC days from the epoch.
    daily = db.rows(f"SELECT site, network, ts / {schema.DAY_MS} * {schema.DAY_MS} AS d, "
                    f"avg(download) {where} AND download IS NOT NULL "
                    "GROUP BY site, network, d", args,
                    (schema.SITE, schema.NETWORK, "time", "mbps"))
    return bandwidth.assemble(ok, newest, daily, org)


def _latest(db: StateDB, table: str, cols: str, key: str, bad: str, since: int, now_ms: int,
            extra: str = "") -> list[tuple[Any, ...]]:
    """Each series' newest row (key columns, ``cols``, time) up to now, or its
    newest bad news stamped ahead of now (rows.latest_known's rule)."""
    # Only our table and column names go into the text.
    known = db.db.execute(f"SELECT {key}, {cols}, max(ts) FROM {table} WHERE ts > ? AND "  # noqa: S608
                          f"ts <= ? {extra} GROUP BY {key}", (since, now_ms)).fetchall()
    ahead = db.db.execute(f"SELECT {key}, {cols}, max(ts) FROM {table} WHERE {bad} AND "  # noqa: S608
                          f"ts > ? AND ts <= ? {extra} GROUP BY {key}",
                          (now_ms, skew.horizon(now_ms))).fetchall()
    if not ahead:
        return known
    n = key.count(",") + 1
    out = {r[:n]: r for r in known}
    out.update((r[:n], r) for r in ahead)
    return list(out.values())


def load_probes(db: StateDB, org: Org, now_ms: int) -> Loaded:
    return probes.assemble(_latest(db, "probe", "ok", "site, host, network, probe", "ok = 0",
                                   _since(org, now_ms), now_ms), org)


def load_isolation(db: StateDB, org: Org, now_ms: int) -> Loaded:
    return isolation.assemble(_latest(db, "isolation", "violated, reasons, canaries",
                                      "site, host", "violated = 1", _since(org, now_ms), now_ms,
                                      "AND network = 'gov'"), org)


def load_settings(db: StateDB, org: Org, now_ms: int) -> Loaded:
    return settings.assemble(db.db.execute(
        "SELECT site, host, version, error, local, ts FROM online WHERE ts > ? AND ts <= ?",
        (_since(org, now_ms), skew.horizon(now_ms))).fetchall(), org)


# Each (site, host)'s newest inventory: its hostname and time (SQLite takes the
# bare column from the row max() picks).
_HOSTNAMES = ("SELECT site, host, hostname, max(last_ts) FROM inventory "
              "WHERE last_ts > ? AND last_ts <= ? GROUP BY site, host")


def load_agents(db: StateDB, org: Org, now_ms: int) -> Loaded:
    args = (_since(org, now_ms), skew.horizon(now_ms))
    statuses = db.db.execute(
        "SELECT site, host, agent, version, update_state, update_version, update_error, ts "
        "FROM online WHERE ts > ? AND ts <= ?", args).fetchall()
    inventories = {(site, host): (hostname or "", ts)
                   for site, host, hostname, ts in db.db.execute(_HOSTNAMES, args)}
    return agents.assemble(statuses, inventories, org)


def load_availability(db: StateDB, org: Org, now_ms: int) -> Loaded:
    """Stored days read back; the others from the runs; the room now from each
    room PC's last tick and the statuses after it (all the walk needs)."""
    sites = org.sites
    if not sites:
        return Loaded()
    params = {s.id: room_open_all_day.site_params(org, s) for s in sites}
    span = {sid: max(int(p["days"]), int(p["rolling_days"])) for sid, p in params.items()}
    stored_since = now_ms - (max(span.values()) + 2) * schema.DAY_MS
    stored: dict[str, dict[str, DayOpen]] = {}
    late = _late(db)
    for sid, day, start, required, opened in db.db.execute(
            "SELECT site, day, start_ms, required_s, open_s FROM days WHERE start_ms >= ?",
            (stored_since,)):
        if any(lo <= start + schema.LONGEST_DAY_MS and hi >= start
               for lo, hi in late.get(sid, ())):
            continue  # ticks came after it was stored: computed (and stored) again
        stored.setdefault(sid, {})[day] = DayOpen(day, start, start + schema.DAY_MS,
                                                  float(required), float(opened or 0.0),
                                                  stored=True)
    wanted = {s.id: [d for d in complete_days(now_ms, ZoneInfo(s.room.timezone), span[s.id])
                     if d.isoformat() not in stored.get(s.id, {})] for s in sites}
    by_id = {s.id: s for s in sites}
    windows = {(sid, d): w for sid, ds in wanted.items() for d in ds
               if (w := heartbeats.day_window(by_id[sid], d, now_ms)) is not None}
    computed = _days(db, org, now_ms, windows, params)
    # As heartbeats.first_reports: a fast clock's first report counts as now.
    first = {sid: min(t, now_ms) for sid, t in db.db.execute(
        "SELECT site, first_ms FROM room_first WHERE first_ms <= ?", (skew.horizon(now_ms),))}
    live: dict[str, dict[str, Any]] = {}
    for (sid, host), t in _live(db, _since(org, now_ms), now_ms).items():
        live.setdefault(sid, {})[host] = t
    out: dict[str, dict[str, Any]] = {}
    for site in sites:
        missing = float(params[site.id]["missing_intervals"])
        have = stored.get(site.id, {})
        days = tuple(have.get(d.isoformat()) or computed.get((site.id, d))
                     or heartbeats.day_of(site, d, now_ms, {}, missing)
                     for d in complete_days(now_ms, ZoneInfo(site.room.timezone), span[site.id]))
        out[site.id] = {"availability": days, "room_now": room_now(
            live.get(site.id, {}), now_ms, site.room.min_online, missing),
            "room_first_ms": first.get(site.id)}
    return Loaded(out)


def _late(db: StateDB) -> dict[str, list[tuple[int, int]]]:
    """Per site, the spans late ticks reached (db.py ``late``; none in a file
    an older collector made)."""
    if not db.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'late'").fetchone():
        return {}
    out: dict[str, list[tuple[int, int]]] = {}
    for site, lo, hi in db.db.execute("SELECT site, lo_ms, hi_ms FROM late"):
        out.setdefault(site, []).append((lo, hi))
    return out


def _days(db: StateDB, org: Org, now_ms: int, windows: dict[tuple[str, Any], tuple[int, int]],
          params: dict[str, dict[str, Any]]) -> dict[tuple[str, Any], DayOpen]:
    """The days not stored yet, from the runs, offline statuses and intervals
    over their windows."""
    if not windows:
        return {}
    lo = min(a for a, _ in windows.values())
    hi = skew.horizon(max(b for _, b in windows.values()))
    runs: dict[str, list[tuple[str, int, int]]] = {}
    for site, host, start, end in db.db.execute(
            "SELECT site, host, start_ms, end_ms FROM runs WHERE end_ms >= ? AND start_ms <= ? "
            "AND NOT (start_ms = end_ms AND closed = start_ms)", (lo, hi)):
        runs.setdefault(site, []).append((host, start, end))
    statuses: dict[str, list[Row]] = {}
    for site, host, t, will in db.db.execute(
            "SELECT site, host, ts, will FROM offline WHERE ts >= ? AND ts <= ?",
            (lo - schema.DAY_MS, hi)):
        statuses.setdefault(site, []).append({schema.SITE: site, schema.HOST: host, "time": t,
                                              protocol.STATE: protocol.OFFLINE, "will": will})
    intervals: dict[str, list[tuple[str, float, int, int]]] = {}
    for site, host, interval, first, last in db.db.execute(
            "SELECT site, host, interval_s, first_ts, last_ts FROM intervals "
            "WHERE first_ts <= ? AND last_ts >= ?", (hi, lo - schema.DAY_MS)):
        intervals.setdefault(site, []).append((host, interval, first, last))
    out = {}
    for (sid, d), (a, b) in windows.items():
        site = org.site(sid)
        assert site is not None
        # A run reaching past an edge of the window stands for its ticks up to
        # there (the nearest within a gap of it).
        inside = [(sid, h, max(s, a), min(e, b)) for h, s, e in runs.get(sid, ())
                  if e >= a and s <= b]
        start, end = a - schema.DAY_MS, skew.horizon(b)
        sts = [r for r in statuses.get(sid, ()) if start <= int(r["time"]) <= end]
        # The intervals announced in or around the window (the kinder judge).
        sts += [{schema.SITE: sid, schema.HOST: h, "time": 0, "interval_s": v}
                for h, v, first, last in intervals.get(sid, ()) if first <= end and last >= start]
        out[(sid, d)] = heartbeats.day_of(site, d, now_ms, heartbeats.build((), sts, inside),
                                          float(params[sid]["missing_intervals"]))
    return out


# Each room PC's last tick (marker runs of db._close are no ticks).
_LAST_TICK = ("SELECT site, host, max(min(end_ms, ?)) AS last FROM runs WHERE end_ms >= ? "
              "AND start_ms <= ? AND NOT (start_ms = end_ms AND closed = start_ms) "
              "GROUP BY site, host")


def _live(db: StateDB, since: int, now_ms: int) -> dict[tuple[str, str], Timeline]:
    """Each room PC's timeline as room_now needs it: its last tick, the statuses
    at or after it, and the longest interval it announced (as heartbeats.build
    makes it: an online status is a heartbeat, 60 s if none announced one)."""
    hi = skew.horizon(now_ms)
    beats: dict[tuple[str, str], list[int]] = {}
    offline: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    for site, host, t in db.db.execute(_LAST_TICK, (hi, since, hi)):
        beats[(site, host)] = [t]
    # Offline statuses before the last tick change nothing the room now
    # depends on (online ones are ticks: in the runs).
    for site, host, t, will in db.db.execute(
            "SELECT o.site, o.host, o.ts, o.will FROM offline o "  # noqa: S608
            f"LEFT JOIN ({_LAST_TICK}) l ON o.site = l.site AND o.host = l.host "
            "WHERE o.ts >= ? AND o.ts <= ? AND o.ts >= coalesce(l.last, 0)",
            (hi, since, hi, since - schema.DAY_MS, hi)):
        offline.setdefault((site, host), []).append((t, bool(will)))
    interval = {(site, host): v for site, host, v in db.db.execute(
        "SELECT site, host, max(interval_s) FROM intervals WHERE first_ts <= ? AND "
        "last_ts >= ? GROUP BY site, host", (hi, since - schema.DAY_MS))}
    return {k: Timeline(tuple(sorted(beats.get(k, ()))), tuple(sorted(offline.get(k, ()))),
                        interval.get(k) or heartbeats.DEFAULT_INTERVAL_S)
            for k in set(beats) | set(offline)}


StateLoader = Callable[[StateDB, Org, int], Loaded]
# The facts, read from the state; one line each (as collector.store.snapshot's).
VERDICT_LOADERS: tuple[StateLoader, ...] = (
    load_devices,
    load_bandwidth,
    load_availability,
    load_probes,
    load_isolation,
    load_settings,
)
LOADERS: tuple[StateLoader, ...] = (*VERDICT_LOADERS, load_agents)


def build(db: StateDB, org: Org, now_ms: int,
          loaders: tuple[StateLoader, ...] = LOADERS) -> Snapshots:
    """Every site's Snapshot at ``now_ms`` (epoch ms), as collector.store.snapshot.build;
    ``loaders``: VERDICT_LOADERS for the verdicts alone."""
    return snapshot.assemble((load(db, org, now_ms) for load in loaders), org, now_ms)
