"""A PC's hardware as the register compares it, and the changes between two.

Pure: no I/O, no clock. ``document`` keeps of one inventory message only what
makes a change worth recording (docs/inventory.md, "What counts"):

- site, hostname (lower case, without domain), OS (name and version, not the
  kernel: patches are not changes), CPU (model and cores; not its MHz);
- memory in bytes, compared with a tolerance: the total the OS reports moves
  by a few MiB with kernels and firmware settings, a memory module is >= 512 MiB;
- disks by mount (size in bytes, file system): not the device name, which
  Linux may give another disk at the next boot (sda/sdb), nor free space;
  removable media (FAT, exFAT, ISO 9660, UDF, mounts under /media) are left
  out, so a USB stick plugged in is not a disk added;
- NICs by MAC, only burnt-in ones (universally administered): virtual
  adapters (docker, veth, VPN) and randomised Wi-Fi addresses change at will;
  not the name, IP addresses, link speed or state;
- the serial number.

A part the agent could not read this time (absent, or an empty list) is
unknown, not removed: ``merge`` keeps the last known value, ``diff`` compares
only what both documents know. So an agent that once runs without root (no
serial) makes no event, and no second one when it is root again.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

GIB = 2**30
MIB = 2**20
# Memory: a change only beyond both (a module is at least 512 MiB).
MEMORY_TOLERANCE_BYTES = 256 * MIB
MEMORY_TOLERANCE_SHARE = 0.03
# Disks: the same file system keeps its size to the byte; resizing is a change.
DISK_TOLERANCE_SHARE = 0.01
REMOVABLE_FSTYPES = frozenset({"vfat", "fat", "fat12", "fat16", "fat32", "msdos", "exfat",
                               "iso9660", "udf", "cdfs"})
REMOVABLE_MOUNTS = ("/media/", "/run/media/")

# What changed, in the order events are listed for one inventory.
ASPECTS = ("site", "hostname", "os", "cpu", "memory", "serial", "disk", "nic")
ADDED, REMOVED, CHANGED = "added", "removed", "changed"
ACTIONS = (ADDED, REMOVED, CHANGED)


class Change(NamedTuple):
    """One change between two inventories of a PC.

    ``item``: the disk's mount or the NIC's name ("" for the PC's own figures);
    ``action``: added, removed or changed (memory: added when it grew, removed
    when it shrank, both sides given);
    ``before``/``after``: the value as text ("" for a disk or NIC added/removed);
    ``before_n``/``after_n``: bytes, for memory and disks (else None).
    """

    aspect: str
    item: str
    action: str
    before: str
    after: str
    before_n: int | None = None
    after_n: int | None = None


def document(site: str, fields: Mapping[str, Any],
             sections: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """An inventory message's fields and sections -> what the register compares
    (JSON-able; unknown parts left out)."""
    doc: dict[str, Any] = {"site": site}
    name = _text(fields.get("hostname")).split(".")[0].lower()
    if name:
        doc["hostname"] = name
    os_name, os_version = _text(fields.get("os_name")), _text(fields.get("os_version"))
    if os_name or os_version:
        doc["os"] = os_name if os_version in os_name else f"{os_name} {os_version}".strip()
    model, cores = " ".join(_text(fields.get("cpu_model")).split()), fields.get("cpu_cores")
    if model or cores:
        doc["cpu"] = f"{model} x{cores}" if cores else model
    memory = fields.get("mem_total_bytes")
    if isinstance(memory, int) and memory > 0:
        doc["memory"] = memory
    serial = _text(fields.get("serial"))
    if serial:
        doc["serial"] = serial
    disks = {str(d["mount"]): [int(d.get("total_bytes") or 0), _text(d.get("fstype")),
                               _text(d.get("device"))]
             for d in sections.get("disks", ()) if not _removable(d)}
    if disks:
        doc["disks"] = disks
    nics = {mac: _text(n.get("name")) for n in sections.get("nics", ())
            if (mac := _text(n.get("mac")).lower()) and burnt_in(mac)}
    if nics:
        doc["nics"] = nics
    return doc


def merge(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``after``, with what it does not know taken from ``before`` (to be kept)."""
    return {**before, **after}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """The changes from ``before`` to ``after`` (documents), in ASPECTS order;
    only parts both know are compared."""
    out: list[Change] = []
    for aspect in ("site", "hostname", "os", "cpu", "serial"):
        a, b = before.get(aspect), after.get(aspect)
        if a is not None and b is not None and a != b:
            out.append(Change(aspect, "", CHANGED, str(a), str(b)))
    a, b = before.get("memory"), after.get("memory")
    if isinstance(a, int) and isinstance(b, int) and _memory_moved(a, b):
        # Modules are added or removed; "changed" says less.
        out.append(Change("memory", "", ADDED if b > a else REMOVED, size_text(a),
                          size_text(b), a, b))
    if before.get("disks") and after.get("disks"):
        out += _disks(before["disks"], after["disks"])
    if before.get("nics") and after.get("nics"):
        out += _nics(before["nics"], after["nics"])
    return out


def _disks(before: Mapping[str, list[Any]], after: Mapping[str, list[Any]]) -> list[Change]:
    out = []
    for mount in sorted(set(before) | set(after)):
        a, b = before.get(mount), after.get(mount)
        if a is None and b is not None:
            out.append(Change("disk", mount, ADDED, "", disk_text(b), None, b[0]))
        elif b is None and a is not None:
            out.append(Change("disk", mount, REMOVED, disk_text(a), "", a[0], None))
        elif a is not None and b is not None and (
                a[1] != b[1] or abs(a[0] - b[0]) > DISK_TOLERANCE_SHARE * max(a[0], b[0])):
            # A disk swapped at the same mount: one change, not a removal and an addition.
            out.append(Change("disk", mount, CHANGED, disk_text(a), disk_text(b), a[0], b[0]))
    return out


def _nics(before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    gone = {name: mac for mac, name in before.items() if mac not in after}
    new = {name: mac for mac, name in after.items() if mac not in before}
    out = []
    for name in sorted(set(gone) | set(new)):
        a, b = gone.get(name), new.get(name)
        if a and b:  # a NIC replaced under the same name: one change
            out.append(Change("nic", name, CHANGED, f"{name} {a}", f"{name} {b}"))
        elif a:
            out.append(Change("nic", name, REMOVED, f"{name} {a}", ""))
        elif b:
            out.append(Change("nic", name, ADDED, "", f"{name} {b}"))
    return out


def burnt_in(mac: str) -> bool:
    """A MAC ``aa:bb:...`` set by the maker: universally administered, not zero
    (virtual adapters and randomised Wi-Fi addresses are locally administered)."""
    try:
        first = int(mac.replace("-", ":").split(":")[0], 16)
    except ValueError:
        return False
    return not first & 0x02 and mac.strip("0:-") != ""


def size_text(n: int) -> str:
    """Bytes for people: "7.7 GiB" (one decimal)."""
    return f"{n / GIB:.1f} GiB"


def disk_text(d: Sequence[Any]) -> str:
    """A disk as [total_bytes, fstype, device] -> "/dev/sda2 ext4 465.8 GiB"."""
    return " ".join(p for p in (str(d[2]), str(d[1]), size_text(int(d[0]))) if p)


def _memory_moved(a: int, b: int) -> bool:
    return abs(a - b) > max(MEMORY_TOLERANCE_BYTES, MEMORY_TOLERANCE_SHARE * max(a, b))


def _removable(d: Mapping[str, Any]) -> bool:
    mount = str(d.get("mount", ""))
    return (_text(d.get("fstype")).lower() in REMOVABLE_FSTYPES
            or mount.startswith(REMOVABLE_MOUNTS))


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()
