"""Reports for people and programs: table, json, csv and html.

Each format is one function of (Evaluation, Org, lang); the cells and numbers
come from collector.report.format, the words from collector.report.i18n.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Callable

from collector.compliance.evaluate import Evaluation, rollups
from collector.compliance.model import Org
from collector.report.format import (
    _num,
    by_rule,
    cell,
    columns,
    grid,
    number,
    path_names,
    procurement,
    share_text,
    when,
    word,
)
from collector.report.html import to_html
from collector.report.i18n import label

FORMATS = ("table", "json", "csv", "html")


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
    lines += [*grid(rows), f"({t('cell_note')})", ""]
    units = rollups(org, ev.verdicts)
    if units:
        rows = [[t("unit"), t("level"), t("site_count"), t("passing"), *(c.title for c in cols)]]
        for u in units:
            rows.append([u.node.name, t(u.node.level), str(u.sites), share_text(u.passing, u.sites),
                         *(share_text(*u.rules[c.rule]) if c.rule in u.rules else t("na")
                           for c in cols)])
        lines += [f"{t('rollup')} ({t('rollup_note')})", *grid(rows), ""]
    lines += [t("procurement"), *grid(procurement(ev, lang)), ""]
    lines.append(t("unregistered"))
    if ev.unregistered:
        rows = [[t("site"), t("host"), t("network"), t("role"), t("last_seen")]]
        rows += [[s.site, s.host, t(s.network), t(s.role),
                  f"{when(s.last_seen_ms, org):%Y-%m-%d %H:%M}"] for s in ev.unregistered]
        lines += grid(rows)
    else:
        lines.append(t("none"))
    return "\n".join(lines) + "\n"


def render(fmt: str, ev: Evaluation, org: Org, lang: str) -> str:
    formats: dict[str, Callable[[Evaluation, Org, str], str]] = {
        "table": to_table, "json": to_json, "csv": to_csv, "html": to_html}
    return formats[fmt](ev, org, lang)
