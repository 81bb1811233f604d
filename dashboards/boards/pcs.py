"""PC details: one site at a time, each of its PCs (CPU, memory, disk, NICs, uptime).

Per-PC queries read one series per PC: over a whole bureau (40,000 PCs)
no query of that kind is fast, and 40,000 lines are unreadable anyway. So
this board's site variable is single-select (no All; the first site until
another is chosen) and every per-PC panel covers that one site; the other
boards show the fleet per unit and per site (docs/benchmarks.md,
"Dashboards at bureau scale").

Site-level panels read the site's 5-minute series (`rollup`.`site_metrics`);
per-PC panels read the PC's `metrics` totals (disk_used_percent: its
fullest mount; net_bytes_recv/sent: summed NIC counters, raw and cumulative,
so rates use non_negative_derivative and a reboot's counter restart gives
no negative spike) from the retention policy ``$rp`` picks for the time
range (raw up to influxdb.retention.switch_after, the 5-minute roll-up
beyond).
"""
from __future__ import annotations

from typing import List

from dashboards.model import (
    RP_VAR,
    SITE,
    SITE_METRICS,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    in_rp,
    network_var,
    org_vars,
    override,
    query_var,
    rename,
    rp_var,
    table,
    target,
    timeseries,
    value_map,
    var_filter,
)
from netroom import schema

UID = "netroom-pcs"
NET = var_filter(schema.NETWORK, "network")
HOST = var_filter(schema.HOST, "host")
METRICS = schema.ident(schema.METRICS)
PER_PC = in_rp(RP_VAR, schema.METRICS)  # "$rp"."metrics": raw or the 5-minute roll-up
PCS = f"WHERE $timeFilter AND {SITE} AND {NET} AND {HOST}"
BY_PC = (schema.SITE, schema.NETWORK, schema.HOST)
ROOM = schema.tag_is(schema.ROLE, "room")
STATE = {"online": ("在线", "online", "green"), "offline": ("离线", "offline", "red")}


def _rate(field: str) -> str:
    """bit/s from a byte counter, per $__interval bucket."""
    return f'non_negative_derivative(mean("{field}"), 1s) * 8'


def one_site(t: Tr, text: str) -> str:
    """A per-PC panel's description: what it shows, and that it covers one site."""
    return t(f"{text}。只显示所选的一个中队（中队为单选）",
             f"{text}. Shows the one site chosen (the site filter is single-select)")


def build(t: Tr) -> Json:
    g = Grid()
    _site(g, t)
    for title, field, agg in (
        (t("各电脑 CPU 使用率", "CPU per PC"), "cpu_percent", "mean"),
        (t("各电脑内存使用率", "Memory per PC"), "mem_used_percent", "mean"),
        (t("各电脑磁盘使用率（最满分区）", "Disk used per PC (fullest mount)"),
         schema.DISK_USED_PERCENT, "max"),
    ):
        g.add(8, 8, timeseries(title, [target(
            f"SELECT {agg}({schema.ident(field)}) FROM {PER_PC} {PCS} "
            f"{by_interval(*BY_PC)} fill(none)", alias="$tag_host")], "percent",
            one_site(t, t("时间范围较长时读 5 分钟汇总", "Long ranges read the 5-minute roll-up")),
            lo=0, hi=100))
    rx_tx = (("A", schema.NET_BYTES_RECV, "rx", t("接收", "in")),
             ("B", schema.NET_BYTES_SENT, "tx", t("发送", "out")))
    per_pc = f"FROM {PER_PC} {PCS} {by_interval(*BY_PC)} fill(none)"
    g.add(12, 9, timeseries(t("各电脑网卡流量", "NIC traffic per PC"), [
        target(f'SELECT {_rate(field)} AS "{col}" {per_pc}', ref, f"$tag_host {label}")
        for ref, field, col, label in rx_tx],
        "bps", one_site(t, t("所有网卡之和", "All of the PC's NICs")), lo=0))
    speed = schema.ident(schema.NET_SPEED_MBPS)
    g.add(12, 9, timeseries(t("网卡利用率", "NIC utilisation"), [
        target(f'SELECT {_rate(field)} / (mean({speed}) * 10000) AS "{col}" {per_pc}',
               ref, f"$tag_host {label}")
        for ref, field, col, label in rx_tx],
        "percent", one_site(t, t("流量占已连接网卡速率之和的百分比；速率未知时为 0",
                                 "Traffic as a share of the summed link speed of the NICs up; "
                                 "0 when the speed is unknown")),
        lo=0, hi=100))
    _tables(g, t)
    return dashboard(UID, t, t("电脑明细", "PC details"),
                     t("一个中队的各台电脑：CPU、内存、磁盘、网卡、运行时长",
                       "One site's PCs: CPU, memory, disk, NICs, uptime"),
                     g, [*org_vars(t, one_site=True), *_vars(t), rp_var(t, RP_VAR, "metrics")])


def _site(g: Grid, t: Tr) -> None:
    """The chosen site as a whole, per network, from its 5-minute series."""
    site = f"FROM {SITE_METRICS} WHERE $timeFilter AND {SITE} AND {NET}"
    by_net = f"{by_interval(schema.NETWORK)}"
    g.add(8, 8, timeseries(t("本中队各网络上报电脑数", "PCs reporting per network"), [target(
        f"SELECT mean({schema.ident(schema.PCS)}) {site} {by_net} fill(none)",
        alias="$tag_network")], "none",
        one_site(t, t("每 5 分钟内有上报的电脑", "PCs that reported within each 5 minutes")),
        interval="5m", lo=0))
    g.add(8, 8, timeseries(t("本中队在线网络室电脑数", "Room PCs online per network"), [target(
        f"SELECT mean({schema.ident(schema.ROOM_PCS)}) {site} {by_net} fill(0)",
        alias="$tag_network")], "none",
        one_site(t, t("每 5 分钟内有上报的网络室电脑；0 表示该时段网络室关闭",
                      "Room PCs that reported within each 5 minutes; 0 means the room was "
                      "closed")),
        interval="5m", lo=0))
    g.add(8, 8, timeseries(t("本中队网卡流量合计", "NIC traffic per network"), [
        target(f"SELECT mean({schema.ident(rate)}) * 8 AS \"{col}\" {site} {by_net} fill(none)",
               ref, f"$tag_network {label}")
        for ref, rate, col, label in (("A", schema.NET_RECV_PER_S, "rx", t("接收", "in")),
                                      ("B", schema.NET_SENT_PER_S, "tx", t("发送", "out")))],
        "bps", one_site(t, t("各电脑 5 分钟平均速率之和", "Sum of the PCs' 5-minute mean rates")),
        interval="5m", lo=0))


def _tables(g: Grid, t: Tr) -> None:
    site, net, host = t("中队", "Site"), t("网络", "Network"), t("电脑", "PC")
    cols = {"site": site, "host": host, "network": net, "role": t("用途", "Role"),
            "uptime_s": t("运行时长", "Uptime"), "cpu_percent": "CPU",
            "mem_used_percent": t("内存", "Memory")}
    g.add(12, 8, table(t("终端一览", "PCs"), [target(
        'SELECT last("uptime_s") AS "uptime_s", last("cpu_percent") AS "cpu_percent", '
        f'last("mem_used_percent") AS "mem_used_percent" FROM {PER_PC} {PCS} '
        f"{schema.group_by(*schema.MESSAGE_TAGS)}", table=True)],
        one_site(t, t("时间范围内最近一次上报", "Latest report in the time range")),
        transformations=[rename(cols)],
        overrides=[override(cols["uptime_s"], unit="dtdurations"),
                   override("CPU", unit="percent", decimals=0),
                   override(cols["mem_used_percent"], unit="percent", decimals=0)]))
    speed = schema.ident(schema.NET_SPEED_MBPS)
    g.add(12, 8, table(t("链路速率", "Link speed"), [target(
        f"SELECT last({speed}) AS {speed}, last({schema.ident(schema.NICS_UP)}) AS "
        f"{schema.ident(schema.NICS_UP)} FROM {METRICS} {PCS} "
        f"{schema.group_by(*BY_PC)}", table=True)],
        one_site(t, t("已连接网卡的速率之和，时间范围内最近一次",
                      "Summed speed of the NICs up, latest in the time range")),
        transformations=[rename({"site": site, "network": net, "host": host,
                                 schema.NET_SPEED_MBPS: t("速率", "Speed"),
                                 schema.NICS_UP: t("已连接网卡", "NICs up")})],
        overrides=[override(t("速率", "Speed"), unit="Mbits")]))
    g.add(24, 8, table(t("网络室电脑状态", "Room PC status"), [target(
        f'SELECT last("state") AS "state" FROM {schema.ident(schema.STATUS)} WHERE $timeFilter '
        f"AND {ROOM} AND {SITE} AND {HOST} {schema.BY_SITE_HOST}", table=True)],
        one_site(t, t("代理程序的连接状态（离线为代理断开时由消息服务器发出）",
                      "Agent connection state (offline is sent by the broker when an agent "
                      "vanishes)")),
        transformations=[rename({"Time": t("连接时间", "Since"), "site": site, "host": host,
                                 "state": t("状态", "State")}, hide=())],
        overrides=[override(t("状态", "State"), mappings=value_map(t, STATE),
                            custom__cellOptions={"type": "color-background"})]))


def _vars(t: Tr) -> List[Json]:
    return [network_var(t),
            query_var("host", t("电脑", "PC"),
                      f"SHOW TAG VALUES FROM {METRICS} WITH KEY = {schema.ident(schema.HOST)} "
                      f"WHERE {SITE}")]
