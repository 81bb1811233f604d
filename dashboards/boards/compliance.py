"""Compliance overview: every site against the notice's rules (`compliance` points).

The collector writes one point per site and rule (fields required, actual,
ok 1/0, shortfall) and one per site with rule=all (ok, failed) at every
evaluation; panels read the latest in the time range.
"""
from __future__ import annotations

from typing import Dict, List

from collector.compliance.rules import RULES
from dashboards.model import (
    ORG_LEVELS,
    PASS_FAIL,
    SITE,
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

UID = "netroom-compliance"
ALL = schema.RULE_ALL  # the rule tag of a site's overall point
IN_RANGE = f"FROM {schema.ident(schema.COMPLIANCE)} WHERE $timeFilter"
LATEST_ALL = (f'SELECT last("ok") AS "ok" {IN_RANGE} '
              f"AND {schema.tag_is(schema.RULE, ALL)} AND {SITE} {schema.group_by(schema.SITE)}")
BY_SITE_RULE = schema.group_by(schema.SITE, schema.RULE)
LEVELS = tuple(key for key, _, _ in ORG_LEVELS)  # tag keys of the org tree


def rule_titles(t: Tr) -> Dict[str, str]:
    """Rule id -> title in ``t``'s language, for every registered rule."""
    titles = {r.NAME: t(r.TITLE["zh"], r.TITLE["en"]) for r in RULES}
    titles[ALL] = t("全部规则", "All rules")
    return titles


def build(t: Tr) -> Json:
    g = Grid()
    titles = rule_titles(t)
    for title, select, unit, steps in (
        (t("已评估中队", "Sites evaluated"), 'count("ok") AS "sites"', "none", [("blue", None)]),
        (t("全部达标", "Passing every rule"), 'sum("ok") AS "passing"', "none",
         [("green", None)]),
        (t("未达标", "Failing"), 'count("ok") - sum("ok") AS "failing"', "none",
         [("green", None), ("red", 1)]),
        (t("达标率", "Pass rate"), 'mean("ok") * 100 AS "pass_rate"', "percent",
         [("red", None), ("orange", 50), ("green", 100)]),
    ):
        g.add(6, 4, stat(title, [target(f"SELECT {select} FROM ({LATEST_ALL})")], unit,
                         t("按各中队最近一次评估", "From each site's latest evaluation"),
                         steps=steps))
    site_col = t("中队", "Site")
    g.add(24, 10, table(
        t("各中队达标情况", "Sites × rules"),
        [target(f'SELECT last("ok") AS "ok" {IN_RANGE} AND {SITE} {BY_SITE_RULE}', table=True)],
        t("每格为该规则最近一次评估结论", "Each cell is the rule's latest verdict for the site"),
        mappings=value_map(t, PASS_FAIL), cells="color-background",
        transformations=[
            {"id": "groupingToMatrix", "options": {"columnField": "rule", "rowField": "site",
                                                   "valueField": "ok", "emptyValue": "null"}},
            rename({"site\\rule": site_col, **titles}, hide=()),
        ],
        overrides=[override(site_col, custom__cellOptions={"type": "auto"})]))
    g.add(12, 8, table(
        t("各单位达标率", "Pass rate by unit"),
        [target('SELECT mean("ok") * 100 AS "pass_rate", sum("ok") AS "passing", '
                f'count("ok") AS "sites" FROM (SELECT last("ok") AS "ok" {IN_RANGE} '
                f"AND {schema.tag_is(schema.RULE, ALL)} AND {SITE} "
                f"{schema.group_by(schema.SITE, *LEVELS)}) {schema.group_by(*LEVELS)}",
                table=True)],
        t("全部规则达标的中队所占比例", "Share of sites passing every rule"),
        transformations=[rename({"detachment": t("支队", "Detachment"),
                                 "battalion": t("大队", "Battalion"),
                                 "pass_rate": t("达标率", "Pass rate"),
                                 "passing": t("达标中队", "Passing"),
                                 "sites": t("中队数", "Sites")})],
        overrides=[override(t("达标率", "Pass rate"), unit="percent", decimals=0)]))
    g.add(12, 8, timeseries(
        t("各规则达标率趋势", "Pass rate per rule"),
        [target(f'SELECT mean("ok") * 100 {IN_RANGE} '
                f"AND {SITE} {by_interval(schema.RULE)} fill(none)", alias="$tag_rule")],
        "percent", t("达标中队占比", "Share of sites passing"), interval="5m", lo=0, hi=100,
        overrides=[override(rule, displayName=title) for rule, title in titles.items()]))
    g.add(24, 10, table(
        t("达标明细与缺口", "Details and shortfall"),
        [target('SELECT last("required") AS "required", last("actual") AS "actual", '
                f'last("ok") AS "ok", last("shortfall") AS "shortfall" {IN_RANGE} '
                f"AND {schema.ident(schema.RULE)} != '{ALL}' AND {SITE} {BY_SITE_RULE}",
                table=True)],
        t("要求值与实际值（占比类规则为 0–1 的比例）；缺口为达标还需增加的数量",
          "Required and actual (share rules as a 0-1 fraction); shortfall is what must "
          "be added to pass"),
        transformations=[rename({"site": site_col, "rule": t("规则", "Rule"),
                                 "required": t("要求", "Required"),
                                 "actual": t("实际", "Actual"), "ok": t("结论", "Verdict"),
                                 "shortfall": t("缺口", "Shortfall")})],
        overrides=[
            override(t("规则", "Rule"), mappings=_names(titles)),
            override(t("结论", "Verdict"), mappings=value_map(t, PASS_FAIL),
                     custom__cellOptions={"type": "color-background"}),
        ]))
    return dashboard(UID, t, t("网络室达标总览", "Compliance overview"),
                     t("各中队对照通知要求的达标情况", "Every site against the notice's rules"),
                     g, org_vars(t))


def _names(titles: Dict[str, str]) -> List[Json]:
    return [{"type": "value", "options": {
        k: {"text": v, "index": i} for i, (k, v) in enumerate(titles.items())}}]
