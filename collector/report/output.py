"""Reports for people and programs: table, json, csv and html.

Each format is one function of (Evaluation, Org, lang); the cells and numbers
come from collector.report.format, the words from collector.report.i18n.
"""
from __future__ import annotations

import csv
import importlib
import io
from typing import Any, Callable, TextIO

from collector.compliance.evaluate import (
    Evaluation,
    Purchase,
    Rollup,
    checked,
    passing,
    procurement,
    rollups,
)
from collector.compliance.model import Node, Org
from collector.compliance.rules.base import PASS, Reason
from collector.report.format import (
    _num,
    bracket,
    by_rule,
    cell,
    clone_text,
    clones,
    columns,
    detail,
    grid,
    json_chunks,
    json_rows,
    off_settings,
    path_json,
    path_names,
    plain,
    procurement_rows,
    rollup_cell,
    rule_units,
    safe_text,
    settings_summary,
    settings_text,
    settings_word,
    share_text,
    site_why,
    site_word,
    titles,
    unit_name,
    when,
    why,
    word,
    zone,
)
from collector.report.i18n import label, reason
from collector.report.register import replace_grid, replace_rows

FORMATS = ("table", "json", "csv", "html")


def _opt(value: float | None) -> float | int | None:
    return None if value is None else _num(value)


def _reasons(items: tuple[Reason, ...], lang: str) -> list[dict[str, object]]:
    return [{"key": x.key, "params": dict(x.params), "text": reason(x.key, x.params, lang)}
            for x in items]


def _rollup_json(u: Rollup) -> dict[str, object]:
    return {
        "id": u.node.id, "name": u.node.name, "level": u.node.level,
        "sites": u.sites, "passing": u.passing, "failing": u.failing, "no_data": u.no_data,
        "rules": {rule: {"passing": passing(n), "failing": n["fail"], "no_data": n["no_data"],
                         "not_applicable": n["not_applicable"], "waived": n["waived"],
                         "checked": checked(n)} for rule, n in u.rules.items()},
    }


def _path_json(nodes: tuple[Node, ...]) -> list[dict[str, str]]:
    return [{"level": n.level, "id": n.id, "name": n.name} for n in nodes]


def _purchase_json(p: Purchase) -> dict[str, object]:
    node = p.node
    return {"kind": p.kind, "id": None if node is None else node.id,
            "name": None if node is None else node.name,
            "level": None if node is None else node.level, "path": _path_json(p.path),
            "sites": p.sites, "needs": {k: _num(n) for k, n in p.needs.items()}}


def to_json(ev: Evaluation, org: Org, lang: str) -> str:
    """For programs: keys in English, statuses as codes, texts in ``lang``.

    Every rule of every site is listed, with ``status`` (pass, fail, no_data,
    not_applicable, waived) beside ``ok`` (pass only), ``unit`` of its
    ``required`` and ``actual`` (rule_units: pcs, share, Mbit/s); ``detail`` is the
    reasons and notes in ``lang``, ``reasons`` the same reasons as keys and
    parameters. ``clones``: the site's PCs cloned from one image, to be fixed
    (``shared`` is ``hostname`` or ``machine_id``; see Clone). ``settings``:
    every PC of the site that sent an online status in the freshness window,
    with ``state`` (current, stale, refused, none; netroom.central.SettingsState),
    the version it runs (``running``, ``""``: none) and the one it should
    (``expected``), why it refused (``error``), the keys its own file sets
    (``local``) and that status's time (``seen``); the table and HTML list
    only the PCs that are not ``current``. ``procurement``: what to buy,
    grouped by unit (``kind`` site, unit: a subtotal after its sites, total).
    """
    return json_rows(json_doc(ev, org, lang)) + "\n"


def json_doc(ev: Evaluation, org: Org, lang: str) -> dict[str, Any]:
    """to_json's document (its ``sites``: a generator, made as it is written)."""
    names = titles(lang)
    units = rule_units()
    tz = zone(org)
    return {
        "generated_at": when(ev.now_ms, org, tz).isoformat(timespec="seconds"),
        # A generator: each site is encoded as it is made (40,000 PCs' rows).
        "sites": ({
            "site": v.site.id, "name": v.site.name,
            "path": path_json(org, v.site),
            # ok: true only for pass (a waived rule is "waived", not ok).
            "status": v.status, "ok": v.status == PASS, "detail": site_why(v, lang),
            "reasons": _reasons(v.reasons, lang),
            "rules": [{"rule": r.rule, "title": names.get(r.rule, r.rule), "status": r.status,
                       "ok": r.status == PASS, "unit": units.get(r.rule, "pcs"),
                       "required": _opt(r.required), "actual": _opt(r.actual),
                       "shortfall": {k: _num(n) for k, n in r.shortfall.items()},
                       "waived": r.waived, "detail": detail(r, lang),
                       "reasons": _reasons(r.reasons, lang)} for r in v.results],
            "needs": {k: _num(n) for k, n in v.needs.items()},
            "clones": [{"shared": c.shared, "value": c.value, "hosts": list(c.hosts),
                        "host_ids": list(c.host_ids)} for c in v.clones],
            "settings": [{"host": s.host, "state": s.state, "running": s.running,
                          "expected": s.expected, "error": s.error, "local": s.local,
                          "seen": when(s.seen_ms, org, tz).isoformat(timespec="seconds")}
                         for s in v.settings],
        } for v in ev.verdicts),
        "rollups": [_rollup_json(u) for u in rollups(org, ev.verdicts)],
        # Grouped by unit: sites, each unit's subtotal after them, the grand total.
        "procurement": [_purchase_json(p) for p in procurement(org, ev.verdicts)],
        # Only with a min_spec somewhere in the tree (docs/inventory.md).
        "to_replace": replace_rows(ev.replace, org, lang),
        "unregistered": [{
            "site": s.site, "host": s.host, "network": s.network, "role": s.role,
            "last_seen": when(s.last_seen_ms, org, tz).isoformat(timespec="seconds"),
        } for s in ev.unregistered],
    }


def to_csv(ev: Evaluation, org: Org, lang: str) -> str:
    """One row per site and rule switched on (long format: filter or pivot in
    the spreadsheet); the last column says why a rule is not a pass. Figures
    are numbers, their unit in the header: actual and required in one pair
    of columns per unit (台 / PCs, %, Mbit/s), empty for the other rules'
    units; the "to add" columns likewise. Clones and PCs on stale settings
    are not verdicts and have no row here: see the table, JSON or HTML."""
    keys = list(dict.fromkeys(k for v in ev.verdicts for r in v.results for k in r.shortfall))
    cols = {c.rule: c for c in columns(ev, lang)}
    units = list(dict.fromkeys(c.unit for c in cols.values()))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([label(k, lang) for k in ("site", "name", "path", "site_result", "rule",
                                         "result")]
               + [label(k, lang).format(unit_name(u, lang))
                  for u in units for k in ("actual_in", "required_in")]
               + [label(k, lang) for k in keys] + [label("waived_reason", lang),
                                                    label("reason", lang)])
    empty: list[str | float | int] = ["", ""] * len(units)
    for v in ev.verdicts:
        for r in v.results:
            if r.rule not in cols or r.disabled:
                continue
            c = cols[r.rule]
            figs = list(empty)
            i = 2 * units.index(c.unit)
            figs[i:i + 2] = ["" if x is None else plain(x, c.unit) for x in (r.actual,
                                                                           r.required)]
            w.writerow([v.site.id, v.site.name, "/".join(path_names(org, v.site)),
                        site_word(v, lang), c.title, word(r, lang), *figs]
                       + [plain(r.shortfall[k], "") if k in r.shortfall else "" for k in keys]
                       # Agents' text (isolation reasons) is shown, never obeyed.
                       + [r.waived, safe_text(why(r, lang))])
    return out.getvalue()


def to_table(ev: Evaluation, org: Org, lang: str) -> str:
    t: Callable[[str], str] = lambda key: label(key, lang)  # noqa: E731
    cols = columns(ev, lang)
    count = {s: sum(v.status == s for v in ev.verdicts) for s in ("pass", "fail", "no_data")}
    lines = [f"{t('title')}  {t('generated_at')} {when(ev.now_ms, org):%Y-%m-%d %H:%M}",
             f"{t('sites')} {len(ev.verdicts)}  {t('passing')} {count['pass']}  "
             f"{t('failing')} {count['fail']}  {t('no_data')} {count['no_data']}", ""]
    rows = [[t("site"), t("name"), t("path"), t("result"), *(c.title for c in cols)]]
    for v in ev.verdicts:
        res = by_rule(v)
        rows.append([v.site.id, v.site.name, "/".join(path_names(org, v.site)),
                     site_word(v, lang) + bracket(site_why(v, lang), lang),
                     *(cell(res.get(c.rule), c.unit, lang) for c in cols)])
    lines += [*grid(rows), f"({t('cell_note')})", ""]
    units = rollups(org, ev.verdicts)
    if units:
        rows = [[t("unit"), t("level"), t("site_count"), t("passing"), t("failing"),
                 t("no_data"), *(c.title for c in cols)]]
        for u in units:
            rows.append([u.node.name, t(u.node.level), str(u.sites),
                         share_text(u.passing, u.sites), str(u.failing), str(u.no_data),
                         *(rollup_cell(u.rules[c.rule], lang) if c.rule in u.rules else t("na")
                           for c in cols)])
        lines += [f"{t('rollup')} ({t('rollup_note')})", *grid(rows), ""]
    lines += [t("procurement"), *grid(procurement_rows(ev, org, lang)), ""]
    lines += replace_grid(ev.replace, org, lang)
    lines.append(t("unregistered"))
    if ev.unregistered:
        rows = [[t("site"), t("host"), t("network"), t("role"), t("last_seen")]]
        rows += [[s.site, s.host, t(s.network), t(s.role),
                  f"{when(s.last_seen_ms, org):%Y-%m-%d %H:%M}"] for s in ev.unregistered]
        lines += grid(rows)
    else:
        lines.append(t("none"))
    lines += ["", *_settings_lines(ev, lang), "", t("clones")]
    found = clones(ev)
    if found:
        rows = [[t("site"), t("name"), t("clone_pcs")]]
        rows += [[site.id, site.name, clone_text(c, lang)] for site, c in found]
        lines += [*grid(rows), f"({t('clones_hint')})"]
    else:
        lines.append(t("none"))
    return "\n".join(lines) + "\n"


def _settings_lines(ev: Evaluation, lang: str) -> list[str]:
    """The PCs not on their site's settings, how many are, what to do."""
    t: Callable[[str], str] = lambda key: label(key, lang)  # noqa: E731
    lines = [t("settings")]
    off = off_settings(ev)
    if off:
        rows = [[t("site"), t("name"), t("host"), t("settings_state"), t("detail")]]
        rows += [[site.id, site.name, s.host, settings_word(s, lang), settings_text(s, lang)]
                 for site, s in off]
        lines += grid(rows)
    else:
        lines.append(t("none"))
    summary = settings_summary(ev, lang)
    if summary:
        lines.append(f"({summary})")
    if off:
        lines.append(f"({t('settings_hint')})")
    return lines


def render(fmt: str, ev: Evaluation, org: Org, lang: str) -> str:
    if fmt == "html":  # jinja2 costs a report ~30 ms of start-up: only for HTML
        html: Callable[[Evaluation, Org, str], str] = importlib.import_module(
            "collector.report.html").to_html
        return html(ev, org, lang)
    formats: dict[str, Callable[[Evaluation, Org, str], str]] = {
        "table": to_table, "json": to_json, "csv": to_csv}
    return formats[fmt](ev, org, lang)


def write(fmt: str, ev: Evaluation, org: Org, lang: str, out: TextIO) -> None:
    """render() into ``out``; JSON line by line (a bureau's is ~10 MB: never
    held whole, nor its rows)."""
    if fmt != "json":
        out.write(render(fmt, ev, org, lang))
        return
    out.writelines(json_chunks(json_doc(ev, org, lang)))
    out.write("\n")
