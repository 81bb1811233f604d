"""The hardware register and its changes for people and programs: table, CSV, JSON.

Labels in Chinese (default) or English; units are in the headers and numbers
stay numbers in CSV and JSON (memory and disks in GiB with two decimals, and
exact bytes in JSON). Sites and units are shown by name; the unit is the
site's ancestors without the root (as in the compliance report). Each PC's
flags: "to replace" (below its site's min_spec, with why) and duplicate
hardware (a serial or MAC another host id reports too).
"""
from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

from collector.compliance import register
from collector.compliance.hardware import GIB
from collector.compliance.model import Org
from collector.compliance.register import Pc
from collector.report.format import grid, json_text, path_names, when
from collector.report.i18n import label

FORMATS = ("table", "csv", "json")
SEP = {"zh": "；", "en": "; "}

LABELS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "inventory_title": ("电脑硬件台账", "Hardware register"),
    "changes_title": ("硬件变更记录", "Hardware changes"),
    "unit": ("所属单位", "Unit"), "site": ("站点", "Site"), "host": ("主机", "Host"),
    "hostname": ("计算机名", "Hostname"), "network": ("网络", "Network"),
    "role": ("用途", "Role"), "os": ("操作系统", "OS"), "os_version": ("系统版本", "OS version"),
    "arch": ("架构", "Arch"), "cpu_model": ("CPU 型号", "CPU model"),
    "cpu_cores": ("CPU 核数", "CPU cores"), "memory_gib": ("内存 (GiB)", "Memory (GiB)"),
    "disk_count": ("硬盘数", "Disks"), "disk_gib": ("硬盘总容量 (GiB)", "Disk total (GiB)"),
    "disks": ("硬盘", "Disk list"), "nics": ("网卡 MAC", "NICs and MACs"),
    "vendor": ("厂商", "Vendor"), "model": ("型号", "Model"), "serial": ("序列号", "Serial"),
    "agent_version": ("客户端版本", "Agent version"), "last_seen": ("最后在线", "Last seen"),
    "inventory_at": ("台账时间", "Inventory time"),
    "settings_version": ("设置版本", "Settings version"),
    "to_replace": ("待更换", "To replace"), "duplicate": ("硬件重复", "Duplicate hardware"),
    "replace_title": ("待更换电脑（低于最低配置 min_spec）",
                      "PCs to replace (below the minimum specification, min_spec)"),
    "shortfalls": ("不足之处", "Below the specification in"),
    "time": ("时间", "Time"), "change": ("变更项", "Change"), "item": ("部件", "Item"),
    "action": ("变更", "Action"), "before": ("变更前", "Before"), "after": ("变更后", "After"),
    "none": ("无", "none"), "pcs": ("台电脑", "PCs"),
    # compliance.hardware.ASPECTS and ACTIONS
    "aspect_site": ("站点", "site"), "aspect_hostname": ("计算机名", "hostname"),
    "aspect_os": ("操作系统", "OS"), "aspect_cpu": ("CPU", "CPU"),
    "aspect_memory": ("内存", "memory"), "aspect_serial": ("序列号", "serial"),
    "aspect_disk": ("硬盘", "disk"), "aspect_nic": ("网卡", "NIC"),
    "added": ("新增", "added"), "removed": ("移除", "removed"), "changed": ("变更", "changed"),
    # compliance.register.below's keys and duplicates' kinds
    "spec_memory_gib": ("内存 {have} GiB < {want} GiB", "memory {have} GiB < {want} GiB"),
    "spec_cores": ("CPU {have} 核 < {want} 核", "{have} cores < {want}"),
    "spec_disk_gib": ("硬盘 {have} GiB < {want} GiB", "disk {have} GiB < {want} GiB"),
    "spec_os": ("系统 {have} 不在 {want} 之列", "OS {have} not among {want}"),
    "dup_serial": ("序列号 {value} 同 {others}", "serial {value} also on {others}"),
    "dup_mac": ("MAC {value} 同 {others}", "MAC {value} also on {others}"),
}
INVENTORY_COLUMNS = ("unit", "site", "host", "hostname", "network", "role", "os", "os_version",
                     "arch", "cpu_model", "cpu_cores", "memory_gib", "disk_count", "disk_gib",
                     "disks", "nics", "vendor", "model", "serial", "agent_version",
                     "inventory_at", "last_seen", "settings_version", "to_replace", "duplicate")
INVENTORY_TABLE = ("site", "host", "os", "cpu_cores", "memory_gib", "disk_gib", "serial",
                   "last_seen", "to_replace", "duplicate")
CHANGE_COLUMNS = ("time", "unit", "site", "host", "change", "item", "action", "before", "after")


def word(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    return label(key, lang) if pair is None else pair[lang == "en"]


def inventory_rows(pcs: Sequence[Pc], org: Org, lang: str) -> list[dict[str, Any]]:
    """One dict per PC, INVENTORY_COLUMNS' keys (numbers as numbers), plus exact
    bytes (mem_total_bytes, disk_total_bytes) and the host id."""
    dups = register.duplicates(pcs)
    sep = SEP[lang]
    out = []
    for p in pcs:
        site = org.site(p.site)
        spec = site.min_spec if site is not None else None
        out.append({
            "unit": " / ".join(path_names(org, site)) if site else "",
            "site": _site_name(org, p.site), "host": p.host, "hostname": p.hostname,
            "network": label(p.network, lang), "role": label(p.role, lang),
            "os": p.os_name, "os_version": p.os_version, "arch": p.arch,
            "cpu_model": p.cpu_model, "cpu_cores": p.cpu_cores,
            "memory_gib": _gib(p.mem_total_bytes), "disk_count": len(p.disks),
            "disk_gib": _gib(p.disk_total_bytes) if p.disks else None,
            "disks": sep.join(f"{d.mount} {_gib(d.total_bytes)} GiB" for d in p.disks),
            "nics": sep.join(f"{n.name} {n.mac}".strip() for n in p.nics if n.mac),
            "vendor": p.vendor, "model": p.model, "serial": p.serial,
            "agent_version": p.agent_version, "inventory_at": _time(p.inventory_ms, org),
            "last_seen": _time(p.last_seen_ms, org), "settings_version": p.settings_version,
            "to_replace": sep.join(word(f"spec_{k}", lang).format(have=have, want=want)
                                   for k, have, want in register.below(p, spec)),
            "duplicate": sep.join(
                word(f"dup_{what}", lang).format(
                    value=value, others=", ".join(f"{_site_name(org, s)}/{h}" for s, h in others))
                for what, value, others in dups.get(p.host_id, [])),
            "host_id": p.host_id, "mem_total_bytes": p.mem_total_bytes,
            "disk_total_bytes": p.disk_total_bytes,
        })
    return out


def replace_rows(items: Sequence[register.Replace], org: Org, lang: str
                 ) -> list[dict[str, Any]]:
    """The report's PCs to replace: unit, site (names), host, why (one text and,
    for programs, each shortfall as key, has, asked)."""
    out = []
    for r in items:
        site = org.site(r.site)
        out.append({
            "unit": " / ".join(path_names(org, site)) if site else "",
            "site": r.site, "name": _site_name(org, r.site), "host": r.host,
            "text": SEP[lang].join(word(f"spec_{k}", lang).format(have=have, want=want)
                                   for k, have, want in r.shortfalls),
            "shortfalls": [{"key": k, "has": have, "asked": want}
                           for k, have, want in r.shortfalls]})
    return out


def replace_grid(items: Sequence[register.Replace], org: Org, lang: str) -> list[str]:
    """The text report's section of PCs to replace (nothing when there are none)."""
    if not items:
        return []
    rows = [[word(k, lang) for k in ("unit", "site", "host", "shortfalls")]]
    rows += [[r["unit"], r["name"], r["host"], r["text"]]
             for r in replace_rows(items, org, lang)]
    return [word("replace_title", lang), *grid(rows), ""]


def change_rows(points: Sequence[Mapping[str, Any]], org: Org, lang: str
                ) -> list[dict[str, Any]]:
    """``inventory_change`` rows -> one dict per change, CHANGE_COLUMNS' keys, oldest first."""
    out = []
    for r in sorted(points, key=lambda r: (int(r["time"]), r.get("site", ""), r.get("host", ""))):
        aspect, site = str(r.get("change", "")), org.site(str(r.get("site", "")))
        before, after = str(r.get("before") or ""), str(r.get("after") or "")
        if aspect == "site":  # ids -> names
            before, after = _site_name(org, before), _site_name(org, after)
        out.append({"time": _time(int(r["time"]), org), "time_ms": int(r["time"]),
                    "unit": " / ".join(path_names(org, site)) if site else "",
                    "site": _site_name(org, str(r.get("site", ""))), "host": r.get("host", ""),
                    "change": word(f"aspect_{aspect}", lang),
                    "item": str(r.get("path") or r.get("item") or ""),
                    "action": word(str(r.get("action", "")), lang),
                    "before": before, "after": after, "aspect": aspect,
                    "host_id": r.get("host_id"),
                    "before_bytes": r.get("before_bytes"), "after_bytes": r.get("after_bytes")})
    return out


def render(fmt: str, title: str, columns: Sequence[str], table: Sequence[str],
           rows: list[dict[str, Any]], lang: str) -> str:
    """``rows`` as ``fmt``: a table of the ``table`` columns, CSV of ``columns``
    (labels as headers), or JSON of everything."""
    if fmt == "json":
        return json_text({"title": word(title, lang), "count": len(rows), "rows": rows}) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([word(c, lang) for c in columns])
        w.writerows([["" if r[c] is None else r[c] for c in columns] for r in rows])
        return buf.getvalue()
    head = f"{word(title, lang)}: {len(rows)}" + (f" {word('pcs', lang)}" if title ==
                                                  "inventory_title" else "")
    if not rows:
        return f"{head}\n{word('none', lang)}\n"
    cells = [["" if r[c] is None else str(r[c]) for c in table] for r in rows]
    return "\n".join([head, *grid([[word(c, lang) for c in table], *cells])]) + "\n"


def _site_name(org: Org, site_id: str) -> str:
    site = org.site(site_id)
    return site.name if site is not None else site_id


def _gib(n: int | None) -> float | None:
    return None if n is None else round(n / GIB, 2)


def _time(ms: int, org: Org) -> str:
    return when(ms, org).strftime("%Y-%m-%d %H:%M") if ms else ""

