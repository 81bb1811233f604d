"""Tests of the inventory and metrics collectors.

Parsers are tested on literal /etc/os-release and /proc/cpuinfo texts; the
collectors run once on this machine (their payload must pass
protocol.decode) and once against a fake psutil, injected as ``ps``.
"""
from __future__ import annotations

import hashlib
import hmac
import socket
import sys
import time
import types
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent import identity
from agent.collectors.inventory import (
    Inventory,
    build_disks,
    build_nics,
    parse_cpuinfo,
    parse_os_release,
    read_host_id,
    windows_os,
)
from agent.collectors.metrics import (
    Errors,
    Metrics,
    build_disk_usage,
    build_diskio,
    build_nic_counters,
    parse_diskstats,
    parse_meminfo,
    parse_net_dev,
    physical_partitions,
)
from netroom import protocol

NS = types.SimpleNamespace

KYLIN_V10 = """\
NAME="Kylin"
VERSION="银河麒麟桌面操作系统V10 (SP1)"
VERSION_US="Kylin Linux Desktop V10 (SP1)"
ID=kylin
ID_LIKE=debian
PRETTY_NAME="Kylin V10 SP1"
VERSION_ID="v10"
HOME_URL="http://www.kylinos.cn/"
VERSION_CODENAME=kylin
UBUNTU_CODENAME=kylin
"""

KYLIN_SERVER_V10 = """\
NAME="Kylin Linux Advanced Server"
VERSION="V10 (Sword)"
ID="kylin"
VERSION_ID="V10"
PRETTY_NAME="Kylin Linux Advanced Server V10 (Sword)"
ANSI_COLOR="0;31"
"""

UOS_20 = """\
PRETTY_NAME='UnionTech OS Desktop 20 Pro'
NAME='uos'
VERSION_ID='20'
VERSION='20'
ID=uos
HOME_URL="https://www.chinauos.com/"
BUG_REPORT_URL="http://bbs.chinauos.com"
VERSION_CODENAME=eagle
"""

CPUINFO_X86 = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 158
model name\t: Intel(R) Core(TM) i5-9500 CPU @ 3.00GHz
stepping\t: 10
cpu MHz\t\t: 3000.000

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i5-9500 CPU @ 3.00GHz
"""

# Phytium FT-2000/4 under Kylin V10: aarch64 kernels print no "model name".
CPUINFO_PHYTIUM = """\
processor\t: 0
BogoMIPS\t: 96.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer\t: 0x70
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0x663
CPU revision\t: 3

processor\t: 1
CPU implementer\t: 0x70
CPU part\t: 0x663
"""

CPUINFO_KUNPENG = "processor\t: 0\nCPU implementer\t: 0x48\nCPU part\t: 0xd01\n"
CPUINFO_LOONGARCH = "system type\t\t: generic-loongson-machine\n\nModel Name\t\t: Loongson-3A5000\n"


# -- pure parsers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        (KYLIN_V10, "Kylin V10 SP1", "v10"),
        (KYLIN_SERVER_V10, "Kylin Linux Advanced Server V10 (Sword)", "V10"),
        (UOS_20, "UnionTech OS Desktop 20 Pro", "20"),
        ('# comment\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n', "Debian GNU/Linux", "12"),
        ('NAME="Broken\n', "Broken", ""),
    ],
)
def test_parse_os_release(text: str, name: str, version: str) -> None:
    got = parse_os_release(text)
    assert got.get("os_name") == name
    assert got.get("os_version", "") == version


def test_parse_os_release_empty_gives_nothing() -> None:
    assert parse_os_release("") == {}


@pytest.mark.parametrize(
    ("text", "model"),
    [
        (CPUINFO_X86, "Intel(R) Core(TM) i5-9500 CPU @ 3.00GHz"),
        (CPUINFO_PHYTIUM, "Phytium FTC663"),
        (CPUINFO_KUNPENG, "HiSilicon Kunpeng-920"),
        (CPUINFO_LOONGARCH, "Loongson-3A5000"),
        (CPUINFO_PHYTIUM + "Hardware\t: PHYTIUM FT-2000/4\n", "PHYTIUM FT-2000/4"),
        ("CPU implementer\t: 0x99\nCPU part\t: 0x001\n", "implementer 0x99 part 0x001"),
        ("", ""),
    ],
)
def test_parse_cpuinfo(text: str, model: str) -> None:
    assert parse_cpuinfo(text) == model


@pytest.mark.parametrize(
    ("ver", "edition", "name"),
    [
        (("10", "10.0.22631"), "Professional", "Windows 11 Professional"),
        (("10", "10.0.19045"), "Enterprise", "Windows 10 Enterprise"),
        (("10", "10.0.26100"), "ServerStandard", "Windows 10 ServerStandard"),
        (("7", "6.1.7601"), None, "Windows 7"),
    ],
)
def test_windows_os(ver: tuple[str, str], edition: str | None, name: str) -> None:
    assert windows_os(ver[0], ver[1], edition) == {"os_name": name, "os_version": ver[1]}


def _addr(family: int, address: str) -> Any:
    return NS(family=family, address=address, netmask=None, broadcast=None, ptp=None)


def test_build_nics() -> None:
    addrs = {
        "lo": [_addr(socket.AF_INET, "127.0.0.1")],
        "Loopback Pseudo-Interface 1": [_addr(socket.AF_INET, "127.0.0.1")],
        "以太网": [
            _addr(psutil.AF_LINK, "AA-BB-CC-DD-EE-FF"),
            _addr(socket.AF_INET, "10.1.2.3"),
            _addr(socket.AF_INET, "10.1.2.4"),
            _addr(socket.AF_INET6, "fe80::1%eth0"),
            _addr(socket.AF_INET6, "2001:db8::1"),
        ],
        "ib0": [_addr(psutil.AF_LINK, ":".join(["80"] * 20))],
    }
    stats = {
        "以太网": NS(isup=True, duplex=2, speed=1000, mtu=1500),
        "ib0": NS(isup=False, speed=0, mtu=2044),
    }
    nics = {n["name"]: n for n in build_nics(addrs, stats)}
    assert set(nics) == {"以太网", "ib0"}
    assert nics["以太网"] == {
        "name": "以太网", "mac": "aa:bb:cc:dd:ee:ff", "ipv4": "10.1.2.3,10.1.2.4",
        "ipv6": "fe80::1,2001:db8::1", "speed_mbps": 1000, "mtu": 1500, "is_up": True,
    }
    assert "mac" not in nics["ib0"]  # 20-byte address: longer than the schema allows


def test_build_nics_clips_address_lists_at_a_comma() -> None:
    addrs = {"eth0": [_addr(socket.AF_INET, f"10.0.{i}.{i}") for i in range(100)]}
    ipv4 = build_nics(addrs, {})[0]["ipv4"]
    assert len(ipv4) <= 512
    assert ipv4.split(",")[-1].startswith("10.0.") and ipv4.count(".") % 3 == 0


def _part(device: str, mount: str, fstype: str) -> Any:
    return NS(device=device, mountpoint=mount, fstype=fstype, opts="rw")


def test_physical_partitions_and_build_disks() -> None:
    parts = [
        _part("/dev/sda2", "/", "ext4"),
        _part("/dev/sda1", "/boot/efi", "vfat"),
        _part("/dev/loop0", "/snap/core/123", "squashfs"),
        _part("/dev/loop1", "/mnt/iso", "iso9660"),
        _part("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
        _part("/dev/sda2", "/home", "ext4"),  # bind mount of /: counted once
        _part("C:\\", "C:\\", "NTFS"),
        _part("D:\\", "D:\\", ""),  # CD drive without a disc
    ]
    kept = physical_partitions(parts)
    assert [p.mountpoint for p in kept] == ["/", "/boot/efi", "C:\\"]
    disks = build_disks(kept, {"/": 100, "C:\\": 300})  # /boot/efi: usage unreadable
    assert disks == [
        {"mount": "/", "device": "/dev/sda2", "fstype": "ext4", "total_bytes": 100},
        {"mount": "C:\\", "device": "C:\\", "fstype": "NTFS", "total_bytes": 300},
    ]


def test_build_disk_usage() -> None:
    usage = NS(total=100, used=40, free=50, percent=44.4)
    assert build_disk_usage({"/": usage}) == [
        {"mount": "/", "total_bytes": 100, "used_bytes": 40, "free_bytes": 50, "used_percent": 44.4}
    ]


def _io(n: int) -> Any:
    return NS(read_count=n, write_count=n, read_bytes=n * 512, write_bytes=n * 1024,
              read_time=n * 2, write_time=n * 3)


def test_build_diskio_skips_loop_ram_zram() -> None:
    got = build_diskio({"sda": _io(1), "loop0": _io(2), "ram0": _io(3), "zram0": _io(4),
                        "nvme0n1": _io(5)})
    assert [d["name"] for d in got] == ["sda", "nvme0n1"]
    assert got[0] == {"name": "sda", "read_bytes": 512, "write_bytes": 1024, "read_count": 1,
                      "write_count": 1, "read_time_ms": 2, "write_time_ms": 3}


def _netio(n: int) -> Any:
    return NS(bytes_sent=n, bytes_recv=2 * n, packets_sent=3, packets_recv=4,
              errin=0, errout=0, dropin=1, dropout=0)


def test_build_nic_counters() -> None:
    counters = {"lo": _netio(9), "eth0": _netio(10), "wlan0": _netio(20)}
    got = build_nic_counters(counters, {"eth0": NS(isup=True, speed=100, mtu=1500)})
    assert [n["name"] for n in got] == ["eth0", "wlan0"]
    assert got[0]["bytes_recv"] == 20 and got[0]["speed_mbps"] == 100 and got[0]["is_up"] is True
    assert "speed_mbps" not in got[1]  # no stats for it: unknown, not 0


def test_errors_are_joined_and_capped() -> None:
    errors = Errors()
    for i in range(100):
        with errors.part(f"part{i}"):
            raise PermissionError("x" * 50)
    out = protocol.fit("metrics", errors.finish({"cpu_percent": 1.0}))
    assert out["errors"].startswith("part0: PermissionError: " + "x" * 50 + "; part1: ")
    assert len(out["errors"]) == protocol.KINDS["metrics"].fields["errors"].maxlen
    with pytest.raises(RuntimeError, match="nothing collected"):
        errors.finish({})


# -- host id ------------------------------------------------------------------


def test_host_id_from_machine_id(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    # Documented contract: HMAC-SHA256 keyed by the machine id, never the id itself.
    expected = hmac.new(b"0123456789abcdef0123456789abcdef", b"netroom-host-id",
                        hashlib.sha256).hexdigest()[:32]
    assert read_host_id(str(tmp_path / "state"), "Linux", [str(mid)]) == expected
    assert not (tmp_path / "state").exists()


def test_host_id_falls_back_to_a_kept_uuid(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("uninitialized\n")  # systemd's first-boot placeholder
    state = tmp_path / "a" / "b"
    first = read_host_id(str(state), "Linux", [str(mid), str(tmp_path / "missing")])
    assert (state / "host-id").read_text().strip() == first
    assert read_host_id(str(state), "Linux", [str(mid)]) == first


# -- fakes --------------------------------------------------------------------


class FakePs:
    """Just the psutil functions the collectors call, with fixed answers."""

    AF_LINK = psutil.AF_LINK

    def __init__(self, partitions_error: Exception | None = None) -> None:
        self.partitions_error = partitions_error
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def cpu_percent(self, interval: float | None = None) -> float:
        self._count("cpu_percent")
        return 12.5

    def cpu_count(self, logical: bool = True) -> int:
        return 8 if logical else 4

    def cpu_freq(self) -> Any:
        return NS(current=1800.0, min=800.0, max=2600.0)

    def virtual_memory(self) -> Any:
        return NS(total=8 << 30, available=6 << 30, percent=25.0)

    def swap_memory(self) -> Any:
        return NS(total=2 << 30, used=1 << 20, free=(2 << 30) - (1 << 20), percent=0.1)

    def users(self) -> list[Any]:
        return [NS(name="user")]

    def pids(self) -> list[int]:
        return [1, 2, 3]

    def boot_time(self) -> float:
        self._count("boot_time")
        return time.time() - 3600

    def disk_partitions(self, all: bool = False) -> list[Any]:
        self._count("disk_partitions")
        if self.partitions_error:
            raise self.partitions_error
        return [_part("C:\\", "C:\\", "NTFS")]

    def disk_usage(self, path: str) -> Any:
        return NS(total=100 << 30, used=40 << 30, free=60 << 30, percent=40.0)

    def disk_io_counters(self, perdisk: bool = False, nowrap: bool = True) -> dict[str, Any]:
        return {"PhysicalDrive0": _io(7)}

    def net_io_counters(self, pernic: bool = False, nowrap: bool = True) -> dict[str, Any]:
        return {"以太网": _netio(5), "Loopback Pseudo-Interface 1": _netio(1)}

    def net_if_addrs(self) -> dict[str, list[Any]]:
        mac, ip = _addr(psutil.AF_LINK, "00-11-22-33-44-55"), _addr(socket.AF_INET, "10.0.0.5")
        return {"以太网": [mac, ip]}

    def net_if_stats(self) -> dict[str, Any]:
        self._count("net_if_stats")
        return {"以太网": NS(isup=True, duplex=2, speed=1000, mtu=1500)}


class FakeWinreg(types.ModuleType):
    """The bits of winreg that inventory reads; Windows cannot run here."""

    HKEY_LOCAL_MACHINE = 0x80000002
    KEY_READ = 0x20019
    KEY_WOW64_64KEY = 0x0100
    VALUES: dict[str, dict[str, Any]] = {
        r"SOFTWARE\Microsoft\Cryptography": {"MachineGuid": "5B3A3F0E-1C2D-4E5F-8A9B-0C1D2E3F4A5B"},
        r"HARDWARE\DESCRIPTION\System\CentralProcessor\0": {
            "ProcessorNameString": "Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz  "},
        r"HARDWARE\DESCRIPTION\System\BIOS": {
            "SystemManufacturer": "LENOVO", "SystemProductName": "ThinkCentre M720t",
            "BIOSVersion": ["M1UKT4BA", "1.0"]},
    }

    def __init__(self) -> None:
        super().__init__("winreg")
        self.access: list[int] = []

    def OpenKey(self, root: int, path: str, reserved: int, access: int) -> Any:
        self.access.append(access)
        if path not in self.VALUES:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return _Key(self.VALUES[path])

    def QueryValueEx(self, key: Any, name: str) -> tuple[Any, int]:
        if name not in key.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return key.values[name], 1


class _Key:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __enter__(self) -> _Key:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# -- collectors ---------------------------------------------------------------


def _roundtrip(kind: str, body: dict[str, Any]) -> protocol.Message:
    payload = protocol.envelope("site-1", "pc-001", "gov", "office", time.time())
    if kind == "metrics":
        payload["collect_ms"] = 1.0  # the runner adds it to every metrics body
    payload.update(body)
    return protocol.decode(protocol.topic("site-1", "pc-001", kind), protocol.encode(payload))


def test_inventory_on_this_machine_passes_decode(tmp_path: Path) -> None:
    body = Inventory(str(tmp_path)).collect()
    msg = _roundtrip("inventory", body)
    assert msg.fields["hostname"] == socket.gethostname()
    assert msg.fields["host_id"]
    assert msg.fields["cpu_threads"] >= 1 and msg.fields["mem_total_bytes"] > 0
    assert "disks" in msg.sections and "nics" in msg.sections
    assert "errors" not in body, body.get("errors")


def test_metrics_on_this_machine_passes_decode() -> None:
    collector = Metrics()
    collector.collect()
    body = collector.collect()
    msg = _roundtrip("metrics", body)
    assert 0 <= msg.fields["cpu_percent"] <= 100
    assert msg.fields["mem_total_bytes"] >= msg.fields["mem_available_bytes"] > 0
    assert msg.fields["uptime_s"] > 0
    assert "disks" in msg.sections and "diskio" in msg.sections
    assert all(not d["name"].startswith(("loop", "ram", "zram")) for d in msg.sections["diskio"])
    assert "errors" not in body, body.get("errors")


def test_metrics_survive_a_failing_part() -> None:
    ps = FakePs(partitions_error=PermissionError(13, "Permission denied"))
    body = Metrics(ps=ps, proc=None).collect()  # a fake Windows PC: all through psutil
    assert "disks: PermissionError" in body["errors"]
    assert body["cpu_percent"] == 12.5 and body["mem_total_bytes"] == 8 << 30
    assert "disks" not in body
    msg = _roundtrip("metrics", body)
    assert msg.sections["nics"][0] == {
        "name": "以太网", "bytes_sent": 5, "bytes_recv": 10, "packets_sent": 3, "packets_recv": 4,
        "errin": 0, "errout": 0, "dropin": 1, "dropout": 0, "speed_mbps": 1000, "is_up": True,
    }


def test_inventory_survives_a_failing_part(tmp_path: Path) -> None:
    ps = FakePs(partitions_error=PermissionError(13, "Permission denied"))
    body = Inventory(str(tmp_path), ps=ps).collect()
    assert "disks: PermissionError" in body["errors"]
    assert body["cpu_cores"] == 4 and body["cpu_threads"] == 8 and body["cpu_mhz"] == 2600.0
    assert body["mem_total_bytes"] == 8 << 30
    _roundtrip("inventory", body)


def test_metrics_primes_cpu_and_caches_slow_facts() -> None:
    ps = FakePs()
    collector = Metrics(ps=ps)
    assert ps.calls == {"cpu_percent": 1}  # primed: the first collect() is not a 0.0
    for _ in range(3):
        collector.collect()
    assert ps.calls["disk_partitions"] == ps.calls["net_if_stats"] == ps.calls["boot_time"] == 1
    Metrics(ps=ps, refresh_s=0).collect()
    assert ps.calls["disk_partitions"] == 2


def test_metrics_retry_a_failed_listing_next_round() -> None:
    ps = FakePs(partitions_error=PermissionError(13, "Permission denied"))
    collector = Metrics(ps=ps)
    collector.collect()
    ps.partitions_error = None
    body = collector.collect()
    assert "errors" not in body and [d["mount"] for d in body["disks"]] == ["C:\\"]


def test_inventory_on_windows_reads_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows cannot run here: winreg and platform.win32_* are fakes."""
    winreg = FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", winreg)
    win32_ver = ("10", "10.0.22631", "SP0", "Multiprocessor Free")
    monkeypatch.setattr("platform.win32_ver", lambda: win32_ver)
    monkeypatch.setattr("platform.win32_edition", lambda: "Professional")
    body = Inventory(str(tmp_path), ps=FakePs(), system="Windows").collect()
    # "<machine>.<hardware>": MachineGuid's HMAC; no SMBIOS or wmic here, so the NIC's MAC.
    assert body["host_id"] == hmac.new(b"5b3a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
                                       b"netroom-host-id", hashlib.sha256).hexdigest()[:32] + \
        "." + hashlib.sha256(b"netroom-hardware-id:00:11:22:33:44:55").hexdigest()[:16]
    assert body["os_name"] == "Windows 11 Professional" and body["os_version"] == "10.0.22631"
    assert body["cpu_model"] == "Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz"
    assert (body["vendor"], body["model"], body["bios_version"]) == (
        "LENOVO", "ThinkCentre M720t", "M1UKT4BA 1.0")
    assert "serial" not in body and "errors" not in body
    # A 32-bit Python must ask for the 64-bit registry view.
    assert all(a & winreg.KEY_WOW64_64KEY for a in winreg.access)
    assert [n["mac"] for n in body["nics"]] == ["00:11:22:33:44:55"]
    assert not (tmp_path / "host-id").exists()
    _roundtrip("inventory", body)


class FakeWinregSmbios(FakeWinreg):
    """FakeWinreg with the raw SMBIOS table mssmbios keeps in the registry."""

    VALUES = {**FakeWinreg.VALUES, r"SYSTEM\CurrentControlSet\Services\mssmbios\Data": {
        # Header (SMBIOS 3.2, table of 43 bytes), a type 1 structure with its UUID, the end.
        "SMBiosData": bytes([0, 3, 2, 0, 43, 0, 0, 0, 1, 27, 1, 0, 0, 0, 0, 1])
        + bytes.fromhex("4445 4c4c 4200 1035 8051 b7c04f4e4b32")
        + bytes([6, 0, 0]) + b"MJ0ABCDE\0\0" + bytes([127, 4, 0xFF, 0xFF, 0, 0])}}


def test_inventory_on_windows_takes_the_smbios_uuid_and_the_agents_host_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "winreg", FakeWinregSmbios())
    monkeypatch.setattr("platform.win32_ver", lambda: ("10", "10.0.19045", "SP0", ""))
    monkeypatch.setattr("platform.win32_edition", lambda: "Professional")
    monkeypatch.delenv(identity.HARDWARE_ENV, raising=False)
    got = identity.read_identity(str(tmp_path), "Windows", ps=FakePs())
    uuid_ = "4c4c4544-0042-3510-8051-b7c04f4e4b32"  # as wmic and Linux print it
    assert got.source == "product_uuid"
    assert got.host_id.endswith(
        "." + hashlib.sha256(b"netroom-hardware-id:" + uuid_.encode()).hexdigest()[:16])
    body = Inventory(str(tmp_path), ps=FakePs(), system="Windows").collect()
    assert body["host_id"] == got.host_id
    # Given the agent's id (AgentConfig.host_id), the inventory sends that one.
    body = Inventory(str(tmp_path), ps=FakePs(), system="Windows", host_id="x.y").collect()
    assert body["host_id"] == "x.y"
    assert not (tmp_path / "host-id").exists()


def test_inventory_host_id_is_the_agents_on_this_machine(tmp_path: Path) -> None:
    """The config (topic suffix, client id) and the inventory read one id."""
    body = Inventory(str(tmp_path)).collect()
    assert body["host_id"] == identity.read_identity(str(tmp_path)).host_id
    assert body["host_id"].split(".")[0] == read_host_id(str(tmp_path), "Linux")


MEMINFO = """MemTotal:        8041476 kB
MemFree:          412236 kB
MemAvailable:    5238740 kB
Buffers:          221404 kB
Cached:          4302604 kB
SwapCached:         1024 kB
SwapTotal:       2097148 kB
SwapFree:        1572860 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""


def test_parse_meminfo_gives_bytes_and_psutils_definitions() -> None:
    m = parse_meminfo(MEMINFO)
    assert m["mem_total_bytes"] == 8041476 * 1024
    assert m["mem_available_bytes"] == 5238740 * 1024
    # (total - available) / total: (8041476 - 5238740) / 8041476 = 34.85 %
    assert m["mem_used_percent"] == 34.9
    assert m["swap_total_bytes"] == 2097148 * 1024
    assert m["swap_used_bytes"] == (2097148 - 1572860) * 1024


def test_meminfo_agrees_with_psutil_on_this_machine() -> None:
    import psutil

    with open("/proc/meminfo", encoding="ascii") as fh:
        m = parse_meminfo(fh.read())
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    assert m["mem_total_bytes"] == vm.total
    assert abs(m["mem_available_bytes"] - vm.available) < 64 << 20  # read moments apart
    assert m["swap_total_bytes"] == sw.total


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1491162 64241    0    0    0     0          0         0 1491162 64241    0    0    0     0       0          0
  eth0: 987654321 123456    2    7    0     0          0        11 12345678  65432    1    3    0     0       0          0
"""

DISKSTATS = """   7       0 loop0 5 0 10 1 0 0 0 0 0 4 1 0 0 0 0 0 0
 253       0 vda 36262 9113 2675306 21496 105634 83102 3914016 135791 0 170632 160436 0 0 0 0 3390 3149
 253       1 vda1 36123 9113 2667762 21443 105632 83102 3914016 135790 0 170588 157233 0 0 0 0 0 0
 252       0 zram0 12 0 96 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"""


def test_parse_net_dev_reads_both_directions_and_skips_loopback() -> None:
    nics = parse_net_dev(NET_DEV)
    assert nics == {"eth0": {"bytes_recv": 987654321, "packets_recv": 123456, "errin": 2,
                             "dropin": 7, "bytes_sent": 12345678, "packets_sent": 65432,
                             "errout": 1, "dropout": 3}}


def test_parse_diskstats_keeps_whole_disks_only_in_bytes() -> None:
    disks = parse_diskstats(DISKSTATS, ["loop0", "vda", "zram0"])
    assert disks == [{"name": "vda", "read_count": 36262, "read_bytes": 2675306 * 512,
                      "read_time_ms": 21496, "write_count": 105634,
                      "write_bytes": 3914016 * 512, "write_time_ms": 135791}]


def test_proc_counters_agree_with_psutil_on_this_machine() -> None:
    import os

    import psutil

    with open("/proc/net/dev", encoding="ascii") as fh:
        ours = parse_net_dev(fh.read())
    theirs = psutil.net_io_counters(pernic=True)
    assert set(ours) == {n for n in theirs if n != "lo"}
    for name, c in ours.items():
        assert 0 <= c["bytes_recv"] - theirs[name].bytes_recv < 1 << 20  # read moments apart
    with open("/proc/diskstats", encoding="ascii") as fh:
        disks = parse_diskstats(fh.read(), os.listdir("/sys/block"))
    io = psutil.disk_io_counters(perdisk=True)
    for d in disks:
        assert 0 <= io[d["name"]].read_bytes - d["read_bytes"] < 1 << 24


def test_only_missing_parts_become_errors_and_bugs_reach_the_runner() -> None:
    errors = Errors()
    with errors.part("disk"):
        raise psutil.AccessDenied()
    with errors.part("freq"):
        raise NotImplementedError("can't find current frequency file")
    with errors.part("boot"):
        raise RuntimeError("line 'btime' not found in /proc/stat")
    with errors.part("mem"):
        raise PermissionError("/proc/meminfo")
    for bug in (AttributeError("'NoneType' object has no attribute 'total'"),
                KeyError("MemTotal"), IndexError("list index out of range")):
        with pytest.raises(type(bug)), errors.part("cpu"):
            raise bug
    assert [p.split(":")[0] for p in errors.parts] == ["disk", "freq", "boot", "mem"]


def test_long_values_are_cut_by_the_protocol_not_the_collectors() -> None:
    parts = [_part(f"/dev/sd{i}", f"/mnt/{i:03d}" + "x" * 300, "ext4") for i in range(70)]
    totals = {p.mountpoint: 1 << 30 for p in parts}
    body: dict[str, Any] = {"hostname": "h" * 300, "host_id": "x",
                            "disks": build_disks(parts, totals)}
    assert len(body["disks"]) == 70 and len(body["disks"][0]["mount"]) > 256  # as found
    out = protocol.fit("inventory", body)
    assert len(out["hostname"]) == 256 and len(out["disks"]) == 64
    assert all(len(d["mount"]) == 256 for d in out["disks"])
    assert out["errors"] == "disks: 70 items, sent the first 64"
