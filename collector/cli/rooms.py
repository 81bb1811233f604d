"""`netroom availability` and `netroom isolation`: the commanders' two questions.

"Which rooms are closed right now, and which were not open all day
yesterday?" and "which gov PCs can reach the internet?", answered from
InfluxDB as tables (Chinese or English) or JSON. Registered in
collector/cli/main.py's COMMANDS. Agents' text (isolation reasons) is shown,
never obeyed: control characters appear as escapes (collector.report.format).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any, Mapping

from zoneinfo import ZoneInfo

from collector.compliance.availability import complete_days, period_share
from collector.compliance.model import Org, Room, Site
from collector.compliance.orgconfig import read_org
from collector.compliance.rules.base import FAIL, NO_DATA, NOT_APPLICABLE, PASS
from collector.compliance.rules.room_open_all_day import site_params
from collector.influx.client import InfluxSink
from collector.influx.settings import read_influx
from collector.report.format import grid, json_text
from collector.report.i18n import LANGS, SEPARATOR, label
from collector.store.loaders import availability, devices, isolation
from collector.store.rows import Read, reader
from netroom import schema
from netroom.settings import ConfigError, load_yaml


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--site", help="only this site, or the sites under this unit")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")


def add_availability(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("availability", help="which rooms are closed now, which were not "
                       "open all day", description="Each site's network room: open now or "
                       "closed since when, and the share of its required opening hours it "
                       "was open on --date (default: yesterday in the site's time zone).")
    _common(p)
    p.add_argument("--date", help="YYYY-MM-DD (default: yesterday; today counts up to now)")
    p.set_defaults(run=run_availability)


def add_isolation(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("isolation", help="which gov PCs can reach the internet",
                       description="Each gov PC's latest isolation report (within "
                       "rules.freshness_days): violations first, then PCs without data "
                       "(no canaries configured, or no report); --all lists clean PCs too.")
    _common(p)
    p.add_argument("--all", action="store_true",
                   help="also list PCs whose clean report checked canaries")
    p.set_defaults(run=run_isolation)


def _open(path: str, site: str | None) -> tuple[InfluxSink, Org, list[Site]]:
    data = load_yaml(path)
    influx, org = read_influx(data.get("influxdb")), read_org(data.get("sites"), data.get("rules"))
    if site is not None and site not in org.nodes:
        raise ConfigError(f"--site: {site!r} is not a node of the sites tree")
    return InfluxSink(influx), org, org.sites_under(site) if site else org.sites


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date: must be YYYY-MM-DD, got {text!r}") from None


def _local(ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def room_rows(read: Read, org: Org, sites: list[Site], date: dt.date | None,
              now_ms: int) -> list[dict[str, Any]]:
    """One dict per site: now (open, online, closed since), the day's and rolling
    shares, and the day's ``status`` (pass, fail; no_data when no room PC sent a
    heartbeat in ``rules.freshness_days`` and the room was not open that day;
    not_applicable on a day off) with ``ok`` (None unless pass or fail)."""
    if date is not None and date > dt.datetime.fromtimestamp(now_ms / 1000).date() \
            + dt.timedelta(days=1):
        raise ConfigError(f"--date: {date} is in the future")
    oldest = (date or dt.date.fromtimestamp(now_ms / 1000)) - dt.timedelta(days=40)

    def shown(site: Site) -> dt.date:  # --date, else yesterday in the site's time zone
        return date or complete_days(now_ms, ZoneInfo(site.room.timezone), 1)[0]

    def dates(site: Site, p: Mapping[str, Any]) -> list[dt.date]:  # rolling_days up to it
        day = shown(site)
        return [day - dt.timedelta(days=k) for k in range(int(p["rolling_days"]) - 1, -1, -1)]

    rooms = availability.rooms(read, org, sites, now_ms,
                               int(time.mktime(oldest.timetuple())) * 1000, dates)
    out = []
    for site in sites:
        p = site_params(org, site)
        day, n = shown(site), int(p["rolling_days"])
        days, now = rooms[site.id]
        target = float(p["target"])
        share = days[-1].share
        rolling = period_share(days)[0]
        # As room_open_all_day judges it: no evidence is no data, not a fail.
        if share is None:
            status = NOT_APPLICABLE  # a day off
        elif days[-1].open_s <= 0 and now.room_pcs == 0:
            status = NO_DATA  # no room PC heartbeat at all: nothing known of the room
        else:
            status = PASS if share >= target else FAIL
        out.append({
            "site": site.id, "name": site.name, "timezone": site.room.timezone,
            "open_now": now.open, "online": now.online, "room_pcs": now.room_pcs,
            "closed_since": None if now.closed_since_ms is None
            else _local(now.closed_since_ms, site.room.timezone),
            "date": day.isoformat(), "required_s": days[-1].required_s,
            "open_s": days[-1].open_s, "open_share": share,
            "rolling_days": n, "rolling_share": rolling, "target": target,
            "status": status, "ok": None if status in (NOT_APPLICABLE, NO_DATA) else
            status == PASS,
        })
    return out


def _pct(x: float | None, lang: str) -> str:
    return label("day_off", lang) if x is None else f"{x:.1%}"


def availability_table(rows: list[dict[str, Any]], lang: str) -> str:
    head = [label(k, lang) for k in ("site", "name", "now", "date", "required_h", "open_h",
                                     "open_share")]
    head += [label("rolling_share", lang).format(rows[0]["rolling_days"] if rows else 7),
             label("result", lang)]
    table = [head]
    for r in rows:
        if r["open_now"]:
            now = f"{label('open_now', lang)} " + label("online_of", lang).format(
                r["online"], r["room_pcs"])
        elif r["closed_since"]:
            now = label("closed_since", lang).format(r["closed_since"])
        else:
            now = label("closed_now", lang)
        table.append([r["site"], r["name"], now, r["date"], f"{r['required_s'] / 3600:.1f}",
                     f"{r['open_s'] / 3600:.1f}",
                     # No share without evidence, as in the report.
                     label("na", lang) if r["status"] == NO_DATA else _pct(r["open_share"], lang),
                     label("na", lang) if r["status"] == NO_DATA and not r["rolling_share"]
                     else _pct(r["rolling_share"], lang), label(r["status"], lang)])
    return label("availability_title", lang) + "\n\n" + "\n".join(grid(table)) + "\n"


def run_availability(args: argparse.Namespace) -> int:
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = room_rows(reader(sink), org, sites, _date(args.date), int(time.time() * 1000))
    finally:
        sink.close()
    if args.format == "json":
        sys.stdout.write(json_text(rows) + "\n")
    else:
        sys.stdout.write(availability_table(rows, args.lang))
    return 0


# A gov PC's isolation state, worst first (as gov_isolation judges it): a
# violation fails; a clean report from a PC without canaries, or no report,
# is no data (nobody tried to reach the internet); a clean report with
# canaries passes.
_ORDER = {FAIL: 0, NO_DATA: 1, PASS: 2}


def isolation_rows(read: Read, org: Org, sites: list[Site] | None, now_ms: int
                   ) -> list[dict[str, Any]]:
    """Each gov PC's isolation state within ``rules.freshness_days``, worst first.

    Gov PCs are those of the inventory plus every host that sent an isolation
    report (as gov_isolation counts them); ``sites`` None: all hosts, those of
    sites missing from the tree included. ``status``: ``fail`` (latest report
    a violation), ``no_data`` (``no_data``: ``not_configured``, its report
    checked no canary, ``canaries_checked`` 0 or absent; ``no_report``, none
    within the window) or ``pass`` (clean, canaries checked).
    """
    wanted = None if sites is None else {s.id for s in sites}
    reports = {(r[schema.SITE], r[schema.HOST]): r for r in isolation.latest(read, org, now_ms)
               if r.get("violated") is not None
               and (wanted is None or r[schema.SITE] in wanted)}
    gov = set(reports)
    for site_id, facts in devices.load(read, org, now_ms).facts.items():
        if wanted is None or site_id in wanted:
            gov |= {(site_id, d.host) for d in facts.get("devices", ()) if d.network == "gov"}
    out = []
    for site_id, host in gov:
        site = org.site(site_id)
        tz = site.room.timezone if site is not None else Room().timezone
        r = reports.get((site_id, host))
        if r is None:
            out.append({"site": site_id, "host": host, "status": NO_DATA,
                        "no_data": "no_report", "violated": None, "canaries_checked": None,
                        "reasons": "", "reached": "", "reported_at": None})
            continue
        checked = r.get("canaries_checked")
        violated = bool(r["violated"])
        status = FAIL if violated else PASS if checked else NO_DATA
        out.append({"site": site_id, "host": host, "status": status,
                    "no_data": "not_configured" if status == NO_DATA else None,
                    "violated": violated,
                    "canaries_checked": None if checked is None else int(checked),
                    "reasons": r.get("reasons") or "", "reached": r.get("reached") or "",
                    "reported_at": _local(int(r["time"]), tz)})
    return sorted(out, key=lambda x: (_ORDER[x["status"]], x["site"], x["host"]))


_WORD = {FAIL: "violated", NO_DATA: "no_data", PASS: "sealed"}
_WHY = {"not_configured": "isolation_not_configured_pc", "no_report": "isolation_no_report_pc"}


def isolation_table(rows: list[dict[str, Any]], all_pcs: bool, days: float, lang: str) -> str:
    """The PCs not passing (``all_pcs``: every gov PC), then what they add up to."""
    shown = rows if all_pcs else [r for r in rows if r["status"] != PASS]
    n = {s: sum(r["status"] == s for r in rows) for s in _ORDER}
    lines = [label("isolation_title", lang), ""]
    if shown:
        table = [[label(k, lang) for k in ("site", "host", "result", "reasons", "reported_at")]]
        for r in shown:
            why = [label(_WHY[r["no_data"]], lang)] if r["no_data"] else []
            text = SEPARATOR[lang].join([*why, r["reasons"]] if r["reasons"] else why)
            table.append([r["site"], r["host"], label(_WORD[r["status"]], lang), text,
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


def run_isolation(args: argparse.Namespace) -> int:
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = isolation_rows(reader(sink), org, sites if args.site else None,
                              int(time.time() * 1000))
    finally:
        sink.close()
    if args.format == "json":
        shown = rows if args.all else [r for r in rows if r["status"] != PASS]
        sys.stdout.write(json_text(shown) + "\n")
    else:
        sys.stdout.write(isolation_table(rows, args.all, org.freshness_days, args.lang))
    return 0
