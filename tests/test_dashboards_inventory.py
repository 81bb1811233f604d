"""The inventory board and the hardware-removed alert on collector-written data.

Inventories go through a real mosquitto, the real collector and influxd (as
in tests/test_inventory.py); every query of the board runs as Grafana's
InfluxDB data source would send it (tests/grafana_influxql.py), and the
tables go through the board's transformations and value mappings as
Grafana's documentation describes them, so the rows compared are what a
user would see (names, not ids). One fixture removes a memory module from a
PC, the other adds a disk: the alert fires for the first only.
"""
from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from grafana_influxql import Grafana, evaluate_rule
from harness import Publisher, message, series, wait_count, write_config
from servers import Influxd, Mosquitto
from test_dashboards import alert_rules, dashboards

from collector.compliance import hardware
from dashboards.boards import inventory
from netroom import protocol, schema

DB = "inv"
GIB = 2**30
MIB = 2**20
TREE = [{"id": "bj", "name": "局", "children": [
    {"id": "zd-1", "name": "一支队", "children": [{"id": "dd-1", "name": "一大队", "children": [
        {"id": "sq-1", "name": "一中队", "cadres": 1, "staff": 2},
        {"id": "sq-2", "name": "二中队", "cadres": 1, "staff": 2}]}]},
    {"id": "zd-2", "name": "二支队", "children": [{"id": "dd-2", "name": "二大队", "children": [
        {"id": "sq-3", "name": "三中队", "cadres": 0, "staff": 0}]}]}]}]
BASE: dict[str, Any] = {
    "os_name": "Kylin V10", "os_version": "V10 SP1", "kernel": "4.19.90-24", "arch": "aarch64",
    "cpu_model": "Phytium FTC663", "cpu_cores": 4, "cpu_threads": 4,
    "vendor": "Great Wall", "model": "TD120A2", "agent_version": "1.4.0",
    "disks": [{"mount": "/", "device": "/dev/sda2", "fstype": "ext4",
               "total_bytes": 500 * 10**9}],
    "nics": [{"name": "eth0", "mac": "00:1a:2b:3c:4d:5e", "is_up": True}]}
# (site, host, network, role, changes to BASE). Memory as reported: a little
# under the modules' size. pc-1's first inventory; its second one follows.
PCS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("sq-1", "pc-1", "gov", "cadre", {"mem_total_bytes": 8 * GIB - 200 * MIB}),
    ("sq-1", "pc-2", "internet", "room", {
        "mem_total_bytes": 2 * GIB, "os_name": "Windows 7", "os_version": "6.1.7601",
        "arch": "x86_64", "cpu_model": "Intel Core i3-2120", "cpu_cores": 2}),
    ("sq-2", "pc-3", "gov", "room", {"mem_total_bytes": 16 * GIB - 300 * MIB}),
    ("sq-2", "pc-5", "gov", "office", {"mem_total_bytes": 7 * GIB + GIB // 2}),
    ("sq-3", "pc-4", "gov", "room", {"mem_total_bytes": 12 * GIB, "os_name": "UOS",
                                     "os_version": "20", "arch": "loongarch64"}),
]
REMOVED = {"mem_total_bytes": 4 * GIB - 200 * MIB}  # a module taken out of pc-1
ADDED = {"disks": [*BASE["disks"], {"mount": "/data", "device": "/dev/sdb1", "fstype": "xfs",
                                    "total_bytes": 1000 * 10**9}]}  # a disk put into pc-1


def body(site: str, host: str, changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(hostname=host.upper(), host_id=f"m.{host}", serial=f"GW-{host}", **changes)
    return out


@pytest.fixture
def removed(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
            run_collector: Callable[[Path], Any]) -> float:
    """pc-1 loses a memory module; returns now (epoch s)."""
    return publish(REMOVED, tmp_path, mosquitto, influxd, run_collector)


@pytest.fixture
def added(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
          run_collector: Callable[[Path], Any]) -> float:
    """pc-1 gets a second disk; returns now (epoch s)."""
    return publish(ADDED, tmp_path, mosquitto, influxd, run_collector)


def publish(change: dict[str, Any], tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
            run_collector: Callable[[Path], Any]) -> float:
    """Five PCs' inventories, then pc-1's second one with ``change``, and the
    site names (site_info) from one evaluation; returns now (epoch s)."""
    from collector.compliance.rules import registry
    from collector.influx.client import InfluxSink
    from collector.store import snapshot

    off = {r.NAME: {"enabled": False} for r in registry()}
    svc = run_collector(write_config(tmp_path, mosquitto, influxd, db=DB, sites=TREE,
                                     rules=off))
    now = time.time()
    msgs = [message("inventory", body(s, h, ch), site=s, host=h, network=n, role=r,
                    ts=now - 120) for s, h, n, r, ch in PCS]
    second = {**PCS[0][4], **change}
    msgs.append(message("inventory", body("sq-1", "pc-1", second), site="sq-1", host="pc-1",
                        network="gov", role="cadre", ts=now - 60))
    pub = Publisher(mosquitto)
    pub.publish_many(msgs)
    pub.close()
    wait_count(influxd, DB, schema.INVENTORY, "host_id", len(PCS) + 1)
    wait_count(influxd, DB, schema.INVENTORY_CHANGE, "action", 1)
    sink = InfluxSink(svc.cfg.influxdb)
    svc.evaluate_now(snapshot.reader(sink))
    sink.close()
    assert wait_count(influxd, DB, schema.SITE_INFO, "path", 3) == 3
    return now


def span(now: float) -> tuple[int, int]:
    return int((now - 7 * 86400) * 1000), int((now + 60) * 1000)


def panel(lang: str, title: str) -> dict[str, Any]:
    return next(p for p in dashboards()[f"netroom-inventory-{lang}.json"]["panels"]
                if p["title"] == title)


def test_every_inventory_query_runs_and_names_what_the_collector_writes(
        influxd: Influxd, removed: float) -> None:
    now = removed
    rps = {r["name"] for r in series(influxd.query("SHOW RETENTION POLICIES", DB))}
    names = {r["name"] for r in series(influxd.query("SHOW MEASUREMENTS", DB))}
    for rp in rps:
        names |= {r["tagKey"] for r in series(influxd.query(f'SHOW TAG KEYS FROM "{rp}"./.*/', DB))}
        names |= {r["fieldKey"] for r in series(influxd.query(
            f'SHOW FIELD KEYS FROM "{rp}"./.*/', DB))}
    names.add(schema.ITEM_TAG)  # on disk and NIC changes only; this one is memory
    for lang in ("zh", "en"):
        dash = dashboards()[f"netroom-inventory-{lang}.json"]
        assert dash["time"]["from"] == "now-7d"
        for chosen in ({}, {"detachment": ["zd-1"]}, {"site": ["sq-1"]}):  # sq-1: the change
            g = Grafana(influxd, DB, dash, chosen, *span(now))
            for p in dash["panels"]:
                for t in p["targets"]:
                    aliases = set(re.findall(r'AS "(\w+)"', t["query"]))
                    idents = set(re.findall(r'"(\w+)"', t["query"]))
                    assert idents <= names | aliases, (p["title"], idents - names - aliases)
                    assert g.panel(p, t["refId"]), (lang, chosen, p["title"], t["refId"])


def test_inventory_board_shows_the_published_hardware_by_name(
        influxd: Influxd, removed: float) -> None:
    now = removed
    dash = dashboards()["netroom-inventory-zh.json"]
    g = Grafana(influxd, DB, dash, {}, *span(now))
    assert g.texts["site"] == {"sq-1": "一中队", "sq-2": "二中队", "sq-3": "三中队"}
    assert g.panel(panel("zh", "已登记电脑"))[0]["pcs"] == 5
    # pc-1 now reports 3.8 GiB (4 GiB of modules), pc-2 2 GiB, pc-5 7.5 GiB and
    # pc-4 12 GiB (8-16), pc-3 15.7 GiB (16 GiB of modules).
    [mem] = g.panel(panel("zh", "按内存容量"))
    assert {k: mem[k] for k in ("lt4", "lt8", "lt16", "ge16")} == {
        "lt4": 1, "lt8": 1, "lt16": 2, "ge16": 1}
    zd2 = Grafana(influxd, DB, dash, {"detachment": ["zd-2"]}, *span(now))
    # A bucket without PCs: null in the one row, which the panel shows as 0.
    [mem] = zd2.panel(panel("zh", "按内存容量"))
    assert {k: mem[k] for k in ("lt4", "lt8", "lt16", "ge16")} == {
        "lt4": None, "lt8": None, "lt16": 1, "ge16": None}
    assert panel("zh", "按内存容量")["fieldConfig"]["defaults"]["noValue"] == "0"
    names = {o["matcher"]["options"]: o["properties"][0]["value"]
             for o in panel("zh", "按内存容量")["fieldConfig"]["overrides"]}
    assert names == {"lt4": "小于 4 GiB", "lt8": "4–8 GiB", "lt16": "8–16 GiB",
                     "ge16": "16 GiB 及以上"}
    # Counted by Grafana's Group by, most PCs first.
    by_os = g.table(panel("zh", "按操作系统"))
    assert by_os[0] == {"操作系统": "Kylin V10", "电脑数": 3}
    assert sorted((r["操作系统"], r["电脑数"]) for r in by_os[1:]) == [("UOS", 1), ("Windows 7", 1)]
    assert g.table(panel("zh", "按 CPU 架构"))[0] == {"架构": "aarch64", "电脑数": 3}
    assert sorted((r["架构"], r["电脑数"]) for r in g.table(panel("zh", "按 CPU 架构"))) == [
        ("aarch64", 3), ("loongarch64", 1), ("x86_64", 1)]

    rows = {r["电脑"]: r for r in g.table(panel("zh", "硬件台账"))}
    assert set(rows) == {"pc-1", "pc-2", "pc-3", "pc-4", "pc-5"}
    one = rows["pc-1"]
    assert list(one) == ["中队", "电脑", "网络", "用途", "计算机名", "操作系统", "系统版本", "架构",
                         "CPU 型号", "CPU 核数", "内存", "硬盘总容量", "厂商", "型号", "序列号",
                         "客户端版本", "台账时间"]
    # Names shown, ids filtered; the newest inventory (after the removal).
    assert (one["中队"], one["网络"], one["用途"], one["计算机名"]) == ("一中队", "政务网", "干部",
                                                                "PC-1")
    assert (one["内存"], one["硬盘总容量"], one["CPU 核数"], one["序列号"]) == (
        4 * GIB - 200 * MIB, 500 * 10**9, 4, "GW-pc-1")
    assert one["台账时间"] == pytest.approx((now - 60) * 1000, abs=1000)
    assert (rows["pc-2"]["网络"], rows["pc-2"]["用途"], rows["pc-2"]["操作系统"]) == (
        "互联网", "网络室", "Windows 7")
    assert (rows["pc-4"]["中队"], rows["pc-5"]["用途"]) == ("三中队", "办公")
    sq2 = Grafana(influxd, DB, dash, {"site": ["sq-2"]}, *span(now))
    assert {r["电脑"] for r in sq2.table(panel("zh", "硬件台账"))} == {"pc-3", "pc-5"}

    [change] = g.table(panel("zh", "硬件变更记录"))
    assert change == {"时间": pytest.approx((now - 60) * 1000, abs=1000), "中队": "一中队",
                      "电脑": "pc-1", "变更项": "内存", "部件": None, "变更": "移除",
                      "变更前": "7.8 GiB", "变更后": "3.8 GiB"}
    en = Grafana(influxd, DB, dashboards()["netroom-inventory-en.json"], {}, *span(now))
    [change] = en.table(panel("en", "Hardware changes"))
    assert (change["Site"], change["Change"], change["Action"]) == ("一中队", "Memory",
                                                                   "Removed")
    assert en.table(panel("en", "PCs by OS"))[0] == {"OS": "Kylin V10", "PCs": 3}


@pytest.mark.parametrize("which", ["removed", "added"])
def test_hardware_removed_alert_fires_for_a_removal_only(
        request: pytest.FixtureRequest, influxd: Influxd, which: str) -> None:
    now = float(request.getfixturevalue(which))
    rule = alert_rules()["netroom-hardware-removed"]
    fired = evaluate_rule(influxd, DB, rule, int(now * 1000) + 1000)
    rows = [(r["change"], r["action"]) for r in series(influxd.query(
        'SELECT "change", "action" FROM "inventory_change"', DB))]
    if which == "removed":
        assert rows == [("memory", "removed")]
        assert fired == {frozenset({("site", "sq-1"), ("host", "pc-1"),
                                    ("change", "memory")}): 1}
        # An hour on, the removal is history: no alert (no data, treated as OK).
        later = evaluate_rule(influxd, DB, rule, int((now + 3700) * 1000))
        assert later is None and rule["noDataState"] == "OK"
    else:  # a disk put in is a change, shown on the board, but no alert
        assert rows == [("disk", "added")]
        assert not fired
        g = Grafana(influxd, DB, dashboards()["netroom-inventory-zh.json"], {}, *span(now))
        [change] = g.table(panel("zh", "硬件变更记录"))
        assert (change["变更项"], change["部件"], change["变更"]) == ("硬盘", "/data", "新增")
    assert rule["title"] == "电脑内存或硬盘被拆除" and rule["labels"]["severity"] == "warning"


def test_value_mappings_cover_every_role_change_and_action() -> None:
    assert set(inventory.ROLE_NAMES) == set(protocol.ROLES)
    assert set(inventory.CHANGE_NAMES) == set(hardware.ASPECTS)
    assert set(inventory.ACTION_NAMES) == set(hardware.ACTIONS)
    # The memory limits: 90 % of the module sizes, as docs/inventory.md gives them.
    assert inventory.LIMIT == {4: 3865470566, 8: 7730941132, 16: 15461882265}
