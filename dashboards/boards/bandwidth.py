"""Bandwidth: speed tests per unit, site and network, and NIC traffic per unit.

`bandwidth` holds one point per speed test (download_mbps, upload_mbps,
latency_ms; a failed test has `error` instead); over long ranges the daily
means (`$daily`: the `forever` retention policy). The charts average the
chosen sites' tests per unit (lowest org level) and network: one line per
battalion, not per site; the table lists every site's latest test. NIC
traffic per unit and network is the sum of the PCs' 5-minute rates
(`rollup`.`unit_metrics`, collector/influx/retention.py). Traffic per PC
is on the PC board (pcs.py), one site at a time.
"""
from __future__ import annotations

from typing import List

from dashboards.model import (
    DAILY_VAR,
    LEVELS,
    SITE,
    UNIT,
    UNIT_ALIAS,
    UNIT_METRICS,
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
TESTS = f"FROM {schema.ident(schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"
DAILY_TESTS = f"FROM {in_rp(DAILY_VAR, schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"


def build(t: Tr) -> Json:
    g = Grid()
    for title, field, unit, desc in (
        (t("下行带宽", "Download"), "download_mbps", "Mbits",
         t("所选中队测速结果按单位、网络的平均", "Chosen sites' speed tests, mean per unit "
           "and network")),
        (t("上行带宽", "Upload"), "upload_mbps", "Mbits",
         t("所选中队测速结果按单位、网络的平均", "Chosen sites' speed tests, mean per unit "
           "and network")),
        (t("时延", "Latency"), "latency_ms", "ms",
         t("测速时的往返时延，按单位、网络的平均", "Round trip during the test, mean per unit "
           "and network")),
    ):
        g.add(8, 8, timeseries(title, [target(
            f'SELECT mean("{field}") {DAILY_TESTS} '
            f"{by_interval(*LEVELS, schema.NETWORK)} fill(none)",
            alias=f"{UNIT_ALIAS} $tag_network")], unit, desc, lo=0))
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
    rx_tx = (("A", schema.NET_RECV_PER_S, "rx", t("接收", "in")),
             ("B", schema.NET_SENT_PER_S, "tx", t("发送", "out")))
    g.add(24, 8, timeseries(t("各单位网卡流量合计", "NIC traffic per unit and network"), [
        target(f"SELECT mean({schema.ident(rate)}) * 8 AS \"{col}\" FROM {UNIT_METRICS} "
               f"WHERE $timeFilter AND {UNIT} AND {NET} "
               f"{by_interval(*LEVELS, schema.NETWORK)} fill(none)",
               ref, f"{UNIT_ALIAS} $tag_network {label}")
        for ref, rate, col, label in rx_tx],
        "bps", t("各电脑 5 分钟平均速率之和；筛选支队、大队、网络（单个中队及各电脑见电脑明细）",
                 "Sum of the PCs' 5-minute mean rates; filtered by detachment, battalion and "
                 "network (one site and its PCs are on PC details)"),
        interval="5m", lo=0))
    return dashboard(UID, t, t("带宽", "Bandwidth"),
                     t("各中队、各网络的测速结果与网卡流量",
                       "Speed tests and NIC traffic per site and network"),
                     g, [*org_vars(t), *_vars(t), rp_var(t, DAILY_VAR, "daily")])


def _vars(t: Tr) -> List[Json]:
    return [query_var("network", t("网络", "Network"),
                      f"SHOW TAG VALUES WITH KEY = {schema.ident(schema.NETWORK)}")]
