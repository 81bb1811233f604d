"""Compliance on the real pipeline: agent payloads -> mosquitto -> collector ->
InfluxDB, then `netroom report` and the collector's `compliance` points.

The fleets and every expected figure are in fleets.py, worked out by hand.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import fleets
import pytest
from fleets import DB, seeded_fixture  # noqa: F401 - the `seeded` fixture
from harness import run_cli, series, wait_count, write_config
from servers import Influxd, Mosquitto, free_port, wait_until


def report(cfg: Path, *args: str) -> str:
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_report_json_verdicts_and_shortfalls_equal_the_hand_computed_ones(
        seeded: tuple[Path, float]) -> None:
    doc = json.loads(report(seeded[0], "--format", "json"))
    sites = {s["site"]: s for s in doc["sites"]}
    assert list(sites) == list(fleets.EXPECTED)  # tree order, every site
    for sid, expected in fleets.EXPECTED.items():
        got = {r["rule"]: r for r in sites[sid]["rules"]}
        assert set(got) == set(fleets.MINE), sid
        for rule, (required, actual, ok, shortfall) in expected.items():
            r = got[rule]
            assert (r["required"], r["actual"], r["ok"], r["shortfall"]) == \
                (pytest.approx(required), pytest.approx(actual, abs=1e-4), ok, shortfall), \
                (sid, rule, r)
        assert sites[sid]["ok"] is fleets.SITE_OK[sid], sid
        assert sites[sid]["needs"] == fleets.NEEDS.get(sid, {}), sid
    assert sites["sq-waiver"]["rules"][3]["waived"] == "机房改造中"
    assert [p["id"] for p in sites["sq-short"]["path"]] == ["bj", "d1", "d1-b2"]
    assert sites["sq-short"]["name"] == "缺口中队"
    assert [(u["site"], u["host"]) for u in doc["unregistered"]] == [("sq-unknown", "ghost")]
    rollups = {u["id"]: u for u in doc["rollups"]}
    assert set(rollups) == set(fleets.ROLLUPS)
    for uid, (n, passing, per_rule) in fleets.ROLLUPS.items():
        u = rollups[uid]
        assert (u["sites"], u["passing"]) == (n, passing), uid
        assert {k: (v["passing"], v["checked"]) for k, v in u["rules"].items()} == per_rule, uid
    assert doc["generated_at"].endswith("+08:00")  # the sites' Asia/Shanghai


def test_report_site_filter_table_csv_and_output_file(seeded: tuple[Path, float],
                                                      tmp_path: Path) -> None:
    cfg = seeded[0]
    doc = json.loads(report(cfg, "--format", "json", "--site", "d2"))
    assert [s["site"] for s in doc["sites"]] == ["sq-from", "sq-to", "sq-waiver"]
    assert [s["site"] for s in json.loads(report(cfg, "--format", "json", "--site",
                                                 "sq-to"))["sites"]] == ["sq-to"]

    table = report(cfg, "--site", "d1-b2")
    lines = table.splitlines()
    short = next(line for line in lines if line.startswith("sq-short"))
    # Chinese: site result, then per rule "verdict actual/required".
    assert short.split()[3:] == ["未达标", "未达标", "1/3", "未达标", "0/3", "未达标", "2/5",
                                 "未达标", "33.3%/50%"]
    assert any(line.split()[:4] == ["sq-short", "缺口中队", "5", "3"] for line in lines)
    assert "sq-pass" not in table

    english = report(cfg, "--lang", "en", "--site", "sq-empty")
    row = next(line for line in english.splitlines() if line.startswith("sq-empty"))
    assert row.split()[3:] == ["FAIL", "pass", "1/1", "pass", "1/1", "FAIL", "0/1",
                               "FAIL", "0%/50%"]

    out = tmp_path / "r.csv"
    assert report(cfg, "--format", "csv", "--output", str(out)) == ""
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets then read UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 7 * 4
    room_rule = "网络室政务网电脑占比"
    short_room = next(r for r in rows if r["站点"] == "sq-short" and r["标准"] == room_rule)
    assert (short_room["实际"], short_room["要求"], short_room["需增政务网电脑"]) == \
        ("33.3%", "50%", "2")
    waived = next(r for r in rows if r["站点"] == "sq-waiver" and r["标准"] == room_rule)
    assert (waived["结论"], waived["豁免原因"]) == ("豁免", "机房改造中")


def test_collector_writes_compliance_points_with_org_path_tags(
        seeded: tuple[Path, float], influxd: Influxd) -> None:
    landed_ms = int(seeded[1] * 1000)
    # Path tags on what the collector ingested.
    inv = list(series(influxd.query(
        'SELECT last("host_id") FROM inventory WHERE site = \'sq-short\' '
        'GROUP BY "detachment", "battalion", "bureau"', DB)))
    assert [(r["bureau"], r["detachment"], r["battalion"]) for r in inv] == \
        [("bj", "d1", "d1-b2")]
    # An evaluation that started after every inventory had landed.
    where = f"site = 'sq-short' AND time > {landed_ms}ms"
    wait_count(influxd, DB, "compliance", "ok", 5, where)
    rows = {r["rule"]: r for r in series(influxd.query(
        f'SELECT last(*) FROM compliance WHERE {where} GROUP BY "rule", "detachment", '
        '"battalion"', DB))}
    room = rows["room_gov_share"]
    assert (room["last_required"], room["last_actual"], room["last_ok"],
            room["last_shortfall"], room["last_shortfall_gov_pcs"]) == \
        (0.5, pytest.approx(0.3333, abs=1e-4), 0, 2, 2)
    assert (room["detachment"], room["battalion"]) == ("d1", "d1-b2")
    assert rows["cadre_internet_pcs"]["last_shortfall_internet_pcs"] == 3
    assert (rows["all"]["last_ok"], rows["all"]["last_failed"]) == (0, 4)
    # mean(ok) over sites is the passing share a dashboard shows: 2 of 7 pass.
    wait_until(lambda: _site_oks(influxd, landed_ms) == 7, 10, 0.2)
    share = list(series(influxd.query(
        f"SELECT mean(ok) FROM (SELECT last(ok) AS ok FROM compliance WHERE rule = 'all' "
        f"AND time > {landed_ms}ms GROUP BY site)", DB)))
    assert share[0]["mean"] == pytest.approx(2 / 7)


def _site_oks(influxd: Influxd, since_ms: int) -> int:
    return len(list(series(influxd.query(
        f"SELECT last(ok) FROM compliance WHERE rule = 'all' AND time > {since_ms}ms "
        "GROUP BY site", DB))))


def test_report_when_influxdb_cannot_be_reached(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = write_config(tmp_path, mosquitto, sites=fleets.TREE,
                       influxdb={"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 2})
    r = run_cli("collector.cli.main", "report", "--config", str(cfg))
    assert r.returncode == 1
    assert r.stderr.startswith("netroom report: error: cannot read InfluxDB at http://127.0.0.1:")
    assert "Connection refused" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
