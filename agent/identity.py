"""This PC's identity: its host id, the short id, and its MQTT client id.

PCs cloned from one image share their hostname and often their OS machine id
(``/etc/machine-id``, Windows' ``MachineGuid``), so neither tells them apart.
The host id joins the machine id with the hardware::

    host id   = "<machine>.<hardware>"   e.g. "3f0c...9a1e.5d41402abc4b2a76"
    machine   = HMAC-SHA256 keyed by the OS machine id (32 hex), else a uuid4
                kept in <state_dir>/host-id (what earlier agents sent alone)
    hardware  = SHA-256 (16 hex) of the first usable of: NETROOM_AGENT_HARDWARE_ID
                (environment), the SMBIOS product UUID, the board serial, the
                product serial, the burnt-in MAC of the primary NIC; left out
                (the host id is then the machine part alone) when there is none.
    short id  = the first 6 hex of SHA-256(host id)

docs/collectors.md ("Identity") says what changes it. Reading (files,
registry, wmic) is kept apart from parsing: parse_*, usable_*, choose_mac
and the id functions take plain data and are tested on literal text.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import os
import platform
import re
import subprocess
import uuid
from typing import Any, Collection, Mapping, NamedTuple, Sequence

import psutil

log = logging.getLogger("netroom.agent")

# The test and override hook: text taken as this PC's hardware identity
# (an asset number, the old board's UUID after a swap; tests give clones one each).
HARDWARE_ENV = "NETROOM_AGENT_HARDWARE_ID"
SHORT_LEN = 6
CLIENT_PREFIX = "netroom-agent-"
MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id")
DMI_DIR = "/sys/class/dmi/id"
NET_DIR = "/sys/class/net"
ROUTE_PATH = "/proc/net/route"
# Linux names these files; Windows reads the same SMBIOS fields from the registry.
HARDWARE_SOURCES = ("product_uuid", "board_serial", "product_serial")
_SMBIOS_KEY = r"SYSTEM\CurrentControlSet\Services\mssmbios\Data"
_WMIC = ("wmic", "csproduct", "get", "uuid")
_WMIC_TIMEOUT_S = 10.0

_MACHINE_ID_RE = re.compile(r"[0-9a-f]{32}\Z")  # rejects "" and systemd's "uninitialized"
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# Firmware fields vendors leave unset; the same on every board of a model.
PLACEHOLDERS = frozenset({
    "", "none", "default string", "to be filled by o.e.m.", "o.e.m.", "not specified",
    "not applicable", "n/a", "system manufacturer", "system product name",
    "system serial number", "base board serial number", "chassis serial number",
    "serial number", "0123456789", "123456789", "1234567890"})
# SMBIOS UUIDs that BIOS vendors ship unchanged on many boards (AMI's default...).
_PLACEHOLDER_UUIDS = frozenset({
    "03000200-0400-0500-0006-000700080009", "00020003-0004-0005-0006-000700080009",
    "12345678-1234-5678-90ab-cddeefaabbcc"})
# Windows names connections, not drivers: names of virtual adapters' connections.
_WINDOWS_VIRTUAL = ("virtual", "vethernet", "vmware", "virtualbox", "hyper-v", "loopback",
                    "bluetooth", "蓝牙", "teredo", "isatap", "tunnel", "vpn", "tap", "npcap",
                    "docker", "wsl")
RTF_UP = 0x0001


class Identity(NamedTuple):
    """``host_id`` and where its hardware part came from (``source``: one of
    HARDWARE_SOURCES, ``mac:<nic>``, ``env``, or "" when there was none)."""

    host_id: str
    source: str

    @property
    def short(self) -> str:
        return short_id(self.host_id)


# -- pure ---------------------------------------------------------------------


def app_specific(machine_id: str) -> str:
    """A stable id derived from the OS's machine id without revealing it.

    systemd asks that /etc/machine-id never be sent over the network; like
    sd_id128_get_machine_app_specific(), send an HMAC keyed by it instead.
    """
    return hmac.new(machine_id.encode(), b"netroom-host-id", hashlib.sha256).hexdigest()[:32]


def parse_machine_id(text: str) -> str:
    """/etc/machine-id's text -> the id, "" if unset ("uninitialized", empty)."""
    mid = text.strip().lower()
    return mid if _MACHINE_ID_RE.match(mid) else ""


def usable_uuid(text: str) -> str:
    """An SMBIOS UUID in lower case, "" for none or a vendor placeholder."""
    value = text.strip().lower()
    digits = value.replace("-", "")
    if not _UUID_RE.match(value) or len(set(digits)) == 1 or value in _PLACEHOLDER_UUIDS:
        return ""
    return value


def usable_serial(text: str) -> str:
    """A serial number, "" for none or a placeholder ("Default string", "0000000")."""
    value = text.strip()
    bare = re.sub(r"[\s._-]", "", value.lower())
    if value.lower() in PLACEHOLDERS or len(bare) < 4 or len(set(bare)) == 1:
        return ""
    return value


def usable_mac(text: str) -> str:
    """A NIC's MAC in lower case with ':', "" for all-zero and multicast ones."""
    mac = text.strip().lower().replace("-", ":")
    if not _MAC_RE.match(mac) or int(mac[:2], 16) & 0x01 or set(mac) <= {"0", ":"}:
        return ""
    return mac


def locally_administered(mac: str) -> bool:
    """Made up rather than burnt in: randomised Wi-Fi addresses, bridges', VMs'."""
    return bool(int(mac.strip()[:2], 16) & 0x02)


def parse_smbios(raw: bytes) -> dict[str, str]:
    """Windows' raw SMBIOS table (registry ``mssmbios\\Data\\SMBiosData``) ->
    product_uuid, product_serial (type 1) and board_serial (type 2), as Linux
    shows them in /sys/class/dmi/id: unset ones are absent.

    The value starts with an 8-byte header (calling method, major and minor
    version, DMI revision, table length); since SMBIOS 2.6 the UUID's first
    three fields are little-endian, as Linux and wmic print them.
    """
    if len(raw) < 8:
        return {}
    version = (raw[1], raw[2])
    table = raw[8:8 + int.from_bytes(raw[4:8], "little")]
    out: dict[str, str] = {}
    i = 0
    while i + 4 <= len(table):
        kind, length = table[i], table[i + 1]
        if length < 4:
            break  # corrupt: stop rather than loop
        end = table.find(b"\0\0", i + length)
        if end < 0:
            break
        fmt = table[i:i + length]
        strings = table[i + length:end].split(b"\0")
        if kind == 1:
            out["product_serial"] = _smbios_string(fmt, strings, 7)
            if len(fmt) >= 24:
                b = bytes(fmt[8:24])
                u = uuid.UUID(bytes_le=b) if version >= (2, 6) else uuid.UUID(bytes=b)
                out["product_uuid"] = str(u)
        elif kind == 2:
            out["board_serial"] = _smbios_string(fmt, strings, 7)
        elif kind == 127:
            break
        i = end + 2
    return {k: v for k, v in out.items() if v}


def _smbios_string(fmt: bytes, strings: list[bytes], offset: int) -> str:
    """The string a structure's byte at ``offset`` points to (1-based; 0: none)."""
    n = fmt[offset] if offset < len(fmt) else 0
    return strings[n - 1].decode("utf-8", "replace").strip() if 0 < n <= len(strings) else ""


def parse_wmic_uuid(text: str) -> str:
    """``wmic csproduct get uuid`` output -> the UUID ("" if none or a placeholder)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return usable_uuid(lines[1]) if len(lines) >= 2 and lines[0].upper() == "UUID" else ""


def parse_route_ifaces(text: str) -> list[str]:
    """/proc/net/route -> interfaces holding an IPv4 default route that is up."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000" \
                and re.fullmatch(r"[0-9A-Fa-f]+", f[3]) and int(f[3], 16) & RTF_UP:
            out.append(f[0])
    return out


def choose_mac(nics: Sequence[tuple[str, str, bool]],
               route_ifaces: Collection[str] = ()) -> tuple[str, str] | None:
    """The primary NIC's (name, MAC) of (name, mac, burnt_in) triples: a NIC with
    its own hardware address, the one holding the default route first, then by
    name. None if there is none (a container, a VM without NICs)."""
    ok = [(name, usable_mac(mac)) for name, mac, burnt_in in nics if burnt_in]
    ok = sorted((n for n in ok if n[1]), key=lambda n: (n[0] not in route_ifaces, n[0]))
    return ok[0] if ok else None


def burnt_in_linux(mac: str, has_device: bool, assign_type: str) -> bool:
    """/sys/class/net/<nic>: a bus device (lo, bridges, veth, tun have none) and
    addr_assign_type 0, the device's own address (1: random, 3: set by software,
    e.g. a randomised Wi-Fi address); without that file, a universal MAC."""
    if not has_device:
        return False
    if assign_type.strip():
        return assign_type.strip() == "0"
    return bool(usable_mac(mac)) and not locally_administered(mac)


def is_virtual_windows(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in _WINDOWS_VIRTUAL)


def pick_hardware(candidates: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The first usable (source, value) of candidates in order of preference;
    ("", "") if none. UUIDs, serials and MACs are checked by their kind."""
    for source, raw in candidates:
        if source.endswith("uuid"):
            value = usable_uuid(raw)
        elif source.endswith("serial"):
            value = usable_serial(raw)
        elif source.startswith("mac"):
            value = usable_mac(raw)
        else:
            value = raw.strip()
        if value:
            return source, value
    return "", ""


def compose(machine: str, hardware: str) -> str:
    """The host id: "<machine>.<16 hex of SHA-256 of hardware>", or the machine
    part alone without hardware."""
    if not hardware:
        return machine
    digest = hashlib.sha256(b"netroom-hardware-id:" + hardware.encode()).hexdigest()
    return f"{machine}.{digest[:16]}"


def short_id(host_id: str) -> str:
    """6 hex characters that tell the PCs of one site apart (collisions: about
    1 in 5,500 for 100 PCs sharing one hostname)."""
    return hashlib.sha256(host_id.encode()).hexdigest()[:SHORT_LEN]


def suffixed(name: str, host_id: str) -> str:
    """``<name>-<short id>``: the topic's <host> when `agent.host` is not set,
    within the protocol's 64 characters."""
    return f"{name[:64 - SHORT_LEN - 1]}-{short_id(host_id)}"


def client_id(site: str, host: str, host_id: str) -> str:
    """The MQTT client id: ``netroom-agent-<site>-<host>-<short id>``, where the
    short id is not repeated when <host> already ends with it (the default
    host, ``<hostname>-<short id>``). Unique per PC and stable with its host id,
    so a broker can match it with ``netroom-agent-<site>-*``."""
    short = short_id(host_id)
    tail = "" if host.endswith("-" + short) else "-" + short
    return f"{CLIENT_PREFIX}{site}-{host}{tail}"


# -- reading ------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_registry(path: str, names: Sequence[str], raw: bool = False) -> dict[str, Any]:
    """Values under HKLM\\<path> (Windows only); missing values are left out.

    Text values are stripped (lists joined by spaces); ``raw`` keeps them as is.
    """
    winreg: Any = importlib.import_module("winreg")  # exists only on Windows
    out: dict[str, Any] = {}
    # A 32-bit Python would otherwise read the WOW6432Node copy, which lacks MachineGuid.
    access = winreg.KEY_READ | winreg.KEY_WOW64_64KEY
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, access) as key:
        for name in names:
            try:
                value = winreg.QueryValueEx(key, name)[0]
            except FileNotFoundError:
                continue
            if raw:
                out[name] = value
            else:
                out[name] = " ".join(value) if isinstance(value, list) else str(value).strip()
    return out


def read_machine(state_dir: str, system: str,
                 paths: Sequence[str] = MACHINE_ID_PATHS) -> str:
    """The machine part: the OS's machine id made app-specific, else a uuid4
    kept in <state_dir>/host-id (OSError if it cannot be written)."""
    if system == "Windows":
        try:
            key = read_registry(r"SOFTWARE\Microsoft\Cryptography", ["MachineGuid"])
        except OSError:
            key = {}  # fall back to our own id
        if key.get("MachineGuid"):
            return app_specific(key["MachineGuid"].lower())
    else:
        for path in paths:
            try:
                mid = parse_machine_id(_read(path))
            except OSError:
                continue
            if mid:
                return app_specific(mid)
    path = os.path.join(state_dir, "host-id")
    try:
        kept = _read(path).strip()
    except FileNotFoundError:
        kept = ""
    if not kept:
        os.makedirs(state_dir, exist_ok=True)
        kept = str(uuid.uuid4())
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write(kept + "\n")
        os.replace(path + ".tmp", path)  # never leave a half-written id behind
    return kept


def _linux_candidates(root: str) -> list[tuple[str, str]]:
    dmi, net = _at(root, DMI_DIR), _at(root, NET_DIR)
    out = []
    for name in HARDWARE_SOURCES:
        try:  # root only: an unprivileged agent falls back to the MAC
            out.append((name, _read(os.path.join(dmi, name))))
        except OSError:
            continue
    nics = []
    try:
        names = sorted(os.listdir(net))
    except OSError:
        names = []
    for name in names:
        try:
            mac = _read(os.path.join(net, name, "address"))
        except OSError:
            continue
        try:
            assign = _read(os.path.join(net, name, "addr_assign_type"))
        except OSError:
            assign = ""
        has_device = os.path.exists(os.path.join(net, name, "device"))
        nics.append((name, mac, burnt_in_linux(mac, has_device, assign)))
    try:
        routes = parse_route_ifaces(_read(_at(root, ROUTE_PATH)))
    except OSError:
        routes = []
    primary = choose_mac(nics, routes)
    if primary is not None:
        out.append(("mac:" + primary[0], primary[1]))
    return out


def _windows_candidates(ps: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    try:
        data = read_registry(_SMBIOS_KEY, ["SMBiosData"], raw=True).get("SMBiosData")
        if isinstance(data, bytes):
            smbios = parse_smbios(data)
            out += [(name, smbios[name]) for name in HARDWARE_SOURCES if name in smbios]
    except OSError:
        pass
    if not any(s == "product_uuid" and usable_uuid(v) for s, v in out):
        try:  # older or stripped systems; wmic is gone from the newest Windows 11
            res = subprocess.run(_WMIC, capture_output=True, timeout=_WMIC_TIMEOUT_S,
                                 check=True, stdin=subprocess.DEVNULL)
            out.insert(0, ("product_uuid", parse_wmic_uuid(res.stdout.decode("ascii", "replace"))))
        except (OSError, subprocess.SubprocessError):
            pass
    ps = psutil if ps is None else ps
    link = ps.AF_LINK
    try:
        addrs = ps.net_if_addrs()
    except OSError:
        addrs = {}
    nics = [(name, a.address, not is_virtual_windows(name) and bool(usable_mac(a.address))
             and not locally_administered(a.address))
            for name, items in addrs.items() for a in items if a.family == link]
    primary = choose_mac(nics)
    if primary is not None:
        out.append(("mac:" + primary[0], primary[1]))
    return out


def read_identity(state_dir: str, system: str | None = None, ps: Any = None,
                  env: Mapping[str, str] | None = None, root: str = "/") -> Identity:
    """This PC's identity (OSError if its machine part must be kept in
    ``state_dir`` and cannot be). ``ps``: psutil (Windows' NIC list);
    ``env``: the environment; ``root``: where Linux's files are (tests)."""
    system = system or platform.system()
    env = os.environ if env is None else env
    machine = read_machine(state_dir, system, [_at(root, p) for p in MACHINE_ID_PATHS])
    override = env.get(HARDWARE_ENV, "").strip()
    if override:
        candidates = [("env", override)]
    elif system == "Windows":
        candidates = _windows_candidates(ps)
    else:
        candidates = _linux_candidates(root)
    source, value = pick_hardware(candidates)
    ident = Identity(compose(machine, value), source)
    log.debug("host id %s (short %s), hardware part from %s", ident.host_id, ident.short,
              source or "nothing")
    return ident


def _at(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))
