"""Isolation: can this gov PC reach the internet, or could it bridge the networks?

Three checks, each a reason for ``violated``:
- canaries (config only, none shipped): any internet name resolved or host
  reached is a violation;
- bridges: Wi-Fi, USB-network (tethering) and mobile (ppp/wwan) interfaces
  that are up (reported when down; a violation when ``bridges_violate``);
- default routes through more than one interface.
Runs on its own short interval off the metrics tick and publishes at once.
Readers (sysfs, /proc, ``route print``) are apart from the pure parsers.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, NamedTuple, Sequence

from agent.collectors.base import Job
from agent.collectors.metrics import Errors, is_loopback
from agent.collectors.probes import run_check
from agent.config import AgentConfig
from agent.probe_config import IsolationConfig

RTF_UP, RTF_REJECT = 0x0001, 0x0200
IFF_UP = 0x1
# Name prefixes of point-to-point and mobile-broadband links on Linux
# (pppd, ModemManager's wwan/ww* names, the RNDIS/CDC gadget's usb*).
_LINUX_BRIDGE_PREFIXES = {"ppp": "mobile", "wwan": "mobile", "ww": "mobile",
                          "usb": "usb", "wlan": "wireless", "wl": "wireless"}
# USB network drivers of phones sharing their connection (RNDIS, CDC, the
# iPhone's) and of mobile-broadband sticks. Other USB NICs (r8152, asix...)
# are plain Ethernet adapters: the default-route check covers them.
_USB_TETHER_DRIVERS = frozenset({"rndis_host", "cdc_ether", "cdc_ncm", "cdc_eem",
                                 "cdc_subset", "ipheth"})
_USB_MOBILE_DRIVERS = frozenset({"qmi_wwan", "cdc_mbim", "huawei_cdc_ncm", "sierra_net",
                                 "option", "GobiNet"})
# Windows names connections, not drivers: these are the defaults (English and
# Chinese) for Wi-Fi and mobile broadband. A USB-tethered phone shows up as
# an Ethernet connection; only the route and canary checks can catch it.
_WINDOWS_BRIDGE_WORDS = {"wi-fi": "wireless", "wlan": "wireless", "wireless": "wireless",
                         "无线": "wireless", "cellular": "mobile", "mobile": "mobile",
                         "手机网络": "mobile", "移动宽带": "mobile", "蜂窝": "mobile"}
_ROUTE_TIMEOUT_S = 5.0


class Bridge(NamedTuple):
    """An interface that could join this PC to another network."""

    name: str
    why: str  # wireless | usb | mobile
    up: bool


def classify_linux(name: str, wireless: bool, device_path: str, driver: str) -> str:
    """Why interface ``name`` could bridge networks ('' if it cannot).

    ``wireless``: /sys/class/net/<name>/wireless or phy80211 exists;
    ``device_path``: the resolved /sys/class/net/<name>/device ('' if none);
    ``driver``: the name of its device/driver link ('' if none).
    """
    if wireless:
        return "wireless"
    if driver in _USB_MOBILE_DRIVERS:
        return "mobile"
    if "/usb" in device_path and driver in _USB_TETHER_DRIVERS:
        return "usb"
    for prefix, why in _LINUX_BRIDGE_PREFIXES.items():
        if name.startswith(prefix):
            return why
    return ""


def is_up_linux(operstate: str, flags: int) -> bool:
    """Carrying traffic: up, or 'unknown' (ppp, tun) while administratively up."""
    return bool(flags & IFF_UP) and operstate in ("up", "unknown")


def read_bridges_linux(sysfs: str = "/sys/class/net") -> list[Bridge]:
    out = []
    for name in sorted(os.listdir(sysfs)):
        base = os.path.join(sysfs, name)
        wireless = any(os.path.exists(os.path.join(base, d)) for d in ("wireless", "phy80211"))
        device = os.path.join(base, "device")
        has_device = os.path.exists(device)
        driver = os.path.join(device, "driver")
        why = classify_linux(name, wireless, os.path.realpath(device) if has_device else "",
                             os.path.basename(os.path.realpath(driver))
                             if has_device and os.path.exists(driver) else "")
        if not why:
            continue
        state = _read(os.path.join(base, "operstate"), "unknown")
        flags = int(_read(os.path.join(base, "flags"), "0x0"), 16)
        out.append(Bridge(name, why, is_up_linux(state, flags)))
    return out


def classify_windows(name: str) -> str:
    low = name.lower()
    return next((why for word, why in _WINDOWS_BRIDGE_WORDS.items() if word in low), "")


def read_bridges_windows(ps: Any) -> list[Bridge]:
    stats = ps.net_if_stats()
    return [Bridge(n, classify_windows(n), bool(st.isup)) for n, st in sorted(stats.items())
            if classify_windows(n) and not is_loopback(n)]


def parse_proc_route(text: str) -> list[str]:
    """/proc/net/route -> the interface of each IPv4 default route that is up."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000" \
                and int(f[3], 16) & RTF_UP and not int(f[3], 16) & RTF_REJECT:
            out.append(f[0])
    return out


def parse_ipv6_route(text: str) -> list[str]:
    """/proc/net/ipv6_route -> the interface of each IPv6 default route (::/0) that is up.

    Kernel 'unreachable' entries (RTF_REJECT, on lo) are not routes out.
    """
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
            flags = int(f[8], 16)
            if flags & RTF_UP and not flags & RTF_REJECT:
                out.append(f[9])
    return out


def parse_route_print(text: str) -> list[str]:
    """Windows ``route print`` -> the gateway-or-interface of each default route.

    The section titles are translated, the table rows are not: an IPv4 default
    row starts "0.0.0.0 0.0.0.0", an IPv6 one has "::/0" as its third column.
    Windows names no interface there, so the interface address (IPv4) or
    index (IPv6) tells them apart.
    """
    out = []
    anywhere = "0.0.0.0"  # noqa: S104 - a route's destination, nothing binds to it
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] == anywhere and f[1] == anywhere:
            out.append(f[3])
        elif len(f) >= 4 and f[2] == "::/0":
            out.append("if" + f[0])
    return out


def read_default_routes(system: str) -> list[str]:
    if system == "win32":
        text = subprocess.run(["route", "print"], capture_output=True, timeout=_ROUTE_TIMEOUT_S,
                              check=True).stdout.decode("utf-8", "replace")
        return parse_route_print(text)
    routes = parse_proc_route(_read("/proc/net/route", ""))
    if os.path.exists("/proc/net/ipv6_route"):  # absent with ipv6.disable=1
        routes += parse_ipv6_route(_read("/proc/net/ipv6_route", ""))
    return routes


def _read(path: str, default: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def verdict(reached: Sequence[str], bridges: Sequence[Bridge], route_ifaces: Sequence[str],
            bridges_violate: bool) -> list[str]:
    """The reasons this PC breaks isolation (empty: it does not)."""
    reasons = [f"canary {name} reached" for name in reached]
    if bridges_violate:
        reasons += [f"{b.why} interface {b.name} is up" for b in bridges if b.up]
    if len(set(route_ifaces)) > 1:
        reasons.append(f"default routes via {len(set(route_ifaces))} interfaces: "
                       + ",".join(sorted(set(route_ifaces))))
    return reasons


class Isolation:
    """Collector of the ``isolation`` kind (gov PCs); docs/availability.md lists fields."""

    kind = "isolation"

    def __init__(self, cfg: IsolationConfig, ps: Any = None, system: str = sys.platform,
                 sysfs: str = "/sys/class/net") -> None:
        self.cfg = cfg
        self._ps = ps
        self._system = system
        self._sysfs = sysfs

    def collect(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        errors = Errors()
        reached = [c.name for c in self.cfg.canaries if run_check(c)["ok"]]
        bridges: list[Bridge] = []
        with errors.part("bridges"):
            if self._system == "win32":
                import psutil
                bridges = read_bridges_windows(self._ps or psutil)
            else:
                bridges = read_bridges_linux(self._sysfs)
        routes: list[str] = []
        with errors.part("routes"):
            try:
                routes = read_default_routes(self._system)
            except subprocess.SubprocessError as exc:  # `route print` hung or failed
                raise OSError(f"route print: {exc}") from None
        reasons = verdict(reached, bridges, routes, self.cfg.bridges_violate)
        out: dict[str, Any] = {
            "violated": bool(reasons),
            "reasons": "; ".join(reasons),
            "canaries_checked": len(self.cfg.canaries),
            "canaries_reached": len(reached),
            "reached": ",".join(reached),
            "bridges": ",".join(f"{b.name}:{b.why}:{'up' if b.up else 'down'}"
                                for b in bridges),
            "bridges_up": sum(1 for b in bridges if b.up),
            "default_routes": len(routes),
            "default_route_ifaces": ",".join(sorted(set(routes))),
        }
        out["collect_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return errors.finish({k: v for k, v in out.items() if v != ""})


def jobs(cfg: AgentConfig) -> list[Job]:
    """The leak check, on gov PCs only, unless ``agent.isolation.enabled`` is false.

    Hard limit: every canary's timeout plus 10 s for the rest.
    """
    iso = cfg.isolation
    if cfg.network != "gov" or not iso.enabled:
        return []
    limit = sum(c.timeout_s for c in iso.canaries) + 10
    return [Job(Isolation(iso), iso.interval_s, min(iso.interval_s * 0.1, 10.0), limit)]
