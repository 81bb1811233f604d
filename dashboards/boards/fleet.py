"""Fleet: the PCs (CPU, memory, disks, uptime, online, clocks) and the collector itself.

Fleet-, unit- and site-level panels read the per-site 5-minute series
(`rollup`.`site_metrics`, collector/influx/retention.py), never every PC's
raw points; per-PC panels read the PC's `metrics` totals (disk_used_percent:
its fullest mount) from the retention policy ``$rp`` picks for the time
range (raw up to influxdb.retention.switch_after, the 5-minute roll-up beyond).

The collector's `collector` points carry counters since its start
(received, invalid, written, spooled) and the spool backlog
(spool_batches); rates per minute use non_negative_derivative so that a
collector restart does not show as a negative rate.

Clocks, two sources: the offset agents measure against a reference
(`status` fields clock_offset_s, clock_error_s; agent.clock), listed from
SKEWED_S on; and messages whose time the collector would not believe (too
far ahead of or behind their arrival: stored at arrival with clock_skew_s,
the message's time minus the arrival time), from every agent.
"""
from __future__ import annotations

from dashboards.model import (
    NOT_AHEAD,
    ORG_LEVELS,
    RP_VAR,
    SITE,
    SITE_METRICS,
    Grid,
    Json,
    Tr,
    by_interval,
    custom_var,
    dashboard,
    in_rp,
    org_vars,
    override,
    query_var,
    rename,
    rp_var,
    stat,
    table,
    target,
    timeseries,
    var_filter,
)
from netroom import schema

UID = "netroom-fleet"
HOST = var_filter(schema.HOST, "host")
PER_HOST = f"{SITE} AND {HOST} {by_interval(schema.SITE, schema.HOST)}"
METRICS = schema.ident(schema.METRICS)
PER_PC = in_rp(RP_VAR, schema.METRICS)  # "$rp"."metrics": raw or the 5-minute roll-up
SITES = f"FROM {SITE_METRICS} WHERE $timeFilter AND {SITE}"
LEVELS = tuple(key for key, _, _ in ORG_LEVELS)
SELF = f"{schema.ident(schema.SELF)} WHERE $timeFilter"  # the collector's own points
BY_SELF = schema.group_by(schema.SELF_TAG)
SKEWED_S = 60  # a PC whose clock is off by this much (s) or more is listed


def build(t: Tr) -> Json:
    g = Grid()
    g.add(6, 4, stat(t("在线终端", "Agents online"), [target(
        'SELECT count("beat") AS "online" FROM (SELECT last("collect_ms") AS "beat" '
        f"FROM {METRICS} WHERE time > now() - $window AND {NOT_AHEAD} AND {SITE} AND {HOST} "
        f"{schema.BY_SITE_HOST})")],
        description=t("最近 $window 内有上报的电脑", "PCs that reported within $window"),
        steps=[("red", None), ("green", 1)]))
    g.add(6, 4, stat(t("已登记终端", "PCs with inventory"), [target(
        'SELECT count("host_id") AS "pcs" FROM (SELECT last("host_id") AS "host_id" '
        f"FROM {schema.ident(schema.INVENTORY)} WHERE time > now() - 7d AND {SITE} AND {HOST} "
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
    _sites(g, t)
    for title, field, agg in (
        (t("各电脑 CPU 使用率", "CPU per PC"), "cpu_percent", "mean"),
        (t("各电脑内存使用率", "Memory per PC"), "mem_used_percent", "mean"),
        (t("各电脑磁盘使用率（最满分区）", "Disk used per PC (fullest mount)"),
         schema.DISK_USED_PERCENT, "max"),
    ):
        g.add(8, 8, timeseries(title, [target(
            f'SELECT {agg}({schema.ident(field)}) FROM {PER_PC} WHERE $timeFilter '
            f"AND {PER_HOST} fill(none)", alias="$tag_site/$tag_host")], "percent",
            t("选择中队或电脑查看；时间范围较长时读 5 分钟汇总",
              "Choose a site or PC; long ranges read the 5-minute roll-up"), lo=0, hi=100))
    cols = {"site": t("中队", "Site"), "host": t("电脑", "PC"), "network": t("网络", "Network"),
            "role": t("用途", "Role"), "uptime_s": t("运行时长", "Uptime"),
            "cpu_percent": "CPU", "mem_used_percent": t("内存", "Memory")}
    g.add(12, 8, table(t("终端一览", "PCs"), [target(
        'SELECT last("uptime_s") AS "uptime_s", last("cpu_percent") AS "cpu_percent", '
        f'last("mem_used_percent") AS "mem_used_percent" FROM {PER_PC} WHERE $timeFilter '
        f"AND {SITE} AND {HOST} {schema.group_by(*schema.MESSAGE_TAGS)}", table=True)],
        t("时间范围内最近一次上报", "Latest report in the time range"),
        transformations=[rename(cols)],
        overrides=[override(cols["uptime_s"], unit="dtdurations"),
                   override("CPU", unit="percent", decimals=0),
                   override(cols["mem_used_percent"], unit="percent", decimals=0)]))
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
    host_var = query_var("host", t("电脑", "PC"),
                         f"SHOW TAG VALUES FROM {METRICS} WITH KEY = {schema.ident(schema.HOST)} "
                         f"WHERE {SITE}", ".*")
    window = custom_var("window", t("在线判定窗口", "Online window"),
                        ("2m", "5m", "10m", "30m"), "5m")
    return dashboard(UID, t, t("终端", "Fleet"),
                     t("各电脑运行状况与采集服务自身统计",
                       "PC health and the collector's own counters"),
                     g, [*org_vars(t), host_var, window, rp_var(t, RP_VAR, "metrics")])


def _sites(g: Grid, t: Tr) -> None:
    """Per site and per unit, from the 5-minute site series."""
    per_site = f"{by_interval(schema.SITE)} fill(none)"
    pcs = (f"SELECT mean({schema.ident(schema.PCS)}) {SITES} "
           f"{by_interval(schema.SITE, schema.NETWORK)} fill(none)")
    for title, query, unit, hi, about in (
        (t("各中队、网络上报电脑数", "PCs reporting per site and network"), pcs, "none", None,
         t("每 5 分钟内有上报的电脑（时间段内平均）",
           "PCs that reported within each 5 minutes (mean over the interval)")),
        (t("各中队平均 CPU 使用率", "Mean CPU per site"),
         f'SELECT mean("cpu_percent") {SITES} {per_site}', "percent", 100,
         t("各电脑 5 分钟均值的平均", "Mean of the PCs' 5-minute means")),
        (t("各中队平均内存使用率", "Mean memory per site"),
         f'SELECT mean("mem_used_percent") {SITES} {per_site}', "percent", 100,
         t("各电脑 5 分钟均值的平均", "Mean of the PCs' 5-minute means")),
        (t("各中队最满磁盘", "Fullest disk per site"),
         f"SELECT max({schema.ident(schema.DISK_USED_PERCENT)}) {SITES} {per_site}",
         "percent", 100,
         t("该中队所有电脑中最满的分区", "The fullest mount of any PC of the site")),
    ):
        alias = "$tag_site $tag_network" if query is pcs else "$tag_site"
        g.add(12, 8, timeseries(title, [target(query, alias=alias)], unit, about,
                                interval="5m", lo=0, hi=hi))
    names = {"detachment": t("支队", "Detachment"), "battalion": t("大队", "Battalion"),
             "pcs": t("上报电脑", "PCs reporting"), "cpu_percent": "CPU",
             "mem_used_percent": t("内存", "Memory"),
             schema.DISK_USED_PERCENT: t("最满磁盘", "Fullest disk")}
    g.add(24, 8, table(t("各单位终端概况", "PCs by unit"), [target(
        f'SELECT sum("pcs") AS "pcs", mean("cpu_percent") AS "cpu_percent", '
        f'mean("mem_used_percent") AS "mem_used_percent", '
        f'max("disk") AS {schema.ident(schema.DISK_USED_PERCENT)} FROM ('
        f'SELECT last({schema.ident(schema.PCS)}) AS "pcs", last("cpu_percent") AS "cpu_percent", '
        f'last("mem_used_percent") AS "mem_used_percent", '
        f'max({schema.ident(schema.DISK_USED_PERCENT)}) AS "disk" {SITES} '
        f"{schema.group_by(schema.SITE, schema.NETWORK, *LEVELS)}) "
        f"{schema.group_by(*LEVELS)}", table=True)],
        t("上报电脑、CPU、内存按各中队最近 5 分钟；最满磁盘为时间范围内",
          "PCs reporting, CPU and memory from each site's latest 5 minutes; fullest disk "
          "over the time range"),
        transformations=[rename(names)],
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
        f"WHERE $timeFilter AND {SITE} AND {HOST} {schema.BY_SITE_HOST}) "
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
        f"WHERE $timeFilter AND {SITE} AND {HOST} {schema.BY_SITE_HOST}", table=True)],
        t("消息时间过于超前或滞后于到达时间，采集服务按到达时间保存；偏差为消息时间减到达时间，"
          "条数按每分钟的运行指标消息计",
          "Messages whose time was too far ahead of or behind their arrival, stored at "
          "their arrival; off by: message time minus arrival; counted on the per-minute "
          "metrics messages"),
        transformations=[rename({"site": site, "host": host, "skew_s": skew,
                                 "restamped": count})],
        overrides=[override(skew, unit="s", decimals=0)]))
