"""The isolation collector's parsers on literal /proc and `route print` texts, its
bridge detection on a sysfs tree laid out like the kernel's, and its verdict.

`route print` cannot run here (Windows): its rows are checked against the
documented output format (English and Chinese Windows print the same rows
under translated titles).

Then `netroom isolation` (the real CLI, reports sent through mosquitto and
the collector into influxd): a gov PC without canaries or without a report
is no data, never ok; and `netroom availability`'s verdicts in the same five
states.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import types
from pathlib import Path
from typing import Any, Callable

from harness import Publisher, message, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto
from zoneinfo import ZoneInfo

from agent.collectors.isolation import (
    Bridge,
    Isolation,
    classify_linux,
    classify_windows,
    is_up_linux,
    parse_ipv6_route,
    parse_proc_route,
    parse_route_print,
    read_bridges_linux,
    read_bridges_windows,
    verdict,
)
from agent.probe_config import IsolationConfig

PROC_ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wwan0\t00000000\t0101A8C0\t0003\t0\t0\t700\t00000000\t0\t0\t0
eth1\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0
"""

IPV6_ROUTE = """\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000100 00000002 00000000 00000001   eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
fe800000000000000000000000000001 00000400 00000001 00000000 00450003   eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000001 80 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo
"""

ROUTE_PRINT_ZH = """\
===========================================================================
接口列表
 12...00 15 5d 01 02 03 ......Intel(R) Ethernet Connection I219-LM
 17...e4 a7 a0 11 22 33 ......Remote NDIS based Internet Sharing Device
  1...........................Software Loopback Interface 1
===========================================================================

IPv4 路由表
===========================================================================
活动路由:
网络目标        网络掩码          网关       接口   跃点数
          0.0.0.0          0.0.0.0      10.20.30.1     10.20.30.45     25
          0.0.0.0          0.0.0.0    192.168.42.129  192.168.42.10     20
        10.20.30.0    255.255.255.0            在链路上       10.20.30.45    281
        127.0.0.0        255.0.0.0            在链路上         127.0.0.1    331
===========================================================================
永久路由:
  网络地址          网络掩码  网关地址  跃点数
          0.0.0.0          0.0.0.0      10.20.30.1     默认
===========================================================================

IPv6 路由表
===========================================================================
活动路由:
 接口跃点数网络目标      网关
 12    281 ::/0                     fe80::1
  1    331 ::1/128                  在链路上
 12    281 fe80::/64                在链路上
===========================================================================
永久路由:
  无
"""


def test_ipv4_default_routes_that_are_up() -> None:
    # eth1's row has RTF_REJECT (0x0200): an unreachable route, not a way out.
    assert parse_proc_route(PROC_ROUTE) == ["eth0", "wwan0"]


def test_ipv6_default_routes_skip_the_kernels_unreachable_entries() -> None:
    assert parse_ipv6_route(IPV6_ROUTE) == ["eth0"]


def test_windows_route_print_rows_are_read_whatever_the_language() -> None:
    # Two active IPv4 defaults (Ethernet and the tethered phone), the persistent
    # copy ignored, and the IPv6 default on interface 12.
    assert parse_route_print(ROUTE_PRINT_ZH) == ["10.20.30.45", "192.168.42.10", "if12"]


def test_linux_interface_classes() -> None:
    usb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0"
    assert classify_linux("wlp2s0", True, "/sys/devices/pci0000:00/0000:02:00.0", "iwlwifi") \
        == "wireless"
    assert classify_linux("usb0", False, usb, "rndis_host") == "usb"
    assert classify_linux("enx00e04c680001", False, usb, "ipheth") == "usb"
    # A USB Ethernet adapter is a plain NIC (the route check covers a second one).
    assert classify_linux("enx00e04c680001", False, usb, "r8152") == ""
    assert classify_linux("wwp0s20f0u6", False, usb, "qmi_wwan") == "mobile"
    assert classify_linux("ppp0", False, "", "") == "mobile"
    assert classify_linux("enp3s0", False, "/sys/devices/pci0000:00/0000:03:00.0", "e1000e") \
        == ""
    assert is_up_linux("up", 0x1003) and is_up_linux("unknown", 0x10d1)  # ppp says unknown
    assert not is_up_linux("down", 0x1003) and not is_up_linux("up", 0x1002)


def _iface(root: Path, name: str, operstate: str, flags: str, device: str = "",
           driver: str = "", wireless: bool = False) -> None:
    d = root / "devices" / (device or f"virtual/net/{name}") / "net" / name
    d.mkdir(parents=True)
    (d / "operstate").write_text(operstate + "\n")
    (d / "flags").write_text(flags + "\n")
    if wireless:
        (d / "wireless").mkdir()
    if device:
        dev = root / "devices" / device
        (dev / "driver").parent.mkdir(parents=True, exist_ok=True)
        drv = root / "bus" / "usb" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        os.symlink(drv, dev / "driver")
        os.symlink(dev, d / "device")
    net = root / "class" / "net"
    net.mkdir(parents=True, exist_ok=True)
    os.symlink(d, net / name)


def test_bridges_found_in_a_sysfs_tree(tmp_path: Path) -> None:
    _iface(tmp_path, "lo", "unknown", "0x9")
    _iface(tmp_path, "enp3s0", "up", "0x1003", "pci0000:00/0000:03:00.0", "e1000e")
    _iface(tmp_path, "wlp2s0", "down", "0x1003", "pci0000:00/0000:02:00.0", "iwlwifi",
           wireless=True)
    _iface(tmp_path, "usb0", "up", "0x1003", "pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0",
           "rndis_host")
    assert read_bridges_linux(str(tmp_path / "class" / "net")) == [
        Bridge("usb0", "usb", True), Bridge("wlp2s0", "wireless", False)]


def test_windows_connection_names() -> None:
    stats = {"以太网": types.SimpleNamespace(isup=True),
             "WLAN": types.SimpleNamespace(isup=False),
             "手机网络": types.SimpleNamespace(isup=True),
             "Loopback Pseudo-Interface 1": types.SimpleNamespace(isup=True)}
    ps = types.SimpleNamespace(net_if_stats=lambda: stats)
    assert read_bridges_windows(ps) == [Bridge("WLAN", "wireless", False),
                                        Bridge("手机网络", "mobile", True)]
    assert classify_windows("Wi-Fi 2") == "wireless" and classify_windows("以太网 2") == ""


def test_verdict_names_every_reason() -> None:
    bridges = [Bridge("wlan0", "wireless", False), Bridge("usb0", "usb", True)]
    assert verdict(["tcp4", "dns1"], bridges, ["eth0", "eth0", "usb0"], True) == [
        "canary tcp4 reached", "canary dns1 reached", "usb interface usb0 is up",
        "default routes via 2 interfaces: eth0,usb0"]
    # A dual-stack NIC has two default routes through one interface: fine.
    assert verdict([], bridges, ["eth0", "eth0"], False) == []


def test_collect_on_this_machine_without_canaries(tmp_path: Path) -> None:
    _iface(tmp_path, "wlan0", "up", "0x1003", wireless=True)
    body = Isolation(IsolationConfig(), sysfs=str(tmp_path / "class" / "net")).collect()
    assert body["violated"] is True and body["bridges"] == "wlan0:wireless:up"
    assert body["canaries_checked"] == 0 and "reached" not in body
    quiet = Isolation(IsolationConfig(bridges_violate=False),
                      sysfs=str(tmp_path / "class" / "net")).collect()
    assert quiet["bridges_up"] == 1 and quiet["default_routes"] >= 0


# -- `netroom isolation`: what the commanders read --------------------------


def _isolation(cfg: Path, *args: str, code: int = 0) -> str:
    """The command's output; its exit code must be ``code`` (1: a violation)."""
    r = run_cli("collector.cli.main", "isolation", "--config", str(cfg), *args)
    assert r.returncode == code and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    return r.stdout


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows by host: [site name, unit, host, result, reasons, reported]."""
    rows = [re.split(r" {2,}", line.strip()) for line in out.splitlines()]
    return {r[2]: r for r in rows if len(r) > 2 and r[2].startswith("pc-")}


def test_netroom_isolation_shows_no_data_for_pcs_without_canaries_or_reports(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """A clean report that checked no canary (``canaries_checked`` 0 or absent)
    proves nothing, and a gov PC that never reported says nothing: both are
    no data, never ok, in the command as in the report's gov_isolation. The
    command speaks Chinese by default (the agents' reasons too), names sites
    and units, and exits 1 while a violation exists."""
    sites = [{"id": "bj", "name": "北京局", "children": [
        {"id": "d1", "name": "一支队", "children": [
            {"id": f"sq-{i}", "name": f"{i}中队", "cadres": 0, "staff": 0} for i in (1, 2)]},
        {"id": "sq-3", "name": "3中队", "cadres": 0, "staff": 0}]}]
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(cfg)
    clean = {"violated": False, "reasons": "", "canaries_checked": 2, "canaries_reached": 0}
    blind = {"violated": False, "reasons": "", "canaries_checked": 0, "canaries_reached": 0}
    pcs: list[tuple[str, str, str, dict[str, Any] | None]] = [
        # (site, host, network, isolation report or None)
        ("sq-1", "pc-bad", "gov", {"violated": True, "reasons": "canary inet-tcp reached",
                                   "canaries_checked": 1, "canaries_reached": 1}),
        # The agent's other reasons (agent/collectors/isolation.py verdict()), "; "-joined.
        ("sq-1", "pc-usb", "gov", {"violated": True, "reasons": "usb interface usb0 is up; "
                                   "default routes via 2 interfaces: eth0,usb0",
                                   "canaries_checked": 1, "canaries_reached": 0}),
        ("sq-1", "pc-ok", "gov", clean),
        ("sq-1", "pc-blind", "gov", blind),
        ("sq-1", "pc-old", "gov", {"violated": False, "reasons": ""}),  # does not say
        ("sq-1", "pc-quiet", "gov", None),  # inventory only: never reported
        ("sq-1", "pc-inet", "internet", None),  # no gov PC: not listed
        ("sq-2", "pc-ok2", "gov", clean),
        ("sq-2", "pc-blind2", "gov", blind),
        ("sq-3", "pc-ok3", "gov", clean),
    ]
    msgs = []
    for site, host, net, report in pcs:
        msgs.append(message("inventory", {"hostname": host, "host_id": f"id-{host}"},
                            site=site, host=host, network=net))
        if report is not None:
            msgs.append(message("isolation", report, site=site, host=host))
    pub = Publisher(mosquitto)
    try:
        pub.publish_many(msgs)
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "inventory", "host_id", 10) == 10
    assert wait_count(influxd, influx_db, "isolation", "violated", 8) == 8

    zh = _isolation(cfg, code=1)
    rows = _rows(zh)
    # Worst first: violations, then no data; sites and units by name.
    assert list(rows) == ["pc-bad", "pc-usb", "pc-blind", "pc-old", "pc-quiet", "pc-blind2"]
    assert zh.splitlines()[2].split() == ["站点", "所属单位", "主机", "结论", "原因", "上报时间"]
    assert rows["pc-bad"][:5] == ["1中队", "一支队", "pc-bad", "违规",
                                  "可连通外网探测目标 inet-tcp"]
    assert rows["pc-usb"][4] == "USB 共享网卡 usb0 已启用；默认路由经 2 个网卡：eth0,usb0"
    assert rows["pc-blind"][3:5] == rows["pc-old"][3:5] == ["无数据", "未配置隔离检测"]
    assert rows["pc-quiet"][3:] == ["无数据", "无隔离检测上报", "—"]
    assert rows["pc-blind2"][:2] == ["2中队", "一支队"]
    assert "2 台政务网电脑违规（共 8 台上报）" in zh
    assert "4 台政务网电脑无数据（3 台未配置隔离检测，1 台无隔离检测上报）" in zh
    assert "没有政务网电脑能连通互联网" not in zh and "正常" not in zh
    assert "reached" not in zh and "sq-" not in zh  # Chinese, and names, not ids

    en = _isolation(cfg, "--all", "--lang", "en", code=1)
    rows = _rows(en)
    assert {h: r[3] for h, r in rows.items()} == {
        "pc-bad": "VIOLATION", "pc-usb": "VIOLATION", "pc-blind": "no data",
        "pc-old": "no data", "pc-quiet": "no data", "pc-blind2": "no data", "pc-ok": "ok",
        "pc-ok2": "ok", "pc-ok3": "ok"}
    assert rows["pc-bad"][4] == "canary inet-tcp reached"  # the agent's words in English
    assert rows["pc-quiet"][4:] == ["no isolation report", "—"]
    assert rows["pc-old"][4] == "no isolation canaries configured"
    assert rows["pc-ok"][4].startswith("20")  # clean, with canaries: no reason, its time
    assert rows["pc-ok3"][:2] == ["3中队", "—"]  # right under the bureau: no unit

    doc = json.loads(_isolation(cfg, "--all", "--format", "json", code=1))
    got = {r["host"]: (r["status"], r["no_data"], r["violated"], r["canaries_checked"])
           for r in doc}
    assert got == {
        "pc-bad": ("fail", None, True, 1), "pc-usb": ("fail", None, True, 1),
        "pc-blind": ("no_data", "not_configured", False, 0),
        "pc-old": ("no_data", "not_configured", False, None),
        "pc-quiet": ("no_data", "no_report", None, None),
        "pc-blind2": ("no_data", "not_configured", False, 0),
        "pc-ok": ("pass", None, False, 2), "pc-ok2": ("pass", None, False, 2),
        "pc-ok3": ("pass", None, False, 2)}
    bad = next(r for r in doc if r["host"] == "pc-bad")
    assert (bad["site"], bad["name"], [p["name"] for p in bad["path"]]) == (
        "sq-1", "1中队", ["北京局", "一支队"])
    assert (bad["reasons"], bad["detail"]) == ("canary inet-tcp reached",
                                               "可连通外网探测目标 inet-tcp")
    assert next(r for r in doc if r["host"] == "pc-quiet")["reported_at"] is None
    assert next(r for r in doc if r["host"] == "pc-quiet")["detail"] == "无隔离检测上报"
    default = json.loads(_isolation(cfg, "--format", "json", code=1))
    assert [r["host"] for r in default] == ["pc-bad", "pc-usb", "pc-blind", "pc-old",
                                            "pc-quiet", "pc-blind2"]

    # No violation, one PC without canaries: exit 0, and never "no gov PC can
    # reach the internet".
    en = _isolation(cfg, "--site", "sq-2", "--lang", "en")
    assert list(_rows(en)) == ["pc-blind2"]
    assert "1 gov PCs without data (1 with no canaries configured)" in en
    assert "No violation on the 1 gov PCs with data" in en
    assert "No gov PC can reach the internet" not in en
    assert "没有政务网电脑能连通互联网" in _isolation(cfg, "--site", "sq-3")
    _isolation(cfg, "--site", "d1", "--format", "json", code=1)

    # The same verdicts as the report's gov_isolation rule, its reasons in Chinese too.
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    rules = {s["site"]: next(x for x in s["rules"] if x["rule"] == "gov_isolation")
             for s in json.loads(r.stdout)["sites"]}
    assert {k: v["status"] for k, v in rules.items()} == {
        "sq-1": "fail", "sq-2": "no_data", "sq-3": "pass"}
    assert "pc-bad: 可连通外网探测目标 inet-tcp；pc-usb: USB 共享网卡 usb0 已启用" in \
        rules["sq-1"]["detail"]


def test_netroom_availability_says_no_data_for_a_room_without_heartbeats(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """The other commanders' CLI speaks the same five states: a room none of whose
    PCs ever sent a heartbeat is no data, not a fail, and so is every day before
    a room's first report (not counted in the rolling share either); room PCs
    that do send heartbeats but were off yesterday fail it; a day off does not
    apply. Closed rooms that must be open now come first."""
    tz = ZoneInfo("Asia/Shanghai")
    today = dt.datetime.now(tz).date()
    yesterday, d3 = today - dt.timedelta(days=1), today - dt.timedelta(days=3)
    tomorrow = (today + dt.timedelta(days=1)).isoweekday()

    def noon(day: dt.date, minute: int = 0, second: int = 0) -> float:
        return dt.datetime(day.year, day.month, day.day, 12, minute, second,
                           tzinfo=tz).timestamp()

    def sq(sid: str, name: str, **room: Any) -> dict[str, Any]:
        return {"id": sid, "name": name, "cadres": 0, "staff": 0, "room": room}

    sites = [{"id": "bj", "name": "北京局", "children": [
        sq("sq-new", "新装中队"), sq("sq-old", "老中队"),
        {"id": "d1", "name": "一支队", "children": [
            sq("sq-closed", "关门中队"), sq("sq-shut", "明天开中队", days=[tomorrow])]},
        sq("sq-none", "无心跳中队"), sq("sq-hol", "假日中队", holidays=[yesterday.isoformat()])]}]
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(cfg)
    status = {"agent_version": "0.1.0", "interval_s": 60.0}
    tick = {"cpu_percent": 3.0, "collect_ms": 2.0}
    msgs = [
        # sq-new: its room PC's agent was installed just now, so nothing is known
        # of yesterday; sq-old's has reported since three days ago: off yesterday.
        message("status", {"state": "online", **status}, site="sq-new", host="pc-r1"),
        message("metrics", tick, site="sq-new", host="pc-r1"),
        message("metrics", tick, site="sq-old", host="pc-r1", ts=noon(d3)),
        message("status", {"state": "online", **status}, site="sq-old", host="pc-r1"),
        message("metrics", tick, site="sq-old", host="pc-r1")]
    for sid in ("sq-closed", "sq-shut"):  # on for a minute three days ago, then shut down
        msgs += [message("status", {"state": "online", **status}, site=sid, host="pc-r1",
                         ts=noon(d3)),
                 message("metrics", tick, site=sid, host="pc-r1", ts=noon(d3, 1)),
                 message("status", {"state": "offline", **status}, site=sid, host="pc-r1",
                         ts=noon(d3, 1, 30))]
    pub = Publisher(mosquitto)
    try:
        pub.publish_many(msgs)
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "metrics", "collect_ms", 5) == 5
    assert wait_count(influxd, influx_db, "status", "state", 6) == 6

    r = run_cli("collector.cli.main", "availability", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    got = {x["site"]: (x["now"], x["required_now"], x["status"], x["no_data"], x["ok"])
           for x in doc}
    assert list(got) == ["sq-closed", "sq-none", "sq-hol", "sq-shut", "sq-new", "sq-old"]
    assert got == {
        "sq-closed": ("closed", True, "fail", None, False),
        "sq-none": ("no_data", True, "no_data", "no_heartbeats", None),
        "sq-hol": ("no_data", True, "not_applicable", None, None),
        "sq-shut": ("closed", False, "not_applicable", None, None),
        "sq-new": ("open", True, "no_data", "before_first_report", None),
        "sq-old": ("open", True, "fail", None, False)}
    rows = {x["site"]: x for x in doc}
    assert all(x["date"] == yesterday.isoformat() for x in doc)
    assert rows["sq-old"]["first_report"] == f"{d3} 12:00"
    assert rows["sq-closed"]["closed_since"] == f"{d3} 12:01"
    # Rolling 7 days: sq-old's three since its first report count, the four before do not.
    assert (rows["sq-old"]["rolling_share"], rows["sq-old"]["rolling_counted"],
            rows["sq-old"]["rolling_unknown"]) == (0.0, 3, 4)
    assert (rows["sq-new"]["open_share"], rows["sq-new"]["rolling_share"],
            rows["sq-new"]["rolling_unknown"]) == (None, None, 7)
    assert [p["name"] for p in rows["sq-closed"]["path"]] == ["北京局", "一支队"]

    r = run_cli("collector.cli.main", "availability", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    lines = [re.split(r" {2,}", line.strip()) for line in r.stdout.splitlines()]
    assert "1 个网络室应开放而关闭" in r.stdout and "sq-" not in r.stdout  # names, not ids
    head = next(x for x in lines if x[0] == "所属单位")
    assert head[:4] == ["所属单位", "站点", "当前", "应开放"]
    table = {x[1]: x for x in lines[lines.index(head) + 1:]}
    # (unit, now, must open now) ... (open h, open share, rolling share, verdict).
    assert list(table) == ["关门中队", "无心跳中队", "假日中队", "明天开中队", "新装中队", "老中队"]
    assert table["关门中队"][:6] == ["一支队", "关门中队", f"自 {d3} 12:01 起关闭", "是",
                                     yesterday.isoformat(), "24.0"]
    assert table["关门中队"][6:] == ["0.0", "0.0%", "0.0%", "未达标"]
    assert table["无心跳中队"][2:4] == ["无数据", "是"]
    assert table["无心跳中队"][6:] == ["—", "无数据", "无数据", "无数据（网络室电脑无心跳上报）"]
    assert table["假日中队"][6:] == ["0.0", "无需开放", "无数据", "不适用"]
    assert table["明天开中队"][3] == "否"
    assert table["新装中队"][2:4] == ["开放 1/1 台在线", "是"]
    assert table["新装中队"][6:] == ["—", "无数据", "无数据", "无数据（首次上报前）"]
    assert table["老中队"][:1] + table["老中队"][6:] == ["—", "0.0", "0.0%", "0.0%", "未达标"]

    r = run_cli("collector.cli.main", "availability", "--config", str(cfg), "--closed",
                "--lang", "en")
    assert r.returncode == 0, r.stderr
    shown = [re.split(r" {2,}", line.strip()) for line in r.stdout.splitlines()]
    assert [x[1] for x in shown if len(x) > 3][1:] == ["关门中队", "无心跳中队", "假日中队",
                                                       "明天开中队"]
    assert "1 rooms closed while required open" in r.stdout
    assert "no data (before the first report)" not in r.stdout  # sq-new is open: not shown

    # The report's room_open_all_day agrees, sq-new's no data included.
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    rule = {s["site"]: next(x["status"] for x in s["rules"] if x["rule"] == "room_open_all_day")
            for s in json.loads(r.stdout)["sites"]}
    assert rule == {
        "sq-closed": "fail", "sq-old": "fail", "sq-shut": "not_applicable",
        "sq-none": "no_data", "sq-hol": "not_applicable", "sq-new": "no_data"}
