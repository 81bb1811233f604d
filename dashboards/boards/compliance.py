"""Compliance overview: every site against the notice's rules (`compliance` points).

The collector writes one point per site and rule (fields status, no_data
1/0, and where the rule applies ok 1/0, required, actual, shortfall) and one
per site with rule=all (status, ok, no_data, failed) at every evaluation;
panels read the latest in the time range. A verdict is one of five: pass,
fail, no data, not applicable, waived (docs/compliance.md); sites without
data are counted apart, never as passing. The pass rates per unit and per
rule read `unit_compliance` instead, the same verdicts counted per unit and
rule at each evaluation (sites, passing, failing, no_data, waived): one
series per unit and rule, however many sites (1,000 sites' own points every
5 minutes took 7.6 s over a day). So they filter by unit, not by site. The pass rate
over time reads `$daily`: over long ranges each unit's daily means (the
`forever` retention policy, collector/influx/retention.py).
"""
from __future__ import annotations

from types import ModuleType
from typing import Dict, List

from collector.compliance.rules import RULES
from dashboards.model import (
    DAILY_VAR,
    MAX_DATA_POINTS,
    ORG_LEVELS,
    SITE,
    STATUS,
    UNIT,
    UNIT_NAMES,
    Grid,
    Json,
    Tr,
    by_interval,
    dashboard,
    in_rp,
    org_vars,
    override,
    rename,
    rp_var,
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
LATEST_ALL = (f'SELECT last("ok") AS "ok", last("no_data") AS "no_data" {IN_RANGE} '
              f"AND {schema.tag_is(schema.RULE, ALL)} AND {SITE} {schema.group_by(schema.SITE)}")
SITE_NAME = schema.name_tag(schema.SITE)
BY_SITE_RULE = schema.group_by(schema.SITE, SITE_NAME, schema.RULE)
LEVELS = tuple(key for key, _, _ in ORG_LEVELS)  # tag keys of the org tree
SITES, PASSING = schema.ident(schema.SITES_APPLYING), schema.ident(schema.PASSING)
# A rule that applies to none of the chosen units' sites has no pass rate (not 0 %).
APPLIES = f"{SITES} > 0"


def rule_titles(t: Tr) -> Dict[str, str]:
    """Rule id -> title in ``t``'s language, for every registered rule."""
    titles = {r.NAME: t(r.TITLE["zh"], r.TITLE["en"]) for r in RULES}
    titles[ALL] = t("全部规则", "All rules")
    return titles


def unit_text(t: Tr, rule: ModuleType) -> str:
    """How required, actual and shortfall of ``rule`` read (its UNIT)."""
    unit = getattr(rule, "UNIT", "")
    if unit == "share":
        return t("比例 0–1", "fraction 0-1")
    return unit or t("台", "PCs")


def build(t: Tr) -> Json:
    g = Grid()
    titles = rule_titles(t)
    latest = t("按各中队最近一次评估", "From each site's latest evaluation")
    for width, title, select, unit, steps, about in (
        (5, t("已评估中队", "Sites evaluated"), 'count("ok") AS "sites"', "none",
         [("blue", None)], latest),
        (5, t("全部达标", "Passing every rule"), 'sum("ok") AS "passing"', "none",
         [("green", None)], latest),
        (5, t("未达标", "Failing"), 'count("ok") - sum("ok") - sum("no_data") AS "failing"',
         "none", [("green", None), ("red", 1)], latest),
        (5, t("无数据", "No data"), 'sum("no_data") AS "no_data"', "none",
         [("green", None), ("orange", 1)],
         t("没有达标或未达标的证据（如站点从未上报、未配置检测），不计为达标",
           "No evidence either way (a site that never reported, checks not configured); "
           "never counted as passing")),
        (4, t("达标率", "Pass rate"), 'mean("ok") * 100 AS "pass_rate"', "percent",
         [("red", None), ("orange", 50), ("green", 100)],
         t("全部达标的中队占已评估中队的比例（无数据的中队不计为达标）",
           "Sites passing every rule, of the sites evaluated (no data never passes)")),
    ):
        g.add(width, 4, stat(title, [target(f"SELECT {select} FROM ({LATEST_ALL})")], unit,
                             about, steps=steps))
    site_col = t("中队", "Site")
    g.add(24, 10, table(
        t("各中队达标情况", "Sites × rules"),
        [target(f'SELECT last("status") AS "status" {IN_RANGE} AND {SITE} {BY_SITE_RULE}',
                table=True)],
        t("每格为该规则最近一次评估结论：达标、未达标、无数据、不适用或豁免；原因见 netroom report",
          "Each cell is the rule's latest verdict for the site: pass, fail, no data, n/a or "
          "waived; netroom report says why"),
        mappings=value_map(t, STATUS), cells="color-background",
        transformations=[
            {"id": "groupingToMatrix", "options": {"columnField": "rule", "rowField": SITE_NAME,
                                                   "valueField": "status",
                                                   "emptyValue": "null"}},
            rename({f"{SITE_NAME}\\rule": site_col, **titles}, hide=()),
        ],
        overrides=[override(site_col, custom__cellOptions={"type": "auto"})]))
    units = t("；按单位汇总（中队筛选不作用于本图）",
              "; counted per unit (the site filter does not apply here)")
    newest = ", ".join(f"last({schema.ident(f)}) AS {schema.ident(f)}"
                       for f in (schema.SITES_APPLYING, schema.PASSING, schema.FAILING,
                                 schema.NO_DATA_SITES))
    g.add(12, 8, table(
        t("各单位达标率", "Pass rate by unit"),
        # Each unit's newest counts (every field is on every point: one point's).
        # GROUP BY * inside: a tree deeper than ORG_LEVELS still sums each
        # lowest unit once.
        [target(f"SELECT sum({PASSING}) * 100 / sum({SITES}) AS \"pass_rate\", "
                f"sum({PASSING}) AS {PASSING}, "
                f"sum({schema.ident(schema.FAILING)}) AS {schema.ident(schema.FAILING)}, "
                f"sum({schema.ident(schema.NO_DATA_SITES)}) AS "
                f"{schema.ident(schema.NO_DATA_SITES)}, sum({SITES}) AS {SITES} "
                f"FROM (SELECT {newest} FROM {schema.ident(schema.UNIT_COMPLIANCE)} "
                f"WHERE $timeFilter AND {schema.tag_is(schema.RULE, ALL)} AND {UNIT} "
                f"GROUP BY *) {schema.group_by(*LEVELS, *UNIT_NAMES)}", table=True)],
        t("全部规则达标的中队所占比例；无数据的中队另计，不计为达标",
          "Share of sites passing every rule; sites without data counted apart, never as "
          "passing") + units,
        # Units by name (the write-back's name tags); the ids only filter.
        transformations=[rename({**{schema.name_tag(lv): t(zh, en) for lv, zh, en in ORG_LEVELS},
                                 "pass_rate": t("达标率", "Pass rate"),
                                 "passing": t("达标中队", "Passing"),
                                 "failing": t("未达标中队", "Failing"),
                                 "no_data": t("无数据中队", "No data"),
                                 "sites": t("中队数", "Sites")}, hide=("Time", *LEVELS))],
        overrides=[override(t("达标率", "Pass rate"), unit="percent", decimals=0)]))
    trend = timeseries(
        t("各规则达标率趋势", "Pass rate per rule"),
        [target(f"SELECT sum({PASSING}) * 100 / sum({SITES}) "
                f"FROM {in_rp(DAILY_VAR, schema.UNIT_COMPLIANCE)} WHERE $timeFilter "
                f"AND {APPLIES} AND {UNIT} {by_interval(schema.RULE)} fill(none)",
                alias="$tag_rule")],
        "percent", t("达标中队占比（不适用的不计入，无数据的计为未达标）",
                     "Share of sites passing (n/a left out, no data counted as not passing)")
        + units,
        interval="5m", lo=0, hi=100,
        overrides=[override(rule, displayName=title) for rule, title in titles.items()])
    # InfluxDB sums each unit and rule per bucket before adding the units up:
    # 100 units x 10 rules x 288 five-minute buckets took 1.1-1.4 s over a day
    # at 1,000 sites, 144 buckets 0.55-0.73 s (docs/benchmarks.md). So a day
    # is drawn in 10-minute buckets (two evaluations each), 12 hours in 5.
    trend["maxDataPoints"] = MAX_DATA_POINTS // 2
    g.add(12, 8, trend)
    g.add(24, 10, table(
        t("达标明细与缺口", "Details and shortfall"),
        # The newest point's own fields: a no-data verdict has no actual, and
        # last() per field would show an older evaluation's.
        [target('SELECT "status", "required", "actual", "shortfall" '
                f"{IN_RANGE} AND {schema.ident(schema.RULE)} != '{ALL}' AND {SITE} "
                f"{BY_SITE_RULE} ORDER BY time DESC LIMIT 1", table=True)],
        t("要求值、实际值与缺口的单位见规则名后的括号（台、Mbit/s，或 0–1 的比例）；"
          "无数据时没有实际值；缺口为达标还需增加的数量",
          "Required, actual and shortfall are in the unit after the rule's name (PCs, "
          "Mbit/s, or a 0-1 fraction); no actual without data; shortfall is what must be "
          "added to pass"),
        transformations=[rename({SITE_NAME: site_col, "rule": t("规则（单位）", "Rule (unit)"),
                                 "required": t("要求", "Required"),
                                 "actual": t("实际", "Actual"), "status": t("结论", "Verdict"),
                                 "shortfall": t("缺口", "Shortfall")},
                                hide=("Time", "site"))],
        overrides=[
            override(t("规则（单位）", "Rule (unit)"), mappings=_names(
                {r.NAME: f"{titles[r.NAME]}（{unit_text(t, r)}）" if t.lang == "zh"
                 else f"{titles[r.NAME]} ({unit_text(t, r)})" for r in RULES})),
            override(t("结论", "Verdict"), mappings=value_map(t, STATUS),
                     custom__cellOptions={"type": "color-background"}),
        ]))
    return dashboard(UID, t, t("网络室达标总览", "Compliance overview"),
                     t("各中队对照通知要求的达标情况", "Every site against the notice's rules"),
                     g, [*org_vars(t), rp_var(t, DAILY_VAR, "daily")])


def _names(titles: Dict[str, str]) -> List[Json]:
    return [{"type": "value", "options": {
        k: {"text": v, "index": i} for i, (k, v) in enumerate(titles.items())}}]
