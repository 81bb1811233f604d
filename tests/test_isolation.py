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


def _isolation(cfg: Path, *args: str) -> str:
    r = run_cli("collector.cli.main", "isolation", "--config", str(cfg), *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows by host: [site, host, result, reasons...]."""
    return {line.split()[1]: line.split() for line in out.splitlines()
            if line.startswith("sq-")}


def test_netroom_isolation_shows_no_data_for_pcs_without_canaries_or_reports(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """A clean report that checked no canary (``canaries_checked`` 0 or absent)
    proves nothing, and a gov PC that never reported says nothing: both are
    no data, never ok, in the command as in the report's gov_isolation."""
    sites = [{"id": "bj", "name": "北京局", "children": [
        {"id": f"sq-{i}", "name": f"{i}中队", "cadres": 0, "staff": 0} for i in (1, 2, 3)]}]
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(cfg)
    clean = {"violated": False, "reasons": "", "canaries_checked": 2, "canaries_reached": 0}
    blind = {"violated": False, "reasons": "", "canaries_checked": 0, "canaries_reached": 0}
    pcs: list[tuple[str, str, str, dict[str, Any] | None]] = [
        # (site, host, network, isolation report or None)
        ("sq-1", "pc-bad", "gov", {"violated": True, "reasons": "canary inet-tcp reached",
                                   "canaries_checked": 1, "canaries_reached": 1}),
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
    assert wait_count(influxd, influx_db, "inventory", "host_id", 9) == 9
    assert wait_count(influxd, influx_db, "isolation", "violated", 7) == 7

    zh = _isolation(cfg)
    rows = _rows(zh)
    assert list(rows) == ["pc-bad", "pc-blind", "pc-old", "pc-quiet", "pc-blind2"]  # worst first
    assert rows["pc-bad"][2:6] == ["违规", "canary", "inet-tcp", "reached"]
    assert rows["pc-blind"][2:4] == rows["pc-old"][2:4] == ["无数据", "未配置隔离检测"]
    assert rows["pc-quiet"][2:] == ["无数据", "无隔离检测上报", "—"]
    assert "1 台政务网电脑违规（共 7 台上报）" in zh
    assert "4 台政务网电脑无数据（3 台未配置隔离检测，1 台无隔离检测上报）" in zh
    assert "没有政务网电脑能连通互联网" not in zh and "正常" not in zh

    rows = _rows(_isolation(cfg, "--all", "--lang", "en"))
    assert {h: r[2] for h, r in rows.items()} == {
        "pc-bad": "VIOLATION", "pc-blind": "no", "pc-old": "no", "pc-quiet": "no",
        "pc-blind2": "no", "pc-ok": "ok", "pc-ok2": "ok", "pc-ok3": "ok"}  # "no data"
    assert " ".join(rows["pc-quiet"][2:]) == "no data no isolation report —"
    assert " ".join(rows["pc-old"][2:8]) == "no data no isolation canaries configured"
    assert rows["pc-ok"][3].startswith("20")  # clean, with canaries: its report's time

    doc = json.loads(_isolation(cfg, "--all", "--format", "json"))
    got = {r["host"]: (r["status"], r["no_data"], r["violated"], r["canaries_checked"])
           for r in doc}
    assert got == {
        "pc-bad": ("fail", None, True, 1), "pc-blind": ("no_data", "not_configured", False, 0),
        "pc-old": ("no_data", "not_configured", False, None),
        "pc-quiet": ("no_data", "no_report", None, None),
        "pc-blind2": ("no_data", "not_configured", False, 0),
        "pc-ok": ("pass", None, False, 2), "pc-ok2": ("pass", None, False, 2),
        "pc-ok3": ("pass", None, False, 2)}
    assert next(r for r in doc if r["host"] == "pc-quiet")["reported_at"] is None
    default = json.loads(_isolation(cfg, "--format", "json"))
    assert [r["host"] for r in default] == ["pc-bad", "pc-blind", "pc-old", "pc-quiet",
                                            "pc-blind2"]

    # No violation, one PC without canaries: never "no gov PC can reach the internet".
    en = _isolation(cfg, "--site", "sq-2", "--lang", "en")
    assert list(_rows(en)) == ["pc-blind2"]
    assert "1 gov PCs without data (1 with no canaries configured)" in en
    assert "No violation on the 1 gov PCs with data" in en
    assert "No gov PC can reach the internet" not in en
    assert "没有政务网电脑能连通互联网" in _isolation(cfg, "--site", "sq-3")

    # The same verdicts as the report's gov_isolation rule.
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    verdicts = {s["site"]: next(x["status"] for x in s["rules"] if x["rule"] == "gov_isolation")
                for s in json.loads(r.stdout)["sites"]}
    assert verdicts == {"sq-1": "fail", "sq-2": "no_data", "sq-3": "pass"}


def test_netroom_availability_says_no_data_for_a_room_without_heartbeats(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """The other commanders' CLI speaks the same five states: a room none of whose
    PCs ever sent a heartbeat is no data, not a fail; room PCs that do send
    heartbeats but were off yesterday fail it; a day off does not apply."""
    tz = ZoneInfo("Asia/Shanghai")
    yesterday = (dt.datetime.now(tz).date() - dt.timedelta(days=1)).isoformat()
    sites = [{"id": "bj", "name": "北京局", "children": [
        {"id": "sq-off", "name": "关机中队", "cadres": 0, "staff": 0},
        {"id": "sq-none", "name": "无心跳中队", "cadres": 0, "staff": 0},
        {"id": "sq-hol", "name": "假日中队", "cadres": 0, "staff": 0,
         "room": {"holidays": [yesterday]}}]}]
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(cfg)
    pub = Publisher(mosquitto)
    try:  # sq-off's room PC: switched on just now, so off all yesterday
        pub.publish_many([
            message("status", {"state": "online", "agent_version": "0.1.0", "interval_s": 60.0},
                    site="sq-off", host="pc-r1"),
            message("metrics", {"cpu_percent": 3.0, "collect_ms": 2.0}, site="sq-off",
                    host="pc-r1")])
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "metrics", "collect_ms", 1) == 1

    r = run_cli("collector.cli.main", "availability", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    got = {x["site"]: (x["date"], x["status"], x["ok"], x["room_pcs"])
           for x in json.loads(r.stdout)}
    assert got == {"sq-off": (yesterday, "fail", False, 1),
                   "sq-none": (yesterday, "no_data", None, 0),
                   "sq-hol": (yesterday, "not_applicable", None, 0)}
    r = run_cli("collector.cli.main", "availability", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    verdict = {line.split()[0]: line.split()[-3:] for line in r.stdout.splitlines()
               if line.startswith("sq-")}
    # (open share, rolling share, verdict): no share without evidence.
    assert verdict == {"sq-off": ["0.0%", "0.0%", "未达标"], "sq-none": ["—", "—", "无数据"],
                       "sq-hol": ["无需开放", "0.0%", "不适用"]}

    # The report's room_open_all_day agrees.
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    rule = {s["site"]: next(x["status"] for x in s["rules"] if x["rule"] == "room_open_all_day")
            for s in json.loads(r.stdout)["sites"]}
    assert rule == {"sq-off": "fail", "sq-none": "no_data", "sq-hol": "not_applicable"}
