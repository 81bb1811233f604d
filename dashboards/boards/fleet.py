"""Fleet: the PCs as a whole (reporting, CPU, memory, disks, clocks) and the collector itself.

PCs reporting counts the latest complete 5 minutes of the per-site series
(`rollup`.`site_metrics`). Fleet- and unit-level charts read the per-unit
5-minute series (`rollup`.`unit_metrics`, collector/influx/retention.py:
per lowest org level and network), never a series per site or PC: with
"All" selected a bureau of 1,000 sites draws one line per battalion. Panels per PC are on
the PC board (pcs.py), whose site is single-select.

The collector's `collector` points carry counters since its start
(received, invalid, written, spooled) and the spool backlog
(spool_batches); rates per minute use non_negative_derivative so that a
collector restart does not show as a negative rate.

Agent versions (a row of its own): the roll-up the collector writes each
evaluation (collector/store/writeback.py, agent_points): PCs per site,
target, running version and rollout stage (`agent_versions`), and a point
per PC whose update failed or was rolled back (`agent_failures`). A
combination gone since leaves its series' last point behind, so both
tables read only the newest evaluation's points: the hidden variable
EVALUATED holds its time (last("evaluated_ms"), re-read on every refresh),
and each query asks for points at or after it. With "All" that is one point
per site and combination: thousands, never one per PC.

Clocks, two sources: the offset agents measure against a reference
(`status` fields clock_offset_s, clock_error_s; agent.clock), listed from
SKEWED_S on; and messages whose time the collector would not believe (too
far ahead of or behind their arrival: stored at arrival with clock_skew_s,
the message's time minus the arrival time), from every agent. Both list
only the PCs at fault, so they stay short with "All" selected.
"""
from __future__ import annotations

from dashboards.model import (
    DATASOURCE,
    LEVELS,
    ORG_LEVELS,
    SITE,
    SITE_METRICS,
    UNIT,
    UNIT_ALIAS,
    UNIT_METRICS,
    UNIT_NAMES,
    UNIT_TAGS,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    org_vars,
    override,
    rename,
    stat,
    table,
    target,
    timeseries,
    value_map,
)
from netroom import schema

UID = "netroom-fleet"
METRICS = schema.ident(schema.METRICS)
UNITS = f"FROM {UNIT_METRICS} WHERE $timeFilter AND {UNIT}"
SELF = f"{schema.ident(schema.SELF)} WHERE $timeFilter"  # the collector's own points
BY_SELF = schema.group_by(schema.SELF_TAG)
SKEWED_S = 60  # a PC whose clock is off by this much (s) or more is listed
EVALUATED = "agent_evaluated"  # the newest evaluation's time (epoch ms): _evaluated_var
# A rollout stage (collector.compliance.rollout.PHASES) for people.
PHASES = {"current": ("已是目标版本", "On target", "green"),
          "pending": ("待升级", "Pending", "blue"),
          "updating": ("升级中", "Updating", "blue"),
          "failed": ("升级失败", "Failed", "red"),
          "rolled_back": ("已回退", "Rolled back", "red"),
          "unsupported": ("不支持自动升级", "Cannot self-update", "orange"),
          "silent": ("失联", "Silent", "orange")}


def build(t: Tr) -> Json:
    g = Grid()
    # From the per-site series, not every PC's raw points: counting 40,000
    # PCs' latest points takes InfluxDB seconds (docs/benchmarks.md).
    g.add(6, 4, stat(t("上报电脑", "PCs reporting"), [target(
        f"SELECT sum({schema.ident(schema.PCS)}) AS {schema.ident(schema.PCS)} FROM "
        f"{SITE_METRICS} WHERE time > now() - 15m AND {SITE} GROUP BY time(5m) fill(none)")],
        description=t("最近一个完整 5 分钟内有上报的电脑（按中队汇总的数据）；"
                      "网络室是否正在开放见网络室开放",
                      "PCs that reported in the latest complete 5 minutes (from the per-site "
                      "series); whether rooms are open now is on Room opening"),
        steps=[("red", None), ("green", 1)]))
    g.add(6, 4, stat(t("已登记终端", "PCs with inventory"), [target(
        'SELECT count("host_id") AS "pcs" FROM (SELECT last("host_id") AS "host_id" '
        f"FROM {schema.ident(schema.INVENTORY)} WHERE time > now() - 7d AND {SITE} "
        f"{schema.BY_SITE_HOST})")],
        description=t("最近 7 天内上报过硬件信息的电脑",
                      "PCs that sent an inventory within 7 days")))
    per_min = t("条/分", "/min")
    for title, field, steps in (
        (t("收到消息", "Messages received"), "received", [("blue", None)]),
        (t("无效消息", "Invalid messages"), "invalid", [("green", None), ("red", 1)]),
    ):
        g.add(4, 4, stat(title, [target(
            f'SELECT non_negative_derivative("{field}", 1m) AS "{field}" FROM {SELF} '
            f"{BY_SELF}")], f"suffix:{per_min}",
            t("采集服务每分钟", "Collector, per minute"), steps=steps, decimals=None))
    g.add(4, 4, stat(t("待写入批次", "Spooled batches"), [target(
        f'SELECT last("spool_batches") AS "spool_batches" FROM {SELF} {BY_SELF}')],
        description=t("InfluxDB 不可用时暂存在磁盘上的批次",
                      "Batches on disk while InfluxDB is away"),
        steps=[("green", None), ("orange", 1)]))
    _units(g, t)
    names = {"received": t("收到", "received"), "written": t("写入", "written"),
             "invalid": t("无效", "invalid"), "spooled": t("暂存", "spooled")}
    g.add(12, 8, timeseries(t("采集服务吞吐", "Collector throughput"), [
        target(f'SELECT non_negative_derivative("{field}", 1m) FROM {SELF} {BY_SELF}',
               chr(ord("A") + i),
               f"$tag_collector {label}")
        for i, (field, label) in enumerate(names.items())],
        f"suffix:{per_min}", t("消息数每分钟", "Messages per minute"), interval="", lo=0))
    g.add(12, 8, timeseries(t("待写入批次趋势", "Spooled batches over time"), [target(
        f'SELECT max("spool_batches") FROM {SELF} '
        f"{by_interval(schema.SELF_TAG)} fill(none)", alias="$tag_collector")],
        "none", interval="10s", lo=0))
    _clocks(g, t)
    _agents(g, t)
    return dashboard(UID, t, t("终端", "Fleet"),
                     t("全部电脑按单位汇总的运行状况与采集服务自身统计；各电脑见电脑明细",
                       "PC health summed up per unit, and the collector's own counters; "
                       "each PC is on PC details"),
                     g, [*org_vars(t), _evaluated_var(t)])


def _units(g: Grid, t: Tr) -> None:
    """Per unit (lowest org level) and network, from the 5-minute unit series."""
    per_unit = f"{by_interval(*UNIT_TAGS)} fill(none)"
    about = t("筛选支队、大队；每个大队一条线（中队筛选不作用于本图，单个中队见电脑明细）",
              "Filtered by detachment and battalion; one line per battalion (the site "
              "filter does not apply here: one site is on PC details)")
    for title, query, unit, hi, what in (
        (t("各单位、网络上报电脑数", "PCs reporting per unit and network"),
         f"SELECT mean({schema.ident(schema.PCS)}) {UNITS} "
         f"{by_interval(*UNIT_TAGS, schema.NETWORK)} fill(none)", "none", None,
         t("每 5 分钟内有上报的电脑（时间段内平均）",
           "PCs that reported within each 5 minutes (mean over the interval)")),
        (t("各单位平均 CPU 使用率", "Mean CPU per unit"),
         f'SELECT mean("cpu_percent") {UNITS} {per_unit}', "percent", 100,
         t("各中队平均值的平均", "Mean of the sites' means")),
        (t("各单位平均内存使用率", "Mean memory per unit"),
         f'SELECT mean("mem_used_percent") {UNITS} {per_unit}', "percent", 100,
         t("各中队平均值的平均", "Mean of the sites' means")),
        (t("各单位最满磁盘", "Fullest disk per unit"),
         f"SELECT max({schema.ident(schema.DISK_USED_PERCENT)}) {UNITS} {per_unit}",
         "percent", 100,
         t("该单位所有电脑中最满的分区", "The fullest mount of any PC of the unit")),
    ):
        alias = f"{UNIT_ALIAS} $tag_network" if "network" in query else UNIT_ALIAS
        g.add(12, 8, timeseries(title, [target(query, alias=alias)], unit,
                                f"{what}. {about}" if t.lang == "en" else f"{what}。{about}",
                                interval="5m", lo=0, hi=hi))
    names = {**{name: t(zh, en) for name, (_, zh, en) in zip(UNIT_NAMES, ORG_LEVELS)},
             "pcs": t("上报电脑", "PCs reporting"),
             "cpu_percent": "CPU", "mem_used_percent": t("内存", "Memory"),
             schema.DISK_USED_PERCENT: t("最满磁盘", "Fullest disk")}
    g.add(24, 8, table(t("各单位终端概况", "PCs by unit"), [target(
        f'SELECT sum("pcs") AS "pcs", mean("cpu_percent") AS "cpu_percent", '
        f'mean("mem_used_percent") AS "mem_used_percent", '
        f'max("disk") AS {schema.ident(schema.DISK_USED_PERCENT)} FROM ('
        f'SELECT last({schema.ident(schema.PCS)}) AS "pcs", '
        f'last("cpu_percent") AS "cpu_percent", last("mem_used_percent") AS "mem_used_percent", '
        f'max({schema.ident(schema.DISK_USED_PERCENT)}) AS "disk" {UNITS} '
        f"{schema.group_by(schema.NETWORK, *UNIT_TAGS)}) "
        f"{schema.group_by(*UNIT_TAGS)}", table=True)],
        t("上报电脑、CPU、内存按各单位最近 5 分钟；最满磁盘为时间范围内；筛选支队、大队",
          "PCs reporting, CPU and memory from each unit's latest 5 minutes; "
          "fullest disk over the time range; filtered by detachment and battalion"),
        transformations=[rename(names, hide=("Time", *LEVELS))],
        overrides=[override("CPU", unit="percent", decimals=0),
                   override(names["mem_used_percent"], unit="percent", decimals=0),
                   override(names[schema.DISK_USED_PERCENT], unit="percent", decimals=0)]))


def _clocks(g: Grid, t: Tr) -> None:
    """PCs with skewed clocks: the agents' own measurement, and re-stamped messages."""
    site, host = t("中队", "Site"), t("电脑", "PC")
    offset, error = t("时钟偏差", "Clock offset"), t("测量误差", "Uncertainty")
    g.add(12, 8, table(t("时钟偏差的电脑", "PCs with skewed clocks"), [target(
        f'SELECT "offset_s", "error_s" FROM (SELECT last("clock_offset_s") AS "offset_s", '
        f'last("clock_error_s") AS "error_s" FROM {schema.ident(schema.STATUS)} '
        f"WHERE $timeFilter AND {SITE} {schema.BY_SITE_HOST}) "
        f'WHERE "offset_s" >= {SKEWED_S} OR "offset_s" <= -{SKEWED_S} {schema.BY_SITE_HOST}',
        table=True)],
        t(f"代理程序测得的本机时钟与基准时钟之差（正数为偏快），相差 {SKEWED_S} 秒以上的列出",
          f"This PC's clock minus the reference clock as its agent measured it (positive: "
          f"fast), listed from {SKEWED_S} s on"),
        transformations=[rename({"Time": t("测量时间", "Measured"), "site": site, "host": host,
                                 "offset_s": offset, "error_s": error}, hide=())],
        overrides=[override(offset, unit="s", decimals=1),
                   override(error, unit="s", decimals=1)]))
    skew, count = t("消息时间偏差", "Message time off by"), t("改记条数", "Re-stamped")
    g.add(12, 8, table(t("时间被改记的消息", "Messages re-stamped on arrival"), [target(
        f'SELECT last({schema.ident(schema.CLOCK_SKEW)}) AS "skew_s", '
        f'count({schema.ident(schema.CLOCK_SKEW)}) AS "restamped" FROM {METRICS} '
        f"WHERE $timeFilter AND {SITE} {schema.BY_SITE_HOST}", table=True)],
        t("消息时间过于超前或滞后于到达时间，采集服务按到达时间保存；偏差为消息时间减到达时间，"
          "条数按每分钟的运行指标消息计",
          "Messages whose time was too far ahead of or behind their arrival, stored at "
          "their arrival; off by: message time minus arrival; counted on the per-minute "
          "metrics messages"),
        transformations=[rename({"site": site, "host": host, "skew_s": skew,
                                 "restamped": count})],
        overrides=[override(skew, unit="s", decimals=0)]))


def _evaluated_var(t: Tr) -> Json:
    """Hidden: the time of the collector's newest evaluation that wrote agent
    points (epoch ms). Refreshed on time range change, which the dashboard's
    auto refresh is too (as the `$rp` variables are)."""
    query = (f"SELECT last({schema.ident(schema.EVALUATED_MS)}) FROM "
             f"{schema.ident(schema.AGENT_VERSIONS)} WHERE time > now() - 1d")
    return {"type": "query", "name": EVALUATED, "label": t("客户端统计时间", "Agent roll-up"),
            "datasource": DATASOURCE, "query": query, "definition": query, "refresh": 2,
            "regex": "", "sort": 0, "includeAll": False, "multi": False, "hide": 2,
            "current": {}, "options": [], "skipUrlSync": True}


def _row(title: str) -> Json:
    """A row heading across the board (Grafana's row panel, not collapsed)."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "datasource": DATASOURCE, "targets": []}


def _agents(g: Grid, t: Tr) -> None:
    """Agent versions and self-update: PCs per site, version and stage, and
    the PCs whose update failed or was rolled back, from the newest evaluation."""
    g.add(24, 1, _row(t("客户端版本", "Agent versions")))
    newest = f"time >= ${{{EVALUATED}}}ms AND {SITE}"
    tags = (*UNIT_TAGS, schema.SITE, schema.name_tag(schema.SITE))
    names = {**{name: t(zh, en) for name, (_, zh, en) in zip(UNIT_NAMES, ORG_LEVELS)},
             schema.name_tag(schema.SITE): t("中队", "Site"),
             schema.TARGET_TAG: t("目标版本", "Target"),
             schema.VERSION_TAG: t("客户端版本", "Running"),
             schema.STATE_TAG: t("状态", "Stage"), schema.PCS: t("电脑数", "PCs"),
             schema.HOST: t("电脑", "PC"), "hostname": t("计算机名", "Hostname"),
             "agent_version": t("客户端版本", "Running"),
             "update_version": t("本机收到的目标", "Target it was given"),
             "update_error": t("原因", "Reason"), "seen_ms": t("状态上报时间", "Status sent")}
    stage = override(names[schema.STATE_TAG], mappings=value_map(t, PHASES),
                     custom__cellOptions={"type": "color-text"})
    g.add(12, 10, table(t("各中队客户端版本", "Agent versions per site"), [target(
        f"SELECT {schema.ident(schema.PCS)} FROM {schema.ident(schema.AGENT_VERSIONS)} "
        f"WHERE {newest} "
        f"{schema.group_by(*tags, schema.TARGET_TAG, schema.VERSION_TAG, schema.STATE_TAG)}",
        table=True)],
        t("采集服务最近一次评估时，各中队按目标版本（config.yaml 的 agents.update.version）、"
          "运行版本和升级状态统计的电脑数；失联：2 天内未收到状态或硬件信息；待升级：尚未收到"
          "新设置或未到检查时间。命令行：netroom versions",
          "PCs per site by target version (agents.update.version in config.yaml), running "
          "version and stage, at the collector's latest evaluation; silent: no status or "
          "inventory in 2 days; pending: the new settings or its next check have not come "
          "yet. From the command line: netroom versions"),
        transformations=[rename(names, hide=("Time", *LEVELS, schema.SITE)),
                         {"id": "sortBy", "options": {"sort": [
                             {"field": names[schema.name_tag(schema.SITE)]}]}}],
        overrides=[stage,
                   override(names[schema.TARGET_TAG], mappings=value_map(
                       t, {schema.NO_VERSION: ("未指定", "None named", "text")})),
                   override(names[schema.VERSION_TAG], mappings=value_map(
                       t, {schema.NO_VERSION: ("未知", "Unknown", "text")}))]))
    g.add(12, 10, table(t("升级失败或已回退的电脑", "PCs whose update failed or was rolled back"),
                        [target(
        'SELECT "hostname", "agent_version", "update_version", "update_error", "seen_ms" '
        f"FROM {schema.ident(schema.AGENT_FAILURES)} WHERE {newest} "
        f"{schema.group_by(*tags, schema.HOST, schema.STATE_TAG)}", table=True)],
        t("采集服务最近一次评估时升级失败（稍后重试）或已回退（新版本未按时上报或崩溃，在中心"
          "指定其他版本前不再尝试）的电脑及其上报的原因；只列出有问题的电脑。不支持自动升级的"
          "电脑见 netroom versions --failed",
          "PCs whose update failed (tried again later) or was rolled back (the new version "
          "did not report in time or crashed; not tried again until the centre names "
          "another) at the collector's latest evaluation, with the reason they sent; only "
          "the PCs at fault. PCs that cannot self-update: netroom versions --failed"),
        transformations=[rename(names, hide=("Time", *LEVELS, schema.SITE))],
        overrides=[stage, override(names["seen_ms"], unit="dateTimeAsLocal")]))
