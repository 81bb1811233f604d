"""Reports for people and programs: table, json, csv and html.

Pure formatting of an Evaluation (collector.compliance). Rule columns come
from the rule registry (TITLE, UNIT) in its order, for the rules that apply
to at least one reported site; the procurement list's columns are the
shortfall keys found. Words come from collector.i18n. Ancestor names are
shown without the root (the bureau the whole report is about).
"""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Callable

from collector.compliance import Evaluation, Verdict, rollups
from collector.i18n import label
from collector.rules import Result, registry
from collector.sites import Org, Site

FORMATS = ("table", "json", "csv", "html")


@dataclass(frozen=True)
class Column:
    rule: str
    title: str
    unit: str  # see collector.rules: "" count, "share", or a unit suffix


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


def to_json(ev: Evaluation, org: Org, lang: str) -> str:
    titles = {c.rule: c.title for c in columns(ev, lang)}
    doc = {
        "generated_at": when(ev.now_ms, org).isoformat(timespec="seconds"),
        "sites": [{
            "site": v.site.id, "name": v.site.name,
            "path": [{"level": lv, "id": i, "name": org.nodes[i].name} for lv, i in v.site.path],
            "ok": v.ok,
            "rules": [{"rule": r.rule, "title": titles[r.rule], "required": _num(r.required),
                       "actual": _num(r.actual), "ok": r.ok,
                       "shortfall": {k: _num(n) for k, n in r.shortfall.items()},
                       "waived": r.waived, "detail": r.detail} for r in v.results],
            "needs": {k: _num(n) for k, n in v.needs.items()},
        } for v in ev.verdicts],
        "rollups": [{
            "id": u.node.id, "name": u.node.name, "level": u.node.level,
            "sites": u.sites, "passing": u.passing,
            "rules": {rule: {"passing": ok, "checked": n} for rule, (ok, n) in u.rules.items()},
        } for u in rollups(org, ev.verdicts)],
        "unregistered": [{
            "site": s.site, "host": s.host, "network": s.network, "role": s.role,
            "last_seen": when(s.last_seen_ms, org).isoformat(timespec="seconds"),
        } for s in ev.unregistered],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def to_csv(ev: Evaluation, org: Org, lang: str) -> str:
    """One row per site and rule (long format: filter or pivot in the spreadsheet)."""
    keys = list(dict.fromkeys(k for v in ev.verdicts for r in v.results for k in r.shortfall))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([label(k, lang) for k in ("site", "name", "path", "site_result", "rule")]
               + [label(k, lang) for k in ("result", "actual", "required")]
               + [label(k, lang) for k in keys] + [label("waived_reason", lang)])
    cols = {c.rule: c for c in columns(ev, lang)}
    for v in ev.verdicts:
        site_word = label("pass" if v.ok else "fail", lang)
        for r in v.results:
            c = cols[r.rule]
            w.writerow([v.site.id, v.site.name, "/".join(path_names(org, v.site)), site_word,
                        c.title, word(r, lang), number(r.actual, c.unit),
                        number(r.required, c.unit)]
                       + [number(r.shortfall[k]) if k in r.shortfall else "" for k in keys]
                       + [r.waived])
    return out.getvalue()


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _grid(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns that stay aligned with Chinese (double-width) text."""
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(t + " " * (widths[i] - _width(t)) for i, t in enumerate(r)).rstrip()
            for r in rows]


def to_table(ev: Evaluation, org: Org, lang: str) -> str:
    t: Callable[[str], str] = lambda key: label(key, lang)  # noqa: E731
    cols = columns(ev, lang)
    passing = sum(v.ok for v in ev.verdicts)
    lines = [f"{t('title')}  {t('generated_at')} {when(ev.now_ms, org):%Y-%m-%d %H:%M}",
             f"{t('sites')} {len(ev.verdicts)}  {t('passing')} {passing}  "
             f"{t('failing')} {len(ev.verdicts) - passing}", ""]
    rows = [[t("site"), t("name"), t("path"), t("result"), *(c.title for c in cols)]]
    for v in ev.verdicts:
        res = by_rule(v)
        rows.append([v.site.id, v.site.name, "/".join(path_names(org, v.site)),
                     t("pass" if v.ok else "fail"),
                     *(cell(res.get(c.rule), c.unit, lang) for c in cols)])
    lines += [*_grid(rows), f"({t('cell_note')})", ""]
    units = rollups(org, ev.verdicts)
    if units:
        rows = [[t("unit"), t("level"), t("site_count"), t("passing"), *(c.title for c in cols)]]
        for u in units:
            rows.append([u.node.name, t(u.node.level), str(u.sites), share_text(u.passing, u.sites),
                         *(share_text(*u.rules[c.rule]) if c.rule in u.rules else t("na")
                           for c in cols)])
        lines += [f"{t('rollup')} ({t('rollup_note')})", *_grid(rows), ""]
    lines += [t("procurement"), *_grid(procurement(ev, lang)), ""]
    lines.append(t("unregistered"))
    if ev.unregistered:
        rows = [[t("site"), t("host"), t("network"), t("role"), t("last_seen")]]
        rows += [[s.site, s.host, t(s.network), t(s.role),
                  f"{when(s.last_seen_ms, org):%Y-%m-%d %H:%M}"] for s in ev.unregistered]
        lines += _grid(rows)
    else:
        lines.append(t("none"))
    return "\n".join(lines) + "\n"


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


def render(fmt: str, ev: Evaluation, org: Org, lang: str) -> str:
    if fmt == "html":
        from collector.report_html import to_html

        return to_html(ev, org, lang)
    formats: dict[str, Callable[[Evaluation, Org, str], str]] = {
        "table": to_table, "json": to_json, "csv": to_csv}
    return formats[fmt](ev, org, lang)
