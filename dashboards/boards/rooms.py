"""Room opening for commanders: is every registered room open now, must it be.

Reads what the collector writes each evaluation (collector/store/writeback.py):
`room_state`, one point per registered site (closed rooms too): open (at
least the site's ``room.min_online`` room PCs online), required_now (now is
in its required opening hours), closed_since_ms, online, room_pcs,
min_online, with the site's name (tag site_name); `availability`, one point
per site and complete day (required_s, open_s). The room table lists every
room, closed-and-required first and red; "open today" is the share of
today's evaluations within the required hours that found the room open.
Room PCs online over time reads the per-unit 5-minute series
(`rollup`.`unit_metrics`, room_pcs: one line per battalion and network);
the daily open share reads `$daily` (the `forever` retention policy over
long ranges). Each room PC's status is on the PC board (pcs.py).
"""
from __future__ import annotations

from typing import List, Tuple

from collector.compliance.rules import RULES
from dashboards.model import (
    DAILY_VAR,
    NOT_AHEAD,
    SITE,
    UNIT,
    UNIT_ALIAS,
    UNIT_METRICS,
    UNIT_TAGS,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    in_rp,
    network_legends,
    org_vars,
    override,
    rename,
    rp_var,
    stat,
    table,
    target,
    thresholds,
    timeseries,
    value_map,
)
from netroom import schema

UID = "netroom-rooms"
ROOM_STATE = schema.ident(schema.ROOM_STATE)
SITE_NAME = schema.name_tag(schema.SITE)
BY_SITE = schema.group_by(schema.SITE)
BY_NAME = schema.group_by(schema.SITE, SITE_NAME)
# Each registered room's newest room_state (every evaluation writes one per
# site, closed rooms too): the point's own fields, never an older one's.
NOW = (f'SELECT "open", "required_now", "required_now" * (1 - "open") AS "alarm", '
       f'"online", "min_online", "room_pcs", "closed_since_ms" FROM {ROOM_STATE} '
       f"WHERE $timeFilter AND {NOT_AHEAD} AND {SITE} {BY_NAME} ORDER BY time DESC LIMIT 1")
LATEST = (f'SELECT last("open") AS "open", last("online") AS "online" FROM {ROOM_STATE} '
          f"WHERE $timeFilter AND {NOT_AHEAD} AND {SITE} {BY_SITE}")
DAYS = (f"FROM {schema.ident(schema.AVAILABILITY)} WHERE $timeFilter "
        f'AND "required_s" > 0 AND {SITE}')
DAILY_DAYS = (f"FROM {in_rp(DAILY_VAR, schema.AVAILABILITY)} WHERE $timeFilter "
              f'AND "required_s" > 0 AND {SITE}')
SHARE = '"open_s" / "required_s" * 100'
TODAY = "now/d"  # the room table's relative time: today so far (Grafana "Query options")


def target_percent() -> float:
    """room_open_all_day's default target, as %: colours, not verdicts (sites may differ)."""
    rule = next((r for r in RULES if r.NAME == "room_open_all_day"), None)
    return float(rule.DEFAULTS["target"]) * 100 if rule is not None else 95.0


def build(t: Tr) -> Json:
    g = Grid()
    goal = target_percent()
    state = t("按各网络室最近一次评估（每个评估周期一次，含已关闭的网络室）",
              "From each room's latest evaluation (every evaluation period, closed rooms too)")
    g.add(6, 4, stat(t("开放中的网络室", "Rooms open now"), [target(
        f'SELECT sum("open") AS "rooms" FROM ({LATEST})')],
        description=t("在线电脑数达到 min_online 的已登记网络室；", "Registered rooms with at "
                      "least their min_online room PCs online; ") + state,
        steps=[("red", None), ("green", 1)]))
    g.add(6, 4, stat(t("应开未开", "Closed, must be open"), [target(
        f'SELECT sum("alarm") AS "alarm" FROM ({NOW}) ORDER BY time DESC')],
        description=t("当前处于规定开放时段但未开放的网络室；", "Rooms closed now within their "
                      "required opening hours; ") + state,
        steps=[("green", None), ("red", 1)]))
    g.add(6, 4, stat(t("在线网络室电脑", "Room PCs online"), [target(
        f'SELECT sum("online") AS "pcs" FROM ({LATEST})')], description=state,
        steps=[("red", None), ("green", 1)]))
    g.add(6, 4, stat(t("最近一日平均开放率", "Mean open share, latest day"), [target(
        'SELECT mean("open_share") AS "open_share" FROM (SELECT last("open_s") / '
        f'last("required_s") * 100 AS "open_share" {DAYS} {BY_SITE})')],
        "percent", t("规定开放时段内有电脑在线的时间占比",
                     "Share of the required opening hours with PCs online"),
        steps=[("red", None), ("green", goal)], decimals=1))
    g.add(24, 12, _rooms_table(t, goal))
    g.add(24, 8, timeseries(t("各单位在线网络室电脑数", "Room PCs online per unit"), [target(
        f"SELECT mean({schema.ident(schema.ROOM_PCS)}) FROM {UNIT_METRICS} WHERE $timeFilter "
        f"AND {UNIT} {by_interval(*UNIT_TAGS, schema.NETWORK)} fill(0)",
        alias=f"{UNIT_ALIAS} $tag_network")], "none",
        t("每 5 分钟内有上报的网络室电脑（按大队、网络合计）；0 表示该单位没有开放的网络室；"
          "筛选支队、大队（单个中队见电脑明细）",
          "Room PCs that reported within each 5 minutes, summed per battalion and network; "
          "0 means none of the unit's rooms was open; filtered by detachment and battalion "
          "(one site is on PC details)"),
        interval="5m", lo=0, transformations=network_legends(t)))
    g.add(24, 9, timeseries(t("每日开放率", "Daily open share"), [target(
        f'SELECT {SHARE} AS "open_share" {DAILY_DAYS} {BY_NAME}', alias=f"$tag_{SITE_NAME}")],
        "percent", t("规定开放时段内有电脑在线的时间占比",
                     "Share of the required opening hours with PCs online"),
        interval="", bars=True, lo=0, hi=100))
    return dashboard(UID, t, t("网络室开放", "Room opening"),
                     t("每个网络室是否正在开放、是否应当开放、今日与最近一日的开放率",
                       "Is each room open now, must it be, today's and the latest day's "
                       "open share"),
                     g, [*org_vars(t), rp_var(t, DAILY_VAR, "daily")],
                     time_from="now-7d")


def _rooms_table(t: Tr, goal: float) -> Json:
    """Every registered room: now (A), today so far (B), the latest day (C),
    joined by site; closed-and-required rooms first, in red."""
    name, alarm = t("中队", "Site"), t("应开未开", "Closed, must be open")
    today, latest = t("今日开放率", "Open today"), t("最近一日开放率", "Latest day")
    is_open, required = t("当前", "Now"), t("规定时段", "Required now")
    since, online = t("关闭时间", "Closed since"), t("在线电脑", "Online")
    names = {SITE_NAME: name, "alarm": alarm, "open": is_open, "required_now": required,
             "closed_since_ms": since, "online": online, "min_online": t("最少在线", "Min online"),
             "room_pcs": t("网络室电脑", "Room PCs"), "today_share": today,
             "latest_share": latest, "day": t("日期", "Day")}
    panel = table(t("各网络室当前状态", "Every room now"), [
        target(NOW, "A", table=True),
        target(f'SELECT mean("open") * 100 AS "today_share" FROM {ROOM_STATE} '
               f'WHERE $timeFilter AND "required_now" = 1 AND {SITE} {BY_SITE}', "B", table=True),
        target(f'SELECT last("day") AS "day", last("open_s") / last("required_s") * 100 '
               f'AS "latest_share" FROM {schema.ident(schema.AVAILABILITY)} WHERE '
               f'time > now() - 3d AND "required_s" > 0 AND {SITE} {BY_SITE}', "C",
               table=True)],
        t("每个已登记的网络室（含已关闭的）；应开未开（规定开放时段内未开放）的排在最前并标红。"
          "开放：在线网络室电脑数达到该中队的 min_online。今日开放率：今日规定时段内各次评估中"
          "开放的比例；最近一日：最近一个完整的、有规定时段的日子",
          "Every registered room, closed ones too; rooms closed within their required "
          "hours come first, in red. Open: at least the site's min_online room PCs online. "
          "Open today: the share of today's evaluations within the required hours that "
          "found the room open; latest day: the latest complete day with required hours"),
        transformations=[
            {"id": "joinByField", "options": {"byField": schema.SITE, "mode": "outer"}},
            rename(names, hide=("Time", "Time 1", "Time 2", "Time 3", schema.SITE)),
            {"id": "sortBy", "options": {"sort": [{"field": alarm, "desc": True}]}},
        ],
        overrides=[
            override(alarm, mappings=_flag(t, ("是", "Yes", "red"), ("否", "No", "green")),
                     custom__cellOptions={"type": "color-background"}),
            override(is_open, mappings=_flag(t, ("开放", "Open", "green"),
                                             ("关闭", "Closed", "orange")),
                     custom__cellOptions={"type": "color-background"}),
            override(required, mappings=_flag(t, ("是", "Yes", "text"),
                                              ("否", "No", "text"))),
            override(since, unit="dateTimeAsLocal"),
            *(override(col, unit="percent", decimals=1,
                       custom__cellOptions={"type": "color-background"},
                       thresholds=thresholds(("red", None), ("green", goal)))
              for col in (today, latest)),
        ])
    panel["timeFrom"] = TODAY  # now, and today so far (C reads its own days)
    panel["options"]["sortBy"] = [{"displayName": alarm, "desc": True}]
    return panel


def _flag(t: Tr, one: Tuple[str, str, str], zero: Tuple[str, str, str]) -> List[Json]:
    """Value mappings for a 1/0 field."""
    return value_map(t, {"1": one, "0": zero})
