"""Retention policies, continuous queries and the roll-ups, on a real influxd.

collector/influx/retention.py: ensure() is idempotent and applies changed
config; the backfill (the CQs' own SELECT ... INTO over a past range)
writes the expected 5-minute means and rates per PC and sums per site; the
roll-up of `metrics` adds no series key; `keep` rides out an InfluxDB
that is down. The CQ scheduler itself is not waited for (it runs at
5-minute boundaries): the backfill runs the very statements it runs.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

import pytest
from harness import series
from servers import OPENER, Influxd, wait_until

from collector.influx import retention
from collector.influx.client import InfluxSink, SinkError
from collector.influx.retention_settings import RetentionConfig
from collector.influx.settings import InfluxConfig, read_influx
from netroom.settings import ConfigError

LEVELS = ("battalion", "detachment")


def config(influxd: Influxd, db: str, **retention_cfg: Any) -> InfluxConfig:
    return read_influx({"url": influxd.url, "database": db, "retention": retention_cfg})


def rows(influxd: Influxd, db: str, q: str) -> list[dict[str, Any]]:
    return list(series(influxd.query(q, db)))


def by_series(influxd: Influxd, db: str, q: str) -> dict[str, list[list[Any]]]:
    """Series name -> its rows (SHOW CONTINUOUS QUERIES names series by database)."""
    out: dict[str, list[list[Any]]] = {}
    for s in influxd.query(q, db)["results"][0].get("series", []):
        out.setdefault(s.get("name", ""), []).extend(s.get("values", []))
    return out


def cqs(influxd: Influxd, db: str) -> dict[str, str]:
    return {name: query for name, query in
            by_series(influxd, db, "SHOW CONTINUOUS QUERIES").get(db, [])}


def policies(influxd: Influxd, db: str) -> dict[str, tuple[str, str, bool]]:
    return {r["name"]: (r["duration"], r["shardGroupDuration"], r["default"])
            for r in rows(influxd, db, "SHOW RETENTION POLICIES")}


def test_ensure_creates_then_is_a_no_op_then_applies_changes(influxd: Influxd,
                                                             influx_db: str) -> None:
    sink = InfluxSink(config(influxd, influx_db))
    done = retention.ensure(sink, sink.cfg, LEVELS)
    assert "created retention policy rollup (365d)" in done
    assert policies(influxd, influx_db) == {
        "autogen": ("840h0m0s", "24h0m0s", True),  # raw: 35 days, daily shards
        "rollup": ("8760h0m0s", "168h0m0s", False),
        "forever": ("0s", "168h0m0s", False)}
    made = cqs(influxd, influx_db)
    assert sorted(n.rsplit("_", 1)[0] for n in made) == [
        "netroom_availability_1h", "netroom_bandwidth_1d", "netroom_compliance_1d",
        "netroom_pc_5m", "netroom_room_5m", "netroom_site_5m", "netroom_unit_5m",
        "netroom_unit_compliance_1d"]
    pc = next(q for n, q in made.items() if n.startswith("netroom_pc_5m"))
    assert "RESAMPLE FOR 15m" in pc and "GROUP BY time(5m), *" in pc
    site = next(q for n, q in made.items() if n.startswith("netroom_site_5m"))
    assert site.endswith("GROUP BY time(5m), site, site_name, network, battalion, detachment END")
    unit = next(q for n, q in made.items() if n.startswith("netroom_unit_5m"))
    assert "INTO" in unit and "rollup.unit_metrics FROM" in unit, unit
    assert unit.endswith("GROUP BY time(5m), network, battalion, detachment END")
    assert retention.ensure(sink, sink.cfg, LEVELS) == []  # idempotent
    assert cqs(influxd, influx_db) == made

    changed = config(influxd, influx_db, raw="40d", rollup="730d",
                     resample_for="2h")
    done = retention.ensure(sink, changed, LEVELS)
    assert "altered retention policy autogen: 35d -> 40d" in done
    assert "altered retention policy rollup: 365d -> 730d" in done
    assert policies(influxd, influx_db)["rollup"] == ("17520h0m0s", "168h0m0s", False)
    now = cqs(influxd, influx_db)
    # The four 5-minute CQs were replaced (drop + create), the daily ones kept.
    assert len(now) == 8 and len(set(now) & set(made)) == 4
    assert all("RESAMPLE FOR 2h" in q for n, q in now.items() if "_5m_" in n)
    assert retention.ensure(sink, changed, LEVELS) == []
    # Another org tree: the per-site CQs group by its levels.
    assert any("replaced" in d or "created continuous query netroom_site_5m" in d
               for d in retention.ensure(sink, changed, ("region",)))
    assert retention.ensure(sink, changed, ("region",)) == []
    sink.close()


def test_rp_choice_names_the_policy_for_a_time_range(influxd: Influxd, influx_db: str) -> None:
    """The dashboards' $rp / $daily query (dashboards/model.py rp_var), as Grafana sends it."""
    from dashboards.model import Tr, rp_var

    sink = InfluxSink(config(influxd, influx_db, switch_after="2d"))
    retention.ensure(sink, sink.cfg)
    sink.close()
    for family, short, long in (("metrics", "autogen", "rollup"),
                                ("daily", "autogen", "forever")):
        q = rp_var(Tr("en"), "v", family)["query"]
        for span_ms, want in ((3_600_000, short), (172_800_000 - 1, short),
                              (172_800_000, long), (400 * 86_400_000, long)):
            sent = q.replace("${__to}", str(10**12 + span_ms)).replace("${__from}", str(10**12))
            assert [r["rp"] for r in rows(influxd, influx_db, sent)] == [want], (family, span_ms)


def write_pcs(influxd: Influxd, db: str, b0: int) -> None:
    """Two PCs of site s1 (gov) for 30 minutes from ``b0`` (s, 5-minute aligned):
    CPU 10 and 30 %, disks 40 and 80 % full, 1000 and 3000 bytes/s received;
    pc-2 is a room PC and reboots in the 4th bucket (its counter restarts)."""
    org = "battalion=b1,detachment=d1"
    lines = []
    for i in range(30):
        t = (b0 + 60 * i) * 1000
        lines.append(f"metrics,site=s1,host=pc-1,network=gov,role=office,{org} "
                     f"cpu_percent={10 + (i % 2) * 2 - 1},mem_used_percent=50,collect_ms=3,"
                     f"disk_used_percent=40,net_bytes_recv={60_000 * i}i,"
                     f"net_bytes_sent={6_000 * i}i,net_speed_mbps=1000i {t}")
        recv = 180_000 * (i - 18) if i >= 18 else 180_000 * i  # reboot at i = 18
        lines.append(f"metrics,site=s1,host=pc-2,network=gov,role=room,{org} "
                     f"cpu_percent=30,mem_used_percent=70,collect_ms=3,"
                     f"disk_used_percent={80 if i == 7 else 60},net_bytes_recv={recv}i,"
                     f"net_bytes_sent=0i,net_speed_mbps=100i {t}")
    influxd.write("\n".join(lines), db)


def test_backfill_writes_the_expected_roll_ups_without_new_series(
        influxd: Influxd, influx_db: str) -> None:
    sink = InfluxSink(config(influxd, influx_db))
    retention.ensure(sink, sink.cfg, LEVELS)
    b0 = (int(time.time()) - 7200) // 300 * 300
    write_pcs(influxd, influx_db, b0)
    before = debug_series(influxd, influx_db)
    written = retention.backfill(sink, sink.cfg, b0 * 1000, (b0 + 1800) * 1000, LEVELS)
    assert written["netroom_pc_5m"] == 12  # 2 PCs x 6 buckets
    assert written["netroom_site_5m"] == written["netroom_room_5m"] == 6
    assert written["netroom_unit_5m"] == 6  # 1 unit and network x 6 buckets
    # The roll-up of `metrics` keeps the measurement and tags: no new series
    # key; site_metrics adds one per site and network, unit_metrics one per
    # unit and network (here 1 each). Per RP, SHOW SERIES EXACT CARDINALITY
    # counts rollup's 2 `metrics` series too.
    assert before == 2 + 4  # 2 PCs' metrics, rp_choice's 4 rows
    assert debug_series(influxd, influx_db) == before + 2
    card = by_series(influxd, influx_db, 'SHOW SERIES EXACT CARDINALITY FROM "rollup"./.*/')
    assert card == {"metrics": [[2]], "site_metrics": [[1]], "unit_metrics": [[1]]}

    pc = {(r["host"], r["time"]): r for r in rows(
        influxd, influx_db, 'SELECT * FROM "rollup"."metrics" GROUP BY "host"')}
    first = b0 * 1000
    assert pc[("pc-1", first)]["cpu_percent"] == pytest.approx(9.8)  # mean of 9,11,9,11,9
    assert pc[("pc-1", first)]["reports"] == 5
    assert pc[("pc-1", first)]["net_bytes_recv"] == 240_000  # the bucket's last
    assert pc[("pc-1", first)]["net_bytes_recv_per_s"] is None  # no bucket before it
    assert pc[("pc-1", first + 300_000)]["net_bytes_recv_per_s"] == 1000
    assert pc[("pc-2", first + 300_000)]["disk_used_percent"] == 80  # the bucket's max
    assert pc[("pc-2", first + 300_000)]["net_bytes_recv_per_s"] == 3000
    # pc-2's counter restarted in bucket 4 (i = 18): no negative rate, none at all.
    assert pc[("pc-2", first + 900_000)].get("net_bytes_recv_per_s") is None
    assert pc[("pc-2", first + 1_200_000)]["net_bytes_recv_per_s"] == 3000

    site = {r["time"]: r for r in rows(influxd, influx_db,
                                       'SELECT * FROM "rollup"."site_metrics"')}
    assert len(site) == 6
    s1 = site[first + 300_000]
    assert (s1["site"], s1["network"], s1["detachment"], s1["battalion"]) == (
        "s1", "gov", "d1", "b1")
    assert (s1["pcs"], s1["room_pcs"]) == (2, 1)
    assert s1["cpu_percent"] == pytest.approx((10.2 + 30) / 2)  # 11,9,11,9,11 and 30
    assert s1["disk_used_percent"] == 80
    assert s1["net_bytes_recv_per_s"] == 4000  # 1000 + 3000
    assert s1["net_speed_mbps"] == 1100
    assert site[first + 900_000]["net_bytes_recv_per_s"] == 1000  # pc-2 rebooting
    # Re-running the backfill changes nothing.
    again = retention.backfill(sink, sink.cfg, b0 * 1000, (b0 + 1800) * 1000, LEVELS)
    assert again == written
    assert {r["time"]: r for r in rows(influxd, influx_db,
                                       'SELECT * FROM "rollup"."site_metrics"')} == site
    sink.close()


def test_unit_series_hold_the_sums_and_means_of_their_sites(influxd: Influxd,
                                                            influx_db: str) -> None:
    """The per-unit CQ over per-site points (as the site CQs write them): per
    battalion and network, PCs summed, CPU the mean of the sites' means, the
    fullest disk, rates summed; sites and rooms with PCs reporting counted."""
    sink = InfluxSink(config(influxd, influx_db))
    retention.ensure(sink, sink.cfg, LEVELS)
    b0 = (int(time.time()) - 7200) // 300 * 300
    # (site, battalion, network, pcs, room_pcs, cpu, disk, recv/s) per 5 minutes
    sites = [("s1", "b1", "gov", 10, 2, 20.0, 50.0, 1000),
             ("s2", "b1", "gov", 30, 0, 40.0, 90.0, 3000),
             ("s3", "b1", "internet", 5, 1, 70.0, 10.0, 500),
             ("s4", "b2", "gov", 8, 4, 10.0, 60.0, 100)]
    lines = []
    for k in range(3):
        for site, bat, net, pcs, room, cpu, disk, recv in sites:
            room_field = f"room_pcs={room}i," if room else ""  # no room PC: no field
            lines.append(f"site_metrics,site={site},network={net},battalion={bat},detachment=d1 "
                         f"pcs={pcs}i,{room_field}cpu_percent={cpu + k},mem_used_percent=50,"
                         f"disk_used_percent={disk},net_bytes_recv_per_s={recv},"
                         f"net_bytes_sent_per_s=0,net_speed_mbps=1000i {(b0 + 300 * k) * 1000}")
    influxd._request("/write", {"db": influx_db, "rp": "rollup", "precision": "ms"},
                     "\n".join(lines).encode())
    written = retention.backfill(sink, sink.cfg, b0 * 1000, (b0 + 900) * 1000, LEVELS,
                                 only=("netroom_unit_5m",))
    assert written == {"netroom_unit_5m": 9}  # 3 units and networks x 3 buckets
    got = {(r["battalion"], r["network"], r["time"]): r for r in rows(
        influxd, influx_db, 'SELECT * FROM "rollup"."unit_metrics" GROUP BY *')}
    assert len(got) == 9
    t1 = (b0 + 300) * 1000
    b1 = got[("b1", "gov", t1)]
    assert (b1["detachment"], b1["pcs"], b1["room_pcs"], b1["sites"], b1["rooms"]) == (
        "d1", 40, 2, 2, 1)
    assert b1["cpu_percent"] == pytest.approx((21 + 41) / 2)  # the sites' means, averaged
    assert b1["disk_used_percent"] == 90
    assert b1["net_bytes_recv_per_s"] == 4000 and b1["net_speed_mbps"] == 2000
    inet = got[("b1", "internet", t1)]
    assert (inet["pcs"], inet["cpu_percent"], inet["sites"]) == (5, 71, 1)
    b2 = got[("b2", "gov", (b0 + 600) * 1000)]
    assert (b2["pcs"], b2["room_pcs"], b2["cpu_percent"], b2["disk_used_percent"]) == (
        8, 4, 12, 60)
    sink.close()


def test_daily_tiers_keep_compliance_bandwidth_and_availability(influxd: Influxd,
                                                                influx_db: str) -> None:
    sink = InfluxSink(config(influxd, influx_db))
    retention.ensure(sink, sink.cfg)
    day = (int(time.time()) // 86400 - 2) * 86400
    lines = [f'compliance,site=s1,rule=all status="fail",ok=0i,no_data=0i {(day + 600) * 1000}',
             f'compliance,site=s1,rule=all status="pass",ok=1i,no_data=0i {(day + 900) * 1000}',
             f'bandwidth,site=s1,host=t,network=gov,role=room method="speedtest",'
             f"download_mbps=80 {(day + 100) * 1000}",
             f'bandwidth,site=s1,host=t,network=gov,role=room method="speedtest",'
             f"download_mbps=100 {(day + 200) * 1000}",
             f'bandwidth,site=s1,host=t,network=gov,role=room method="speedtest",'
             f'error="timeout" {(day + 300) * 1000}',
             f'availability,site=s1 day="D",required_s=36000.0,open_s=18000.0 '
             f"{(day - 8 * 3600) * 1000}"]
    influxd.write("\n".join(lines), influx_db)
    retention.backfill(sink, sink.cfg, (day - 86400) * 1000, (day + 86400) * 1000)
    [c] = rows(influxd, influx_db, 'SELECT * FROM "forever"."compliance"')
    assert (c["time"], c["status"], c["ok"]) == (day * 1000, "pass", 1)  # the day's last
    [b] = rows(influxd, influx_db, 'SELECT * FROM "forever"."bandwidth"')
    assert (b["download_mbps"], b["download_max_mbps"], b["tests"], b["failed"]) == (
        90, 100, 3, 1)
    [a] = rows(influxd, influx_db, 'SELECT * FROM "forever"."availability"')
    # Kept at its own time (the room's local midnight), not moved to UTC midnight.
    assert (a["time"], a["day"], a["open_s"]) == ((day - 8 * 3600) * 1000, "D", 18000)
    sink.close()


def test_daily_unit_compliance_holds_the_days_means(influxd: Influxd, influx_db: str) -> None:
    """`forever`.`unit_compliance`: per unit, rule and UTC day, the mean of each
    count over the day's evaluations and how many there were; so that
    sum(passing) / sum(sites) over units and days is still a pass rate."""
    sink = InfluxSink(config(influxd, influx_db))
    retention.ensure(sink, sink.cfg, LEVELS)
    day = (int(time.time()) // 86400 - 3) * 86400
    b1 = "battalion=b1,detachment=d1,battalion_name=一大队,detachment_name=一支队"
    b2 = "battalion=b2,detachment=d1,battalion_name=二大队,detachment_name=一支队"
    # (unit, seconds into the day, sites, passing, failing, no_data, waived)
    passes = [(b1, 300, 3, 1, 1, 1, 0), (b1, 600, 3, 2, 1, 0, 1), (b1, 900, 3, 3, 0, 0, 0),
              (b2, 300, 1, 0, 1, 0, 0), (b2, 600, 1, 1, 0, 0, 0),
              (b1, 86400 + 300, 2, 2, 0, 0, 0)]  # the next day: a site became n/a
    influxd.write("\n".join(
        f"unit_compliance,{unit},rule=cadre_gov_pcs sites={n}i,passing={ok}i,failing={bad}i,"
        f"no_data={nd}i,waived={w}i {(day + at) * 1000}"
        for unit, at, n, ok, bad, nd, w in passes), influx_db)
    written = retention.backfill(sink, sink.cfg, (day - 86400) * 1000, (day + 2 * 86400) * 1000,
                                 LEVELS, only=("netroom_unit_compliance_1d",))
    assert written == {"netroom_unit_compliance_1d": 3}  # b1 two days, b2 one
    got = {(r["battalion"], r["time"]): r for r in rows(
        influxd, influx_db, 'SELECT * FROM "forever"."unit_compliance" GROUP BY *')}
    d1 = got[("b1", day * 1000)]
    assert (d1["sites"], d1["passing"], d1["passes"]) == (3, 2, 3)
    assert (d1["failing"], d1["no_data"], d1["waived"]) == pytest.approx((2 / 3, 1 / 3, 1 / 3))
    assert (d1["rule"], d1["battalion_name"], d1["detachment"]) == ("cadre_gov_pcs", "一大队", "d1")
    assert (got[("b2", day * 1000)]["passing"], got[("b2", day * 1000)]["passes"]) == (0.5, 2)
    assert got[("b1", (day + 86400) * 1000)]["sites"] == 2
    # The pass rate over a day, and over both: each day's typical pass weighs alike.
    rate = 'SELECT sum("passing") / sum("sites") AS "rate" FROM "forever"."unit_compliance"'
    [one] = rows(influxd, influx_db, f"{rate} WHERE time < {(day + 86400) * 1000}ms")
    assert one["rate"] == pytest.approx((2 + 0.5) / (3 + 1))
    [both] = rows(influxd, influx_db, rate)
    assert both["rate"] == pytest.approx((2 + 0.5 + 2) / (3 + 1 + 2))
    sink.close()


def debug_series(influxd: Influxd, db: str) -> int:
    """The database's series keys, every RP together (what max-series-per-database counts)."""
    with OPENER.open(influxd.url + "/debug/vars", timeout=10) as r:
        stats = json.load(r)
    return int(next(v["values"]["numSeries"] for k, v in stats.items()
                    if k.startswith("database") and v["tags"]["database"] == db))


def test_keep_waits_for_influxdb(influxd_factory: Callable[..., Influxd]) -> None:
    influxd = influxd_factory()
    influxd.stop()
    cfg = read_influx({"url": influxd.url, "database": "kept", "timeout_s": 1})
    with pytest.raises(SinkError):
        retention.ensure(InfluxSink(cfg), cfg)
    stop = threading.Event()
    thread = threading.Thread(target=retention.keep, args=(cfg, LEVELS, stop, 0.2), daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # still retrying
    influxd.start()
    assert wait_until(lambda: not thread.is_alive(), 20)
    assert len(cqs(influxd, "kept")) == 8
    stop.set()


def test_manage_false_touches_nothing(influxd: Influxd, influx_db: str) -> None:
    sink = InfluxSink(config(influxd, influx_db, manage=False))
    assert retention.ensure(sink, sink.cfg) == []
    assert set(policies(influxd, influx_db)) == {"autogen"} and cqs(influxd, influx_db) == {}


@pytest.mark.parametrize(("given", "message"), [
    ({"raw": "10d"}, "influxdb.retention.raw: must be at least 35d"),
    ({"raw": "30 days"}, "influxdb.retention.raw: must be a duration like 30d"),
    ({"rollup": "20d"}, "influxdb.retention.rollup: must be at least raw (35d)"),
    ({"raw": "inf"}, "influxdb.retention.rollup: must be at least raw (inf)"),
    ({"resample_for": "7m"}, "influxdb.retention.resample_for: must be a multiple of 5m"),
    ({"resample_for": "inf"}, "influxdb.retention.resample_for: must be a finite duration"),
    ({"switch_after": "40d"}, "influxdb.retention.switch_after: must be between 1h and raw"),
    ({"manage": "yes"}, "influxdb.retention.manage: must be true or false"),
    ({"daily": "inf"}, "influxdb.retention.daily: unknown key"),
])
def test_config_errors_name_the_key(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_influx({"retention": given})


def test_defaults() -> None:
    assert read_influx({}).retention == RetentionConfig()
    cfg = read_influx({"retention": {"raw": "inf", "rollup": "inf"}}).retention
    assert (cfg.raw_s, cfg.rollup_s) == (0, 0)
