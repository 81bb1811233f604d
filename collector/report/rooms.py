"""The tables of `netroom availability` and `netroom isolation`, for people.

Pure formatting of the rows collector/cli/rooms.py reads (one dict per room
or per gov PC; their keys are listed in docs/availability.md): names, not
ids, and words in ``lang``. Agents' text (isolation reasons) is worded by
i18n.agent_text and shown through grid's safe_text, never obeyed.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from collector.compliance.rules.base import FAIL, NO_DATA, PASS
from collector.report.format import bracket, grid
from collector.report.i18n import SEPARATOR, agent_text, label, reason

# A gov PC's isolation state, worst first (as gov_isolation judges it).
ISOLATION_ORDER = {FAIL: 0, NO_DATA: 1, PASS: 2}
_WORD = {FAIL: "violated", NO_DATA: "no_data", PASS: "sealed"}
_WHY = {"not_configured": "isolation_not_configured_pc", "no_report": "isolation_no_report_pc"}


def day_why(no_data: str | None, lang: str) -> str:
    """Why a room's day has no data: before its first report (首次上报前), or no
    room PC heartbeat (网络室电脑无心跳上报); "" when it has data."""
    if no_data is None:
        return ""
    return label(no_data, lang) if no_data == "before_first_report" else reason(no_data, {},
                                                                               lang)


def unit_text(path: Sequence[Mapping[str, Any]], lang: str) -> str:
    """The ancestors' names without the root (the bureau): "一支队/一大队"; "—"
    for a site right under the root, 未登记 for one missing from the tree."""
    if not path:
        return label("not_in_tree", lang)
    return "/".join(str(p["name"]) for p in path[1:]) or label("na", lang)


def _pct(x: float | None, lang: str) -> str:
    return label("day_off", lang) if x is None else f"{x:.1%}"


def _now(r: Mapping[str, Any], lang: str) -> str:
    if r["now"] == "open":
        return f"{label('open_now', lang)} " + label("online_of", lang).format(
            r["online"], r["room_pcs"])
    if r["now"] == NO_DATA:
        return label("no_data", lang)
    if r["closed_since"]:
        return label("closed_since", lang).format(r["closed_since"])
    return label("closed_now", lang)


def availability_table(rows: list[dict[str, Any]], lang: str) -> str:
    """Title, how many rooms are closed while required open, then one line per
    room in the rows' order (closed and required first)."""
    head = [label(k, lang) for k in ("path", "site", "now", "must_open", "date",
                                     "required_h", "open_h", "open_share")]
    head += [label("rolling_share", lang).format(rows[0]["rolling_days"] if rows else 7),
             label("result", lang)]
    table = [head]
    for r in rows:
        nothing = r["no_data"] is not None  # no evidence that day: no hours, no share
        why = day_why(r["no_data"], lang)
        table.append([
            unit_text(r["path"], lang), r["name"], _now(r, lang),
            label("yes" if r["required_now"] else "no", lang), r["date"],
            f"{r['required_s'] / 3600:.1f}",
            label("na", lang) if nothing else f"{r['open_s'] / 3600:.1f}",
            label("no_data", lang) if nothing else _pct(r["open_share"], lang),
            label("no_data", lang) if r["rolling_share"] is None and r["rolling_unknown"]
            else _pct(r["rolling_share"], lang),
            label(r["status"], lang) + bracket(why, lang)])
    closed = sum(r["now"] == "closed" and r["required_now"] for r in rows)
    lines = [label("availability_title", lang), ""]
    if closed:
        lines += [label("closed_required_n", lang).format(closed), ""]
    return "\n".join([*lines, *grid(table)]) + "\n"


def isolation_detail(r: Mapping[str, Any], lang: str) -> str:
    """Why a gov PC is not sealed: no data's why, then its reasons in ``lang``."""
    why = [label(_WHY[r["no_data"]], lang)] if r["no_data"] else []
    text = agent_text(r["reasons"], lang)
    return SEPARATOR[lang].join([*why, text] if text else why)


def isolation_table(rows: list[dict[str, Any]], all_pcs: bool, days: float, lang: str) -> str:
    """The PCs not passing (``all_pcs``: every gov PC), then what they add up to."""
    shown = rows if all_pcs else [r for r in rows if r["status"] != PASS]
    n = {s: sum(r["status"] == s for r in rows) for s in ISOLATION_ORDER}
    lines = [label("isolation_title", lang), ""]
    if shown:
        table = [[label(k, lang) for k in ("site", "path", "host", "result", "reasons",
                                           "reported_at")]]
        for r in shown:
            table.append([r["name"], unit_text(r["path"], lang), r["host"],
                          label(_WORD[r["status"]], lang), isolation_detail(r, lang),
                          r["reported_at"] or label("na", lang)])
        lines += [*grid(table), ""]
    if not rows:
        lines.append(label("no_reports", lang).format(f"{days:g}"))
        return "\n".join(lines) + "\n"
    if n[FAIL]:
        reported = sum(r["reported_at"] is not None for r in rows)
        lines.append(label("isolation_summary", lang).format(n[FAIL], reported))
    if n[NO_DATA]:
        parts = [label(f"isolation_{k}_n", lang).format(c) for k, c in (
            ("not_configured", sum(r["no_data"] == "not_configured" for r in rows)),
            ("no_report", sum(r["no_data"] == "no_report" for r in rows))) if c]
        lines.append(label("isolation_no_data", lang).format(
            n[NO_DATA], ("，" if lang == "zh" else ", ").join(parts)))
    # "No gov PC can reach the internet" only when every gov PC showed it.
    if not n[FAIL] and not n[NO_DATA]:
        lines.append(label("no_violation", lang))
    elif not n[FAIL] and n[PASS]:
        lines.append(label("no_violation_known", lang).format(n[PASS]))
    return "\n".join(lines) + "\n"
