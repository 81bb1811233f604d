"""Formatting shared by every report format: cells, numbers, columns, grids.

Pure formatting of an Evaluation (collector.compliance.evaluate). Rule columns come
from the rule registry (TITLE, UNIT) in its order, for the rules that apply
to at least one reported site; the procurement list's columns are the
shortfall keys found. Words come from collector.report.i18n. Ancestor names are
shown without the root (the bureau the whole report is about).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo

from collector.compliance.evaluate import Evaluation, Verdict
from collector.compliance.model import Org, Site
from collector.compliance.rules import registry
from collector.compliance.rules.base import Result
from collector.report.i18n import label


@dataclass(frozen=True)
class Column:
    rule: str
    title: str
    unit: str  # see collector.compliance.rules: "" count, "share", or a unit suffix

def columns(ev: Evaluation, lang: str) -> list[Column]:
    used = {r.rule for v in ev.verdicts for r in v.results}
    return [Column(m.NAME, m.TITLE.get(lang, m.NAME), getattr(m, "UNIT", ""))
            for m in registry() if m.NAME in used]

def number(value: float, unit: str = "") -> str:
    """For people: 0.4 -> "40%" (share), 3.0 -> "3", 12.5 + Mbit/s -> "12.5 Mbit/s"."""
    if unit == "share":
        return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text

def word(r: Result, lang: str) -> str:
    return label("waived" if r.waived else "pass" if r.ok else "fail", lang)

def figures(r: Result, unit: str) -> str:
    """actual/required: "1/3", "33.3%/50%", "12.5/20 Mbit/s"."""
    if unit in ("", "share"):
        return f"{number(r.actual, unit)}/{number(r.required, unit)}"
    return f"{number(r.actual)}/{number(r.required)} {unit}"

def cell(r: Result | None, unit: str, lang: str) -> str:
    if r is None:
        return label("na", lang)
    return f"{word(r, lang)} {figures(r, unit)}"

def state(r: Result | None) -> str:
    """CSS class of a cell: na, waived, pass, fail."""
    return "na" if r is None else "waived" if r.waived else "pass" if r.ok else "fail"

def path_names(org: Org, site: Site) -> list[str]:
    return [org.nodes[i].name for _, i in site.path[1:]]

def need_keys(ev: Evaluation) -> list[str]:
    keys: dict[str, None] = {}
    for v in ev.verdicts:
        keys.update(dict.fromkeys(v.needs))
    return list(keys)

def when(ms: int, org: Org) -> datetime:
    """``ms`` in the first site's room time zone (the bureau's), else local time."""
    tz: tzinfo | None = None
    sites = org.sites
    if sites:
        try:
            import zoneinfo

            tz = zoneinfo.ZoneInfo(sites[0].room.timezone)
        except ImportError:  # Python 3.8
            tz = None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(tz)

def by_rule(v: Verdict) -> dict[str, Result]:
    return {r.rule: r for r in v.results}

def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

def grid(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns that stay aligned with Chinese (double-width) text."""
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(t + " " * (widths[i] - _width(t)) for i, t in enumerate(r)).rstrip()
            for r in rows]

def share_text(ok: int, n: int) -> str:
    return f"{ok}/{n} {round(100 * ok / n)}%" if n else "—"

def procurement(ev: Evaluation, lang: str) -> list[list[str]]:
    """Header, one row per site that needs something, and the totals row."""
    keys = need_keys(ev)
    rows = [[label("site", lang), label("name", lang), *(label(k, lang) for k in keys)]]
    totals = dict.fromkeys(keys, 0.0)
    for v in ev.verdicts:
        n = v.needs
        if n:
            rows.append([v.site.id, v.site.name, *(number(n.get(k, 0)) for k in keys)])
            for k in keys:
                totals[k] += n.get(k, 0)
    if len(rows) == 1:
        return [[label("nothing_needed", lang)]]
    rows.append([label("total", lang), "", *(number(totals[k]) for k in keys)])
    return rows
