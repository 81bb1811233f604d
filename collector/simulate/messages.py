"""What each simulated PC sends, and when: payloads built and checked with netroom.protocol.

Pure: no I/O, no clock; every value follows from the fleet, the PC and the
time, so a history can be generated lazily, in time order, for any span.

A PC sends, as the agent does with its defaults (docs/collectors.md):

- at start (tick 0, or the first tick after being switched on or rebooted):
  a retained ``status`` online (with ``interval_s``) and a retained ``inventory``;
- every tick (``Fleet.interval_s``): ``metrics`` (the heartbeat, with
  ``collect_ms``) and one item each of disks, diskio and nics;
- every PROBE_S (at most every tick): a ``probe`` (gov PCs: ``portal``,
  internet PCs: ``web``) and, gov PCs only, an ``isolation`` report;
- every hour a status online again, every day an inventory, and the site's
  tester of each network a ``bandwidth`` test at start and every 6 hours;
- when switched off (the rooms of sites failing room_open_all_day): a
  retained ``status`` offline, then nothing until switched on again.

Counters are cumulative since boot (a weekly reboot, at a time of the week
of each PC's own) and grow with uptime, so rates derived from them are steady.
"""
from __future__ import annotations

import datetime as dt
import zlib
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

from zoneinfo import ZoneInfo

import netroom
from collector.simulate.fleet import CLOSED_HOURS, PC, Fleet, SimSite
from netroom import protocol

AGENT_VERSION = f"{netroom.__version__}-sim"
PROBE_S = 60.0
STATUS_S = 3600.0
INVENTORY_S = 86400.0
BANDWIDTH_S = 21600.0
WEEK_S = 7 * 86400.0
CANARIES = 2  # canaries each gov PC checks: its clean reports are evidence
PORTAL = "http://zgw.example.gov/"
WEB = "https://www.example.com/"


class Out(NamedTuple):
    """One message, ready to publish: topic, payload (UTF-8 JSON), retain flag."""

    topic: str
    payload: bytes
    retain: bool
    ts: float
    kind: str
    site: str
    host: str


def every(fleet: Fleet, period_s: float) -> int:
    """Ticks between two sends of something the agent does every ``period_s``."""
    return max(1, round(period_s / fleet.interval_s))


def due(fleet: Fleet, site: SimSite, pc: PC, t: float, n: int, check: bool = True) -> list[Out]:
    """What ``pc`` sends at its tick ``n`` (0: the agent starts), at time ``t`` (epoch s).

    ``check``: decode every payload with netroom.protocol (as the collector
    will) and raise ProtocolError if one does not pass.
    """
    prev = t - fleet.interval_s
    if not up(fleet, site, pc, t):
        if n > 0 and up(fleet, site, pc, prev):  # switched off since the last tick
            return [_status(pc, t, protocol.OFFLINE, fleet, check)]
        return []
    boot = boot_time(fleet, site, pc, t)
    started = n == 0 or not up(fleet, site, pc, prev) or boot > prev
    out = []
    if started or n % every(fleet, STATUS_S) == 0:
        out.append(_status(pc, t, protocol.ONLINE, fleet, check))
    if started or n % every(fleet, INVENTORY_S) == 0:
        out.append(build(pc, "inventory", t, inventory(pc, boot), check))
    out.append(build(pc, "metrics", t, metrics(pc, t, boot), check))
    if started or n % every(fleet, PROBE_S) == 0:
        out.append(build(pc, "probe", t, probe(pc, t), check))
        if pc.network == "gov":
            out.append(build(pc, "isolation", t, isolation(pc, t), check))
    if pc.tester and (started or n % every(fleet, BANDWIDTH_S) == 0):
        out.append(build(pc, "bandwidth", t, bandwidth(site, pc, t), check))
    return out


def offline(fleet: Fleet, pc: PC, t: float, will: bool = False, check: bool = True) -> Out:
    """The retained status offline of a clean shutdown (or, ``will``, the Last Will)."""
    return _status(pc, t, protocol.OFFLINE, fleet, check, will)


def history(fleet: Fleet, start: float, end: float, check: bool = True) -> Iterator[Out]:
    """Every message of the fleet from ``start`` to ``end`` (epoch s), in time order.

    Lazy: one tick of the fleet at a time, so memory stays flat however long
    the span. Each PC ticks at ``start + k * interval + its phase``; tick 0
    is its agent's start.
    """
    order = sorted(((pc.phase_s, s, pc) for s in fleet.sites for pc in s.pcs),
                   key=lambda x: (x[0], x[2].site, x[2].host))
    k = 0
    while True:
        base = start + k * fleet.interval_s
        if base >= end:
            return
        for phase, site, pc in order:
            t = base + phase
            if t >= end:
                break
            yield from due(fleet, site, pc, t, k, check)
        k += 1


def build(pc: PC, kind: str, ts: float, body: dict[str, Any], check: bool = True) -> Out:
    """The envelope and ``body``, cut to the limits (protocol.fit), encoded and,
    with ``check``, decoded as the collector decodes it."""
    payload = protocol.envelope(pc.site, pc.host, pc.network, pc.role, ts)
    payload.update(protocol.fit(kind, body))
    topic = protocol.topic(pc.site, pc.host, kind)
    data = protocol.encode(payload)
    if check:
        protocol.decode(topic, data)
    return Out(topic, data, protocol.KINDS[kind].retained, payload["ts"], kind, pc.site, pc.host)


def up(fleet: Fleet, site: SimSite, pc: PC, t: float) -> bool:
    """Whether ``pc`` is switched on at ``t``: room PCs of a site whose room
    closes are off CLOSED_HOURS local time; every other PC always on."""
    if not (site.room_closed and pc.role == "room"):
        return True
    hour = dt.datetime.fromtimestamp(t, _zone(fleet.timezone)).hour
    return not CLOSED_HOURS[0] <= hour < CLOSED_HOURS[1]


def boot_time(fleet: Fleet, site: SimSite, pc: PC, t: float) -> float:
    """When ``pc`` last booted before ``t``: weekly, and each morning for a closing room."""
    boot = t - (t - pc.boot_offset_s) % WEEK_S
    if site.room_closed and pc.role == "room":
        tz = _zone(fleet.timezone)
        local = dt.datetime.fromtimestamp(t, tz)
        morning = local.replace(hour=CLOSED_HOURS[1], minute=0, second=0, microsecond=0)
        if morning > local:
            morning -= dt.timedelta(days=1)
        boot = max(boot, morning.timestamp())
    return boot


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def noise(pc: PC, what: str, t: float) -> float:
    """A repeatable number in [0, 1) for ``pc``, ``what`` and the minute of ``t``."""
    return zlib.crc32(f"{pc.host_id}:{what}:{int(t // 60)}".encode()) / 2**32


def _status(pc: PC, t: float, state: str, fleet: Fleet, check: bool, will: bool = False
            ) -> Out:
    body: dict[str, Any] = {protocol.STATE: state, "agent_version": AGENT_VERSION,
                            "interval_s": fleet.interval_s}
    if will:
        body["will"] = True
    if state == protocol.ONLINE:
        body["clock_offset_s"] = round((noise(pc, "clock", t) - 0.5) * 0.2, 4)
        body["clock_error_s"] = 0.002
    return build(pc, "status", t, body, check)


def _linux(pc: PC) -> bool:
    return pc.os == "linux"


def inventory(pc: PC, boot: float) -> dict[str, Any]:
    linux = _linux(pc)
    mac = ":".join(pc.host_id[i:i + 2] for i in range(0, 12, 2))
    third = int(pc.host_id[:2], 16)
    return {
        "hostname": pc.hostname, "host_id": pc.host_id,
        "os_name": "Kylin Linux Desktop" if linux else "Windows 10 专业版",
        "os_version": "V10 (SP1)" if linux else "10.0.19045",
        "kernel": "5.4.18-85-generic" if linux else "10.0.19045",
        "arch": "x86_64" if linux else "AMD64",
        "cpu_model": "Hygon C86 3250 8-core Processor" if linux else "Intel(R) Core(TM) i5-10500",
        "cpu_cores": 8 if linux else 6, "cpu_threads": 8 if linux else 12,
        "cpu_mhz": 2800.0 if linux else 3100.0,
        "mem_total_bytes": pc.mem_bytes,
        "vendor": "长城" if linux else "联想", "model": "TD120A2" if linux else "启天 M430",
        "serial": pc.host_id[:12].upper(), "bios_version": "1.0.7",
        "boot_time_s": round(boot, 3), "agent_version": AGENT_VERSION,
        "disks": [{"mount": _mount(pc), "device": "/dev/sda2" if linux else "C:\\",
                   "fstype": "ext4" if linux else "NTFS", "total_bytes": pc.disk_bytes}],
        "nics": [{"name": _nic(pc), "mac": mac, "ipv4": f"10.{third}.{pc.phase_s % 250:.0f}.17",
                  "ipv6": "", "speed_mbps": 1000, "mtu": 1500, "is_up": True}],
    }


def _mount(pc: PC) -> str:
    return "/" if _linux(pc) else "C:\\"


def _nic(pc: PC) -> str:
    return "eth0" if _linux(pc) else "以太网"


def metrics(pc: PC, t: float, boot: float) -> dict[str, Any]:
    uptime = max(t - boot, 0.0)
    busy = noise(pc, "cpu", t)
    cpu = round(2 + 60 * busy ** 3, 1)
    used = round(30 + 35 * noise(pc, "mem", t), 1)
    disk_used = int(pc.disk_bytes * (0.2 + 0.5 * noise(pc, "disk", 0)))
    recv = int(uptime * (20_000 + 200_000 * noise(pc, "rx", 0)))
    sent = int(uptime * (5_000 + 50_000 * noise(pc, "tx", 0)))
    read = int(uptime * 40_000)
    write = int(uptime * 25_000)
    return {
        "cpu_percent": cpu, "load1": round(cpu / 25, 2), "load5": round(cpu / 30, 2),
        "load15": round(cpu / 35, 2),
        "mem_total_bytes": pc.mem_bytes,
        "mem_available_bytes": int(pc.mem_bytes * (1 - used / 100)),
        "mem_used_percent": used,
        "swap_total_bytes": 2 * 2**30, "swap_used_bytes": int(2**30 * 0.1 * busy),
        "users": 1, "boot_time_s": round(boot, 3), "uptime_s": round(uptime, 3),
        "collect_ms": round(0.4 + 2 * noise(pc, "collect", t), 3),
        "disks": [{"mount": _mount(pc), "total_bytes": pc.disk_bytes, "used_bytes": disk_used,
                   "free_bytes": pc.disk_bytes - disk_used,
                   "used_percent": round(100 * disk_used / pc.disk_bytes, 1)}],
        "diskio": [{"name": "sda" if _linux(pc) else "PhysicalDrive0", "read_bytes": read,
                    "write_bytes": write, "read_count": read // 16_384,
                    "write_count": write // 8_192, "read_time_ms": read // 500_000,
                    "write_time_ms": write // 300_000}],
        "nics": [{"name": _nic(pc), "bytes_sent": sent, "bytes_recv": recv,
                  "packets_sent": sent // 800, "packets_recv": recv // 1_000, "errin": 0,
                  "errout": 0, "dropin": int(uptime // 86_400), "dropout": 0,
                  "speed_mbps": 1000, "is_up": True}],
    }


def probe(pc: PC, t: float) -> dict[str, Any]:
    gov = pc.network == "gov"
    body: dict[str, Any] = {"probe": "portal" if gov else "web", "method": "http",
                            "target": PORTAL if gov else WEB}
    if pc.portal_fails and gov:
        body.update(ok=False, error="timed out after 5.0 s")
    else:
        body.update(ok=True, status=200, latency_ms=round(8 + 60 * noise(pc, "rtt", t), 1))
    return body


def isolation(pc: PC, t: float) -> dict[str, Any]:
    body: dict[str, Any] = {"violated": False, "canaries_checked": CANARIES,
                            "canaries_reached": 0, "bridges_up": 0, "default_routes": 1,
                            "default_route_ifaces": _nic(pc),
                            "collect_ms": round(3 + 20 * noise(pc, "iso", t), 2)}
    if pc.isolation_violated:
        body.update(violated=True, reasons="canary dns-public reached", canaries_reached=1,
                    reached="dns-public")
    return body


def bandwidth(site: SimSite, pc: PC, t: float) -> dict[str, Any]:
    gov = pc.network == "gov"
    mbps = site.gov_mbps if gov else site.internet_mbps
    down = round(mbps * (0.97 + 0.06 * noise(pc, "down", t)), 2)
    duration = 10.0
    return {"method": "intranet" if gov else "speedtest",
            "server": "http://speed.example.gov:8090" if gov else "simulated speedtest server",
            "download_mbps": down, "upload_mbps": round(down * 0.4, 2),
            "latency_ms": round(5 + 20 * noise(pc, "lat", t), 1),
            "jitter_ms": round(3 * noise(pc, "jit", t), 2),
            "bytes": int(down * 1e6 / 8 * duration), "duration_s": duration,
            "streams": 4}
