"""The isolation collector's parsers on literal /proc and `route print` texts, its
bridge detection on a sysfs tree laid out like the kernel's, and its verdict.

`route print` cannot run here (Windows): its rows are checked against the
documented output format (English and Chinese Windows print the same rows
under translated titles).
"""
from __future__ import annotations

import os
import types
from pathlib import Path

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
