"""Retention policies, continuous queries (CQs) and their backfill (InfluxDB 1.x).

Three tiers, so that years of history stay small and dashboards stay fast
(docs/operations.md, "Retention and roll-ups"):

- **raw**: the database's default retention policy, which the collector
  writes into; every sample, ``retention.raw`` long (default 35 days: the
  rules read up to 33 days back).
- ``rollup`` (``retention.rollup``, default 365 days), one point per 5
  minutes: ``metrics`` per PC (means of gauges, the last value of
  cumulative counters, the PC's byte rates, how many reports), under the
  *same measurement name and tags* as the raw series, so it adds no series
  key to the database; and ``site_metrics`` per site and network (PCs
  reporting, room PCs reporting, mean CPU and memory, the fullest disk, the
  sums of the PCs' traffic rates and link speeds): one series per site and
  network; and ``unit_metrics`` (schema.UNIT_METRICS) from ``site_metrics`` per
  lowest org unit (the org tree's level tags, e.g. battalion) and network:
  PCs and room PCs reporting, sites and rooms reporting, the mean of the
  sites' CPU and memory means, the fullest disk, summed rates and link
  speeds. Fleet- and unit-level dashboard panels read it: one series per
  unit and network, however many sites a unit has.
- ``forever`` (no expiry): ``compliance`` and ``bandwidth`` per UTC day,
  ``unit_compliance`` per unit, rule and UTC day (the means of the day's
  evaluations, and how many there were), ``availability`` as written (one
  point per room and day), and the small ``rp_choice`` table the dashboards
  pick their retention policy from.

CQs only see what has arrived by the time they run: each run recomputes the
last ``retention.resample_for`` (5-minute tiers) or 2 days (daily tiers).
Data arriving later than that (an agent's outbox after a long outage, the
collector's spool replayed hours later) is in raw but not in the roll-ups
until ``backfill`` (``netroom rollup --since``) runs the same SELECT ... INTO
over the past range.

``ensure`` is idempotent: it creates what is missing, ALTERs a policy whose
duration changed and replaces (drops, creates) a CQ whose text changed. A
CQ's name carries a hash of its text, so "changed" needs no parsing of
InfluxDB's normalised SHOW CONTINUOUS QUERIES output.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from collector.influx.client import InfluxSink, SinkError
from collector.influx.retention_settings import RetentionConfig
from collector.influx.settings import InfluxConfig
from netroom import schema

log = logging.getLogger(__name__)

BUCKET = "5m"
BUCKET_MS = 5 * schema.MINUTE_MS
DAILY_FOR_S = 2 * 86_400  # daily tiers recompute the last 2 days
CQ_PREFIX = "netroom_"
FAR_MS = 2**62  # "no upper bound" in rp_choice
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")
METRICS_FAMILY, DAILY_FAMILY = "metrics", "daily"

# rollup `metrics`, per PC and 5 minutes: (function, field) -> same field name,
# so that a dashboard's query reads raw and rollup alike.
_MEAN = ("cpu_percent", "mem_used_percent", "load1")
_MAX = (schema.DISK_USED_PERCENT,)
_LAST = ("uptime_s", schema.DISK_TOTAL_BYTES, schema.DISK_USED_BYTES, schema.DISK_FREE_BYTES,
         schema.DISK_READ_BYTES, schema.DISK_WRITE_BYTES, schema.NET_BYTES_SENT,
         schema.NET_BYTES_RECV, schema.NET_SPEED_MBPS, schema.NICS_UP)
_RATES = ((schema.NET_BYTES_RECV, schema.NET_RECV_PER_S),
          (schema.NET_BYTES_SENT, schema.NET_SENT_PER_S))
HEARTBEAT = "collect_ms"  # every metrics message carries it (docs/protocol.md)
# rollup measurement per org unit and network (dashboards/model.py names it too;
# its home would be netroom/schema.py beside SITE_METRICS) and its own fields.


@dataclass(frozen=True)
class CQ:
    """One continuous query: its SELECT ... INTO (without a time range) and schedule."""

    base: str  # name without the hash: netroom_<what>
    select: str  # "SELECT ... INTO ... FROM ... [WHERE cond] GROUP BY time(..), ..."
    every_s: int  # RESAMPLE EVERY; 0 = the GROUP BY interval
    for_s: int  # RESAMPLE FOR
    interval_ms: int  # the GROUP BY time interval
    derivative: bool = False  # the first bucket of a range gets no rate

    @property
    def name(self) -> str:
        digest = hashlib.sha256(f"{self.select}|{self.every_s}|{self.for_s}".encode())
        return f"{self.base}_{digest.hexdigest()[:8]}"

    def create(self, database: str) -> str:
        every = f"EVERY {_dur(self.every_s)} " if self.every_s else ""
        return (f"CREATE CONTINUOUS QUERY {schema.ident(self.name)} ON "
                f"{schema.ident(database)} RESAMPLE {every}FOR {_dur(self.for_s)} "
                f"BEGIN {self.select} END")

    def over(self, start_ms: int, end_ms: int) -> str:
        """The same SELECT ... INTO for [start, end): what a backfill runs."""
        head, sep, group = self.select.rpartition(" GROUP BY ")
        cond = f"time >= {start_ms}ms AND time < {end_ms}ms"
        if " WHERE " in head:
            head = head.replace(" WHERE ", f" WHERE {cond} AND ", 1)
        else:
            head = f"{head} WHERE {cond}"
        return f"{head}{sep}{group}"


def _dur(seconds: int) -> str:
    """InfluxQL duration literal: 0 -> INF, else the largest whole unit."""
    if seconds == 0:
        return "INF"
    for unit, n in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def shard_duration_s(duration_s: int) -> int:
    """InfluxDB's own recommendation: < 2 days -> 1 h, <= 6 months -> 1 day, else 7 days."""
    if duration_s == 0 or duration_s > 182 * 86_400:
        return 7 * 86_400
    return 86_400 if duration_s >= 2 * 86_400 else 3_600


def parse_influx_duration(text: str) -> int:
    """SHOW RETENTION POLICIES' "8760h0m0s" (or "0s", infinite) -> seconds."""
    m = _DURATION.fullmatch(text or "")
    if m is None or not text:
        raise ValueError(f"not an InfluxDB duration: {text!r}")
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + int(float(s or 0))


def _q(*parts: str) -> str:
    return ".".join(schema.ident(p) for p in parts)


def continuous_queries(database: str, raw_rp: str, cfg: RetentionConfig,
                       org_levels: Sequence[str] = ()) -> list[CQ]:
    """Every CQ, in the order a backfill must run them (per-PC, per-site, per-unit)."""
    db = database
    pc = [*(f"mean({schema.ident(f)}) AS {schema.ident(f)}" for f in _MEAN),
          *(f"max({schema.ident(f)}) AS {schema.ident(f)}" for f in _MAX),
          *(f"last({schema.ident(f)}) AS {schema.ident(f)}" for f in _LAST),
          f"count({schema.ident(HEARTBEAT)}) AS {schema.ident(schema.REPORTS)}",
          *(f"non_negative_derivative(last({schema.ident(c)}), 1s) AS {schema.ident(r)}"
            for c, r in _RATES)]
    rollup_metrics = _q(db, schema.RP_ROLLUP, schema.METRICS)
    site_metrics = _q(db, schema.RP_ROLLUP, schema.SITE_METRICS)
    # site_name: on every point of a registered site (Org.tags_for), one value per site.
    by_site = schema.tags(schema.SITE, schema.name_tag(schema.SITE), schema.NETWORK,
                          *sorted(set(org_levels)))
    site = [f"count({schema.ident(schema.REPORTS)}) AS {schema.ident(schema.PCS)}",
            'mean("cpu_percent") AS "cpu_percent"',
            'mean("mem_used_percent") AS "mem_used_percent"',
            f"max({schema.ident(schema.DISK_USED_PERCENT)}) AS "
            f"{schema.ident(schema.DISK_USED_PERCENT)}",
            *(f"sum({schema.ident(f)}) AS {schema.ident(f)}"
              for f in (schema.NET_RECV_PER_S, schema.NET_SENT_PER_S, schema.NET_SPEED_MBPS))]
    units = schema.tags(schema.NETWORK, *sorted(set(org_levels)))
    unit = [f"sum({schema.ident(schema.PCS)}) AS {schema.ident(schema.PCS)}",
            f"sum({schema.ident(schema.ROOM_PCS)}) AS {schema.ident(schema.ROOM_PCS)}",
            f"count({schema.ident(schema.PCS)}) AS {schema.ident(schema.UNIT_SITES)}",
            f"count({schema.ident(schema.ROOM_PCS)}) AS {schema.ident(schema.UNIT_ROOMS)}",
            'mean("cpu_percent") AS "cpu_percent"',
            'mean("mem_used_percent") AS "mem_used_percent"',
            f"max({schema.ident(schema.DISK_USED_PERCENT)}) AS "
            f"{schema.ident(schema.DISK_USED_PERCENT)}",
            *(f"sum({schema.ident(f)}) AS {schema.ident(f)}"
              for f in (schema.NET_RECV_PER_S, schema.NET_SENT_PER_S, schema.NET_SPEED_MBPS))]
    fine = cfg.resample_for_s
    day_ms = 86_400_000
    forever = schema.RP_FOREVER

    def daily(measurement: str, selects: Sequence[str], interval: str = "1d") -> str:
        return (f"SELECT {', '.join(selects)} INTO {_q(db, forever, measurement)} "  # noqa: S608
                f"FROM {_q(db, raw_rp, measurement)} GROUP BY time({interval}), *")

    def last(*fields: str) -> list[str]:
        return [f"last({schema.ident(f)}) AS {schema.ident(f)}" for f in fields]

    return [
        CQ("netroom_pc_5m", f"SELECT {', '.join(pc)} INTO {rollup_metrics} "  # noqa: S608
           f"FROM {_q(db, raw_rp, schema.METRICS)} GROUP BY time({BUCKET}), *",
           0, fine, BUCKET_MS, derivative=True),
        CQ("netroom_site_5m", f"SELECT {', '.join(site)} INTO {site_metrics} "  # noqa: S608
           f"FROM {rollup_metrics} GROUP BY time({BUCKET}), {by_site}", 0, fine, BUCKET_MS),
        CQ("netroom_room_5m", f"SELECT count({schema.ident(schema.REPORTS)}) AS "  # noqa: S608
           f"{schema.ident(schema.ROOM_PCS)} INTO {site_metrics} FROM {rollup_metrics} "
           f"WHERE {schema.tag_is(schema.ROLE, 'room')} GROUP BY time({BUCKET}), {by_site}",
           0, fine, BUCKET_MS),
        # After both site CQs: it reads what they wrote (one run behind at worst,
        # which RESAMPLE FOR recomputes).
        CQ("netroom_unit_5m", f"SELECT {', '.join(unit)} INTO "  # noqa: S608
           f"{_q(db, schema.RP_ROLLUP, schema.UNIT_METRICS)} FROM {site_metrics} "
           f"GROUP BY time({BUCKET}), {units}", 0, fine, BUCKET_MS),
        CQ("netroom_compliance_1d", daily(schema.COMPLIANCE, last(
            "status", "ok", "no_data", "waived", "required", "actual", "shortfall", "failed",
            "no_data_rules")), 0, DAILY_FOR_S, day_ms),
        # Means, not sums or the last pass: a day's point is a typical pass of
        # that day (sites = the unit's sites), so sum(passing) / sum(sites) over
        # days counts each day once, whatever its number of passes (a day the
        # collector was down half of included), and over one day is the share
        # of the day's site verdicts that passed.
        CQ("netroom_unit_compliance_1d", daily(schema.UNIT_COMPLIANCE, [
            *(f"mean({schema.ident(f)}) AS {schema.ident(f)}"
              for f in schema.UNIT_COMPLIANCE_FIELDS),
            f"count({schema.ident(schema.SITES_APPLYING)}) AS {schema.ident(schema.PASSES)}"]),
           0, DAILY_FOR_S, day_ms),
        CQ("netroom_bandwidth_1d", daily(schema.BANDWIDTH, [
            'mean("download_mbps") AS "download_mbps"', 'mean("upload_mbps") AS "upload_mbps"',
            'mean("latency_ms") AS "latency_ms"', 'max("download_mbps") AS "download_max_mbps"',
            'count("method") AS "tests"', 'count("error") AS "failed"']),
           0, DAILY_FOR_S, day_ms),
        # One point per room and day already, stamped at the room's local
        # midnight: hourly buckets keep that time (a 1d bucket would move it
        # to UTC midnight, a day early east of Greenwich).
        CQ("netroom_availability_1h", daily(schema.AVAILABILITY, last(
            "day", "required_s", "open_s", "open_share", "target", "ok"), "1h"),
           3600, DAILY_FOR_S, schema.HOUR_MS),
    ]


def choice_lines(raw_rp: str, cfg: RetentionConfig) -> list[str]:
    """rp_choice points: per family, which RP serves ranges [from_ms, upto_ms).

    Dashboards read them through a variable refreshed on every time range
    change (dashboards/model.py, rp_var). Written at time 0 in ``forever``:
    rewriting them overwrites, never adds.
    """
    switch = cfg.switch_after_s * 1000
    rows = [(METRICS_FAMILY, 0, raw_rp, 0, switch),
            (METRICS_FAMILY, 1, schema.RP_ROLLUP, switch, FAR_MS),
            (DAILY_FAMILY, 0, raw_rp, 0, switch),
            (DAILY_FAMILY, 1, schema.RP_FOREVER, switch, FAR_MS)]
    out = []
    for family, tier, rp, lo, hi in rows:
        name = rp.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'{schema.RP_CHOICE},family={family},tier={tier} rp="{name}",'
                   f"from_ms={lo}i,upto_ms={hi}i 0")
    return out


def _policies(sink: InfluxSink) -> dict[str, tuple[int, int, bool]]:
    """name -> (duration s, shard duration s, default)."""
    rows = sink.query(f"SHOW RETENTION POLICIES ON {schema.ident(sink.cfg.database)}")
    return {r["name"]: (parse_influx_duration(r["duration"]),
                        parse_influx_duration(r["shardGroupDuration"]), bool(r["default"]))
            for r in rows}


def default_rp(sink: InfluxSink) -> str:
    """The name of the database's default retention policy (where raw points go)."""
    for name, (_, _, is_default) in _policies(sink).items():
        if is_default:
            return name
    raise SinkError(f"database {sink.cfg.database!r} has no default retention policy")


def ensure(sink: InfluxSink, influx: InfluxConfig, org_levels: Sequence[str] = ()) -> list[str]:
    """Make the RPs, CQs and rp_choice match ``influx.retention``; return what changed.

    Idempotent: a second run with the same config changes nothing and returns
    []. Raises SinkError when InfluxDB cannot be reached or refuses (no admin
    rights: CREATE/ALTER RETENTION POLICY and CQs need them).
    ``org_levels``: the org tree's level tag keys (site_metrics keeps them).
    """
    cfg = influx.retention
    if not cfg.manage:
        return []
    db = schema.ident(influx.database)
    done: list[str] = []
    policies = _policies(sink)
    raw_rp = next((n for n, (_, _, d) in policies.items() if d), None)
    if raw_rp is None:
        raise SinkError(f"database {influx.database!r} has no default retention policy")
    want = {raw_rp: cfg.raw_s, schema.RP_ROLLUP: cfg.rollup_s, schema.RP_FOREVER: 0}
    for name, duration in want.items():
        shard = shard_duration_s(duration)
        spec = f"DURATION {_dur(duration)} REPLICATION 1 SHARD DURATION {_dur(shard)}"
        have = policies.get(name)
        if have is None:
            sink.query(f"CREATE RETENTION POLICY {schema.ident(name)} ON {db} {spec}")
            done.append(f"created retention policy {name} ({_dur(duration)})")
        elif have[:2] != (duration, shard):
            if name == raw_rp and duration and (have[0] == 0 or have[0] > duration):
                log.warning("retention: shortening %s from %s to %s drops the older raw "
                            "points (run `netroom rollup --since %s` first to keep them in "
                            "the roll-ups)", name, _dur(have[0]), _dur(duration),
                            _dur(have[0]) if have[0] else "400d")
            sink.query(f"ALTER RETENTION POLICY {schema.ident(name)} ON {db} {spec}")
            done.append(f"altered retention policy {name}: {_dur(have[0])} -> "
                        f"{_dur(duration)}")
    cqs = {cq.name: cq for cq in continuous_queries(influx.database, raw_rp, cfg, org_levels)}
    have_cqs = {r["name"] for r in sink.query("SHOW CONTINUOUS QUERIES")
                if r.get("name", "").startswith(CQ_PREFIX)
                and _cq_database(r) in (None, influx.database)}
    for name in sorted(have_cqs - set(cqs)):
        sink.query(f"DROP CONTINUOUS QUERY {schema.ident(name)} ON {db}")
        done.append(f"dropped continuous query {name}")
    for name, cq in cqs.items():
        if name not in have_cqs:
            sink.query(cq.create(influx.database))
            done.append(f"created continuous query {name}")
    lines = choice_lines(raw_rp, cfg)
    table = _q(schema.RP_FOREVER, schema.RP_CHOICE)
    current = {(r.get("family"), r.get("tier")): (r.get("rp"), r.get("from_ms"), r.get("upto_ms"))
               for r in sink.query(f"SELECT * FROM {table}")}  # noqa: S608
    wanted = {}
    for line in lines:
        m = re.match(r'[^,]+,family=(\w+),tier=(\d) rp="(.*)",from_ms=(\d+)i,upto_ms=(\d+)i',
                     line)
        assert m is not None
        wanted[(m[1], m[2])] = (m[3], int(m[4]), int(m[5]))
    if current != wanted:
        _write(sink, lines, schema.RP_FOREVER)
        done.append("wrote rp_choice")
    return done


def _cq_database(row: dict[str, Any]) -> str | None:
    """The database a SHOW CONTINUOUS QUERIES row belongs to (its query says ON <db>)."""
    m = re.search(r"\bON (\"(?:[^\"\\]|\\.)*\"|\S+)", str(row.get("query", "")))
    if m is None:
        return None
    name = m.group(1)
    return name[1:-1].replace('\\"', '"').replace("\\\\", "\\") if name.startswith('"') \
        else name


def _write(sink: InfluxSink, lines: list[str], rp: str) -> None:
    r = sink._send("POST", "/write", {"db": sink.cfg.database, "rp": rp, "precision": "ms"},
                   data="\n".join(lines).encode("utf-8"),
                   headers={"Content-Type": "text/plain; charset=utf-8"})
    if r.status_code // 100 != 2:
        raise SinkError(f"{sink.base}: {r.status_code}: cannot write {schema.RP_CHOICE}: "
                        f"{r.text.strip()[:200]}")


def backfill(sink: InfluxSink, influx: InfluxConfig, start_ms: int, end_ms: int,
             org_levels: Sequence[str] = (), chunk_ms: int = 6 * schema.HOUR_MS,
             progress: Any = None, only: Sequence[str] = ()) -> dict[str, int]:
    """Run every CQ's SELECT ... INTO over [start, end), oldest first, in chunks.

    What a CQ missed (points that arrived after its RESAMPLE FOR window)
    lands in the roll-ups; re-running is harmless (same points, same
    values). Per-PC tiers before per-site ones, per-site before per-unit.
    ``only``: run just the CQs of these names (``CQ.base``), e.g. the per-unit
    one over per-site points written by other means. Returns points written per CQ.
    ``progress(name, chunk_start_ms, chunk_end_ms, written)`` is called per chunk.
    """
    raw_rp = default_rp(sink)
    written: dict[str, int] = {}
    for cq in continuous_queries(influx.database, raw_rp, influx.retention, org_levels):
        if only and cq.base not in only:
            continue
        step = cq.interval_ms
        lo = start_ms // step * step - (step if cq.derivative else 0)
        hi = -(-end_ms // step) * step
        size = max(step, chunk_ms // step * step)
        total = 0
        t = lo
        while t < hi:
            # A derivative needs the bucket before: chunks overlap by one; the
            # overlap's other fields are rewritten with the same values.
            a = t - step if cq.derivative and t > lo else t
            b = min(t + size, hi)
            rows = sink.query(cq.over(a, b))
            n = sum(int(r.get("written") or 0) for r in rows)
            total += n
            if progress is not None:
                progress(cq.base, a, b, n)
            t = b
        written[cq.base] = total
    return written


def keep(influx: InfluxConfig, org_levels: Sequence[str], stop: threading.Event,
         retry_s: float = 60.0) -> None:
    """``ensure`` until it succeeds once (or ``stop``), retrying every ``retry_s``
    while InfluxDB is down or refuses; logs what it changed. Run it in a thread
    of its own: it blocks."""
    while not stop.is_set():
        sink = InfluxSink(influx)
        try:
            sink.ensure_database()  # a no-op unless influxdb.create_database
            changed = ensure(sink, influx, org_levels)
        except SinkError as exc:
            log.warning("retention: cannot set up retention policies and continuous "
                        "queries yet (retrying in %g s): %s", retry_s, exc)
        else:
            for what in changed:
                log.info("retention: %s", what)
            return
        finally:
            sink.close()
        stop.wait(retry_s)
