"""Bandwidth: speed tests per site and network, and NIC traffic per site and PC.

`bandwidth` holds one point per speed test (download_mbps, upload_mbps,
latency_ms; a failed test has `error` instead); over long ranges the daily
means (`$daily`: the `forever` retention policy). A PC's NIC counters are
summed on its `metrics` point (net_bytes_recv, net_bytes_sent: raw and
cumulative), so rates are taken here with non_negative_derivative: a
counter that restarts at a reboot gives no negative spike, it is skipped.
Per site and network, traffic is the sum of the PCs' 5-minute rates
(`rollup`.`site_metrics`, collector/influx/retention.py).
"""
from __future__ import annotations

from typing import List

from dashboards.model import (
    DAILY_VAR,
    RP_VAR,
    SITE,
    SITE_METRICS,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    in_rp,
    org_vars,
    override,
    query_var,
    rename,
    rp_var,
    table,
    target,
    timeseries,
    var_filter,
)
from netroom import schema

UID = "netroom-bandwidth"
NET = var_filter(schema.NETWORK, "network")
HOST = var_filter(schema.HOST, "host")
TESTS = f"FROM {schema.ident(schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"
DAILY_TESTS = f"FROM {in_rp(DAILY_VAR, schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"
PCS = f"WHERE $timeFilter AND {SITE} AND {NET} AND {HOST}"
PER_PC = (schema.SITE, schema.NETWORK, schema.HOST)


def _rate(field: str) -> str:
    """bit/s from a byte counter, per $__interval bucket."""
    return f'non_negative_derivative(mean("{field}"), 1s) * 8'


def build(t: Tr) -> Json:
    g = Grid()
    for title, field, unit, desc in (
        (t("下行带宽", "Download"), "download_mbps", "Mbits", t("测速结果", "Speed test result")),
        (t("上行带宽", "Upload"), "upload_mbps", "Mbits", t("测速结果", "Speed test result")),
        (t("时延", "Latency"), "latency_ms", "ms",
         t("测速时的往返时延", "Round trip during the test")),
    ):
        g.add(8, 8, timeseries(title, [target(
            f'SELECT mean("{field}") {DAILY_TESTS} '
            f"{by_interval(schema.SITE, schema.NETWORK)} fill(none)",
            alias="$tag_site $tag_network")], unit, desc, lo=0))
    site, net, host = t("中队", "Site"), t("网络", "Network"), t("测速电脑", "Tester")
    g.add(24, 8, table(t("最近一次测速", "Latest speed test"), [target(
        'SELECT last("download_mbps") AS "download_mbps", last("upload_mbps") AS "upload_mbps", '
        f'last("latency_ms") AS "latency_ms", count("error") AS "failed" {TESTS} '
        f"{schema.group_by(schema.SITE, schema.NETWORK, schema.HOST)}",
        table=True)],
        t("失败次数为时间范围内测速失败的次数", "Failed counts failed tests in the time range"),
        transformations=[rename({"site": site, "network": net, "host": host,
                                 "download_mbps": t("下行", "Download"),
                                 "upload_mbps": t("上行", "Upload"),
                                 "latency_ms": t("时延", "Latency"),
                                 "failed": t("失败次数", "Failed")})],
        overrides=[override(t("下行", "Download"), unit="Mbits"),
                   override(t("上行", "Upload"), unit="Mbits"),
                   override(t("时延", "Latency"), unit="ms")]))
    rx_tx = (("A", schema.NET_BYTES_RECV, schema.NET_RECV_PER_S, "rx", t("接收", "in")),
             ("B", schema.NET_BYTES_SENT, schema.NET_SENT_PER_S, "tx", t("发送", "out")))
    g.add(24, 8, timeseries(t("各中队网卡流量合计", "NIC traffic per site and network"), [
        target(f"SELECT mean({schema.ident(rate)}) * 8 AS \"{col}\" FROM {SITE_METRICS} "
               f"WHERE $timeFilter AND {SITE} AND {NET} "
               f"{by_interval(schema.SITE, schema.NETWORK)} fill(none)",
               ref, f"$tag_site $tag_network {label}")
        for ref, _, rate, col, label in rx_tx],
        "bps", t("各电脑 5 分钟平均速率之和", "Sum of the PCs' 5-minute mean rates"),
        interval="5m", lo=0))
    per_pc = f"FROM {in_rp(RP_VAR, schema.METRICS)} {PCS} {by_interval(*PER_PC)} fill(none)"
    g.add(12, 9, timeseries(t("各电脑网卡流量", "NIC traffic per PC"), [
        target(f'SELECT {_rate(field)} AS "{col}" {per_pc}', ref, f"$tag_host {label}")
        for ref, field, _, col, label in rx_tx],
        "bps", t("所有网卡之和", "All of the PC's NICs"), lo=0))
    speed = schema.ident(schema.NET_SPEED_MBPS)
    g.add(12, 9, timeseries(t("网卡利用率", "NIC utilisation"), [
        target(f'SELECT {_rate(field)} / (mean({speed}) * 10000) AS "{col}" {per_pc}',
               ref, f"$tag_host {label}")
        for ref, field, _, col, label in rx_tx],
        "percent", t("流量占已连接网卡速率之和的百分比；速率未知时为 0",
                     "Traffic as a share of the summed link speed of the NICs up; "
                     "0 when the speed is unknown"),
        lo=0, hi=100))
    g.add(24, 8, table(t("链路速率", "Link speed"), [target(
        f"SELECT last({speed}) AS {speed}, last({schema.ident(schema.NICS_UP)}) AS "
        f"{schema.ident(schema.NICS_UP)} FROM {schema.ident(schema.METRICS)} {PCS} "
        f"{schema.group_by(*PER_PC)}", table=True)],
        t("已连接网卡的速率之和，时间范围内最近一次", "Summed speed of the NICs up, latest in "
          "the time range"),
        transformations=[rename({"site": site, "network": net, "host": t("电脑", "PC"),
                                 schema.NET_SPEED_MBPS: t("速率", "Speed"),
                                 schema.NICS_UP: t("已连接网卡", "NICs up")})],
        overrides=[override(t("速率", "Speed"), unit="Mbits")]))
    return dashboard(UID, t, t("带宽", "Bandwidth"),
                     t("各中队、各网络的测速结果与网卡流量",
                       "Speed tests and NIC traffic per site and network"),
                     g, [*org_vars(t), *_vars(t), rp_var(t, RP_VAR, "metrics"),
                         rp_var(t, DAILY_VAR, "daily")])


def _vars(t: Tr) -> List[Json]:
    return [query_var("network", t("网络", "Network"),
                      f"SHOW TAG VALUES WITH KEY = {schema.ident(schema.NETWORK)}"),
            query_var("host", t("电脑", "PC"),
                      f"SHOW TAG VALUES FROM {schema.ident(schema.METRICS)} "
                      f"WITH KEY = {schema.ident(schema.HOST)} WHERE {SITE}", ".*")]
