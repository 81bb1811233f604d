"""The printable A4 report (HTML) for meetings, from templates/report.html.

Chinese labels by default; print it from a browser or render it headless
(``chromium --headless --print-to-pdf``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from collector.compliance.evaluate import Evaluation, rollups
from collector.compliance.model import Org
from collector.compliance.rules.base import Result
from collector.report.format import (
    by_rule,
    columns,
    figures,
    path_names,
    procurement,
    share_text,
    state,
    when,
    word,
)
from collector.report.i18n import label

LANDSCAPE_OVER = 5  # rule columns that still fit a portrait A4 page


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
            "ok": v.ok,
            "cells": [_cell(res.get(c.rule), c.unit, lang) for c in cols],
        })
    units = [{"name": u.node.name, "level": label(u.node.level, lang), "sites": u.sites,
              "passing": share_text(u.passing, u.sites),
              "rules": [share_text(*u.rules[c.rule]) if c.rule in u.rules else label("na", lang)
                        for c in cols]}
             for u in rollups(org, ev.verdicts)]
    buy = procurement(ev, lang)
    passing = sum(v.ok for v in ev.verdicts)
    return {
        "lang": "zh-CN" if lang == "zh" else "en",
        "t": lambda key: label(key, lang),
        "generated": _stamp(when(ev.now_ms, org)),
        "total": len(ev.verdicts), "passing": passing,
        "failing": len(ev.verdicts) - passing,
        "columns": [c.title for c in cols], "sites": sites, "units": units,
        # Wide tables get a landscape page rather than one word per line.
        "landscape": len(cols) > LANDSCAPE_OVER,
        # procurement() gives a lone "nothing needed" row when no site lacks anything.
        "buy_head": buy[0] if len(buy) > 1 else [], "buy_rows": buy[1:-1],
        "buy_total": buy[-1] if len(buy) > 1 else [],
        "unregistered": [{"site": s.site, "host": s.host, "network": label(s.network, lang),
                          "role": label(s.role, lang),
                          "seen": f"{when(s.last_seen_ms, org):%Y-%m-%d %H:%M}"}
                         for s in ev.unregistered],
    }


def _cell(r: Result | None, unit: str, lang: str) -> dict[str, str]:
    if r is None:
        return {"word": label("na", lang), "figures": "", "cls": "na", "note": ""}
    return {"word": word(r, lang), "figures": figures(r, unit), "cls": state(r),
            "note": r.waived}


def _stamp(t: datetime) -> str:
    """2025-06-01 09:30 (UTC+08:00): an offset, since "CST" means several zones."""
    z = t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M} (UTC{z[:3]}:{z[3:]})" if z else f"{t:%Y-%m-%d %H:%M}"
