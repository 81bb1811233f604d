"""`netroom availability` and `netroom isolation`: the commanders' two questions.

"Which rooms are closed right now, and which were not open all day
yesterday?" and "which gov PCs can reach the internet?", answered from
InfluxDB as tables (Chinese or English) or JSON. Registered in
collector/admin.py's COMMANDS.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any, Mapping

from zoneinfo import ZoneInfo

from collector.compliance.availability import complete_days, period_share
from collector.compliance.model import Org, Room, Site
from collector.compliance.orgconfig import read_org
from collector.compliance.rules.room_open_all_day import site_params
from collector.influx.client import InfluxSink
from collector.influx.settings import read_influx
from collector.report.format import grid
from collector.report.i18n import LANGS, label
from collector.store.loaders import availability, isolation
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
                       "rules.freshness_days): violations first; --all lists clean PCs too.")
    _common(p)
    p.add_argument("--all", action="store_true", help="also list PCs without a violation")
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
    """One dict per site: now (open, online, closed since), the day's and rolling shares."""
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
        out.append({
            "site": site.id, "name": site.name, "timezone": site.room.timezone,
            "open_now": now.open, "online": now.online, "room_pcs": now.room_pcs,
            "closed_since": None if now.closed_since_ms is None
            else _local(now.closed_since_ms, site.room.timezone),
            "date": day.isoformat(), "required_s": days[-1].required_s,
            "open_s": days[-1].open_s, "open_share": share,
            "rolling_days": n, "rolling_share": rolling, "target": target,
            "ok": None if share is None else share >= target,
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
        verdict = "na" if r["ok"] is None else "pass" if r["ok"] else "fail"
        table.append([r["site"], r["name"], now, r["date"], f"{r['required_s'] / 3600:.1f}",
                     f"{r['open_s'] / 3600:.1f}", _pct(r["open_share"], lang),
                     _pct(r["rolling_share"], lang), label(verdict, lang)])
    return label("availability_title", lang) + "\n\n" + "\n".join(grid(table)) + "\n"


def run_availability(args: argparse.Namespace) -> int:
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = room_rows(reader(sink), org, sites, _date(args.date), int(time.time() * 1000))
    finally:
        sink.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    else:
        sys.stdout.write(availability_table(rows, args.lang))
    return 0


def isolation_rows(read: Read, org: Org, sites: list[Site] | None, now_ms: int
                   ) -> list[dict[str, Any]]:
    """Each gov PC's latest isolation report, violations first; ``sites`` None: all hosts."""
    wanted = None if sites is None else {s.id for s in sites}
    out = []
    for r in isolation.latest(read, org, now_ms):
        site_id = r[schema.SITE]
        if wanted is not None and site_id not in wanted:
            continue
        site = org.site(site_id)
        tz = site.room.timezone if site is not None else Room().timezone
        out.append({"site": site_id, "host": r[schema.HOST], "violated": bool(r["violated"]),
                    "reasons": r.get("reasons") or "", "reached": r.get("reached") or "",
                    "reported_at": _local(int(r["time"]), tz)})
    return sorted(out, key=lambda x: (not x["violated"], x["site"], x["host"]))


def run_isolation(args: argparse.Namespace) -> int:
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = isolation_rows(reader(sink), org, sites if args.site else None,
                              int(time.time() * 1000))
    finally:
        sink.close()
    shown = rows if args.all else [r for r in rows if r["violated"]]
    if args.format == "json":
        sys.stdout.write(json.dumps(shown, ensure_ascii=False, indent=1) + "\n")
        return 0
    lang = args.lang
    bad = sum(r["violated"] for r in rows)
    lines = [label("isolation_title", lang), ""]
    if shown:
        table = [[label(k, lang) for k in ("site", "host", "result", "reasons", "reported_at")]]
        table += [[r["site"], r["host"], label("violated" if r["violated"] else "sealed", lang),
                  r["reasons"], r["reported_at"]] for r in shown]
        lines += [*grid(table), ""]
    if not rows:
        lines.append(label("no_reports", lang).format(f"{org.freshness_days:g}"))
    else:
        lines.append(label("isolation_summary", lang).format(bad, len(rows)) if bad
                     else label("no_violation", lang))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
