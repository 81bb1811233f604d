"""The hardware register: one record per PC, duplicate hardware, the minimum
specification. Pure: no I/O, no clock (docs/inventory.md).

Duplicates: two host ids with one serial number, or one burnt-in MAC, are
flagged on both (cloned images give one serial to several VMs; a NIC or a
disk moved between PCs shows twice until the old PC reports again).
Below the minimum specification (``min_spec`` of a site or its units): a PC
with less memory or fewer cores than asked, or an OS none of whose allowed
names it contains, is "to replace"; what it does not report is not judged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

from collector.compliance.hardware import GIB, burnt_in
from netroom.settings import ConfigError, Section

SPEC_KEYS = ("memory_gib", "cores", "disk_gib", "os")  # min_spec's keys, below()'s reasons
# The OS reports a little less than the modules or the disk hold (firmware,
# graphics, partitioning): n GiB counts from this share of n GiB reported.
REPORTED_SHARE = 0.9


class Disk(NamedTuple):
    mount: str
    device: str
    fstype: str
    total_bytes: int


class Nic(NamedTuple):
    name: str
    mac: str


class Pc(NamedTuple):
    """One PC's newest inventory, where it reports from, and when it was seen.

    Bytes for memory and disks; times epoch ms (``last_seen``: its newest
    inventory, status or metrics message); None or "" where not reported.
    """

    site: str
    host: str
    network: str
    role: str
    host_id: str
    hostname: str
    os_name: str
    os_version: str
    arch: str
    cpu_model: str
    cpu_cores: int | None
    cpu_threads: int | None
    mem_total_bytes: int | None
    disks: tuple[Disk, ...]
    nics: tuple[Nic, ...]
    vendor: str
    model: str
    serial: str
    agent_version: str
    inventory_ms: int
    last_seen_ms: int
    settings_version: str

    @property
    def disk_total_bytes(self) -> int:
        return sum(d.total_bytes for d in self.disks)


@dataclass(frozen=True)
class MinSpec:
    """The least a PC must have: GiB of memory, CPU cores, GiB of disk (all
    disks), and OS names of which its own must contain one (case-insensitive)."""

    memory_gib: float = 0.0
    cores: int = 0
    disk_gib: float = 0.0
    os: tuple[str, ...] = ()


def read_min_spec(data: Any, key: str, inherited: MinSpec | None) -> MinSpec | None:
    """A node's ``min_spec`` over its units' (key by key); raise ConfigError."""
    if data is None:
        return inherited
    base = inherited or MinSpec()
    s = Section(data, key)
    spec = MinSpec(s.number("memory_gib", base.memory_gib, 0, 4096),
                   s.integer("cores", base.cores, 0, 1024),
                   s.number("disk_gib", base.disk_gib, 0, 10**6),
                   tuple(str(x) for x in s.seq("os")) if s.raw("os") is not None else base.os)
    for i, name in enumerate(spec.os):
        if not name.strip():
            raise ConfigError(f"{key}.os[{i}]: must be a non-empty OS name, e.g. \"Windows 10\"")
    s.done()
    return spec


def below(pc: Pc, spec: MinSpec | None) -> list[tuple[str, str, str]]:
    """Why ``pc`` is below ``spec``: (key, what it has, what is asked) per shortfall."""
    if spec is None:
        return []
    out = []
    mem = pc.mem_total_bytes
    if spec.memory_gib and mem is not None and mem < spec.memory_gib * GIB * REPORTED_SHARE:
        out.append(("memory_gib", f"{mem / GIB:.1f}", f"{spec.memory_gib:g}"))
    if spec.cores and pc.cpu_cores is not None and pc.cpu_cores < spec.cores:
        out.append(("cores", str(pc.cpu_cores), str(spec.cores)))
    if spec.disk_gib and pc.disks and pc.disk_total_bytes < spec.disk_gib * GIB * REPORTED_SHARE:
        out.append(("disk_gib", f"{pc.disk_total_bytes / GIB:.0f}", f"{spec.disk_gib:g}"))
    name = f"{pc.os_name} {pc.os_version}".lower()
    if spec.os and name.strip() and not any(o.lower() in name for o in spec.os):
        out.append(("os", f"{pc.os_name} {pc.os_version}".strip(), ", ".join(spec.os)))
    return out


class Replace(NamedTuple):
    """A PC below its site's minimum specification: to replace (the report's
    procurement section). ``shortfalls``: below()'s (key, has, asked)."""

    site: str
    host: str
    shortfalls: tuple[tuple[str, str, str], ...]


def to_replace(pcs: Iterable[Pc], specs: Mapping[str, MinSpec]) -> tuple[Replace, ...]:
    """The PCs below their site's min_spec; ``specs``: by site id, in the order
    to list them (the tree's)."""
    order = {site: i for i, site in enumerate(specs)}
    out = []
    for pc in pcs:
        spec = specs.get(pc.site)
        short = below(pc, spec) if spec is not None else []
        if short:
            out.append(Replace(pc.site, pc.host, tuple(short)))
    return tuple(sorted(out, key=lambda r: (order[r.site], r.host)))


Where = tuple[str, str]  # (site, host)


def duplicates(pcs: Iterable[Pc]) -> dict[str, list[tuple[str, str, list[Where]]]]:
    """Per host id: (what: serial or mac, value, the other PCs' (site, host)) for
    each serial or burnt-in MAC it shares with another host id."""
    owners: dict[tuple[str, str], dict[str, Where]] = {}
    for pc in pcs:
        where = (pc.site, pc.host)
        if pc.serial:
            owners.setdefault(("serial", pc.serial), {})[pc.host_id] = where
        for n in pc.nics:
            if n.mac and burnt_in(n.mac.lower()):
                owners.setdefault(("mac", n.mac.lower()), {})[pc.host_id] = where
    out: dict[str, list[tuple[str, str, list[Where]]]] = {}
    for (what, value), hosts in sorted(owners.items()):
        if len(hosts) > 1:
            for host_id in hosts:
                others = sorted(w for h, w in hosts.items() if h != host_id)
                out.setdefault(host_id, []).append((what, value, others))
    return out
