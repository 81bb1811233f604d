"""Fleet: the PCs (CPU, memory, disks, uptime, online, clocks) and the collector itself.

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
    SITE,
    Grid,
    Json,
    Tr,
    by_interval,
    custom_var,
    dashboard,
    org_vars,
    override,
    query_var,
    rename,
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
    for title, query, unit in (
        (t("CPU 使用率", "CPU"), f'SELECT mean("cpu_percent") FROM {METRICS} WHERE $timeFilter '
         f"AND {PER_HOST} fill(none)", "percent"),
        (t("内存使用率", "Memory"), f'SELECT mean("mem_used_percent") FROM {METRICS} '
         f"WHERE $timeFilter AND {PER_HOST} fill(none)", "percent"),
    ):
        g.add(12, 8, timeseries(title, [target(query, alias="$tag_site/$tag_host")], unit,
                                lo=0, hi=100))
    g.add(12, 8, timeseries(t("磁盘使用率", "Disk used"), [target(
        f'SELECT max("used_percent") FROM {schema.ident(schema.METRICS_DISKS)} '
        f"WHERE $timeFilter AND {PER_HOST}, {schema.ident(schema.MOUNT_TAG)} fill(none)",
        alias="$tag_site/$tag_host $tag_mount")],
        "percent", lo=0, hi=100))
    cols = {"site": t("中队", "Site"), "host": t("电脑", "PC"), "network": t("网络", "Network"),
            "role": t("用途", "Role"), "uptime_s": t("运行时长", "Uptime"),
            "cpu_percent": "CPU", "mem_used_percent": t("内存", "Memory")}
    g.add(12, 8, table(t("终端一览", "PCs"), [target(
        'SELECT last("uptime_s") AS "uptime_s", last("cpu_percent") AS "cpu_percent", '
        f'last("mem_used_percent") AS "mem_used_percent" FROM {METRICS} WHERE $timeFilter '
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
                     g, [*org_vars(t), host_var, window])


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
