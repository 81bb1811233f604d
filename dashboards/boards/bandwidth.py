"""Bandwidth and what to buy: speed tests per unit, site and network, the
room PCs' share, NIC traffic per unit, and the procurement list per unit.

`bandwidth` holds one point per speed test (download_mbps, upload_mbps,
latency_ms; a failed test has `error` instead); over long ranges the daily
means (`$daily`: the `forever` retention policy). The charts average the
chosen sites' tests per unit (lowest org level) and network: one line per
battalion, not per site, with the requirements drawn as lines (gov_bandwidth's
min_mbps on download, room_video's per_pc_mbps on the room PCs' share: the
rules' DEFAULTS; a site may have its own). The room PCs' share is room_video's
`actual` on `compliance` (the site's download / its room PCs, the lower of
its networks). NIC traffic per unit and network is the sum of the PCs'
5-minute rates (`rollup`.`unit_metrics`). The procurement list reads the
`need_<key>` fields of each site's newest `compliance` point with rule=all
(collector/store/writeback.py: what the site must buy to pass, pools applied),
summed per unit, with a total row. Traffic per PC is on the PC board.
"""
from __future__ import annotations

from typing import Any, Dict

from collector.compliance.rules import gov_bandwidth, room_video
from dashboards.model import (
    DAILY_VAR,
    LEVELS,
    ORG_LEVELS,
    SITE,
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
    in_rp,
    network_legends,
    network_map,
    network_var,
    org_vars,
    override,
    rename,
    rp_var,
    table,
    target,
    timeseries,
    var_filter,
)
from netroom import protocol, schema

UID = "netroom-bandwidth"
GOV_MBPS = float(gov_bandwidth.DEFAULTS["min_mbps"])
PER_PC_MBPS = float(room_video.DEFAULTS["per_pc_mbps"])
SITE_NAME = schema.name_tag(schema.SITE)
NAMES = UNIT_NAMES
NET = var_filter(schema.NETWORK, "network")
TESTS = f"FROM {schema.ident(schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"
DAILY_TESTS = f"FROM {in_rp(DAILY_VAR, schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND {NET}"


def build(t: Tr) -> Json:
    g = Grid()
    for title, field, unit, desc in (
        (t("下行带宽", "Download"), "download_mbps", "Mbits",
         t(f"所选中队测速结果按单位、网络的平均；红线为政务网带宽要求 {GOV_MBPS:g} Mbit/s",
           f"Chosen sites' speed tests, mean per unit and network; the red line is the gov "
           f"bandwidth requirement, {GOV_MBPS:g} Mbit/s")),
        (t("上行带宽", "Upload"), "upload_mbps", "Mbits",
         t("所选中队测速结果按单位、网络的平均", "Chosen sites' speed tests, mean per unit "
           "and network")),
        (t("时延", "Latency"), "latency_ms", "ms",
         t("测速时的往返时延，按单位、网络的平均", "Round trip during the test, mean per unit "
           "and network")),
    ):
        g.add(8, 8, timeseries(title, [target(
            f'SELECT mean("{field}") {DAILY_TESTS} '
            f"{by_interval(*UNIT_TAGS, schema.NETWORK)} fill(none)",
            alias=f"{UNIT_ALIAS} $tag_network")], unit, desc, lo=0,
            transformations=network_legends(t),
            lines=[("red", GOV_MBPS)] if field == "download_mbps" else ()))
    site, net, host = t("中队", "Site"), t("网络", "Network"), t("测速电脑", "Tester")
    g.add(12, 8, timeseries(t("近 30 天政务网带宽趋势", "Gov bandwidth, last 30 days"), [target(
        f'SELECT mean("download_mbps") FROM {schema.ident(schema.RP_FOREVER)}.'
        f"{schema.ident(schema.BANDWIDTH)} WHERE $timeFilter AND {SITE} AND "
        f"{schema.tag_is(schema.NETWORK, 'gov')} GROUP BY time(1d), {schema.tags(*UNIT_TAGS)} "
        "fill(none)", alias=UNIT_ALIAS)], "Mbits",
        t(f"每日平均下行（各单位所选中队），固定显示近 30 天；红线为要求 {GOV_MBPS:g} Mbit/s",
          f"Daily mean download of the chosen sites per unit, always the last 30 days; "
          f"the red line is the requirement, {GOV_MBPS:g} Mbit/s"),
        interval="1d", lo=0, lines=[("red", GOV_MBPS)]) | {"timeFrom": "30d"})
    g.add(12, 8, timeseries(t("网络室每台电脑带宽", "Bandwidth per room PC"), [target(
        f'SELECT mean("actual") FROM {in_rp(DAILY_VAR, schema.COMPLIANCE)} WHERE $timeFilter '
        f"AND {schema.tag_is(schema.RULE, room_video.NAME)} AND {SITE} "
        f"{by_interval(*UNIT_TAGS)} fill(none)", alias=UNIT_ALIAS)], "Mbits",
        t(f"中队测速下行 ÷ 网络室电脑数（取较低的网络），按单位平均；红线为每台 {PER_PC_MBPS:g} "
          "Mbit/s（可同时观看视频）",
          f"The site's download / its room PCs (the lower network), mean per unit; the red "
          f"line is {PER_PC_MBPS:g} Mbit/s per PC (all can play video at once)"),
        interval="5m", lo=0, lines=[("red", PER_PC_MBPS)]))
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
                   override(t("时延", "Latency"), unit="ms"),
                   override(net, mappings=network_map(t))]))
    g.add(24, 9, _procurement(t))
    rx_tx = (("A", schema.NET_RECV_PER_S, "rx", t("接收", "in")),
             ("B", schema.NET_SENT_PER_S, "tx", t("发送", "out")))
    g.add(24, 8, timeseries(t("各单位网卡流量合计", "NIC traffic per unit and network"), [
        target(f"SELECT mean({schema.ident(rate)}) * 8 AS \"{col}\" FROM {UNIT_METRICS} "
               f"WHERE $timeFilter AND {UNIT} AND {NET} "
               f"{by_interval(*UNIT_TAGS, schema.NETWORK)} fill(none)",
               ref, f"{UNIT_ALIAS} $tag_network {label}")
        for ref, rate, col, label in rx_tx],
        "bps", t("各电脑 5 分钟平均速率之和；筛选支队、大队、网络（单个中队及各电脑见电脑明细）",
                 "Sum of the PCs' 5-minute mean rates; filtered by detachment, battalion and "
                 "network (one site and its PCs are on PC details)"),
        interval="5m", lo=0, transformations=network_legends(t)))
    return dashboard(UID, t, t("带宽", "Bandwidth"),
                     t("各中队、各网络的测速结果与网卡流量",
                       "Speed tests and NIC traffic per site and network"),
                     g, [*org_vars(t), network_var(t), rp_var(t, DAILY_VAR, "daily")])


def _procurement(t: Tr) -> Json:
    """What each unit must buy: the sum of its sites' newest need_<key> fields."""
    keys = [f"{net}_{what}" for what in ("pcs", "mbps") for net in protocol.NETWORKS]
    # The newest point's own fields: a need the site no longer has is absent
    # there, and last() per field would bring back an older evaluation's.
    inner = ", ".join(f'"need_{k}" AS "{k}"' for k in keys)
    outer = ", ".join(f'sum("{k}") AS "{k}"' for k in keys)
    group = schema.group_by(*LEVELS, *NAMES)
    text: Dict[str, str] = {
        "gov_pcs": t("政务网电脑（台）", "Gov PCs"),
        "internet_pcs": t("互联网电脑（台）", "Internet PCs"),
        "gov_mbps": t("政务网带宽（Mbit/s）", "Gov bandwidth (Mbit/s)"),
        "internet_mbps": t("互联网带宽（Mbit/s）", "Internet bandwidth (Mbit/s)")}
    names: Dict[str, str] = {**text, "sites": t("中队数", "Sites")}
    for level, zh, en in ORG_LEVELS:
        names[schema.name_tag(level)] = t(zh, en)
    panel = table(t("采购缺口（按单位）", "Procurement per unit"), [target(
        f'SELECT {outer}, count("failed") AS "sites" FROM (SELECT {inner}, "failed" '
        f"FROM {schema.ident(schema.COMPLIANCE)} WHERE $timeFilter AND "
        f"{schema.tag_is(schema.RULE, schema.RULE_ALL)} AND {SITE} "
        f"{schema.group_by(schema.SITE, *LEVELS, *NAMES)} ORDER BY time DESC LIMIT 1) "
        f"{group} ORDER BY time DESC", table=True)],
        t("各中队最近一次评估中未达标项的缺口（同一采购可同时满足的规则取最大值），按支队、大队合计；"
          "末行为总计；无数据的中队不计入（没有证据）",
          "What the sites' newest evaluations say must be bought to pass (rules one purchase "
          "fixes count once), summed per detachment and battalion; the last row is the "
          "total; sites without data are not counted (no evidence)"),
        transformations=[rename(names, hide=("Time", *LEVELS))],
        overrides=[override(v, decimals=1 if k.endswith("mbps") else 0)
                   for k, v in text.items()])
    options: Any = panel["options"]
    options["footer"] = {"show": True, "reducer": ["sum"], "fields": list(text.values()),
                         "countRows": False}
    return panel
