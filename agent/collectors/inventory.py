"""Inventory: what this PC is (identity, OS, CPU, memory, firmware, disks, NICs).

Sent rarely and retained. Reading (files, registry, psutil) is kept apart from
parsing: parse_*, build_* and windows_os take plain data and are tested on
literal strings.
"""
from __future__ import annotations

import os
import platform
import shlex
import socket
from typing import Any, Mapping, Sequence

import psutil

import netroom
from agent import identity
from agent.collectors.metrics import PART_ERRORS, Errors, is_loopback, physical_partitions
from agent.identity import read_registry
from netroom import protocol

# Firmware fields vendors leave unset; sending them would group unrelated PCs.
_PLACEHOLDERS = identity.PLACEHOLDERS
_DMI = {"vendor": "sys_vendor", "model": "product_name", "serial": "product_serial",
        "bios_version": "bios_version"}
_WIN_BIOS = {"vendor": "SystemManufacturer", "model": "SystemProductName",
             "bios_version": "BIOSVersion"}
# aarch64 kernels print no "model name": implementer -> (vendor, part -> core),
# after util-linux's lscpu-arm.c, for the CPUs found in Kylin/UOS PCs.
_ARM_IDS: dict[str, tuple[str, dict[str, str]]] = {
    "0x41": ("ARM", {}),
    "0x48": ("HiSilicon", {"0xd01": "Kunpeng-920", "0xd02": "TaiShan-v120"}),
    "0x70": ("Phytium", {"0x660": "FTC660", "0x661": "FTC661", "0x662": "FTC662",
                         "0x663": "FTC663", "0x664": "FTC664"}),
}


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release -> os_name (PRETTY_NAME, else NAME), os_version (VERSION_ID)."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            try:
                kv[key] = " ".join(shlex.split(value))
            except ValueError:  # unbalanced quote: keep the raw text
                kv[key] = value.strip("\"'")
    name = kv.get("PRETTY_NAME") or kv.get("NAME", "")
    return {k: v for k, v in (("os_name", name), ("os_version", kv.get("VERSION_ID", ""))) if v}


def parse_cpuinfo(text: str) -> str:
    """/proc/cpuinfo -> CPU model: "model name" (x86; LoongArch "Model Name"; MIPS
    "cpu model"), else "Hardware", else the ARM implementer/part ("Phytium FTC663")."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "cpu model", "hardware"):
        if kv.get(key):
            return kv[key]
    impl, part = kv.get("cpu implementer", "").lower(), kv.get("cpu part", "").lower()
    if not impl:
        return ""
    vendor, parts = _ARM_IDS.get(impl, ("implementer " + impl, {}))
    return f"{vendor} {parts.get(part, 'part ' + part)}".strip()


def windows_os(release: str, version: str, edition: str | None) -> dict[str, str]:
    """platform.win32_ver()/win32_edition() -> os_name, os_version (the build).

    Python < 3.12 says release "10" on Windows 11, whose builds start at 22000.
    """
    build = version.split(".")[2] if version.count(".") >= 2 else ""
    client = "Server" not in (edition or "")
    if release == "10" and client and build.isdigit() and int(build) >= 22000:
        release = "11"
    name = " ".join(p for p in ("Windows", release, edition) if p)
    return {"os_name": name, "os_version": version}


def _join(items: Sequence[str], field: str) -> str:
    """Comma-join, dropping whole items from the end to stay within the NIC
    ``field``'s length (protocol.fit() would cut an address in half)."""
    maxlen = protocol.KINDS["inventory"].sections["nics"].fields[field].maxlen
    text = ",".join(items)
    return text if len(text) <= maxlen else text[: max(text.rfind(",", 0, maxlen + 1), 0)]


def build_nics(
    addrs: Mapping[str, Sequence[Any]], stats: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """net_if_addrs() + net_if_stats() -> one dict per NIC, loopback skipped.

    speed_mbps in Mbit/s (0 = unknown), mtu in bytes; IPv6 without ``%scope``.
    """
    nics = []
    for name in sorted(set(addrs) | set(stats)):
        if is_loopback(name):
            continue
        nic: dict[str, Any] = {"name": name}
        v4, v6 = [], []
        for a in addrs.get(name, ()):
            if a.family == socket.AF_INET:
                v4.append(a.address)
            elif a.family == socket.AF_INET6:
                v6.append(a.address.split("%", 1)[0])
            elif a.family == psutil.AF_LINK and 0 < len(a.address) <= 32:  # not Infiniband's
                nic["mac"] = a.address.replace("-", ":").lower()
        nic.update(ipv4=_join(v4, "ipv4"), ipv6=_join(v6, "ipv6"))
        st = stats.get(name)
        if st is not None:
            nic.update(speed_mbps=max(st.speed, 0), mtu=max(st.mtu, 0), is_up=bool(st.isup))
        nics.append(nic)
    return nics


def build_disks(parts: Sequence[Any], totals: Mapping[str, int]) -> list[dict[str, Any]]:
    """Partitions whose size could be read -> mount, device, fstype, total_bytes."""
    return [{"mount": p.mountpoint, "device": p.device, "fstype": p.fstype,
             "total_bytes": totals[p.mountpoint]} for p in parts if p.mountpoint in totals]


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_host_id(state_dir: str, system: str,
                 paths: Sequence[str] = identity.MACHINE_ID_PATHS) -> str:
    """The host id's machine part (agent/identity.py), which earlier agents
    sent as the whole host id."""
    return identity.read_machine(state_dir, system, paths)


def _linux(out: dict[str, Any], errors: Errors) -> None:
    with errors.part("os"):
        exists = os.path.exists("/etc/os-release")
        out.update(parse_os_release(_read("/etc/os-release" if exists else "/usr/lib/os-release")))
    with errors.part("cpu_model"):
        out["cpu_model"] = parse_cpuinfo(_read("/proc/cpuinfo"))
    for field, name in _DMI.items():
        with errors.part(field):
            try:
                value = _read("/sys/class/dmi/id/" + name).strip()
            except FileNotFoundError:  # no DMI here (VM, some ARM boards): nothing to report
                continue
            except PermissionError:
                if name == "product_serial":  # root-only on most distributions
                    continue
                raise
            if value.lower() not in _PLACEHOLDERS:
                out[field] = value


def _windows(out: dict[str, Any], errors: Errors) -> None:
    with errors.part("os"):
        release, version, _, _ = platform.win32_ver()
        out.update(windows_os(release, version, platform.win32_edition()))
    with errors.part("cpu_model"):
        cpu = read_registry(r"HARDWARE\DESCRIPTION\System\CentralProcessor\0",
                            ["ProcessorNameString"])
        out["cpu_model"] = cpu.get("ProcessorNameString") or platform.processor()
    with errors.part("bios"):
        bios = read_registry(r"HARDWARE\DESCRIPTION\System\BIOS", list(_WIN_BIOS.values()))
        for field, name in _WIN_BIOS.items():
            if bios.get(name, "").lower() not in _PLACEHOLDERS:
                out[field] = bios[name]


class Inventory:
    """Collector of the ``inventory`` kind; docs/collectors.md lists fields and units."""

    kind = "inventory"

    def __init__(self, state_dir: str, ps: Any = psutil, system: str | None = None,
                 host_id: str = "") -> None:
        """``host_id``: the agent's (AgentConfig.host_id); read here if not given."""
        self._state_dir = state_dir
        self._ps = ps
        self._system = system or platform.system()
        self._host_id = host_id

    def collect(self) -> dict[str, Any]:
        ps, errors = self._ps, Errors()
        if not self._host_id:  # once: the same inputs as the agent's config read
            self._host_id = identity.read_identity(self._state_dir, self._system, ps).host_id
        out: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "host_id": self._host_id,
            "kernel": platform.release(),
            "arch": platform.machine(),
            "agent_version": netroom.__version__,
        }
        (_windows if self._system == "Windows" else _linux)(out, errors)
        with errors.part("cpu"):
            out.update(cpu_cores=ps.cpu_count(logical=False), cpu_threads=ps.cpu_count())
            freq = ps.cpu_freq()
            if freq is not None and (freq.max or freq.current) > 0:
                out["cpu_mhz"] = float(freq.max or freq.current)
        with errors.part("mem"):
            out["mem_total_bytes"] = ps.virtual_memory().total
        with errors.part("boot"):
            out["boot_time_s"] = float(ps.boot_time())
        with errors.part("disks"):
            parts = physical_partitions(ps.disk_partitions(all=False))
            totals = {}
            for p in parts:
                try:
                    totals[p.mountpoint] = ps.disk_usage(p.mountpoint).total
                except PART_ERRORS:  # unreadable or unplugged: not a disk we can describe
                    continue
            out["disks"] = build_disks(parts, totals)
        with errors.part("nics"):
            out["nics"] = build_nics(ps.net_if_addrs(), ps.net_if_stats())
        return errors.finish({k: v for k, v in out.items() if v is not None and v != ""})
