"""Metrics: how this PC is doing (CPU, load, memory, disks, disk I/O, NIC counters).

Runs on every tick, so it must stay cheap: the partition list, the boot time
and NIC speed/link state (the costly psutil calls) are reused for refresh_s.
Counters go out raw and cumulative; rates are derived at query time, so a lost
sample does not distort a rate. The helpers shared with inventory.py (Errors,
physical_partitions, is_loopback) live here.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Mapping

import psutil

# What a missing or unreadable part raises: the OS (file, permission), psutil
# (AccessDenied...: psutil.Error; RuntimeError when /proc/stat has no btime or
# /proc/net/dev is empty) or a function this platform lacks
# (NotImplementedError, a RuntimeError: cpu_freq). Anything else (AttributeError,
# KeyError...) is a bug and reaches the runner.
PART_ERRORS = (OSError, RuntimeError, psutil.Error)
_SKIP_FSTYPES = frozenset({"squashfs", "overlay", "iso9660", ""})  # "": drive without media
_SKIP_DISKIO = ("loop", "ram", "zram")
_PROC = "/proc"
SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the disk's own size


_MEMINFO_KEYS = frozenset({"MemTotal", "MemAvailable", "SwapTotal", "SwapFree"})


def parse_meminfo(text: str) -> dict[str, float]:
    """/proc/meminfo -> memory and swap fields in bytes (the file says kB).

    One read of this file replaces psutil's virtual_memory() and
    swap_memory() (which also reads the large /proc/vmstat): 0.5 ms less per
    round on a small PC. Same definitions as psutil: used percent is
    (total - available) / total, swap used is total - free.
    """
    kb = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in _MEMINFO_KEYS:
            kb[name] = int(rest.split()[0]) * 1024
    total, avail = kb["MemTotal"], kb["MemAvailable"]
    return {
        "mem_total_bytes": total,
        "mem_available_bytes": avail,
        "mem_used_percent": round(min(max((total - avail) / total * 100, 0.0), 100.0), 1)
        if total else 0.0,
        "swap_total_bytes": kb.get("SwapTotal", 0),
        "swap_used_bytes": max(kb.get("SwapTotal", 0) - kb.get("SwapFree", 0), 0),
    }


class Errors:
    """Failed parts of one collection, reported as ``part: reason; part: reason``."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        try:
            yield
        except PART_ERRORS as exc:
            self.parts.append(f"{name}: {type(exc).__name__}: {exc}")

    def finish(self, out: dict[str, Any]) -> dict[str, Any]:
        """``out`` plus ``errors``; raise if every part failed (nothing to send)."""
        text = "; ".join(self.parts)  # protocol.fit() cuts it to the field's length
        if not out:
            raise RuntimeError("nothing collected: " + text)
        if text:
            out["errors"] = text
        return out


def is_loopback(name: str) -> bool:
    return name == "lo" or name.startswith("Loopback Pseudo-Interface")


def physical_partitions(parts: Iterable[Any]) -> list[Any]:
    """psutil partitions minus snaps, squashfs, loop and overlay mounts, one per filesystem.

    A device mounted twice (bind mounts) is kept once, so that sums are not doubled.
    """
    seen: set[str] = set()
    out = []
    for p in parts:
        dev = p.device if p.device.startswith("/dev/") else p.mountpoint
        if (p.fstype in _SKIP_FSTYPES or p.device.startswith("/dev/loop")
                or p.mountpoint.startswith("/snap/") or dev in seen or p.mountpoint in seen):
            continue
        seen.update((dev, p.mountpoint))
        out.append(p)
    return out


def build_disk_usage(usages: Mapping[str, Any]) -> list[dict[str, Any]]:
    """mount -> psutil disk_usage() -> one dict per mount (bytes, used_percent in %)."""
    return [
        {"mount": mount, "total_bytes": u.total, "used_bytes": u.used, "free_bytes": u.free,
         "used_percent": min(max(float(u.percent), 0.0), 100.0)}
        for mount, u in usages.items()
    ]


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/dev -> cumulative counters per NIC (bytes, packets), loopback skipped."""
    out = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if len(f) < 16 or is_loopback(name):
            continue
        out[name] = {"bytes_recv": int(f[0]), "packets_recv": int(f[1]), "errin": int(f[2]),
                     "dropin": int(f[3]), "bytes_sent": int(f[8]), "packets_sent": int(f[9]),
                     "errout": int(f[10]), "dropout": int(f[11])}
    return out


def parse_diskstats(text: str, disks: Iterable[str]) -> list[dict[str, Any]]:
    """/proc/diskstats -> counters of the whole ``disks`` (names in /sys/block).

    Partitions are left out, so summing the list does not count a byte twice.
    """
    wanted = {d for d in disks if not d.startswith(_SKIP_DISKIO)}
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 14 or f[2] not in wanted:
            continue
        out.append({"name": f[2], "read_count": int(f[3]),
                    "read_bytes": int(f[5]) * SECTOR_BYTES, "read_time_ms": int(f[6]),
                    "write_count": int(f[7]), "write_bytes": int(f[9]) * SECTOR_BYTES,
                    "write_time_ms": int(f[10])})
    return out


def build_diskio(counters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """disk_io_counters(perdisk=True) -> one dict per disk; loop/ram/zram skipped.

    Bytes and counts cumulative since boot; read/write_time_ms in ms.
    """
    return [
        {"name": name, "read_bytes": c.read_bytes, "write_bytes": c.write_bytes,
         "read_count": c.read_count, "write_count": c.write_count,
         "read_time_ms": c.read_time, "write_time_ms": c.write_time}
        for name, c in counters.items() if not name.startswith(_SKIP_DISKIO)
    ]


def build_nic_counters(
    counters: Mapping[str, Any], stats: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """net_io_counters(pernic=True) + net_if_stats() -> one dict per NIC, loopback skipped.

    Counters cumulative (bytes, packets); speed_mbps in Mbit/s, 0 = unknown.
    """
    nics = []
    for name, c in counters.items():
        if is_loopback(name):
            continue
        nic = {"name": name, "bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv,
               "packets_sent": c.packets_sent, "packets_recv": c.packets_recv,
               "errin": c.errin, "errout": c.errout, "dropin": c.dropin, "dropout": c.dropout}
        st = stats.get(name)
        if st is not None:
            nic["speed_mbps"] = max(st.speed, 0)
            nic["is_up"] = bool(st.isup)
        nics.append(nic)
    return nics


class Metrics:
    """Collector of the ``metrics`` kind; see docs/collectors.md for fields and units.

    ``refresh_s`` (s): how long slow-changing, costly facts are reused: the list
    of mounted partitions, the boot time, NIC speed and link state.
    """

    kind = "metrics"

    def __init__(self, ps: Any = psutil, refresh_s: float = 600.0,
                 proc: str | None = _PROC) -> None:
        self._ps = ps
        # Linux: read memory, NIC and disk counters straight from /proc (three
        # small files, about 1 ms less per round than psutil's general path);
        # elsewhere, or with proc=None, through psutil.
        self._proc = proc if proc and os.path.exists(os.path.join(proc, "meminfo")) else None
        self._refresh_s = refresh_s
        self._cache: dict[str, tuple[float, Any]] = {}  # name -> (monotonic s, value)
        # The first non-blocking cpu_percent() has no previous sample and says 0.0.
        with suppress(*PART_ERRORS):  # collect() reports it
            ps.cpu_percent(interval=None)

    def collect(self) -> dict[str, Any]:
        ps, errors = self._ps, Errors()
        out: dict[str, Any] = {}
        with errors.part("cpu"):
            out["cpu_percent"] = min(float(ps.cpu_percent(interval=None)), 100.0)
        # Not on Windows: there psutil.getloadavg() starts a sampling thread.
        if hasattr(os, "getloadavg"):
            with errors.part("load"):
                out["load1"], out["load5"], out["load15"] = os.getloadavg()
        if self._proc is not None:
            with errors.part("mem"):
                out.update(parse_meminfo(self._read("meminfo")))
        else:
            with errors.part("mem"):
                vm = ps.virtual_memory()
                out.update(mem_total_bytes=vm.total, mem_available_bytes=vm.available,
                           mem_used_percent=min(float(vm.percent), 100.0))
            with errors.part("swap"):
                sw = ps.swap_memory()
                out.update(swap_total_bytes=sw.total, swap_used_bytes=sw.used)
        with errors.part("users"):
            out["users"] = len(ps.users())
        # No process count: listing /proc costs as much as all the rest together.
        with errors.part("boot"):
            # Moves only when the clock is stepped; uptime is off by the step until refresh.
            boot = float(self._slow("boot", ps.boot_time))
            out.update(boot_time_s=boot, uptime_s=round(max(time.time() - boot, 0.0), 3))
        with errors.part("disks"):
            out["disks"] = build_disk_usage(self._disk_usage())
        with errors.part("diskio"):
            if self._proc is not None:
                disks = self._slow("block", lambda: os.listdir("/sys/block"))
                diskio = parse_diskstats(self._read("diskstats"), disks)
            else:
                diskio = build_diskio(ps.disk_io_counters(perdisk=True, nowrap=True) or {})
            out["diskio"] = diskio
        with errors.part("nics"):
            counters: Mapping[str, Any] = (
                {n: SimpleNamespace(**c) for n, c in parse_net_dev(self._read("net/dev")).items()}
                if self._proc is not None
                else ps.net_io_counters(pernic=True, nowrap=True) or {})
            stats: Mapping[str, Any] = {}
            with errors.part("nic_stats"):
                # Speed and link state change rarely, and net_if_stats() costs as much as
                # all the counters (ioctls per NIC). A NIC that is down for long
                # usually silences the agent anyway (the status will say offline).
                stats = self._slow("nic_stats", ps.net_if_stats)
            out["nics"] = build_nic_counters(counters, stats)
        return errors.finish(out)

    def _read(self, name: str) -> str:
        """A /proc file as text; os-level calls cost a third of open()'s."""
        assert self._proc is not None
        fd = os.open(f"{self._proc}/{name}", os.O_RDONLY)
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks).decode("ascii", "replace")

    def _slow(self, name: str, read: Callable[[], Any]) -> Any:
        """``read()``, reused for refresh_s seconds; a failure is retried next round."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is None or now - hit[0] >= self._refresh_s:
            hit = self._cache[name] = (now, read())
        return hit[1]

    def _disk_usage(self) -> dict[str, Any]:
        def mounts() -> list[str]:
            return [p.mountpoint for p in physical_partitions(self._ps.disk_partitions(all=False))]

        usages = {}
        for mount in self._slow("mounts", mounts):
            try:
                usages[mount] = self._ps.disk_usage(mount)
            except PART_ERRORS:  # unplugged since the last listing; gone at the next one
                continue
        return usages
