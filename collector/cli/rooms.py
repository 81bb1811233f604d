"""`netroom availability` and `netroom isolation`: the commanders' two questions.

"Which rooms are closed right now, must they be open, and which were not open
all day yesterday?" and "which gov PCs can reach the internet?", answered
from InfluxDB as tables (Chinese or English; collector/report/rooms.py) or
JSON (keys in docs/availability.md). Registered in collector/cli/main.py's
COMMANDS. `netroom isolation` exits 1 while a gov PC is in violation.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any, Mapping

from zoneinfo import ZoneInfo

from collector.compliance.availability import (
    DayOpen,
    complete_days,
    period_share,
    required_stretch,
)
from collector.compliance.model import Org, Room, Site
from collector.compliance.orgconfig import read_org
from collector.compliance.rules.base import FAIL, NO_DATA, NOT_APPLICABLE, PASS
from collector.compliance.rules.room_open_all_day import site_params
from collector.influx.client import InfluxSink
from collector.influx.settings import read_influx
from collector.report.format import json_text, path_json
from collector.report.i18n import LANGS
from collector.report.rooms import (
    ISOLATION_ORDER,
    availability_table,
    isolation_detail,
    isolation_table,
)
from collector.store import heartbeats
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
                       "open all day", description="Each site's network room, closed "
                       "rooms that must be open now first: open now or closed since when, "
                       "whether it must be open now, and the share of its required opening "
                       "hours it was open on --date (default: yesterday in the site's time "
                       "zone). Days before the room's first report have no data.")
    _common(p)
    p.add_argument("--date", help="YYYY-MM-DD (default: yesterday; today counts up to now)")
    p.add_argument("--closed", action="store_true",
                   help="only rooms not open now (closed, or nothing known of them)")
    p.set_defaults(run=run_availability)


def add_isolation(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("isolation", help="which gov PCs can reach the internet",
                       description="Each gov PC's latest isolation report (within "
                       "rules.freshness_days): violations first, then PCs without data "
                       "(no canaries configured, or no report); --all lists clean PCs too. "
                       "Exit code 1 while a gov PC is in violation, 0 otherwise.")
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




def _unknown(d: DayOpen, first_ms: int | None) -> bool:
    """A day with the room never seen open that ended before its first report:
    no evidence either way (its agents did not exist yet, or were not yet
    registered as room PCs)."""
    return d.open_s <= 0 and (first_ms is None or d.end_ms <= first_ms)


def room_rows(read: Read, org: Org, sites: list[Site], date: dt.date | None,
              now_ms: int) -> list[dict[str, Any]]:
    """One dict per site, closed rooms that must be open now first (then
    unknown ones, closed ones, open ones; tree order within each): now (open,
    closed or no data; online; closed since; whether it must be open), the
    day's and rolling shares, and the day's ``status`` (pass, fail; no_data
    before the room's first report, or when no room PC sent a heartbeat in
    ``rules.freshness_days`` and the room was not open that day;
    not_applicable on a day off) with ``ok`` (None unless pass or fail).
    Days without evidence do not count in the rolling share."""
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
    firsts = heartbeats.first_reports(read, now_ms)
    out = []
    for site in sites:
        p = site_params(org, site)
        days, now = rooms[site.id]
        first, last = firsts.get(site.id), days[-1]
        target = float(p["target"])
        counted = [d for d in days if not _unknown(d, first)]
        rolling = period_share(counted)[0]
        # As room_open_all_day judges it: no evidence is no data, not a fail.
        no_data = None
        if last.share is None:
            status = NOT_APPLICABLE  # a day off
        elif _unknown(last, first) and first is not None:
            status, no_data = NO_DATA, "before_first_report"
        elif last.open_s <= 0 and now.room_pcs == 0:
            status, no_data = NO_DATA, "no_heartbeats"  # nothing known of the room
        else:
            status = PASS if last.share >= target else FAIL
        tz = site.room.timezone
        out.append({
            "site": site.id, "name": site.name, "path": path_json(org, site), "timezone": tz,
            "now": "open" if now.open else NO_DATA if now.room_pcs == 0 else "closed",
            "required_now": required_stretch(site.room, now_ms) is not None,
            "open_now": now.open, "online": now.online, "room_pcs": now.room_pcs,
            "closed_since": None if now.closed_since_ms is None
            else _local(now.closed_since_ms, tz),
            "first_report": None if first is None else _local(first, tz),
            "date": shown(site).isoformat(), "required_s": last.required_s,
            "open_s": last.open_s, "open_share": None if no_data else last.share,
            "rolling_days": int(p["rolling_days"]), "rolling_share": rolling,
            "rolling_counted": sum(d.required_s > 0 for d in counted),
            "rolling_unknown": sum(d.required_s > 0 and _unknown(d, first) for d in days),
            "target": target, "status": status, "no_data": no_data,
            "ok": None if status in (NOT_APPLICABLE, NO_DATA) else status == PASS,
        })
    # Closed and required first, then unknown and required, closed, unknown, open.
    return sorted(out, key=lambda r: (r["now"] == "open", not r["required_now"],
                                      r["now"] == NO_DATA))


def run_availability(args: argparse.Namespace) -> int:
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = room_rows(reader(sink), org, sites, _date(args.date), int(time.time() * 1000))
    finally:
        sink.close()
    if args.closed:
        rows = [r for r in rows if r["now"] != "open"]
    if args.format == "json":
        sys.stdout.write(json_text(rows) + "\n")
    else:
        sys.stdout.write(availability_table(rows, args.lang))
    return 0


def isolation_rows(read: Read, org: Org, sites: list[Site] | None, now_ms: int
                   ) -> list[dict[str, Any]]:
    """Each gov PC's isolation state within ``rules.freshness_days``, worst
    first (as gov_isolation judges it), then in tree order.

    Gov PCs are those of the inventory plus every host that sent an isolation
    report (as gov_isolation counts them); ``sites`` None: all hosts, those of
    sites missing from the tree included (``path`` empty, ``name`` the id).
    ``status``: ``fail`` (latest report a violation), ``no_data`` (``no_data``:
    ``not_configured``, its report checked no canary, ``canaries_checked`` 0
    or absent; ``no_report``, none within the window: nobody tried to reach
    the internet) or ``pass`` (clean, canaries checked).
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
        where: dict[str, Any] = {"site": site_id, "name": site_id, "path": []} if site is None \
            else {"site": site_id, "name": site.name, "path": path_json(org, site)}
        tz = site.room.timezone if site is not None else Room().timezone
        r = reports.get((site_id, host))
        if r is None:
            out.append({**where, "host": host, "status": NO_DATA,
                        "no_data": "no_report", "violated": None, "canaries_checked": None,
                        "reasons": "", "reached": "", "reported_at": None})
            continue
        checked = r.get("canaries_checked")
        violated = bool(r["violated"])
        status = FAIL if violated else PASS if checked else NO_DATA
        out.append({**where, "host": host, "status": status,
                    "no_data": "not_configured" if status == NO_DATA else None,
                    "violated": violated,
                    "canaries_checked": None if checked is None else int(checked),
                    "reasons": r.get("reasons") or "", "reached": r.get("reached") or "",
                    "reported_at": _local(int(r["time"]), tz)})
    place = {node_id: i for i, node_id in enumerate(org.nodes)}
    return sorted(out, key=lambda x: (ISOLATION_ORDER[x["status"]],
                                      place.get(x["site"], len(place)), x["site"], x["host"]))


def run_isolation(args: argparse.Namespace) -> int:
    """The table or JSON; exit code 1 while a gov PC is in violation (for cron
    and scripts), 0 otherwise (PCs without data included: see the output)."""
    sink, org, sites = _open(args.config, args.site)
    try:
        rows = isolation_rows(reader(sink), org, sites if args.site else None,
                              int(time.time() * 1000))
    finally:
        sink.close()
    if args.format == "json":
        shown = [{**r, "detail": isolation_detail(r, args.lang)} for r in rows
                 if args.all or r["status"] != PASS]
        sys.stdout.write(json_text(shown) + "\n")
    else:
        sys.stdout.write(isolation_table(rows, args.all, org.freshness_days, args.lang))
    return 1 if any(r["status"] == FAIL for r in rows) else 0
