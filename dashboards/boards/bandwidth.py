"""Bandwidth: speed tests per site and network, and NIC traffic per site and PC.

`bandwidth` holds one point per speed test (download_mbps, upload_mbps,
latency_ms; a failed test has `error` instead). NIC counters in
`metrics_nics` are raw and cumulative, so rates are taken here with
non_negative_derivative: a counter that restarts at a reboot gives no
negative spike, it is skipped.
"""
from __future__ import annotations

from typing import List

from dashboards.model import (
    SITE,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    org_vars,
    override,
    query_var,
    rename,
    table,
    target,
    timeseries,
    value_map,
    var_filter,
)
from netroom import schema

UID = "netroom-bandwidth"
NET = var_filter(schema.NETWORK, "network")
HOST = var_filter(schema.HOST, "host")
TESTS = f"FROM {schema.ident(schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"
NICS = f"FROM {schema.ident(schema.METRICS_NICS)} WHERE $timeFilter AND {SITE} AND {NET} AND {HOST}"
PER_NIC = (schema.SITE, schema.NETWORK, schema.HOST, schema.NIC_TAG)
UP = {"true": ("已连接", "up", "green"), "false": ("未连接", "down", "red")}


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
            f'SELECT mean("{field}") {TESTS} '
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
    rx_tx = (("A", "bytes_recv", "rx", t("接收", "in")),
             ("B", "bytes_sent", "tx", t("发送", "out")))
    per_host = f"{NICS} {by_interval(*PER_NIC)} fill(none)"
    g.add(24, 8, timeseries(t("各中队网卡流量合计", "NIC traffic per site and network"), [
        target(f'SELECT sum("{col}") AS "{col}" FROM (SELECT {_rate(field)} AS "{col}" '
               f"{per_host}) WHERE $timeFilter {by_interval(schema.SITE, schema.NETWORK)} "
               "fill(none)", ref, f"$tag_site $tag_network {label}")
        for ref, field, col, label in rx_tx],
        "bps", t("所选电脑全部网卡之和", "Sum over the selected PCs' NICs"), lo=0))
    g.add(12, 9, timeseries(t("各电脑网卡流量", "NIC traffic per PC"), [
        target(f'SELECT {_rate(field)} AS "{col}" {per_host}', ref,
               f"$tag_host $tag_nic {label}")
        for ref, field, col, label in rx_tx],
        "bps", lo=0))
    g.add(12, 9, timeseries(t("网卡利用率", "NIC utilisation"), [
        target(f'SELECT {_rate(field)} / (mean("speed_mbps") * 10000) AS "{col}" {per_host}',
               ref, f"$tag_host $tag_nic {label}")
        for ref, field, col, label in rx_tx],
        "percent", t("流量占链路速率的百分比；速率未知时为 0",
                     "Traffic as a share of link speed; 0 when the speed is unknown"),
        lo=0, hi=100))
    g.add(24, 8, table(t("链路速率", "Link speed"), [target(
        'SELECT last("speed_mbps") AS "speed_mbps", last("is_up") AS "is_up" '
        f"{NICS} {schema.group_by(*PER_NIC)}", table=True)],
        transformations=[rename({"site": site, "network": net, "host": t("电脑", "PC"),
                                 "nic": t("网卡", "NIC"), "speed_mbps": t("速率", "Speed"),
                                 "is_up": t("状态", "State")})],
        overrides=[override(t("速率", "Speed"), unit="Mbits"),
                   override(t("状态", "State"), mappings=value_map(t, UP))]))
    return dashboard(UID, t, t("带宽", "Bandwidth"),
                     t("各中队、各网络的测速结果与网卡流量",
                       "Speed tests and NIC traffic per site and network"),
                     g, [*org_vars(t), *_vars(t)])


def _vars(t: Tr) -> List[Json]:
    return [query_var("network", t("网络", "Network"),
                      f"SHOW TAG VALUES WITH KEY = {schema.ident(schema.NETWORK)}"),
            query_var("host", t("电脑", "PC"),
                      f"SHOW TAG VALUES FROM {schema.ident(schema.METRICS_NICS)} "
                      f"WITH KEY = {schema.ident(schema.HOST)} WHERE {SITE}", ".*")]
