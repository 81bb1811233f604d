"""`netroom versions` for people and programs: where an agent rollout stands.

Pure formatting of each site's AgentStates (collector.compliance.rollout):
per site, under its units (a subtotal per unit, a total), the version the
centre names, PCs on it among those reporting, and how many are pending,
updating, failed, rolled back, cannot update themselves or are silent; or,
with --failed, the PCs that failed, were rolled back or cannot update, and
why. Names, not ids; words in Chinese (default) or English. Reasons come
from agents: shown through grid's safe_text (tables) or escaped JSON,
never obeyed.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any, Mapping, Sequence

from collector.compliance import rollout
from collector.compliance.model import Org, Site
from collector.compliance.rollout import AgentState
from collector.report.format import grid, json_text, path_json, path_names, when
from collector.report.i18n import label
from netroom import schema

FORMATS = ("table", "json", "csv")

LABELS: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "versions_title": ("客户端版本与自动升级", "Agent versions and self-update"),
    "failed_title": ("升级失败、已回退或不支持自动升级的电脑",
                     "PCs whose update failed or was rolled back, or that cannot self-update"),
    "unit": ("所属单位", "Unit"), "site": ("站点", "Site"), "host": ("主机", "Host"),
    "hostname": ("计算机名", "Hostname"), "target": ("目标版本", "Target version"),
    "on_target": ("已是目标版本/上报", "On target/reporting"),
    "reporting": ("上报电脑", "Reporting"),
    "running": ("运行版本", "Running"), "versions": ("各版本台数", "PCs per version"),
    "update_version": ("本机收到的目标", "Target it was given"),
    "state": ("状态", "State"), "reason": ("原因", "Reason"),
    "seen_at": ("状态上报时间", "Status sent"),
    # collector.compliance.rollout.PHASES
    "phase_current": ("已是目标版本", "on target"),
    "phase_pending": ("待升级", "pending"),
    "phase_updating": ("升级中", "updating"),
    "phase_failed": ("升级失败", "failed"),
    "phase_rolled_back": ("已回退", "rolled back"),
    "phase_unsupported": ("不支持自动升级", "cannot self-update"),
    "phase_silent": ("失联", "silent"),
    "no_target": ("未指定", "none named"),
    "unknown": ("未知", "unknown"),
    "too_old": ("客户端版本过旧，不支持自动升级，请用安装包升级",
                "agent older than self-update: upgrade it with the installer"),
    "broken_n": ("{} 台电脑升级失败或已回退（netroom versions --failed 列出原因）",
                 "{} PCs failed or rolled back (netroom versions --failed lists why)"),
    "none_broken": ("没有升级失败或已回退的电脑", "No PC failed or rolled back"),
    "silent_note": ("失联：{days} 天内未收到状态或硬件信息；待升级：尚未收到新设置或未到检查时间",
                    "silent: no status or inventory in {days} days; pending: the new "
                    "settings or its next check have not come yet"),
    "no_pcs": ("所选站点没有电脑上报状态", "No PC of the chosen sites sent a status"),
}
# The counts' columns, in rollout.PHASES order but on target first.
COUNTED = (rollout.PENDING, rollout.UPDATING, rollout.FAILED, rollout.ROLLED_BACK,
           rollout.UNSUPPORTED, rollout.SILENT)
SITE_COLUMNS = ("unit", "site", "target", "on_target", *(f"phase_{p}" for p in COUNTED),
                "versions")
# CSV: on target and reporting apart (a spreadsheet reads "3/4" as a date).
SITE_CSV = ("unit", "site", "target", "phase_current", "reporting",
            *(f"phase_{p}" for p in COUNTED), "versions")
PC_COLUMNS = ("unit", "site", "host", "hostname", "state", "running", "target",
              "update_version", "reason", "seen_at")


def word(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    return label(key, lang) if pair is None else pair[lang == "en"]


def _counts(pcs: Sequence[AgentState], now_ms: int) -> dict[str, Any]:
    """PCs per phase, reporting (all but the silent), per version run and named."""
    phases = Counter(rollout.phase(a, now_ms) for a in pcs)
    return {"pcs": len(pcs), "reporting": len(pcs) - phases[rollout.SILENT],
            **{p: phases[p] for p in rollout.PHASES},
            "versions": dict(Counter(a.running or "" for a in pcs).most_common()),
            "targets": dict(Counter(a.target for a in pcs).most_common())}


def site_rows(org: Org, sites: Sequence[Site], agents: Mapping[str, Sequence[AgentState]],
              now_ms: int) -> list[dict[str, Any]]:
    """One dict per site in ``sites`` (tree order): ids and names, ``target``
    (the version its settings name, "" none), then ``_counts``' keys: pcs,
    reporting, one per rollout phase, versions and targets (PCs per version
    run and named: a ``hosts`` section may name another for some PCs)."""
    out = []
    for site in sites:
        pcs = agents.get(site.id, ())
        out.append({"site": site.id, "name": site.name, "path": path_json(org, site),
                    "unit": " / ".join(path_names(org, site)),
                    "target": rollout.target_of(site.settings, "", ""),
                    **_counts(pcs, now_ms)})
    return out


def pc_rows(org: Org, agents: Mapping[str, Sequence[AgentState]], now_ms: int, lang: str
            ) -> list[dict[str, Any]]:
    """One dict per PC that failed, was rolled back or cannot update itself
    (rollout.PROBLEMS), worst first, then in tree order and by host:
    PC_COLUMNS' keys (``state`` and ``reason`` in ``lang``), plus ids,
    ``phase`` and ``seen_ms``."""
    place = {node_id: i for i, node_id in enumerate(org.nodes)}
    order = {p: i for i, p in enumerate(rollout.PHASES)}
    out = []
    for site_id, pcs in agents.items():
        site = org.site(site_id)
        for a in pcs:
            phase = rollout.phase(a, now_ms)
            if phase not in rollout.PROBLEMS:
                continue
            out.append({
                "unit": " / ".join(path_names(org, site)) if site else "",
                "site": site.name if site else site_id, "site_id": site_id,
                "host": a.host, "hostname": a.hostname, "phase": phase,
                "state": word(f"phase_{phase}", lang), "running": a.running,
                "target": a.target, "update_version": a.version,
                "reason": word("too_old", lang) if rollout.too_old(a) else a.error,
                "seen_at": when(a.seen_ms, org).strftime("%Y-%m-%d %H:%M"),
                "seen_ms": a.seen_ms})
    return sorted(out, key=lambda r: (order[r["phase"]], place.get(r["site_id"], len(place)),
                                      r["host"]))


def broken(rows: Sequence[Mapping[str, Any]]) -> int:
    """PCs failed or rolled back in site_rows' rows."""
    return sum(r[p] for r in rows for p in rollout.BROKEN)


def render_sites(fmt: str, rows: list[dict[str, Any]], lang: str) -> str:
    """site_rows as ``fmt``: a table grouped under units (a subtotal per unit,
    a total), CSV of the sites, or JSON of everything."""
    total = _total(rows)
    if fmt == "json":
        return json_text({"title": word("versions_title", lang), "count": len(rows),
                          "rows": rows, "total": total}) + "\n"
    if fmt == "csv":
        return _csv([[word(c, lang) for c in SITE_CSV],
                     *([r["unit"], r["name"], r["target"], r[rollout.CURRENT], r["reporting"],
                        *(r[p] for p in COUNTED), _versions(r["versions"], lang)]
                       for r in rows)])
    table = [[word(c, lang) for c in SITE_COLUMNS]]
    units = [r["unit"] for r in rows]
    for i, r in enumerate(rows):
        table.append(_site_cells(r, lang))
        last = i + 1 == len(rows) or units[i + 1] != r["unit"]
        group = [x for x in rows if x["unit"] == r["unit"]]
        if last and len(group) > 1 and len(set(units)) > 1:
            table.append(_site_cells({**_total(group), "unit": r["unit"],
                                      "name": label("subtotal", lang)}, lang))
    if len(rows) > 1:
        table.append(_site_cells({**total, "unit": label("total", lang), "name": ""}, lang))
    n = broken(rows)
    lines = [word("versions_title", lang), "", *grid(table), ""]
    if not total["pcs"]:
        lines.append(word("no_pcs", lang))
    lines.append(word("broken_n", lang).format(n) if n else word("none_broken", lang))
    lines.append(word("silent_note", lang).format(days=rollout.SILENT_MS // schema.DAY_MS))
    return "\n".join(lines) + "\n"


def render_pcs(fmt: str, rows: list[dict[str, Any]], lang: str) -> str:
    """pc_rows as ``fmt``: a table, CSV or JSON of PC_COLUMNS (JSON: every key)."""
    if fmt == "json":
        return json_text({"title": word("failed_title", lang), "count": len(rows),
                          "rows": rows}) + "\n"
    cells = [[_text(r[c], c, lang) for c in PC_COLUMNS] for r in rows]
    if fmt == "csv":
        return _csv([[word(c, lang) for c in PC_COLUMNS], *cells])
    head = f"{word('failed_title', lang)}: {len(rows)}"
    if not rows:
        return f"{head}\n{label('none', lang)}\n"
    return "\n".join([head, *grid([[word(c, lang) for c in PC_COLUMNS], *cells])]) + "\n"


def _total(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(r[k] for r in rows)
                           for k in ("pcs", "reporting", *rollout.PHASES)}
    for key in ("versions", "targets"):
        c: Counter[str] = Counter()
        for r in rows:
            c.update(r[key])
        out[key] = dict(c.most_common())
    return out


def _site_cells(r: Mapping[str, Any], lang: str) -> list[str]:
    """A site's (or a subtotal's: no target) table cells; a count of 0 left
    blank, so the PCs needing a look stand out."""
    return [r["unit"] or label("na", lang), r["name"],
            _targets(r, lang) if "target" in r else "",
            f"{r[rollout.CURRENT]}/{r['reporting']}",
            *(str(r[p]) if r[p] else "" for p in COUNTED), _versions(r["versions"], lang)]


def _targets(r: Mapping[str, Any], lang: str) -> str:
    """The site's target, then the others its ``hosts`` sections name and on
    how many PCs, in brackets: "1.5.0 (1.6.0 on 2)"."""
    main = r["target"]
    others = [(v, n) for v, n in r["targets"].items() if v != main]
    text = main or word("no_target", lang)
    if not others:
        return text
    parts = [f"{v or word('no_target', lang)} {n} {label('pcs_unit', lang)}" if lang == "zh"
             else f"{v or word('no_target', lang)} on {n}" for v, n in others]
    return f"{text}（{'，'.join(parts)}）" if lang == "zh" else f"{text} ({', '.join(parts)})"


def _versions(versions: Mapping[str, int], lang: str) -> str:
    """PCs per running version, most first: "1.5.0: 40, 1.4.0: 2" (in Chinese
    with the PCs' measure word, joined by an enumeration comma)."""
    if lang == "zh":
        return "、".join(f"{v or word('unknown', lang)} {n}台" for v, n in versions.items())
    return ", ".join(f"{v or word('unknown', lang)}: {n}" for v, n in versions.items())


def _text(value: Any, column: str, lang: str) -> str:
    if column in ("running", "target", "update_version") and not value:
        return word("no_target", lang) if column != "running" else word("unknown", lang)
    return "" if value is None else str(value)


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()
