"""The state the rules need, kept at ingest in SQLite (WAL) beside the spool.

One file, ``<spool_dir>/state.sqlite``, shared by every ingest worker (each
writes its own messages' records in one transaction per durable batch,
before they are acknowledged) and read by the evaluation and ``netroom
report``. Applying a record twice changes nothing (a redelivered message),
so a crash between a commit and an ack loses nothing and counts nothing twice.

What is kept, pruned to what the rules look back on (``prune``):
- ``inventory``: per PC placement (host, site, network, role) and host id, the
  first and last inventory and the newest hostname, while the last is within
  ``rules.freshness_days``;
- ``online``: each PC's latest ``online`` status (the settings and the agent
  version it runs, its self-update's state);
- ``offline``: room PCs' ``offline`` statuses (heartbeats' ends), and
  ``intervals``: the intervals room PCs announced, with the first and last
  time each was announced (a heartbeat's allowed silence), both kept for the
  availability look-back;
- ``runs``: room PCs' heartbeats as runs ``[start, end]`` in which no two
  ticks are further apart than ``missing_intervals`` x the PC's interval, the
  silence after which the availability walk would end its span anyway: the
  walk over the run's ends gives the spans the walk over every tick gives. A
  clean ``offline`` status closes a run (ticks after it start a new one).
- ``probe``/``isolation``: per series the newest result stamped at least
  collector.compliance.skew.AHEAD_MS before the last prune, and all later ones
  (a read "now" needs the newest at or before now and failures stamped ahead);
- ``bandwidth``: every speed test of the loader's look-back (28 days);
- ``days``: complete days the collector stored in ``availability``;
- ``room_first``: per site, its room PCs' first report (tick or status) ever
  seen, never pruned (days before it are unknown, not closed);
- ``late``: per site, the time span (``lo_ms``, ``hi_ms``) that room PCs'
  ticks or statuses reached after a day there may have been stored (an
  outbox delivering after a link came back): the stored days it overlaps are
  computed again, and stored again, by the next pass (``LateSeen`` clears
  the marks it accounted for once those days are durable). One row per site
  (a catch-up's batches widen it); ``seq`` says which batch last did;
- ``hardware``, ``hardware_changes``: each PC's last inventory as the hardware
  register compares it, and the changes found not yet durable (hardware.py).
Times are epoch ms. docs/scale.md explains the design.
"""
from __future__ import annotations

import os
import sqlite3
import time
from typing import Any, Callable, Iterable, Tuple

from collector.store.state import hardware
from collector.store.state import records as rec
from netroom import protocol, schema

# 4: room_first; 5: online's agent version and update fields (an older file
# is rebuilt, which fills them).
SCHEMA_VERSION = "5"
FILE = "state.sqlite"
LATE_SEQ = "late_seq"  # meta: the last late mark's number
DEFAULT_INTERVAL_S = 60.0  # an agent that never announced one (collector.store.heartbeats)

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS inventory (site TEXT, host TEXT, network TEXT, role TEXT, "
    "host_id TEXT, hostname TEXT, first_ts INTEGER, last_ts INTEGER, "
    "PRIMARY KEY (site, host, network, role, host_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS online (site TEXT, host TEXT, ts INTEGER, version TEXT, "
    "error TEXT, local TEXT, agent TEXT, update_state TEXT, update_version TEXT, "
    "update_error TEXT, PRIMARY KEY (site, host)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS offline (site TEXT, host TEXT, ts INTEGER, will INTEGER, "
    "PRIMARY KEY (site, host, ts)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS intervals (site TEXT, host TEXT, interval_s REAL, "
    "first_ts INTEGER, last_ts INTEGER, PRIMARY KEY (site, host, interval_s)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS runs (site TEXT, host TEXT, start_ms INTEGER, "
    "end_ms INTEGER, closed INTEGER, PRIMARY KEY (site, host, start_ms)) WITHOUT ROWID",
    # runs.closed: when a clean offline status ended the run (epoch ms; 0: none).
    "CREATE TABLE IF NOT EXISTS probe (site TEXT, host TEXT, network TEXT, probe TEXT, "
    "ts INTEGER, ok INTEGER, PRIMARY KEY (site, host, network, probe, ts)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS isolation (site TEXT, host TEXT, network TEXT, ts INTEGER, "
    "violated INTEGER, reasons TEXT, reached TEXT, canaries INTEGER, "
    "PRIMARY KEY (site, host, network, ts)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bandwidth (site TEXT, network TEXT, host TEXT, ts INTEGER, "
    "download REAL, upload REAL, latency REAL, method TEXT, error TEXT, "
    "PRIMARY KEY (site, network, host, ts)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS days (site TEXT, day TEXT, start_ms INTEGER, "
    "required_s REAL, open_s REAL, PRIMARY KEY (site, day)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS room_first (site TEXT PRIMARY KEY, first_ms INTEGER) "
    "WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS offline_ts ON offline (ts)",
    # No layout change: a file without it has no marks (snapshot.py checks).
    "CREATE TABLE IF NOT EXISTS late (site TEXT PRIMARY KEY, lo_ms INTEGER, hi_ms INTEGER, "
    "seq INTEGER) WITHOUT ROWID",
)


# Runs that are only a clean offline status's marker (_close), not ticks; the
# reads in snapshot.py spell the same condition out.
REAL_RUN = "NOT (start_ms = end_ms AND closed = start_ms)"


class StateError(OSError):
    """The state database cannot be opened or written (a disk problem, like the
    spool's: the entry points report it in one line). ``full``: the disk is
    full (SQLITE_FULL): the write may succeed once space is freed."""

    def __init__(self, message: str, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


def path_in(spool_dir: str) -> str:
    return os.path.join(spool_dir, FILE)


class StateDB:
    """One connection to the state file; one per thread that uses it.

    ``missing_of(site)``: the site's ``room_open_all_day.missing_intervals``
    (how many silent intervals end a span; runs never bridge a longer gap).
    """

    def __init__(self, path: str, missing_of: Callable[[str], float] = lambda site: 3.0,
                 readonly: bool = False) -> None:
        self.path = path
        self.missing_of = missing_of
        try:
            if readonly:
                self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30,
                                          check_same_thread=False)
            else:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                          check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=WAL")
                # The records must be on disk before their messages are acked.
                self.db.execute("PRAGMA synchronous=FULL")
                self._create()
        except sqlite3.Error as exc:
            # SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged, and derived data.
            damaged = getattr(exc, "sqlite_errorcode", None) in (11, 26) and not readonly
            hint = (" (stop the collector and delete it: it is rebuilt from InfluxDB, "
                    "docs/scale.md)") if damaged else ""
            raise StateError(f"state database {path}: {exc}{hint}") from exc
        self._intervals: dict[tuple[str, str], float] = {}
        # Each PC's latest open run as this connection last wrote it (db._ticks).
        self._runs: dict[tuple[str, str], tuple[int, int]] = {}
        # Each site's room_first as this connection last wrote it (db._first).
        self._firsts: dict[str, int] = {}

    def _create(self) -> None:
        # One transaction: workers starting together upgrade the file once.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = None
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
                row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                version = row[0] if row else None
            if version not in (None, SCHEMA_VERSION):
                # An older layout: start again, rebuilt from InfluxDB (rebuild.py);
                # not the hardware register's, whose pending changes are in no
                # other place (hardware.py keeps its own layout).
                for (name,) in self.db.execute(
                        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN "
                        "('hardware', 'hardware_changes')").fetchall():
                    self.db.execute(f'DROP TABLE IF EXISTS "{name}"')
            for sql in _TABLES + hardware.TABLES:
                self.db.execute(sql)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                            (SCHEMA_VERSION,))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # --- meta ---
    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def complete(self) -> bool:
        """True once the state holds what InfluxDB held when it began (rebuild.py),
        in this version's layout (a reader may meet a file an older collector
        still runs on: not complete, so `netroom report` reads InfluxDB)."""
        try:
            return self.get("complete") == "1" and self.get("schema") == SCHEMA_VERSION
        except sqlite3.Error:
            return False  # a file still being created

    # --- writes ---
    def apply(self, records: Iterable[rec.Record | None], late: bool = True) -> None:
        """Apply records in one transaction (committed, fsync'd, on return).
        ``late``: mark what reaches stored days (False for a rebuild's history,
        whose stored days came with it)."""
        got = [r for r in records if r is not None]
        if not got:
            return
        # Rows that only add go in one statement per table; heartbeats and
        # statuses shape runs, in time order.
        plain: dict[str, list[rec.Record]] = {}
        timed: list[rec.Record] = []
        for r in got:
            table = _PLAIN.get(type(r))
            if table is None:
                timed.append(r)
            else:
                plain.setdefault(table, []).append(r)
        timed.sort(key=rec.time_of)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for table, rows in plain.items():
                    marks = ",".join("?" * len(rows[0]))
                    sql = f"INSERT OR REPLACE INTO {table} VALUES ({marks})"  # noqa: S608
                    self.db.executemany(sql, rows)
                self._timed(timed)
                if late:
                    self._mark_late(timed)
            except BaseException:
                self.db.execute("ROLLBACK")
                self._runs.clear()  # may hold what was rolled back
                self._firsts.clear()
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            full = getattr(exc, "sqlite_errorcode", None) == 13 or "disk is full" in str(exc)
            raise StateError(f"state database {self.path}: {exc}", full) from exc

    def _timed(self, timed: list[rec.Record]) -> None:
        """Records that shape runs, in time order. A PC's ticks and runs wait
        in ``spans`` until its next status or the end of the batch: a
        backlog's many ticks per PC, or a rebuild's many runs, become one
        write, not one each."""
        spans: dict[tuple[str, str], list[tuple[int, int, bool]]] = {}
        for r in timed:
            if isinstance(r, (rec.Beat, rec.Run)):
                end = r.end_ms if isinstance(r, rec.Run) else r.ts
                spans.setdefault((r.site, r.host), []).append((r.ts, end, isinstance(r, rec.Beat)))
                continue
            if isinstance(r, rec.Status) and (r.site, r.host) in spans:
                self._join(r.site, r.host, spans.pop((r.site, r.host)))
            if isinstance(r, rec.First):
                self._first(r.site, r.ts)
            elif isinstance(r, rec.Status):
                self._status(r)
                if r.role == rec.ROOM:
                    self._first(r.site, r.ts)
            elif isinstance(r, rec.Inventory):
                self._inventory(r)
            elif isinstance(r, rec.ChangesWritten):
                hardware.written(self.db.execute, r)
            elif isinstance(r, rec.LateSeen):
                self.db.execute("DELETE FROM late WHERE seq <= ?", (r.upto,))
        for (site, host), got in spans.items():
            self._join(site, host, got)

    def _mark_late(self, timed: list[rec.Record]) -> None:
        """Mark, per site, the time room PCs' ticks and statuses of this batch
        reach (their run's bridge, missing_intervals x at most 60 s, either
        side) where a stored day may lie: one stored once it ended
        DAY_STORED_AFTER_MS ago. Live ticks reach no such day."""
        stored_before = int(time.time() * 1000) - schema.DAY_STORED_AFTER_MS
        spans: dict[str, list[int]] = {}
        reaches: dict[str, int] = {}
        for r in timed:
            if not (isinstance(r, (rec.Beat, rec.Run))
                    or (isinstance(r, rec.Status) and r.role == rec.ROOM)):
                continue
            reach = reaches.get(r.site)
            if reach is None:
                reach = reaches[r.site] = round(self.longest_gap_ms(r.site))
            if r.ts - reach > stored_before:
                continue
            end = r.end_ms if isinstance(r, rec.Run) else r.ts
            span = spans.setdefault(r.site, [r.ts - reach, end + reach])
            span[0], span[1] = min(span[0], r.ts - reach), max(span[1], end + reach)
        if not spans:
            return
        # seq never repeats (meta, not max(seq): a cleared number would come
        # back), so a pass's LateSeen never clears a mark it did not read.
        seq = int(self.get(LATE_SEQ) or 0) + 1
        self.put(LATE_SEQ, str(seq))
        self.db.executemany(
            "INSERT INTO late VALUES (?, ?, ?, ?) ON CONFLICT (site) DO UPDATE SET "
            "lo_ms = min(lo_ms, excluded.lo_ms), hi_ms = max(hi_ms, excluded.hi_ms), "
            "seq = excluded.seq", [(site, lo, hi, seq) for site, (lo, hi) in spans.items()])

    def late_upto(self) -> int:
        """The newest late mark's seq (0: none): a pass that read the marks up
        to it clears them with LateSeen once its days are durable."""
        row = self.db.execute("SELECT max(seq) FROM late").fetchone()
        return int(row[0] or 0)

    def _join(self, site: str, host: str, got: list[tuple[int, int, bool]]) -> None:
        """A PC's ticks and runs (start, end, is a tick), in time order."""
        ticks = [start for start, _, tick in got if tick]
        if len(ticks) == len(got):
            self._ticks(site, host, ticks)
            return
        if ticks:
            self._first(site, ticks[0])
        self._spans(site, host, [(start, end) for start, end, _ in got])

    def _first(self, site: str, ts: int) -> None:
        """The room's first report: one statement per site and connection,
        not per tick (another worker's smaller one is kept by min())."""
        known = self._firsts.get(site)
        if known is not None and known <= ts:
            return
        self.db.execute("INSERT INTO room_first VALUES (?, ?) ON CONFLICT (site) "
                        "DO UPDATE SET first_ms = min(first_ms, excluded.first_ms)", (site, ts))
        self._firsts[site] = ts

    def _ticks(self, site: str, host: str, ticks: list[int]) -> None:
        """A PC's ticks (epoch ms, in order). The common case, its latest run
        growing by ticks each within a gap of the one before, is one UPDATE
        (checked against the row, as another worker may have changed it)."""
        self._first(site, ticks[0])
        i = 0
        while i < len(ticks):
            last = self._runs.get((site, host))
            if last is not None:
                gap, end, j = self.gap_ms(site, host), last[1], i
                while j < len(ticks) and end < ticks[j] <= end + gap:
                    end, j = ticks[j], j + 1
                # Another worker may have started a run in between: then the general way.
                if j > i and self.db.execute(
                        "UPDATE runs SET end_ms=? WHERE site=? AND host=? AND start_ms=? "
                        "AND end_ms=? AND closed=0 AND NOT EXISTS (SELECT 1 FROM runs WHERE "
                        "site=? AND host=? AND start_ms > ? AND start_ms <= ?)",
                        (end, site, host, last[0], last[1], site, host, last[0], end)
                ).rowcount == 1:
                    self._runs[(site, host)] = (last[0], end)
                    i = j
                    continue
            self._span(site, host, ticks[i], ticks[i])
            i += 1

    def _inventory(self, r: rec.Inventory) -> None:
        self.db.execute(
            "INSERT INTO inventory VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (site, host, network, "
            "role, host_id) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
            "hostname = CASE WHEN excluded.last_ts >= last_ts THEN excluded.hostname "
            "ELSE hostname END, last_ts = max(last_ts, excluded.last_ts)",
            (r.site, r.host, r.network, r.role, r.host_id, r.hostname, r.ts, r.ts))
        hardware.track(self.db.execute, r)  # the hardware register's changes

    def _status(self, r: rec.Status) -> None:
        x = self.db.execute
        if r.state == protocol.ONLINE:
            x("INSERT INTO online VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (site, host) DO UPDATE "
              "SET ts = excluded.ts, version = excluded.version, error = excluded.error, "
              "local = excluded.local, agent = excluded.agent, "
              "update_state = excluded.update_state, update_version = excluded.update_version, "
              "update_error = excluded.update_error WHERE excluded.ts >= online.ts",
              (r.site, r.host, r.ts, r.version, r.error, r.local, r.agent, r.update_state,
               r.update_version, r.update_error))
        if r.role != rec.ROOM:
            return
        if r.interval_s is not None:
            x("INSERT INTO intervals VALUES (?,?,?,?,?) ON CONFLICT (site, host, interval_s) "
              "DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
              "last_ts = max(last_ts, excluded.last_ts)",
              (r.site, r.host, r.interval_s, r.ts, r.ts))
            self._intervals[(r.site, r.host)] = r.interval_s
        if r.state == protocol.ONLINE:  # a heartbeat
            self._span(r.site, r.host, r.ts, r.ts)
        elif r.state == protocol.OFFLINE:
            x("INSERT OR REPLACE INTO offline VALUES (?,?,?,?)", (r.site, r.host, r.ts, r.will))
            if not r.will:
                self._close(r.site, r.host, r.ts)

    def gap_ms(self, site: str, host: str) -> float:
        """The longest silence a run bridges for this PC: missing_intervals x its
        interval, at most x 60 s: the walk judges a window by the intervals
        announced around it, else 60 s, and a run must never bridge a silence
        any judgement splits."""
        interval = self._intervals.get((site, host))
        if interval is None:
            row = self.db.execute(
                "SELECT interval_s FROM intervals WHERE site=? AND host=? "
                "ORDER BY last_ts DESC LIMIT 1", (site, host)).fetchone()
            if row is None:  # not announced yet (maybe to another worker): ask again later
                return self.longest_gap_ms(site)
            interval = float(row[0])
            self._intervals[(site, host)] = interval
        return self.missing_of(site) * min(interval, DEFAULT_INTERVAL_S) * 1000

    def longest_gap_ms(self, site: str) -> float:
        """The longest silence any of the site's runs bridges (gap_ms at 60 s)."""
        return self.missing_of(site) * DEFAULT_INTERVAL_S * 1000

    def _span(self, site: str, host: str, start: int, end: int) -> None:
        self._spans(site, host, [(start, end)])

    def _spans(self, site: str, host: str, spans: list[tuple[int, int]]) -> None:
        """Ticks from ``start`` to ``end`` (one tick: both the same), in time
        order, each join the runs within a gap of them, unless a clean offline
        status closed that run first: one read and one write for all of them."""
        gap, key = self.gap_ms(site, host), (site, host)
        was = {r[0]: r for r in self.db.execute(
            "SELECT start_ms, end_ms, closed FROM runs WHERE site=? AND host=? AND "
            "start_ms <= ? AND end_ms >= ?",
            (site, host, max(e for _, e in spans) + gap, min(s for s, _ in spans) - gap))}
        rows = dict(was)
        active = dict(was)  # rows a later span may still reach (spans come in order)
        for start, end in spans:
            for n in [n for n in active.values() if n[1] < start - gap]:
                del active[n[0]]
            joined = _joined([n for n in active.values() if n[0] <= end + gap], start, end)
            if joined is None:
                continue
            absorbed, made = joined
            for n in absorbed:
                del rows[n[0]], active[n[0]]
            lo, hi, closed = rows[made[0]] = active[made[0]] = made
            last = self._runs.get(key)
            if not closed and (last is None or hi >= last[1]):
                self._runs[key] = (lo, hi)
        gone = [(site, host, start) for start in was if start not in rows]
        if gone:
            self.db.executemany("DELETE FROM runs WHERE site=? AND host=? AND start_ms=?", gone)
        self.db.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?)",
                            [(site, host, *r) for start, r in rows.items() if was.get(start) != r])

    def _close(self, site: str, host: str, ts: int) -> None:
        """A clean offline status at ``ts``: the run it ends takes no later tick."""
        gap = self.gap_ms(site, host)
        row = self.db.execute(
            "SELECT start_ms, end_ms, closed FROM runs WHERE site=? AND host=? AND "
            "start_ms <= ? AND end_ms >= ? ORDER BY start_ms DESC LIMIT 1",
            (site, host, ts, ts - gap)).fetchone()
        if row is None:
            # No tick near it yet (an outbox delivers them later): a marker run
            # at the status, so ticks after it never join ticks before it.
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?)",
                            (site, host, ts, ts, ts))
            return
        start, end, closed = row
        if end <= ts:
            self.db.execute("UPDATE runs SET closed=? WHERE site=? AND host=? AND start_ms=?",
                            (ts, site, host, start))
            return
        # Ticks after the status arrived first (an outbox): split at it. The
        # later part begins at the first tick after ts, known to within a gap.
        self.db.execute("UPDATE runs SET end_ms=?, closed=? WHERE site=? AND host=? AND "
                        "start_ms=?", (ts, ts, site, host, start))
        self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?)",
                        (site, host, ts + 1, end, closed))

    def prune(self, keep: dict[str, int], newest_before: int) -> None:
        """Drop what no read looks at any more.

        ``keep``: per table, the oldest time (epoch ms) a read may ask for;
        ``newest_before``: probe/isolation keep per series only the newest
        result stamped at or before it, and all later ones.
        """
        x = self.db.execute
        x("BEGIN IMMEDIATE")
        try:
            self._prune(keep, newest_before)
        except BaseException:
            x("ROLLBACK")
            raise
        x("COMMIT")

    def _prune(self, keep: dict[str, int], newest_before: int) -> None:
        x = self.db.execute
        x("DELETE FROM inventory WHERE last_ts <= ?", (keep["inventory"],))
        hardware.prune(x, keep["inventory"])
        x("DELETE FROM online WHERE ts < ?", (keep["status"],))
        x("DELETE FROM offline WHERE ts < ?", (keep["status"],))
        x("DELETE FROM intervals WHERE last_ts < ?", (keep["status"],))
        x("DELETE FROM runs WHERE end_ms < ?", (keep["runs"],))
        x("DELETE FROM late WHERE hi_ms < ?", (keep["runs"],))
        x("DELETE FROM bandwidth WHERE ts <= ?", (keep["bandwidth"],))
        x("DELETE FROM days WHERE start_ms < ?", (keep["runs"],))
        for table, key in (("probe", "site, host, network, probe"),
                           ("isolation", "site, host, network")):
            x(f"DELETE FROM {table} WHERE ts <= ?", (keep["inventory"],))  # noqa: S608
            # Only our table and column names go into the text.
            x(f"DELETE FROM {table} WHERE ({key}, ts) IN (SELECT {key}, ts FROM "  # noqa: S608
              f"(SELECT {key}, ts, row_number() OVER (PARTITION BY {key} ORDER BY ts DESC) "
              f"AS n FROM {table} WHERE ts <= ?) WHERE n > 1)", (newest_before,))

    # --- reads: each returns rows shaped like the InfluxQL rows the loaders read ---
    def rows(self, sql: str, args: tuple[Any, ...], names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [dict(zip(names, r)) for r in self.db.execute(sql, args)]


RunRow = Tuple[int, int, int]  # a runs row: start_ms, end_ms, closed


def _joined(near: list[RunRow], start: int, end: int) -> tuple[list[RunRow], RunRow] | None:
    """Pure: ticks from ``start`` to ``end`` joined to the runs ``near`` them
    (within a gap): the runs they absorb and the run they make; None when a
    run already spans them (a redelivery)."""
    if not near:  # the common case: a run of its own
        return near, (start, end, 0)
    # A run a clean offline status closed (at n[2]) takes no tick after that,
    # and ticks before it never join a run that began after it.
    near = [n for n in near if not (n[2] and start > n[2])]
    closed = min((n[2] for n in near if n[2]), default=0)
    if closed:
        near = [n for n in near if n[0] <= closed]
    if len(near) == 1 and near[0][0] <= start and end <= near[0][1]:
        return None
    return near, (min([start, *(n[0] for n in near)]), max([end, *(n[1] for n in near)]),
                  closed)


# Records that only add a row, by the table they go to.
_PLAIN: dict[type, str] = {rec.Probe: "probe",
                           rec.Isolation: "isolation", rec.Test: "bandwidth", rec.Day: "days"}

