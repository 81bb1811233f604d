"""Formatting shared by every report format: cells, numbers, columns, grids.

Pure formatting of an Evaluation (collector.compliance.evaluate). Rule columns come
from the rule registry (TITLE, UNIT) in its order, for the rules switched on
for at least one reported site; the procurement list's columns are the
shortfall keys found. Words and reasons come from collector.report.i18n.
Ancestor names are shown without the root (the bureau the whole report is
about).
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Iterator, Mapping

import orjson

from collector.compliance.evaluate import (
    Evaluation,
    Purchase,
    Verdict,
    checked,
    passing,
    procurement,
)
from collector.compliance.facts import Clone
from collector.compliance.model import Org, Site
from collector.compliance.rules import registry
from collector.compliance.rules.base import FAIL, NO_DATA, PASS, WAIVED, Reason, Result
from collector.report.i18n import SEPARATOR, label, reasons
from netroom.central import SettingsState


@dataclass(frozen=True)
class Column:
    rule: str
    title: str
    unit: str  # see collector.compliance.rules: "" count, "share", or a unit suffix

def columns(ev: Evaluation, lang: str) -> list[Column]:
    """The rules switched on for at least one reported site, in RULES order."""
    used = {r.rule for v in ev.verdicts for r in v.results if not r.disabled}
    return [Column(m.NAME, m.TITLE.get(lang, m.NAME), getattr(m, "UNIT", ""))
            for m in registry() if m.NAME in used]

def titles(lang: str) -> dict[str, str]:
    """Every rule's title in ``lang``."""
    return {m.NAME: m.TITLE.get(lang, m.NAME) for m in registry()}

def rule_units() -> dict[str, str]:
    """Every rule's unit for programs: ``pcs`` (a count of PCs), ``share`` (a
    fraction, 0.5 = 50 %) or the rule's UNIT (``Mbit/s``)."""
    return {m.NAME: getattr(m, "UNIT", "") or "pcs" for m in registry()}

def number(value: float, unit: str = "") -> str:
    """For people: 0.4 -> "40%" (share), 3.0 -> "3", 12.5 + Mbit/s -> "12.5 Mbit/s"."""
    if unit == "share":
        return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text

def word(r: Result, lang: str) -> str:
    """The verdict: 达标 / 未达标 / 无数据 / 不适用 / 豁免 (pass, FAIL, no data, n/a, waived)."""
    return label(r.status, lang)

def unit_name(unit: str, lang: str) -> str:
    """A rule's UNIT for people: a count is of PCs (台 / PCs), a share is in
    %, anything else (Mbit/s) as it is."""
    return label("pcs_unit", lang) if unit == "" else "%" if unit == "share" else unit

def plain(value: float, unit: str) -> float | int:
    """A figure as a number for programs, in unit_name's unit: a share in % (33.33)."""
    return _num(round(value * 100, 2) if unit == "share" else round(value, 4))

def figures(r: Result, unit: str, lang: str) -> str:
    """actual/required with its unit: "1/3 台" ("1/3 PCs"), "33.3%/50%",
    "12.5/20 Mbit/s"; "" for a result without evidence (no data, not
    applicable): there is nothing to compare."""
    if r.status not in (PASS, FAIL, WAIVED) or r.actual is None or r.required is None:
        return ""
    if unit == "share":
        return f"{number(r.actual, unit)}/{number(r.required, unit)}"
    return f"{number(r.actual)}/{number(r.required)} {unit_name(unit, lang)}"

def said(items: tuple[Reason, ...], lang: str) -> str:
    """Reasons in ``lang``, joined (by a full-width semicolon in Chinese)."""
    return reasons(((x.key, x.params) for x in items), lang)

def why(r: Result, lang: str) -> str:
    """Why a result is not a pass (its reasons); "" for a pass or a waiver."""
    return said(r.reasons, lang)

def detail(r: Result, lang: str) -> str:
    """Everything a result says: its reasons, then its notes."""
    return said((*r.reasons, *r.notes), lang)

def bracket(text: str, lang: str) -> str:
    """" (text)", in full-width brackets in Chinese; "" for no text."""
    if not text:
        return ""
    return f"（{text}）" if lang == "zh" else f" ({text})"

def cell(r: Result | None, unit: str, lang: str) -> str:
    """A table cell: verdict, figures, why in brackets ("FAIL 1/3 PCs (2 gov PCs short)",
    "no data (internet: no speed test in 24 h)"; Chinese by default)."""
    if r is None:
        return label("na", lang)
    fig = figures(r, unit, lang)
    return f"{word(r, lang)}{' ' + fig if fig else ''}{bracket(why(r, lang), lang)}"

def state(r: Result | None) -> str:
    """CSS class of a cell: na (none, not applicable), nodata, waived, pass, fail."""
    if r is None:
        return "na"
    return {NO_DATA: "nodata", WAIVED: "waived", PASS: "pass", FAIL: "fail"}.get(r.status, "na")

def site_word(v: Verdict, lang: str) -> str:
    """A site's verdict: 达标 / 未达标 / 无数据."""
    return label(v.status, lang)

def site_why(v: Verdict, lang: str) -> str:
    """Why the whole site has no data ("" unless it is silent)."""
    return said(v.reasons, lang)

def path_names(org: Org, site: Site) -> list[str]:
    return [org.nodes[i].name for _, i in site.path[1:]]


def path_json(org: Org, site: Site) -> list[dict[str, str]]:
    """The site's units, root first, as JSON outputs give them: level, id, name."""
    return [{"level": lv, "id": i, "name": org.nodes[i].name} for lv, i in site.path]

def zone(org: Org) -> tzinfo | None:
    """The first site's room time zone (the bureau's); None: local time."""
    sites = org.sites
    if sites:
        try:
            import zoneinfo

            return zoneinfo.ZoneInfo(sites[0].room.timezone)
        except ImportError:  # Python 3.8
            return None
    return None


def when(ms: int, org: Org, tz: tzinfo | None = None) -> datetime:
    """``ms`` in ``tz``, else in the first site's room time zone, else local time."""
    tz = tz or zone(org)
    if tz is not None:
        return datetime.fromtimestamp(ms / 1000, tz)
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(None)

def by_rule(v: Verdict) -> dict[str, Result]:
    return {r.rule: r for r in v.results}

def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value

# Characters a terminal acts on instead of showing (agents' text is not
# trusted): C0 and C1 controls (ESC, CR, BS, DEL, CSI...), format
# characters (bidi overrides and isolates, zero-width ones), line and
# paragraph separators, lone surrogates. Letters, CJK text, symbols and
# spaces (ideographic included) are kept.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_SUSPECT = re.compile(r"[^\x20-\x7e]")  # ASCII printables are always safe
_BEYOND_ASCII = re.compile(r"[^\x00-\x7e]+")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE

def _visible(m: re.Match[str]) -> str:
    ch = m.group()
    if not _unsafe(ch):
        return ch
    n = ord(ch)
    return _SHORT.get(ch) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000
                              else f"\\U{n:08x}")

def safe_text(text: str) -> str:
    """``text`` fit for a terminal: each control or format character shown as
    its escape ("\\x1b[2J", "\\r", "\\u202e"); everything else unchanged."""
    return _SUSPECT.sub(_visible, text)

def _json_escape(m: re.Match[str]) -> str:
    run = m.group()
    # Printable text (Chinese, mostly) has none of the unsafe categories.
    return run if run.isprintable() else "".join(map(_json_char, run))

def _json_char(ch: str) -> str:
    if not _unsafe(ch):
        return ch
    n = ord(ch)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"

def json_rows(doc: Mapping[str, object]) -> str:
    """Like json_text, one line per top-level key and per item of a top-level
    list (or iterator: each item is encoded as it comes, so a generator's
    items need not all be held at once): readable, and written by json's C
    encoder (a bureau's report has tens of thousands of PCs; the indenting
    encoder is pure Python)."""
    return "".join(json_chunks(doc))


def json_chunks(doc: Mapping[str, object]) -> Iterator[str]:
    """json_rows' text in pieces, one per line, to be written as they come."""
    yield "{"
    sep = "\n"
    for k, v in doc.items():
        yield f"{sep}{_json_line(k)}: "
        sep = ",\n"
        if not isinstance(v, (list, Iterator)):
            yield _json_line(v)
            continue
        opened = False
        for x in v:
            yield ",\n" if opened else "[\n"
            opened = True
            yield _json_line(x)
        yield "\n]" if opened else "[]"
    yield "\n}"


def _json_line(v: object) -> str:
    # orjson: a bureau's report is 40,000 PCs' rows, and json's encoder was a
    # fifth of its time. Compact (no blank after , and :), the same data.
    text = orjson.dumps(v).decode()
    # One line of JSON has no raw control characters; most lines (Chinese
    # text included) have nothing else to escape either: str.isprintable()
    # tells in C, the regular expression only runs on the others.
    return text if text.isprintable() else _BEYOND_ASCII.sub(_json_escape, text)


def json_text(doc: object, indent: int | None = 1) -> str:
    """JSON with Chinese kept readable and every control or format character
    escaped (\\u001b, \\u202e): the same data once parsed, safe on a terminal."""
    # json.dumps escapes C0 controls in strings and writes only ASCII outside
    # them, so every DEL or non-ASCII character left is inside a string.
    return _BEYOND_ASCII.sub(_json_escape, json.dumps(doc, ensure_ascii=False, indent=indent))

def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

def grid(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns that stay aligned with Chinese (double-width) text;
    cells pass through safe_text (agents' strings are shown, never obeyed)."""
    rows = [[safe_text(t) for t in r] for r in rows]
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(t + " " * (widths[i] - _width(t)) for i, t in enumerate(r)).rstrip()
            for r in rows]

def clone_text(c: Clone, lang: str) -> str:
    """One group of clones: what they share, its value, then the PCs
    ("same hostname pc-07: pc-07-a, pc-07-b"; in Chinese with a full-width
    colon and 、). Hostnames come from agents: shown through safe_text, never
    obeyed."""
    sep, join = ("：", "、") if lang == "zh" else (": ", ", ")
    return safe_text(f"{label('clone_' + c.shared, lang)} {c.value}{sep}{join.join(c.hosts)}")

def clones(ev: Evaluation) -> list[tuple[Site, Clone]]:
    """Every site's clones, in report order: (site, group)."""
    return [(v.site, c) for v in ev.verdicts for c in v.clones]

def settings_word(s: SettingsState, lang: str) -> str:
    """What a PC runs: 设置最新 / 运行过期设置 / 拒绝了中心下发的设置 / 未收到中心设置."""
    return label("settings_" + s.state, lang)

def settings_text(s: SettingsState, lang: str) -> str:
    """The details of a PC's settings, joined like reasons: the version it
    runs when not its site's ("runs 0a7d..., should run 9c1e..."), why it
    refused the centre's ("reason: ..."), the keys its own file sets ("own
    settings win: interval"). The reason and the keys come from the agent:
    shown through safe_text, never obeyed."""
    parts = []
    if s.running and s.running != s.expected:
        parts.append(label("settings_runs", lang).format(running=s.running, expected=s.expected))
    if s.error:
        parts.append(label("settings_error", lang).format(error=s.error))
    if s.local:
        parts.append(label("settings_local", lang).format(local=s.local))
    return safe_text(SEPARATOR.get(lang, "; ").join(parts))

def off_settings(ev: Evaluation) -> list[tuple[Site, SettingsState]]:
    """Every site's PCs not on its settings (stale, refused, none), in report
    order: (site, state)."""
    return [(v.site, s) for v in ev.verdicts for s in v.settings if s.state != "current"]

def settings_summary(ev: Evaluation, lang: str) -> str:
    """PCs on their site's settings among those that sent an online status:
    "设置最新 2/3 67%"; "" when none did."""
    known = [s for v in ev.verdicts for s in v.settings]
    if not known:
        return ""
    current = sum(s.state == "current" for s in known)
    return f"{label('settings_current', lang)} {share_text(current, len(known))}"

def share_text(ok: int, n: int) -> str:
    return f"{ok}/{n} {round(100 * ok / n)}%" if n else "—"

def rollup_cell(counts: Mapping[str, int], lang: str) -> str:
    """A rule's roll-up: sites passing / sites with a verdict, then the sites
    without data, apart: "2/3 67%", "2/3 67%, 1 no data", "—, 2 no data" (in en)."""
    text = share_text(passing(counts), checked(counts))
    n = counts.get(NO_DATA, 0)
    if not n:
        return text
    return f"{text}，{label('no_data', lang)} {n}" if lang == "zh" else \
        f"{text}, {n} {label('no_data', lang)}"

def buy_keys(lines: list[Purchase]) -> list[str]:
    """The shortfall keys of the procurement list, in the order first met."""
    return list(lines[-1].needs) if lines else []

def buy_head(keys: list[str], lang: str) -> list[str]:
    """所属单位, 站点, then a "to add" column per key (its unit in the label)."""
    return [label("path", lang), label("site", lang), *(label(k, lang) for k in keys)]

def buy_unit(p: Purchase, lang: str, sep: str = "/") -> str:
    """The unit a line belongs to, by name without the root: a site's units,
    or a subtotal's unit with its own ("一支队/二大队"); "—" right under the root."""
    names = [n.name for n in p.path[1:]]
    if p.kind == "unit":
        names.append(p.node.name if p.node is not None else "")
    return sep.join(names) or label("na", lang)

def buy_cells(p: Purchase, keys: list[str], lang: str, sep: str = "/") -> list[str]:
    """A line for people: unit, site (小计 for a unit, 合计 for the total), figures."""
    figures = [number(p.needs.get(k, 0)) for k in keys]
    if p.kind == "total":
        return [label("total", lang), "", *figures]
    what = p.node.name if p.kind == "site" and p.node is not None else label("subtotal", lang)
    return [buy_unit(p, lang, sep), what, *figures]

def procurement_rows(ev: Evaluation, org: Org, lang: str) -> list[list[str]]:
    """Header, then the procurement list grouped by unit (each unit's sites,
    then its subtotal), then the grand total; a lone "nothing needed" row."""
    lines = procurement(org, ev.verdicts)
    if not lines:
        return [[label("nothing_needed", lang)]]
    keys = buy_keys(lines)
    return [buy_head(keys, lang), *(buy_cells(p, keys, lang) for p in lines)]
