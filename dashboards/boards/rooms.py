"""Room opening: is each network room open now, and was it open all day.

"Open now" counts room PCs (role=room) whose latest `metrics` point is
younger than ``$window`` (and not stamped more than 10 minutes ahead: a
broken clock's point is nobody's latest). `availability` holds one point per site and day
(at the day's start; fields day, required_s, open_s: seconds of the required
opening hours, and of those the room was open; collector/heartbeats.py).
Days with nothing required (days off) are left out. Room PCs online over
time reads the per-unit 5-minute series (`rollup`.`unit_metrics`, room_pcs:
one line per battalion and network, not per site); the daily open share
reads `$daily` (the `forever` retention policy over long ranges). Each room
PC's status is on the PC board (pcs.py), one site at a time.
"""
from __future__ import annotations

from collector.compliance.rules import RULES
from dashboards.model import (
    DAILY_VAR,
    LEVELS,
    NOT_AHEAD,
    SITE,
    UNIT,
    UNIT_ALIAS,
    UNIT_METRICS,
    Grid,
    Json,
    Tr,
    by_interval,
    custom_var,
    dashboard,
    in_rp,
    org_vars,
    override,
    rename,
    rp_var,
    stat,
    table,
    target,
    thresholds,
    timeseries,
)
from netroom import schema

UID = "netroom-rooms"
# Every metrics message carries collect_ms: it is the heartbeat (collector/heartbeats.py).
METRICS = schema.ident(schema.METRICS)
ROOM = schema.tag_is(schema.ROLE, "room")
BY_SITE = schema.group_by(schema.SITE)
ONLINE = (f'SELECT last("collect_ms") AS "beat" FROM {METRICS} WHERE time > now() - $window '
          f"AND {NOT_AHEAD} AND {ROOM} AND {SITE} {schema.BY_SITE_HOST}")
DAYS = (f"FROM {schema.ident(schema.AVAILABILITY)} WHERE $timeFilter "
        f'AND "required_s" > 0 AND {SITE}')
DAILY_DAYS = (f"FROM {in_rp(DAILY_VAR, schema.AVAILABILITY)} WHERE $timeFilter "
              f'AND "required_s" > 0 AND {SITE}')
SHARE = '"open_s" / "required_s" * 100'


def target_percent() -> float:
    """room_open_all_day's default target, as %: colours, not verdicts (sites may differ)."""
    rule = next((r for r in RULES if r.NAME == "room_open_all_day"), None)
    return float(rule.DEFAULTS["target"]) * 100 if rule is not None else 95.0


def build(t: Tr) -> Json:
    g = Grid()
    goal = target_percent()
    now = t("最近 $window 内有上报", "reported within the last $window")
    g.add(8, 4, stat(t("开放中的网络室", "Rooms open now"), [target(
        f'SELECT count("online") AS "rooms" FROM (SELECT count("beat") AS "online" '
        f"FROM ({ONLINE}) {BY_SITE})")],
        description=t("至少一台网络室电脑", "At least one room PC ") + now,
        steps=[("red", None), ("green", 1)]))
    g.add(8, 4, stat(t("在线网络室电脑", "Room PCs online"), [target(
        f'SELECT count("beat") AS "pcs" FROM ({ONLINE})')], description=now,
        steps=[("red", None), ("green", 1)]))
    g.add(8, 4, stat(t("最近一日平均开放率", "Mean open share, latest day"), [target(
        'SELECT mean("open_share") AS "open_share" FROM (SELECT last("open_s") / '
        f'last("required_s") * 100 AS "open_share" {DAYS} {BY_SITE})')],
        "percent", t("规定开放时段内有电脑在线的时间占比",
                     "Share of the required opening hours with PCs online"),
        steps=[("red", None), ("green", goal)], decimals=1))
    site = t("中队", "Site")
    g.add(12, 9, table(t("当前各中队在线网络室电脑", "Room PCs online now, per site"), [target(
        f'SELECT count("beat") AS "online" FROM ({ONLINE}) {BY_SITE}', table=True)],
        t("未列出的中队当前没有在线的网络室电脑", "Sites not listed have no room PC online"),
        transformations=[rename({"site": site, "online": t("在线台数", "Online")})]))
    share = t("开放率", "Open share")
    g.add(12, 9, table(t("最近一日开放情况", "Latest day per site"), [target(
        'SELECT last("day") AS "day", last("open_s") / 3600 AS "open_h", '
        'last("required_s") / 3600 AS "required_h", '
        f'last("open_s") / last("required_s") * 100 AS "open_share" {DAYS} {BY_SITE}',
        table=True)],
        t("颜色按默认目标值；各中队的结论见达标总览",
          "Colours use the default target; each site's verdict is on Compliance overview"),
        transformations=[rename({"site": site, "day": t("日期", "Day"),
                                 "open_h": t("开放小时", "Open (h)"),
                                 "required_h": t("规定小时", "Required (h)"),
                                 "open_share": share})],
        overrides=[override(share, unit="percent", decimals=1,
                            custom__cellOptions={"type": "color-background"},
                            thresholds=thresholds(("red", None), ("green", goal))),
                   override(t("开放小时", "Open (h)"), decimals=1),
                   override(t("规定小时", "Required (h)"), decimals=1)]))
    g.add(24, 8, timeseries(t("各单位在线网络室电脑数", "Room PCs online per unit"), [target(
        f"SELECT mean({schema.ident(schema.ROOM_PCS)}) FROM {UNIT_METRICS} WHERE $timeFilter "
        f"AND {UNIT} {by_interval(*LEVELS, schema.NETWORK)} fill(0)",
        alias=f"{UNIT_ALIAS} $tag_network")], "none",
        t("每 5 分钟内有上报的网络室电脑（按大队、网络合计）；0 表示该单位没有开放的网络室；"
          "筛选支队、大队（单个中队见电脑明细）",
          "Room PCs that reported within each 5 minutes, summed per battalion and network; "
          "0 means none of the unit's rooms was open; filtered by detachment and battalion "
          "(one site is on PC details)"),
        interval="5m", lo=0))
    g.add(24, 9, timeseries(t("每日开放率", "Daily open share"), [target(
        f'SELECT {SHARE} AS "open_share" {DAILY_DAYS} {BY_SITE}', alias="$tag_site")],
        "percent", t("规定开放时段内有电脑在线的时间占比",
                     "Share of the required opening hours with PCs online"),
        interval="", bars=True, lo=0, hi=100))
    window = custom_var("window", t("在线判定窗口", "Online window"),
                        ("2m", "5m", "10m", "30m"), "5m")
    return dashboard(UID, t, t("网络室开放", "Room opening"),
                     t("网络室是否正在开放、是否全天开放",
                       "Is each room open now, was it open all day"),
                     g, [*org_vars(t), window, rp_var(t, DAILY_VAR, "daily")],
                     time_from="now-7d")
