"""The state kept at ingest gives the verdicts reading InfluxDB gives.

Today's InfluxDB-reading path (collector.store.snapshot) is the oracle: on
the hand-computed fleet of fleets.py, with a day of room PCs' heartbeats
(gaps, restarts, a Last Will), probes, isolation reports and speed tests
added, both paths must build equal Snapshots and verdicts, after a collector
restart, a SIGKILL, with two workers, in the hour after a site's midnight,
and after the state was rebuilt from InfluxDB alone.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import difflib
import os
import pprint
import random
import signal
import time
from pathlib import Path
from typing import Any, Callable

import fleets
import pytest
from harness import (
    Publisher,
    message,
    run_cli,
    start_collector,
    stop_process,
    wait_count,
    write_config,
)
from servers import Influxd, Mosquitto, wait_until

from collector.compliance.availability import Timeline, online_spans, room_now
from collector.compliance.evaluate import evaluate_all
from collector.config import load
from collector.influx.client import InfluxSink
from collector.store import snapshot
from collector.store.rows import reader
from collector.store.state import rebuild
from collector.store.state import records as rec
from collector.store.state import snapshot as state_snapshot
from collector.store.state.db import REAL_RUN, StateDB, path_in

INTERVAL = 300  # s between ticks: a day of 20 room PCs is about 6,000 messages
ROOMS = [(s, h, n) for s, h, _, n, role, _ in fleets.PCS if role == "room"]


def history(now: float, seed: int = 7) -> list[tuple[str, bytes]]:
    """A day of what the fleet's agents send besides inventories."""
    rnd = random.Random(seed)
    out = []
    start = now - 26 * 3600
    for i, (site, host, net) in enumerate(ROOMS):
        kw: dict[str, Any] = {"site": site, "host": host, "network": net, "role": "room"}
        t = start + i * 7
        out.append(message("status", {"state": "online", "interval_s": INTERVAL}, ts=t, **kw))
        while t < now - 60:
            out.append(message("metrics", {}, ts=t, **kw))
            t += INTERVAL + rnd.uniform(-20, 20)
            roll = rnd.random()
            if roll < 0.01:  # a clean restart: offline, 40 min off, online again
                out.append(message("status", {"state": "offline"}, ts=t, **kw))
                t += 2400
                out.append(message("status", {"state": "online", "interval_s": INTERVAL},
                                   ts=t, **kw))
            elif roll < 0.02:  # a power cut: silence, no status
                t += rnd.uniform(1800, 7200)
        if i % 5 == 4:  # vanished at the end: the broker's Last Will
            out.append(message("status", {"state": "offline", "will": True}, ts=t, **kw))
        for k in range(0, 26, 2):
            out.append(message("probe", {"probe": "portal", "method": "http", "target":
                                         "http://portal.example/", "ok": rnd.random() > 0.2},
                               ts=start + k * 3600 + i, **kw))
        if net == "gov":
            out.append(message("isolation", {"violated": i % 3 == 0, "canaries_checked": 2,
                                             "reasons": "reached" if i % 3 == 0 else ""},
                               ts=now - 1800 + i, **kw))
        if i % 4 == 1:  # results of the last minutes, and bad news from a clock ahead
            probe = {"probe": "portal", "method": "http", "target": "http://portal.example/"}
            out += [message("probe", {**probe, "ok": ok}, ts=now + off + i, **kw)
                    for ok, off in ((False, -150), (True, -90), (False, 300))]
            if net == "gov":
                out.append(message("isolation", {"violated": True, "canaries_checked": 2,
                                                 "reasons": "reached"}, ts=now + 240 + i, **kw))
    # Identities the devices loader must untangle: two host ids under one
    # placement (clones given one agent.host; the newest names it), and an
    # agent upgraded from a bare machine id to <machine>.<hardware> in place.
    dup: dict[str, Any] = {"site": "sq-short", "host": "dup", "network": "gov", "role": "cadre"}
    up: dict[str, Any] = {"site": "sq-pass", "host": "up", "network": "internet",
                          "role": "cadre"}
    out += [message("inventory", {"hostname": "dup-a", "host_id": "h-dup1"}, ts=now - 5 * 3600,
                    **dup),
            message("inventory", {"hostname": "DUP-B.corp", "host_id": "h-dup2"},
                    ts=now - 3600, **dup),
            message("inventory", {"hostname": "dup-a", "host_id": "h-dup1"}, ts=now - 2 * 3600,
                    **dup),
            message("inventory", {"hostname": "up", "host_id": "m-up"}, ts=now - 6 * 3600, **up),
            message("inventory", {"hostname": "up", "host_id": "m-up.0123456789abcdef"},
                    ts=now - 3600, **up)]
    for j, site in enumerate(sorted({s for s, _, _ in ROOMS})):
        for k in range(0, 24, 6):
            for net in ("gov", "internet"):
                body = ({"method": "intranet", "error": "timeout"} if (j + k) % 7 == 0 else
                        {"method": "intranet", "download_mbps": 20.0 + j + k,
                         "upload_mbps": 5.0, "latency_ms": 3.0})
                out.append(message("bandwidth", body, site=site, host=f"t-{net}", network=net,
                                   role="room", ts=now - 24 * 3600 + k * 3600 + j))
    return out


def tree(tz: str) -> list[dict[str, Any]]:
    """fleets.TREE with every room in time zone ``tz``, open all day."""
    def walk(node: dict[str, Any]) -> dict[str, Any]:
        node = dict(node)
        if "children" in node:
            node["children"] = [walk(c) for c in node["children"]]
        else:
            node["room"] = {"timezone": tz, "open": ["00:00-24:00"]}
        return node
    return [walk(n) for n in fleets.TREE]


def just_after_midnight() -> str:
    """A time zone where local midnight passed within the last hour."""
    hour = (24 - dt.datetime.now(dt.timezone.utc).hour) % 24
    return f"Etc/GMT-{hour}" if hour <= 14 else f"Etc/GMT+{24 - hour}"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in ("site", "stored")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def both(cfg: Path, now_ms: int) -> tuple[Any, Any]:
    """(InfluxDB path, state path) Snapshots and verdicts at ``now_ms``, as plain data."""
    c = load(cfg)
    sink = InfluxSink(c.influxdb)
    try:
        old = snapshot.build(reader(sink), c.org, now_ms)
    finally:
        sink.close()
    db = StateDB(path_in(c.spool_dir), readonly=True)
    try:
        new = state_snapshot.build(db, c.org, now_ms)
    finally:
        db.close()
    out = []
    for snaps in (old, new):
        ev = evaluate_all(c.org, snaps)
        out.append((_plain(list(snaps.by_site.values())), _plain(list(snaps.unregistered)),
                    [(v.site.id, v.status, [(r.rule, r.status, r.actual, r.shortfall)
                                            for r in v.results]) for v in ev.verdicts]))
    return out[0], out[1]


def assert_same(cfg: Path) -> None:
    """Equal once the last durable batch reached the state (it follows InfluxDB)."""
    got: list[Any] = []

    def same() -> bool:
        path = path_in(load(cfg).spool_dir)
        if not os.path.exists(path):
            return False  # the collector is still starting
        db = StateDB(path, readonly=True)
        complete = db.complete
        db.close()
        if not complete:
            return False  # still rebuilding
        got[:] = both(cfg, int(time.time() * 1000))
        return bool(got[0] == got[1])

    wait_until(same, 30)
    assert got, "the state never became complete"
    old, new = got
    for o, n in zip(old[0], new[0]):  # every fact of every site, the first difference shown
        assert n == o, "\n".join(difflib.unified_diff(
            pprint.pformat(o, width=120).splitlines(), pprint.pformat(n, width=120).splitlines(),
            "influxdb", "state", lineterm=""))
    assert new[2] == old[2]  # the verdicts
    assert new[1] == old[1]  # the strays


def landed(influxd: Influxd, db: str, msgs: list[tuple[str, bytes]]) -> None:
    wait_count(influxd, db, "metrics", "collect_ms",
               sum(1 for t, _ in msgs if "/metrics" in t))


@pytest.fixture(name="fleet")
def fleet_fixture(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
                  influx_db: str) -> Callable[..., Path]:
    def make(tz: str = "Asia/Shanghai", **collector: Any) -> Path:
        return write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=tree(tz),
                            rules={"evaluate_interval": 2},
                            collector={"spool_dir": str(tmp_path / "spool"), "batch_size": 500,
                                       "flush_interval": 0.2, "stats_interval": 1, **collector})
    return make


def publish(mosquitto: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    pub = Publisher(mosquitto)
    try:
        pub.publish_many(msgs)
    finally:
        pub.close()


def test_state_equals_influxdb_across_restart_sigkill_and_rebuild(
        fleet: Callable[..., Path], mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        tmp_path: Path) -> None:
    cfg = fleet()
    now = time.time()
    msgs = history(now)
    proc = start_collector(cfg, tmp_path / "c1.log")
    try:
        # Subscribed first: the broker keeps nothing for a session it does not know yet.
        assert wait_until(lambda: "subscribed to" in (tmp_path / "c1.log").read_text(), 20)
        publish(mosquitto, [*history(now)[: len(msgs) // 2]])
        pub = Publisher(mosquitto)
        fleets.seed(pub, now)
        pub.close()
        # SIGKILL in the middle of the second half: nothing acknowledged is lost,
        # nothing unacknowledged is counted twice by the state.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        publish(mosquitto, msgs[len(msgs) // 2:])
    finally:
        stop_process(proc)
    proc = start_collector(cfg, tmp_path / "c2.log")
    try:
        landed(influxd, influx_db, msgs)
        assert_same(cfg)
    finally:
        stop_process(proc)  # a clean restart: the state file stays
    proc = start_collector(cfg, tmp_path / "c3.log")
    try:
        later = [message("metrics", {}, site=s, host=h, network=n, role="room")
                 for s, h, n in ROOMS[:5]]
        publish(mosquitto, later)
        landed(influxd, influx_db, msgs + later)
        assert_same(cfg)
    finally:
        stop_process(proc)
    # A fleet restored into InfluxDB by other means: no state file at all.
    spool = load(cfg).spool_dir
    for name in os.listdir(spool):
        if name.startswith("state.sqlite"):
            os.remove(os.path.join(spool, name))
    proc = start_collector(cfg, tmp_path / "c4.log")
    try:
        assert_same(cfg)
    finally:
        stop_process(proc)


STATE_TABLES = ("inventory", "online", "offline", "intervals", "runs", "room_first", "probe",
                "isolation", "bandwidth", "days")


def test_room_statuses_read_in_slices_make_the_state_one_read_makes(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str) -> None:
    """Three days of room PCs' statuses (intervals back and forth, clean and
    unclean ends) and ticks, written to InfluxDB: rebuilt with a slice per 6
    hours, the state equals the one from a single slice, in no more queries
    than the bound."""
    c = load(write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=tree("UTC")))
    now_ms, rnd = int(time.time() * 1000), random.Random(3)
    lines = []
    for site, host, net in ROOMS[:6]:
        tags = f"site={site},host={host},network={net},role=room"
        t = now_ms - 3 * 86_400_000 + rnd.randrange(60_000)
        while t < now_ms - 60_000:
            state = "offline" if rnd.random() < 0.15 else "online"
            lines.append(f'status,{tags} state="{state}",interval_s={rnd.choice((30, 60, 60))}.0,'
                         f"will={str(rnd.random() < 0.5).lower()} {t}")
            lines += [f"metrics,{tags} collect_ms=1.0 {t + 1000 + k * 60_000}"
                      for k in range(rnd.choice((1, 30, 90)))]
            t += rnd.choice((600_000, 3_600_000, 7_200_000))
    sink = InfluxSink(c.influxdb)
    sink.write(lines)
    made = []
    for limit in (rebuild.SLICE_ROWS, 1):
        asked: list[str] = []

        def counted(q: str) -> list[dict[str, Any]]:
            asked.append(q)  # noqa: B023 - called within its iteration
            return sink.query(q)

        db = StateDB(str(tmp_path / f"sliced-{limit}" / "state.sqlite"))
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(rebuild, "SLICE_ROWS", limit)
                rebuild.rebuild(db, counted, c.org, now_ms)
            made.append((len(asked), tuple(sorted(db.db.execute(f"SELECT * FROM {t}")
                                                  .fetchall()) for t in STATE_TABLES)))
        finally:
            db.close()
    sink.close()
    (one, whole), (many, sliced) = made
    assert one == rebuild.FIXED_QUERIES + 1 < many <= rebuild.max_queries(c.org, now_ms)
    assert sliced == whole
    # Each PC's online status, offline ones, two intervals per PC.
    assert len(whole[1]) == 6 and len(whole[2]) > 6 and len(whole[3]) == 12


def test_state_equals_influxdb_with_two_workers_after_midnight(
        fleet: Callable[..., Path], mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        tmp_path: Path) -> None:
    cfg = fleet(just_after_midnight(), workers=2)
    now = time.time()
    msgs = history(now, seed=11)
    proc = start_collector(cfg, tmp_path / "c.log")
    try:
        time.sleep(2)  # both workers subscribed: the shared group spreads the messages
        pub = Publisher(mosquitto)
        fleets.seed(pub, now)
        pub.close()
        publish(mosquitto, msgs)
        landed(influxd, influx_db, msgs)
        assert_same(cfg)
    finally:
        stop_process(proc)


@pytest.mark.parametrize("shuffled", [False, True])
def test_runs_give_the_spans_every_tick_gives(tmp_path: Path, shuffled: bool) -> None:
    """On a real SQLite file: random ticks, restarts and wills, applied in time
    order (exact) or out of order as outboxes deliver (within the split error)."""
    rnd = random.Random(3)
    db = StateDB(str(tmp_path / "state.sqlite"), lambda site: 3.0)
    day0 = 1_700_000_000_000
    for n in range(40):
        host = f"h{n}"
        interval = rnd.choice((30, 60, 120))
        ticks: list[int] = []
        offline: list[tuple[int, bool]] = []
        records: list[rec.Record] = [rec.Status("s", host, "gov", "room", day0, "online", False,
                                                float(interval), None, None, None)]
        t = day0 + 1000
        while t < day0 + 6 * 3_600_000:
            ticks.append(t)
            t += round(interval * 1000 * rnd.choice((0.5, 1, 1, 1, 2.9, 3.1, 7)))
            if rnd.random() < 0.03:
                will = rnd.random() < 0.5
                offline.append((t, will))
                records.append(rec.Status("s", host, "gov", "room", t, "offline", will, None,
                                          None, None, None))
                t += rnd.choice((1000, interval * 1000 * 5))
        records += [rec.Beat("s", host, x) for x in ticks]
        if shuffled:  # the interval is known (the agent's first status said it)
            db.apply(records[:1])
            rest = records[1:]
            rnd.shuffle(rest)
            records = records[:1] + rest
        else:
            records.sort(key=lambda r: r.ts)  # type: ignore[union-attr]
        for k in range(0, len(records), 50):
            db.apply(records[k:k + 50])
        full = Timeline(tuple(sorted({day0, *ticks})), tuple(sorted(offline)), float(interval))
        runs = db.db.execute(f"SELECT start_ms, end_ms FROM runs WHERE host=? AND {REAL_RUN}",
                             (host,)).fetchall()
        packed = Timeline((day0,), tuple(sorted(offline)), float(interval), tuple(runs))
        for now in (day0 + 3 * 3_600_000, day0 + 7 * 3_600_000):
            want, got = online_spans(full, now, 3), online_spans(packed, now, 3)
            if not shuffled:
                assert got == want, host
                assert room_now({host: packed}, now) == room_now({host: full}, now), host
            else:
                clean = sum(1 for _, will in offline if not will)
                assert abs(_measure(got) - _measure(want)) <= clean * 3 * interval * 1000, host
    db.close()


def test_a_batch_of_ticks_and_runs_makes_the_runs_one_by_one_make(tmp_path: Path) -> None:
    """A backlog holds many ticks per PC in one batch, written as one run
    update, and a rebuild many runs, written at once: the runs, closes and
    room_first equal one transaction per record's."""
    rnd = random.Random(11)
    day0 = 1_700_000_000_000
    records: list[rec.Record] = []
    for n in range(6):
        host = f"h{n}"
        interval = rnd.choice((30, 60, 120))
        if n % 2:  # half announce their interval; the rest are judged at 60 s
            records.append(rec.Status("s", host, "gov", "room", day0 + n, "online", False,
                                      float(interval), None, None, None))
        t = day0 + 1000 + n
        while t < day0 + 3 * 3_600_000:
            records.append(rec.Beat("s", host, t))
            if rnd.random() < 0.05:  # a redelivered tick
                records.append(rec.Beat("s", host, t))
            if rnd.random() < 0.2:  # a run, as a rebuild reads them; some overlap ticks
                records.append(rec.Run("s", host, t - rnd.choice((0, interval * 500)),
                                       t + rnd.choice((0, interval * 1000, interval * 4000))))
            t += round(interval * 1000 * rnd.choice((0.5, 1, 1, 1, 2.9, 3.1, 7)))
            if rnd.random() < 0.03:
                records.append(rec.Status("s", host, "gov", "room", t, "offline",
                                          rnd.random() < 0.5, None, None, None, None))
                t += rnd.choice((1000, interval * 5000))
    records.sort(key=lambda r: r.ts)  # type: ignore[union-attr]

    def tables(db: StateDB) -> tuple[list[Any], ...]:
        return tuple(sorted(db.db.execute(f"SELECT * FROM {t}").fetchall())
                     for t in ("runs", "room_first", "offline", "intervals"))

    # Then runs that bridge silences the first records left: they absorb runs.
    bridges: list[rec.Record] = [rec.Run("s", f"h{n}", day0 + k * 1_800_000,
                                         day0 + k * 1_800_000 + 2_400_000)
                                 for k in range(5) for n in range(6)]
    one = StateDB(str(tmp_path / "one" / "state.sqlite"), lambda site: 3.0)
    for r in records + bridges:
        one.apply([r])
    batched = StateDB(str(tmp_path / "batch" / "state.sqlite"), lambda site: 3.0)
    for k in range(0, len(records), 400):
        batched.apply(records[k:k + 400])
    before = len(tables(batched)[0])
    batched.apply(bridges)
    assert len(tables(batched)[0]) < before / 2  # the runs they span are gone
    assert sum(1 for r in tables(batched)[0] if r[2] < r[3]) > 6  # runs of many ticks
    assert tables(batched) == tables(one)
    one.close()
    batched.close()


def test_a_rebuild_keeps_of_room_statuses_what_the_state_needs(tmp_path: Path) -> None:
    """rebuild.room_statuses turns most online statuses into ticks: the state
    it makes equals the one every status as a status makes, also when a PC
    announces intervals back and forth and restarts."""
    rnd = random.Random(5)
    day0 = 1_700_000_000_000
    rows: list[dict[str, Any]] = []
    beats: list[rec.Record] = []
    for n in range(8):
        host, t = f"h{n}", day0 + n
        while t < day0 + 4 * 3_600_000:
            st = "offline" if rnd.random() < 0.1 else "online"
            rows.append({"time": t, "site": "s", "host": host, "network": "gov", "role": "room",
                         "state": st, "will": rnd.random() < 0.5 if st == "offline" else None,
                         "interval_s": rnd.choice((None, 30.0, 60.0, 60.0, 60.0)),
                         "settings_version": str(t), "agent_version": "1.0"})
            beats += [rec.Beat("s", host, t + k * 20_000) for k in range(1, rnd.choice((2, 9)))]
            t += rnd.choice((60_000, 300_000, 1_200_000))
    reduced = list(rebuild.room_statuses([rows]))
    assert sum(isinstance(r, rec.Status) for r in reduced) < len(rows) / 2
    # Read half an hour at a time, as a rebuild reads them (a slice per query):
    # the same records.
    cuts = [day0 + k * 1_800_000 for k in range(1, 8)]
    slices = [[r for r in rows if a <= r["time"] < b]
              for a, b in zip([0, *cuts], [*cuts, 2 * day0])]
    assert sum(map(len, slices)) == len(rows) and len(slices) == 8
    assert collections.Counter(rebuild.room_statuses(slices)) == collections.Counter(reduced)

    def state(records: list[rec.Record], name: str) -> tuple[list[Any], ...]:
        db = StateDB(str(tmp_path / name / "state.sqlite"), lambda site: 3.0)
        records.sort(key=lambda r: (r.host, r.ts))  # type: ignore[union-attr]
        for k in range(0, len(records), 500):  # as rebuild applies them: PC by PC
            db.apply(records[k:k + 500])
        out = tuple(sorted(db.db.execute(f"SELECT * FROM {t}").fetchall())
                    for t in ("online", "intervals", "offline", "runs", "room_first"))
        db.close()
        return out

    every = [rebuild.status(r) for r in rows]
    assert state(reduced + beats, "reduced") == state(every + beats, "every")

    # The metrics ticks as a rebuild reads them, runs (no silence over 90 s
    # inside); of the statuses' ticks, those inside a run change nothing.
    runs: list[rec.Run] = []
    for b in sorted(beats, key=lambda r: (r.host, r.ts)):  # type: ignore[union-attr]
        assert isinstance(b, rec.Beat)
        if runs and runs[-1].host == b.host and b.ts - runs[-1].end_ms <= 90_000:
            runs[-1] = runs[-1]._replace(end_ms=b.ts)
        else:
            runs.append(rec.Run("s", b.host, b.ts, b.ts))
    kept = rebuild.outside(reduced, list(runs))
    dropped = len(reduced) - len(kept)
    assert 0 < dropped < sum(isinstance(r, rec.Beat) for r in reduced)
    assert all(isinstance(r, rec.Beat) for r in reduced if r not in kept)
    assert state([*kept, *runs], "outside") == state([*reduced, *runs], "inside")


def test_late_marks_are_one_per_site_and_a_pass_clears_only_what_it_read(
        tmp_path: Path) -> None:
    """Ticks that may reach a stored day mark their site once however many
    batches bring them (a catch-up); a pass's LateSeen keeps a mark widened
    after it read the marks; live ticks and a rebuild's history mark nothing."""
    db = StateDB(str(tmp_path / "s" / "state.sqlite"))  # missing_intervals 3: reach 180 s
    now = int(time.time() * 1000)
    old, reach = now - 2 * 86_400_000, 180_000
    db.apply([rec.Beat("s", "h1", old), rec.Beat("s2", "h1", old)])
    db.apply([rec.Beat("s", "h2", old + 3_600_000)])
    db.apply([rec.Beat("s", "h3", now - 60_000)])  # live
    db.apply([rec.Beat("s3", "h1", old)], late=False)  # a rebuild's
    assert sorted(db.db.execute("SELECT site, lo_ms, hi_ms FROM late")) == [
        ("s", old - reach, old + 3_600_000 + reach), ("s2", old - reach, old + reach)]
    upto = db.late_upto()  # a pass reads the marks
    db.apply([rec.Beat("s", "h1", old - 3_600_000)])  # more come meanwhile
    db.apply([rec.LateSeen(upto)])  # its days are durable
    assert list(db.db.execute("SELECT site, lo_ms FROM late")) == [
        ("s", old - 3_600_000 - reach)]
    db.apply([rec.LateSeen(db.late_upto())])
    assert db.late_upto() == 0
    db.close()


def _measure(spans: list[tuple[int, int]]) -> int:
    return sum(e - s for s, e in spans)


def test_overlapping_runs_walk_as_their_union() -> None:
    """Workers may leave a tick's run inside another's: no gap inside a run."""
    union = Timeline((), (), 1.0, ((0, 60_000),))
    overlapping = Timeline((), (), 1.0, ((0, 60_000), (20_000, 20_000), (45_000, 50_000)))
    assert online_spans(overlapping, 90_000, 3) == online_spans(union, 90_000, 3) == [
        (0, 60_000)]


def test_runs_never_bridge_a_silence_the_default_interval_splits(tmp_path: Path) -> None:
    """A PC announced 300 s days ago and ticks every 300 s: a window without
    that announcement is judged at 60 s, so the runs must split there too."""
    db = StateDB(str(tmp_path / "state.sqlite"), lambda site: 3.0)
    day0 = 1_700_000_000_000
    db.apply([rec.Status("s", "h", "gov", "room", day0, "online", False, 300.0, None, None,
                         None)])
    ticks = [day0 + 3 * 86_400_000 + k * 300_000 for k in range(20)]
    db.apply([rec.Beat("s", "h", t) for t in ticks])
    runs = db.db.execute(f"SELECT start_ms, end_ms FROM runs WHERE {REAL_RUN} AND "
                         "start_ms > ?", (day0,)).fetchall()
    now = ticks[-1] + 60_000
    full = Timeline(tuple(ticks), (), 60.0)
    assert online_spans(Timeline((), (), 60.0, tuple(runs)), now, 3) == online_spans(full, now, 3)
    db.close()


def test_a_state_file_of_an_older_layout_is_not_complete_to_readers(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str) -> None:
    """After an upgrade, before the collector restarts (and rebuilds the file in
    the new layout), `netroom report` must not read the old file: --source
    state says so in one line, auto falls back to InfluxDB."""
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=tree("UTC"),
                       collector={"spool_dir": str(tmp_path / "spool")})
    db = StateDB(path_in(str(tmp_path / "spool")))
    db.put("complete", "1")
    assert db.complete
    db.put("schema", "3")  # as an older collector left it
    db.db.execute("DROP TABLE room_first")
    db.close()
    assert not StateDB(path_in(str(tmp_path / "spool")), readonly=True).complete
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--source", "state")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "from another netroom version" in r.stderr
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr  # from InfluxDB
