"""Compliance on the real pipeline: agent payloads -> mosquitto -> collector ->
InfluxDB, then `netroom report` and the collector's `compliance` points.

The fleets and every expected figure are in fleets.py, worked out by hand;
the fleet without evidence (a silent site, a gov PC without canaries, a site
without a speed tester) is NODATA_TREE below.
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import fleets
import pytest
from fleets import DB, seeded_fixture  # noqa: F401 - the `seeded` fixture
from harness import Publisher, message, run_cli, series, wait_count, write_config
from servers import Influxd, Mosquitto, free_port, wait_until

from collector.compliance.rules import registry
from collector.config import load
from collector.influx.client import InfluxSink
from collector.store.snapshot import reader


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
        # Every rule is listed; those switched off say so.
        assert list(got) == [m.NAME for m in registry()], sid
        for rule, r in got.items():
            if rule not in fleets.MINE:
                assert (r["status"], r["ok"], r["detail"]) == \
                    ("not_applicable", False, "未启用"), (sid, r)
        for rule, (required, actual, ok, shortfall) in expected.items():
            r = got[rule]
            passes = r["status"] in ("pass", "waived")  # ok: pass only
            assert (r["required"], r["actual"], passes, r["shortfall"]) == \
                (pytest.approx(required), pytest.approx(actual, abs=1e-4), ok, shortfall), \
                (sid, rule, r)
            assert r["status"] == ("waived" if r["waived"] else "pass" if ok else "fail")
        assert sites[sid]["ok"] is fleets.SITE_OK[sid], sid
        assert sites[sid]["status"] == ("pass" if fleets.SITE_OK[sid] else "fail"), sid
        assert sites[sid]["needs"] == fleets.NEEDS.get(sid, {}), sid
    assert sites["sq-waiver"]["rules"][3]["waived"] == "机房改造中"
    assert [p["id"] for p in sites["sq-short"]["path"]] == ["bj", "d1", "d1-b2"]
    assert sites["sq-short"]["name"] == "缺口中队"
    assert [(u["site"], u["host"]) for u in doc["unregistered"]] == [("sq-unknown", "ghost")]
    rollups = {u["id"]: u for u in doc["rollups"]}
    assert set(rollups) == set(fleets.ROLLUPS)
    for uid, (n, passing, per_rule) in fleets.ROLLUPS.items():
        u = rollups[uid]
        assert (u["sites"], u["passing"], u["failing"], u["no_data"]) == \
            (n, passing, n - passing, 0), uid
        assert {k: (v["passing"], v["checked"]) for k, v in u["rules"].items()} == per_rule, uid
    assert doc["generated_at"].endswith("+08:00")  # the sites' Asia/Shanghai
    # What to buy where: the sites of fleets.NEEDS, each unit's subtotal after its
    # sites (d1-b2: 1 + 5 gov, 3 internet), the bureau's total last.
    assert [(x["kind"], x["id"], x["needs"]) for x in doc["procurement"]] == [
        ("site", "sq-nocadre", {"gov_pcs": 1}), ("unit", "d1-b1", {"gov_pcs": 1}),
        ("site", "sq-empty", {"gov_pcs": 1}),
        ("site", "sq-short", {"gov_pcs": 5, "internet_pcs": 3}),
        ("unit", "d1-b2", {"gov_pcs": 6, "internet_pcs": 3}),
        ("unit", "d1", {"gov_pcs": 7, "internet_pcs": 3}),
        ("site", "sq-from", {"gov_pcs": 1}), ("site", "sq-waiver", {"gov_pcs": 1}),
        ("unit", "d2-b1", {"gov_pcs": 2}), ("unit", "d2", {"gov_pcs": 2}),
        ("total", None, {"gov_pcs": 9, "internet_pcs": 3})]
    assert [x["sites"] for x in doc["procurement"] if x["kind"] != "site"] == [1, 2, 3, 2, 2, 5]
    assert [x["name"] for x in doc["procurement"][4]["path"]] == ["北京局", "一支队"]


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
    # Chinese: site result, then per rule "verdict actual/required (why)".
    # Each figure carries its unit: PCs (台), % or Mbit/s.
    assert cells(short)[3:] == ["未达标", "未达标 1/3 台（缺 2 台政务网电脑）",
                                "未达标 0/3 台（缺 3 台互联网电脑）",
                                "未达标 2/5 台（缺 3 台政务网电脑）",
                                "未达标 33.3%/50%（网络室需增 2 台政务网电脑）"]
    buy = table.split("采购缺口清单")[1].split("\n\n")[0].strip().splitlines()
    assert [cells(line) for line in buy] == [
        ["所属单位", "站点", "需增政务网电脑(台)", "需增互联网电脑(台)"],
        ["一支队/二大队", "空机房中队", "1", "0"], ["一支队/二大队", "缺口中队", "5", "3"],
        ["一支队/二大队", "小计", "6", "3"], ["一支队", "小计", "6", "3"], ["合计", "6", "3"]]
    assert "sq-pass" not in table

    english = report(cfg, "--lang", "en", "--site", "sq-empty")
    row = next(line for line in english.splitlines() if line.startswith("sq-empty"))
    assert cells(row)[3:] == ["FAIL", "pass 1/1 PCs", "pass 1/1 PCs",
                              "FAIL 0/1 PCs (1 gov PCs short)", "FAIL 0%/50% (no PC in the room)"]

    out = tmp_path / "r.csv"
    assert report(cfg, "--format", "csv", "--output", str(out)) == ""
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets then read UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 7 * 4
    room_rule = "网络室政务网电脑占比"
    short_room = next(r for r in rows if r["站点"] == "sq-short" and r["标准"] == room_rule)
    # Numbers, the unit in the header: a spreadsheet sums and sorts them.
    assert (short_room["实际(%)"], short_room["要求(%)"], short_room["实际(台)"],
            short_room["需增政务网电脑(台)"], short_room["所属单位"], short_room["原因"]) == \
        ("33.33", "50", "", "2", "一支队/二大队", "网络室需增 2 台政务网电脑")
    short_cadre = next(r for r in rows if r["站点"] == "sq-short" and r["标准"] == "干部政务网电脑")
    assert (short_cadre["实际(台)"], short_cadre["要求(台)"], short_cadre["实际(%)"]) == \
        ("1", "3", "")
    numeric = [k for k in rows[0] if k.startswith(("实际", "要求", "需增"))]
    assert all(r[k] == "" or float(r[k]) >= 0 for r in rows for k in numeric)
    waived = next(r for r in rows if r["站点"] == "sq-waiver" and r["标准"] == room_rule)
    assert (waived["结论"], waived["豁免原因"]) == ("豁免", "机房改造中")


def cells(line: str) -> list[str]:
    """A table row's cells: columns are at least two spaces apart."""
    return re.split(r" {2,}", line.strip())


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
    assert wait_until(lambda: _site_oks(influxd, landed_ms) == 7, 10, 0.2)
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


# --- verdicts without evidence: "no data", with its reason ---------------------

NOD = "nodata"  # database
WAIVE_ROOM = {"room_open_all_day": {"waived": "网络室改造中"}}
NODATA_TREE = [{"id": "bj", "name": "北京局", "children": [{"id": "d1", "name": "一支队",
                                                         "children": [
    # Never reported at all (an agent never installed, a site off the network).
    {"id": "sq-silent", "name": "静默中队", "cadres": 2, "staff": 4},
    # Everything proven but the gov PC's isolation: it runs no canary.
    {"id": "sq-nocanary", "name": "无探针中队", "cadres": 0, "staff": 2, "rules": WAIVE_ROOM},
    # Everything proven but bandwidth: no PC is a speed tester.
    {"id": "sq-notester", "name": "无测速中队", "cadres": 0, "staff": 2, "rules": WAIVE_ROOM},
    # Short of PCs: a procurement line, beside rules it lacks data for.
    {"id": "sq-short", "name": "缺口中队", "cadres": 1, "staff": 2},
]}]}]


def nodata_messages(now: float) -> list[tuple[str, bytes]]:
    """What the agents of NODATA_TREE send, as harness.message makes them."""
    msgs = []
    for site in ("sq-nocanary", "sq-notester"):
        for host, net in (("g1", "gov"), ("i1", "internet")):
            msgs.append(message("inventory", {"hostname": host, "host_id": f"{site}-{host}"},
                                site=site, host=host, network=net, ts=now - 60))
        msgs.append(message("probe", {"probe": "portal", "method": "http", "ok": True,
                                      "target": "http://zgw.example.gov/"},
                            site=site, host="g1", ts=now - 30))
    msgs += [
        message("inventory", {"hostname": "i1", "host_id": "sq-short-i1"}, site="sq-short",
                host="i1", network="internet", ts=now - 60),
        # Speed tests at sq-nocanary only: 50 Mbit/s per network, one room PC each.
        message("bandwidth", {"method": "intranet", "download_mbps": 50.0},
                site="sq-nocanary", host="g1", ts=now - 120),
        message("bandwidth", {"method": "speedtest", "download_mbps": 50.0},
                site="sq-nocanary", host="i1", network="internet", ts=now - 120),
        # The isolation check as an agent without canaries sends it: clean, 0 of 0.
        message("isolation", {"violated": False, "canaries_checked": 0, "canaries_reached": 0,
                              "bridges_up": 0, "default_routes": 1},
                site="sq-nocanary", host="g1", ts=now - 30),
        message("isolation", {"violated": False, "canaries_checked": 2, "canaries_reached": 0,
                              "bridges_up": 0, "default_routes": 1},
                site="sq-notester", host="g1", ts=now - 30),
    ]
    return msgs


def test_sites_without_evidence_say_no_data_and_why(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db=NOD, sites=NODATA_TREE,
                       rules={"evaluate_interval": 3600})
    svc = run_collector(cfg)
    msgs = nodata_messages(time.time())
    pub = Publisher(mosquitto)
    pub.publish_many(msgs)
    pub.close()
    wait_count(influxd, NOD, "inventory", "host_id", 5)
    wait_count(influxd, NOD, "bandwidth", "method", 2)
    wait_count(influxd, NOD, "probe", "ok", 2)
    wait_count(influxd, NOD, "isolation", "violated", 2)

    doc = json.loads(report(cfg, "--format", "json"))
    sites = {s["site"]: s for s in doc["sites"]}
    rules_of = {sid: {r["rule"]: r for r in s["rules"]} for sid, s in sites.items()}
    everything = [m.NAME for m in registry()]
    assert all(list(r) == everything for r in rules_of.values())  # none left out
    assert {sid: (s["status"], s["ok"]) for sid, s in sites.items()} == {
        "sq-silent": ("no_data", False), "sq-nocanary": ("no_data", False),
        "sq-notester": ("no_data", False), "sq-short": ("fail", False)}

    # The silent site: no data everywhere it matters, and nothing to buy.
    silent = sites["sq-silent"]
    assert (silent["detail"], silent["needs"]) == ("站点 7 天内无任何上报", {})
    assert {(r["status"], r["ok"], r["actual"], r["detail"])
            for r in silent["rules"]} == {("no_data", False, None, "站点 7 天内无任何上报")}

    # The gov PC without canaries is not "sealed 0/0": no data, and why.
    iso = rules_of["sq-nocanary"]["gov_isolation"]
    assert (iso["status"], iso["ok"], iso["actual"]) == ("no_data", False, None)
    assert iso["detail"].startswith("1 台电脑未配置隔离检测：g1")
    assert [x["key"] for x in iso["reasons"]] == ["isolation_not_configured"]
    assert {r: x["status"] for r, x in rules_of["sq-nocanary"].items()
            if x["status"] != "pass"} == {"gov_isolation": "no_data",
                                          "room_open_all_day": "waived"}
    # With canaries the same clean report is a pass.
    assert rules_of["sq-notester"]["gov_isolation"]["status"] == "pass"

    # No speed tester: the bandwidth rules have no data, not a failure to buy for.
    video, gov = rules_of["sq-notester"]["room_video"], rules_of["sq-notester"]["gov_bandwidth"]
    assert (video["status"], video["shortfall"], video["detail"]) == \
        ("no_data", {}, "政务网 24 小时内无测速；互联网 24 小时内无测速；1 台网络室电脑浏览正常")
    assert (gov["status"], gov["actual"], gov["detail"]) == \
        ("no_data", None, "政务网 24 小时内无测速")
    assert sites["sq-notester"]["needs"] == {}

    # sq-short fails on evidence and buys: 1 cadre gov + max(staff 1, room 1) gov, 1 internet;
    # what it has no data for (bandwidth, opening) stays no data, and what does not
    # apply (no gov PC to probe or seal) is listed as such.
    short = rules_of["sq-short"]
    assert {r: (x["status"], x["detail"]) for r, x in short.items()
            if x["status"] in ("no_data", "not_applicable")} == {
        "room_video": ("no_data", "互联网 24 小时内无测速"),
        "room_open_all_day": ("no_data", "网络室电脑无心跳上报"),
        "portal_reachable": ("not_applicable", "无政务网电脑"),
        "gov_isolation": ("not_applicable", "无政务网电脑"),
        "gov_bandwidth": ("no_data", "政务网 24 小时内无测速")}
    assert short["cadre_gov_pcs"]["detail"].startswith("缺 1 台政务网电脑")
    assert sites["sq-short"]["needs"] == {"gov_pcs": 2, "internet_pcs": 1}
    [unit] = [u for u in doc["rollups"] if u["id"] == "d1"]
    assert (unit["sites"], unit["passing"], unit["failing"], unit["no_data"]) == (4, 0, 1, 3)

    zh = report(cfg)
    assert "站点 4  全部达标 0  未全部达标 1  无数据 3" in zh
    row = {cells(line)[0]: cells(line) for line in zh.splitlines() if line.startswith("sq-")}
    assert row["sq-silent"][3:6] == ["无数据（站点 7 天内无任何上报）"] * 3  # site, rules
    assert "无数据（1 台电脑未配置隔离检测：g1）" in row["sq-nocanary"]
    assert "无数据（政务网 24 小时内无测速）" in row["sq-notester"]
    buy = zh.split("采购缺口清单")[1].split("未登记主机")[0]
    assert "缺口中队" in buy and "静默中队" not in buy  # only evidence buys
    assert [cells(line) for line in buy.strip().splitlines()[1:]] == [
        ["一支队", "缺口中队", "2", "1"], ["一支队", "小计", "2", "1"], ["合计", "2", "1"]]
    en = report(cfg, "--lang", "en")
    assert "Sites 4  All pass 0  Failing 1  no data 3" in en
    row = {cells(line)[0]: cells(line) for line in en.splitlines() if line.startswith("sq-")}
    assert row["sq-silent"][3] == "no data (nothing received from the site in 7 days)"
    assert "no data (1 PCs have no isolation canaries configured: g1)" in row["sq-nocanary"]
    assert "no data (gov: no speed test in 24 h)" in row["sq-notester"]
    doc_en = json.loads(report(cfg, "--format", "json", "--lang", "en"))
    assert doc_en["sites"][0]["detail"] == "nothing received from the site in 7 days"

    # The collector's own evaluation writes the same verdicts for the dashboards.
    since = int(time.time() * 1000) - 1
    sink = InfluxSink(load(cfg).influxdb)
    svc.evaluate_now(reader(sink))
    sink.close()
    where = f"time > {since}ms"
    wait_count(influxd, NOD, "compliance", "status", 4 * 10, where)
    rows = {(r["site"], r["rule"]): r for r in series(influxd.query(
        f'SELECT "status", "ok", "no_data", "actual", "shortfall" FROM "compliance" '
        f'WHERE {where} GROUP BY "site", "rule"', NOD))}
    assert [rows[("sq-silent", "all")][k] for k in ("status", "ok", "no_data")] == \
        ["no_data", 0, 1]
    assert [rows[("sq-nocanary", "gov_isolation")][k] for k in ("status", "ok", "actual")] == \
        ["no_data", 0, None]
    assert rows[("sq-short", "gov_isolation")]["status"] == "not_applicable"
    assert rows[("sq-short", "gov_isolation")]["ok"] is None  # n/a: no verdict to average
    assert [rows[("sq-short", "all")][k] for k in ("status", "ok", "no_data")] == ["fail", 0, 0]
