"""Inventory: the hardware register, PCs by OS, CPU architecture and memory, hardware changes.

Reads `inventory` (one point per PC and inventory: at agent start and once a
day) and `inventory_change` (one point per hardware change, at the time of
the inventory that showed it; docs/inventory.md). Both carry the message
tags (site, host, network, role) and the org path ids, not names: the site
column shows names through a second query, each site's newest ``site_name``
on `site_info`, which Grafana's "Config from query results" transformation
turns into value mappings of the site column (docs: "Transform data",
"Config from query results", value mapping); a site missing from the
``sites`` tree shows its id.

Cost at bureau scale (1,000 sites x 40 PCs, one inventory per PC and day,
7 days by default): the register reads one point per PC (``ORDER BY time
DESC LIMIT 1`` per series); the counts read each PC's newest values in a
subquery and return either four numbers (memory, counted by InfluxDB) or
two short columns per PC (OS and architecture, counted by Grafana's "Group
by" transformation: InfluxQL cannot group by a field); the change history
is sparse and limited to its newest CHANGES_LIMIT rows. Measured with All
over 40,000 PCs: 2-12 s per panel (the register, 40,000 rows, the dearest);
with one detachment (4,000 PCs) under 1 s (docs/inventory.md, "Cost").
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from collector.compliance import hardware, register
from dashboards.model import (
    SITE,
    Grid,
    Json,
    Tr,
    dashboard,
    network_map,
    org_vars,
    override,
    rename,
    stat,
    table,
    target,
    value_map,
)
from netroom import schema

UID = "netroom-inventory"
INVENTORY = f"FROM {schema.ident(schema.INVENTORY)} WHERE $timeFilter AND {SITE}"
SITE_NAME = schema.name_tag(schema.SITE)
# Each site's newest name (site_info, collector/store/writeback.py): the value
# mappings of the site columns. "path" because InfluxQL selects a tag only
# next to a field.
SITE_NAMES = (f'SELECT {schema.ident(SITE_NAME)}, "path" FROM {schema.ident(schema.SITE_INFO)} '
              f"WHERE $timeFilter AND {SITE} {schema.group_by(schema.SITE)} "
              "ORDER BY time DESC LIMIT 1")
# Memory sizes, as memory modules are sold: a PC counts as n GiB from the share
# of n GiB that min_spec allows too (the kernel and firmware keep some).
MEMORY_GIB = (4, 8, 16)
LIMIT = {n: int(n * hardware.GIB * register.REPORTED_SHARE) for n in MEMORY_GIB}
CHANGES_LIMIT = 1000  # rows of the change history, newest first
ROLE_NAMES: Dict[str, Tuple[str, str]] = {  # netroom.protocol.ROLES (a test checks)
    "cadre": ("干部", "Cadre"), "room": ("网络室", "Room"), "class": ("班级", "Class"),
    "office": ("办公", "Office")}
# collector.compliance.hardware ASPECTS, ACTIONS (a test checks): what changed, how.
CHANGE_NAMES: Dict[str, Tuple[str, str, str]] = {
    "site": ("所属中队", "Site", "text"), "hostname": ("计算机名", "Hostname", "text"),
    "os": ("操作系统", "OS", "text"), "cpu": ("CPU", "CPU", "text"),
    "memory": ("内存", "Memory", "text"), "serial": ("序列号", "Serial", "text"),
    "disk": ("硬盘", "Disk", "text"), "nic": ("网卡", "NIC", "text")}
ACTION_NAMES: Dict[str, Tuple[str, str, str]] = {
    hardware.ADDED: ("新增", "Added", "green"), hardware.REMOVED: ("移除", "Removed", "red"),
    hardware.CHANGED: ("变更", "Changed", "orange")}
# Each PC's newest host_id (on every inventory): what counts PCs.
PC = 'last("host_id") AS "pc"'
V = '"v"'
REGISTER_FIELDS = ("hostname", "os_name", "os_version", "arch", "cpu_model", "cpu_cores",
                   "mem_total_bytes", schema.DISK_TOTAL_BYTES, "vendor", "model", "serial",
                   "agent_version")


def site_names(column: str) -> Json:
    """Config from query results (query B, SITE_NAMES) as value mappings of the
    ``column`` field: site id -> its name; query B's frame leaves the panel."""
    return {"id": "configFromData", "options": {
        "configRefId": "B", "applyTo": {"id": "byName", "options": column},
        "mappings": [{"fieldName": schema.SITE, "handlerKey": "mappings.value"},
                     {"fieldName": SITE_NAME, "handlerKey": "mappings.text"}]}}


def per_pc(select: str) -> str:
    """Each PC's newest values (``last`` per site and host) over the range."""
    return f"(SELECT {select} {INVENTORY} {schema.BY_SITE_HOST})"


def memory_query() -> str:
    """PCs per memory size in one row: one subquery per bucket, each renaming
    the PC's memory to the bucket's column (a bucket without PCs is null there,
    shown as 0: the panel's "No value")."""
    pcs = per_pc('last("mem_total_bytes") AS "m"')
    bounds = [0, *LIMIT.values(), None]
    parts, counts = [], []
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        col = memory_column(i)
        cond = " AND ".join(c for c in (f'"m" >= {lo}' if lo else "",
                                        f'"m" < {hi}' if hi else "") if c)
        parts.append(f'(SELECT "m" AS "{col}" FROM {pcs} WHERE {cond})')
        counts.append(f'count("{col}") AS "{col}"')
    return f"SELECT {', '.join(counts)} FROM {', '.join(parts)}"


def memory_column(i: int) -> str:
    """The column of bucket ``i``: lt4, lt8, lt16, ge16."""
    return f"lt{MEMORY_GIB[i]}" if i < len(MEMORY_GIB) else f"ge{MEMORY_GIB[-1]}"


def memory_names(t: Tr) -> Dict[str, str]:
    out = {}
    lows = [0, *MEMORY_GIB]
    for i in range(len(MEMORY_GIB) + 1):
        lo, hi = lows[i], MEMORY_GIB[i] if i < len(MEMORY_GIB) else None
        out[memory_column(i)] = (t(f"小于 {hi} GiB", f"< {hi} GiB") if not lo
                                 else t(f"{lo}–{hi} GiB", f"{lo}-{hi} GiB") if hi
                                 else t(f"{lo} GiB 及以上", f">= {lo} GiB"))
    return out


def build(t: Tr) -> Json:
    g = Grid()
    g.add(6, 5, stat(t("已登记电脑", "PCs with inventory"), [target(
        f'SELECT count("pc") AS "pcs" FROM {per_pc(PC)}')],
        description=t("时间范围内上报过硬件信息的电脑（代理启动时及每天一次）",
                      "PCs that sent an inventory in the time range (at agent start and "
                      "once a day)")))
    buckets = memory_names(t)
    memory = stat(t("按内存容量", "PCs by memory"), [target(memory_query())],
        description=t("各电脑最近一次上报的内存总量；按内存条规格计，报告值达到规格的 90% 即算"
                      "（系统与固件占用一部分），如报告 3.8 GiB 算 4 GiB",
                      "Each PC's newest reported memory, by module size: 90 % of a size "
                      "reported counts as that size (the kernel and firmware keep some), "
                      "e.g. 3.8 GiB reported is 4 GiB"),
        steps=[("blue", None)],
        overrides=[override(col, displayName=name) for col, name in buckets.items()])
    memory["fieldConfig"]["defaults"]["noValue"] = "0"  # docs: Standard options, No value
    g.add(18, 5, memory)
    for title, field, col, about in (
        (t("按操作系统", "PCs by OS"), "os_name", t("操作系统", "OS"),
         t("各电脑最近一次上报的操作系统名称", "Each PC's newest reported OS name")),
        (t("按 CPU 架构", "PCs by CPU architecture"), "arch", t("架构", "Architecture"),
         t("各电脑最近一次上报的 CPU 架构（x86_64、aarch64、loongarch64、mips64 等）",
           "Each PC's newest reported CPU architecture (x86_64, aarch64, loongarch64, "
           "mips64...)")),
    ):
        g.add(12, 8, _counts(t, title, field, col, about))
    g.add(24, 14, _register(t))
    g.add(24, 10, _changes(t))
    dash = dashboard(UID, t, t("硬件台账", "Hardware inventory"),
                     t("每台电脑的硬件台账、按系统/架构/内存统计，以及硬件变更记录；"
                       "导出表格用 netroom inventory",
                       "Every PC's hardware, counts by OS, architecture and memory, and the "
                       "hardware changes; netroom inventory exports the register"),
                     g, org_vars(t), time_from="now-7d")
    dash["refresh"] = "1h"  # inventories come once a day
    return dash


def _counts(t: Tr, title: str, field: str, col: str, about: str) -> Json:
    """PCs per value of ``field``: each PC's newest value (one row per PC, no
    tags: a short answer even for 40,000 PCs), counted by Grafana's Group by."""
    pcs = t("电脑数", "PCs")
    query = f'SELECT "v", "pc" FROM {per_pc(f"last({schema.ident(field)}) AS {V}, {PC}")}'
    return table(title, [target(query, table=True)], about, transformations=[
        {"id": "groupBy", "options": {"fields": {
            "v": {"operation": "groupby", "aggregations": []},
            "pc": {"operation": "aggregate", "aggregations": ["count"]}}}},
        rename({"v": col, "pc (count)": pcs}, hide=()),
        {"id": "sortBy", "options": {"sort": [{"field": pcs, "desc": True}]}},
    ])


def _register(t: Tr) -> Json:
    """One row per PC: its newest inventory in the time range."""
    names = {schema.SITE: t("中队", "Site"), schema.HOST: t("电脑", "PC"),
             schema.NETWORK: t("网络", "Network"), schema.ROLE: t("用途", "Role"),
             "hostname": t("计算机名", "Hostname"), "os_name": t("操作系统", "OS"),
             "os_version": t("系统版本", "OS version"), "arch": t("架构", "Arch"),
             "cpu_model": t("CPU 型号", "CPU model"), "cpu_cores": t("CPU 核数", "CPU cores"),
             "mem_total_bytes": t("内存", "Memory"),
             schema.DISK_TOTAL_BYTES: t("硬盘总容量", "Disk total"),
             "vendor": t("厂商", "Vendor"), "model": t("型号", "Model"),
             "serial": t("序列号", "Serial"), "agent_version": t("客户端版本", "Agent version"),
             "Time": t("台账时间", "Inventory time")}
    select = ", ".join(schema.ident(f) for f in (schema.NETWORK, schema.ROLE, *REGISTER_FIELDS))
    panel = table(t("硬件台账", "Hardware register"), [
        target(f"SELECT {select} {INVENTORY} {schema.BY_SITE_HOST} ORDER BY time DESC LIMIT 1",
               "A", table=True),
        target(SITE_NAMES, "B", table=True)],
        t("每台电脑一行：时间范围内最近一次上报的硬件信息，每台电脑只读一个点。"
          "全部中队时为全局每台电脑一行（1,000 个中队约 4 万行），可选支队、大队、中队缩小范围；"
          "网卡 MAC、硬盘明细、待更换与硬件重复见 netroom inventory",
          "One row per PC: its newest inventory in the time range, one point read per PC. "
          "With all sites selected that is every PC (about 40,000 rows for 1,000 sites); "
          "choose a detachment, battalion or site to narrow it. NICs and MACs, the disk "
          "list, to-replace and duplicate hardware are in netroom inventory"),
        transformations=[site_names(schema.SITE),
                         rename(names, hide=(), order=[*names])],
        overrides=[override(names[schema.NETWORK], mappings=network_map(t)),
                   override(names[schema.ROLE], mappings=_names(t, ROLE_NAMES)),
                   override(names["mem_total_bytes"], unit="bytes", decimals=1),
                   override(names[schema.DISK_TOTAL_BYTES], unit="bytes", decimals=0)])
    panel["options"]["sortBy"] = [{"displayName": names[schema.SITE], "desc": False}]
    return panel


def _changes(t: Tr) -> Json:
    """Every hardware change in the range, newest first."""
    names = {"Time": t("时间", "Time"), schema.SITE: t("中队", "Site"),
             schema.HOST: t("电脑", "PC"), schema.CHANGE_TAG: t("变更项", "Change"),
             schema.ITEM_TAG: t("部件", "Item"), "action": t("变更", "Action"),
             "before": t("变更前", "Before"), "after": t("变更后", "After")}
    cols = ", ".join(schema.ident(c) for c in (schema.SITE, schema.HOST, schema.CHANGE_TAG,
                                               schema.ITEM_TAG, "action", "before", "after"))
    return table(t("硬件变更记录", "Hardware changes"), [
        target(f"SELECT {cols} FROM {schema.ident(schema.INVENTORY_CHANGE)} WHERE $timeFilter "
               f"AND {SITE} ORDER BY time DESC LIMIT {CHANGES_LIMIT}", "A", table=True),
        target(SITE_NAMES, "B", table=True)],
        t(f"内存、硬盘、网卡、CPU、序列号、系统、计算机名或所属中队的每次变化，最新的在前"
          f"（最多 {CHANGES_LIMIT} 条）；时间为发现变化的那次上报的时间；部件为分区或网卡名",
          f"Every change of memory, a disk, a NIC, the CPU, the serial, the OS, the "
          f"hostname or the site, newest first (at most {CHANGES_LIMIT}); the time is the "
          f"inventory that showed it; item: the mount or NIC"),
        transformations=[site_names(schema.SITE), rename(names, hide=(), order=[*names])],
        overrides=[override(names[schema.CHANGE_TAG], mappings=value_map(t, CHANGE_NAMES)),
                   override(names["action"], mappings=value_map(t, ACTION_NAMES),
                            custom__cellOptions={"type": "color-text"})])


def _names(t: Tr, names: Dict[str, Tuple[str, str]]) -> List[Json]:
    """Value mappings id -> name, no colour."""
    return [{"type": "value", "options": {
        k: {"text": t(zh, en), "index": i} for i, (k, (zh, en)) in enumerate(names.items())}}]

