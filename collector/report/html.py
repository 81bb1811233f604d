"""The printable A4 report (HTML) for meetings, from templates/report.html.

Chinese labels by default; print it from a browser or render it headless
(``chromium --headless --print-to-pdf``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from collector.compliance.evaluate import Evaluation, checked, passing, procurement, rollups
from collector.compliance.model import Org
from collector.compliance.rules.base import WAIVED, Result
from collector.report import register
from collector.report.format import (
    buy_cells,
    buy_head,
    buy_keys,
    by_rule,
    clone_text,
    clones,
    columns,
    figures,
    off_settings,
    path_names,
    safe_text,
    settings_summary,
    settings_text,
    settings_word,
    share_text,
    site_why,
    site_word,
    state,
    when,
    why,
    word,
)
from collector.report.i18n import label

LANDSCAPE_OVER = 5  # rule columns that still fit a portrait A4 page
SETTINGS_CLS = {"stale": "nodata", "refused": "fail"}  # a PC's state cell; none: plain


def to_html(ev: Evaluation, org: Org, lang: str) -> str:
    env = Environment(loader=PackageLoader("collector.report", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("report.html").render(context(ev, org, lang))


def context(ev: Evaluation, org: Org, lang: str) -> dict[str, Any]:
    """Every figure the template shows, already formatted."""
    cols = columns(ev, lang)
    sites = []
    for v in ev.verdicts:
        res = by_rule(v)
        sites.append({
            "id": v.site.id, "name": v.site.name, "path": " / ".join(path_names(org, v.site)),
            "status": v.status, "word": site_word(v, lang), "cls": state_of_site(v.status),
            "note": site_why(v, lang),
            "cells": [_cell(res.get(c.rule), c.unit, lang) for c in cols],
        })
    units = [{"name": u.node.name, "level": label(u.node.level, lang), "sites": u.sites,
              "passing": share_text(u.passing, u.sites), "failing": u.failing,
              "no_data": u.no_data,
              # Per rule: passing / with a verdict, and the sites without data below it.
              "rules": [{"share": share_text(passing(u.rules[c.rule]), checked(u.rules[c.rule])),
                         "no_data": u.rules[c.rule]["no_data"]} if c.rule in u.rules
                        else {"share": label("na", lang), "no_data": 0} for c in cols]}
             for u in rollups(org, ev.verdicts)]
    buy = procurement(org, ev.verdicts)
    keys = buy_keys(buy)
    count = {s: sum(v.status == s for v in ev.verdicts) for s in ("pass", "fail", "no_data")}
    return {
        "lang": "zh-CN" if lang == "zh" else "en",
        "t": lambda key: label(key, lang),
        "generated": _stamp(when(ev.now_ms, org)),
        "total": len(ev.verdicts), "passing": count["pass"], "failing": count["fail"],
        "no_data": count["no_data"],
        "columns": [c.title for c in cols], "sites": sites, "units": units,
        # Wide tables get a landscape page rather than one word per line.
        "landscape": len(cols) > LANDSCAPE_OVER,
        # Grouped by unit: each unit's sites, then its subtotal; the grand total last.
        "buy_head": buy_head(keys, lang) if buy else [],
        "buy_rows": [{"kind": p.kind, "id": p.node.id if p.kind == "site" and p.node else "",
                      "cells": buy_cells(p, keys, lang, " / ")} for p in buy],
        "replace": register.replace_rows(ev.replace, org, lang),
        "replace_title": register.word("replace_title", lang),
        "replace_head": [register.word(k, lang) for k in ("unit", "site", "host", "shortfalls")],
        "unregistered": [{"site": s.site, "host": s.host, "network": label(s.network, lang),
                          "role": label(s.role, lang),
                          "seen": f"{when(s.last_seen_ms, org):%Y-%m-%d %H:%M}"}
                         for s in ev.unregistered],
        # PCs cloned from one image; agents' hostnames shown as escapes (clone_text).
        "clones": [{"site": site.id, "name": site.name, "text": clone_text(c, lang)}
                   for site, c in clones(ev)],
        # PCs not on their site's settings; the agents' reasons and keys as
        # escapes (settings_text), then autoescaped.
        "settings": [{"site": site.id, "name": site.name, "host": s.host,
                      "word": settings_word(s, lang), "cls": SETTINGS_CLS.get(s.state, ""),
                      "text": settings_text(s, lang)} for site, s in off_settings(ev)],
        "settings_summary": settings_summary(ev, lang),
    }


def state_of_site(status: str) -> str:
    """CSS class of a site's verdict cell."""
    return {"pass": "pass", "fail": "fail"}.get(status, "nodata")


def _cell(r: Result | None, unit: str, lang: str) -> dict[str, str]:
    if r is None:
        return {"word": label("na", lang), "figures": "", "cls": "na", "note": ""}
    # A waiver's reason, or why the rule is not a pass; agents' text (isolation
    # reasons) is shown as escapes, never obeyed.
    note = r.waived if r.status == WAIVED else why(r, lang)
    return {"word": word(r, lang), "figures": figures(r, unit, lang), "cls": state(r),
            "note": safe_text(note)}


def _stamp(t: datetime) -> str:
    """2025-06-01 09:30 (UTC+08:00): an offset, since "CST" means several zones."""
    z = t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M} (UTC{z[:3]}:{z[3:]})" if z else f"{t:%Y-%m-%d %H:%M}"
