"""`netroom dashboards push`: upload the generated dashboards to a Grafana.

Through grafana-client's GrafanaApi, Grafana's HTTP API: GET /api/folders/<uid>
(POST /api/folders when missing), GET /api/datasources/uid/netroom-influxdb
(POST /api/datasources when missing and asked to), then POST
/api/dashboards/db with overwrite for each dashboard; then the alerting
(dashboards/alerts.py) through the alerting provisioning API: each rule
(GET, then POST or PUT /api/v1/provisioning/alert-rules), the message
template, the contact point's receivers whose URL is in the environment
(NETROOM_ALERT_WEBHOOK_URL, _DINGDING_URL, _WECOM_URL), and netroom's route
in the notification policy tree (other routes kept). ``--unit ID`` pushes the
dashboards into a folder of that unit, its filter locked (a hidden constant),
and no alerting. File provisioning (deploy/grafana/provisioning/) needs none
of this; see dashboards/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Tuple, Union
from urllib.parse import urlsplit

from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.influx.settings import InfluxConfig, read_influx
from dashboards import alerts
from dashboards.build import GENERATED
from netroom.settings import ConfigError, load_yaml

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_FOLDER = "netroom"
DASHBOARD_DIR = GENERATED  # package data: installed with the wheel
DATASOURCE_UID = "netroom-influxdb"  # dashboards/model.py DATASOURCE_UID
FOLDER_TITLES = {"zh": "网络室监控", "en": "netroom", "all": "netroom 网络室监控"}
TOKEN_ENV = "NETROOM_GRAFANA_TOKEN"  # noqa: S105 - a variable name
PASSWORD_ENV = "NETROOM_GRAFANA_PASSWORD"  # noqa: S105 - a variable name
Credential = Union[str, Tuple[str, str]]


class PushError(Exception):
    """Grafana refused or could not be reached; str() is one line."""


@dataclass(frozen=True)
class Pushed:
    """One dashboard Grafana accepted: its uid, URL path and new version."""

    uid: str
    title: str
    url: str
    version: int


@dataclass(frozen=True)
class Report:
    """What push did; ``datasource`` is exists, created or missing; ``alerts``:
    rule uids created or updated, ``receivers``: contact point receivers set."""

    dashboards: tuple[Pushed, ...]
    datasource: str
    alerts: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unit:
    """A unit whose own view ``--unit`` makes: its id, name, org level and
    its ancestors as (level, id)."""

    id: str
    name: str
    level: str
    path: tuple[tuple[str, str], ...] = ()


def find_unit(org: Org, unit_id: str) -> Unit:
    """The unit ``unit_id`` of the sites tree; ConfigError if it is not a unit."""
    node = org.nodes.get(unit_id)
    if node is None or node.site is not None:
        raise ConfigError(f"--unit: {unit_id!r} is not a unit (a node with children) of "
                          "the sites tree")
    site = next(iter(org.sites_under(unit_id)), None)
    path = site.path if site is not None else ()
    above = path[:next((i for i, (_, n) in enumerate(path) if n == unit_id), len(path))]
    return Unit(node.id, node.name, node.level, tuple(above))


def for_unit(dash: dict[str, Any], unit: Unit) -> dict[str, Any]:
    """``dash`` for one unit: its own uid, title and tag; the unit's org filter
    (and those above it) a hidden constant (Grafana "Add a constant
    variable"), so every query of it covers the unit's sites only."""
    fixed = {**dict(unit.path), unit.level: unit.id}
    variables = []
    for var in dash["templating"]["list"]:
        v = var
        if v["name"] in fixed:
            value = fixed[v["name"]]
            v = {"type": "constant", "name": v["name"], "label": v.get("label", ""),
                 "query": value, "hide": 2, "skipUrlSync": True,
                 "current": {"selected": True, "text": value, "value": value},
                 "options": [{"selected": True, "text": value, "value": value}]}
        variables.append(v)
    tag = f"netroom-unit-{unit.id}"
    return {**dash, "uid": f"{dash['uid']}-{unit.id}"[:40],
            "title": f"{dash['title']} · {unit.name}", "tags": [*dash["tags"], tag],
            "links": [{**link, "tags": [tag]} for link in dash.get("links", [])],
            "templating": {**dash["templating"], "list": variables}}


def load_dashboards(lang: str, directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    """The generated dashboards of ``lang`` (zh, en or all), in file name order."""
    pattern = "*.json" if lang == "all" else f"*-{lang}.json"
    files = sorted(directory.glob(pattern))
    if not files:
        raise PushError(f"no dashboards {pattern} in {directory}: the installation is "
                        "incomplete; give --dir, a directory of generated dashboards")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def datasource_body(influx: InfluxConfig) -> dict[str, Any]:
    """Grafana's InfluxDB (InfluxQL) data source for ``influx``, uid netroom-influxdb."""
    body: dict[str, Any] = {
        "uid": DATASOURCE_UID, "name": "netroom InfluxDB", "type": "influxdb",
        "access": "proxy", "url": influx.url, "database": influx.database,
        "jsonData": {"dbName": influx.database, "httpMode": "GET",
                     "tlsSkipVerify": not influx.verify_tls},
        "secureJsonData": {},
    }
    if influx.username:
        body["user"] = influx.username
        body["secureJsonData"]["password"] = influx.password or ""
    if influx.token:  # InfluxDB 2.x / 3.x through the v1 API
        body["jsonData"]["httpHeaderName1"] = "Authorization"
        body["secureJsonData"]["httpHeaderValue1"] = f"Token {influx.token}"
    return body


def push(url: str, credential: Credential, folder: str = DEFAULT_FOLDER, lang: str = "zh",
         directory: Path = DASHBOARD_DIR, datasource: dict[str, Any] | None = None,
         timeout_s: float = 10.0, alerting: bool = True, unit: Unit | None = None,
         environ: Mapping[str, str] | None = None) -> Report:
    """Create or overwrite every ``lang`` dashboard in ``folder`` (a folder uid).

    ``credential``: a service account token, or (user, password).
    ``datasource``: created when Grafana lacks uid netroom-influxdb (else
    only reported as missing). ``alerting``: also the alert rules, template,
    contact point receivers (URLs from ``environ``, default os.environ) and
    policy route. ``unit``: the dashboards for that unit only (for_unit), in
    ``folder``; no alerting. Raises PushError.
    """
    # Imported here: every other `netroom` command starts without them, and
    # they come with the `grafana` extra only (the entry point turns
    # ConfigError into one line on stderr and exit status 2).
    try:
        import niquests
        from grafana_client.api import GrafanaApi
        from grafana_client.client import GrafanaClientError, GrafanaException
    except ImportError as exc:
        raise ConfigError(f"needs grafana-client (no module {exc.name or exc}): "
                          "pip install 'netroom[grafana]'") from None

    dashboards = load_dashboards(lang, directory)
    title = FOLDER_TITLES.get(lang, DEFAULT_FOLDER)
    if unit is not None:
        dashboards = [for_unit(d, unit) for d in dashboards]
        title = f"{title} · {unit.name}"
    # grafana-client's methods carry no type hints: treat its objects as Any.
    api: Any = GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)
    rules: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()
    try:
        _ensure_folder(api, folder, title, GrafanaClientError)
        ds_state = _ensure_datasource(api, datasource, GrafanaClientError)
        done = []
        for dash in dashboards:
            # id null: Grafana matches by uid, so one file is one dashboard everywhere.
            r = api.dashboard.update_dashboard({
                "dashboard": {**dash, "id": None}, "folderUid": folder, "overwrite": True,
                "message": "netroom dashboards push"})
            done.append(Pushed(str(r.get("uid", dash["uid"])), str(dash["title"]),
                               str(r.get("url", "")), int(r.get("version", 0))))
        if alerting and unit is None:
            rules, receivers = _push_alerting(api, folder, os.environ if environ is None
                                              else environ, GrafanaClientError)
    except GrafanaException as exc:
        raise PushError(f"{url}: Grafana answered {exc.status_code}: {_reason(exc)}") from None
    except niquests.exceptions.RequestException as exc:
        raise PushError(f"{url}: cannot reach Grafana: {type(exc).__name__}") from None
    return Report(tuple(done), ds_state, rules, receivers)


def _push_alerting(api: Any, folder: str, environ: Mapping[str, str],
                   client_error: type[Exception]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rules (create or update by uid), the template, the receivers with a URL,
    and netroom's policy route when a receiver exists; (rule uids, receiver uids)."""
    prov = api.alertingprovisioning
    uids = []
    for rule in alerts.rules():
        body = alerts.api_rule(rule, folder)
        try:
            prov.get_alertrule(rule["uid"])
        except client_error as exc:
            if getattr(exc, "status_code", None) != 404:
                raise
            prov.create_alertrule(body)
        else:
            prov.update_alertrule(rule["uid"], body)
        uids.append(rule["uid"])
    prov.create_or_update_template(alerts.TEMPLATE, {"name": alerts.TEMPLATE,
                                                      "template": alerts.template_text()})
    wanted = alerts.api_contact_points(environ)
    have = {cp.get("uid") for cp in prov.get_contactpoints(name=alerts.CONTACT_POINT) or []}
    for cp in wanted:
        if cp["uid"] in have:
            prov.update_contactpoint(cp["uid"], cp)
        else:
            prov.create_contactpoint(cp)
    if wanted or have:
        prov.set_notification_policy_tree(
            alerts.merge_policy(prov.get_notification_policy_tree()))
    return tuple(uids), tuple(cp["uid"] for cp in wanted)


def _ensure_folder(api: Any, uid: str, title: str, client_error: type[Exception]) -> None:
    try:
        api.folder.get_folder(uid)
    except client_error as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        log.info("creating Grafana folder %s (%s)", uid, title)
        api.folder.create_folder(title, uid=uid)


def _ensure_datasource(api: Any, body: dict[str, Any] | None,
                       client_error: type[Exception]) -> str:
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        return "exists"
    except client_error as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
    if body is None:
        return "missing"
    api.datasource.create_datasource(body)
    return "created"


def _reason(exc: Any) -> str:
    """Grafana's own words: the JSON body's ``message``, else the first line."""
    resp = exc.response
    if isinstance(resp, dict) and "message" in resp:
        return str(resp["message"])
    return str(exc.message).splitlines()[0] if exc.message else "no reason given"


def add_dashboards(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``netroom dashboards push``, registered in collector/admin.py."""
    p = sub.add_parser("dashboards", help="Grafana dashboards").add_subparsers(
        dest="dashboards_command", required=True, metavar="ACTION")
    push_p = p.add_parser("push", help="upload the generated dashboards to Grafana",
                          description=__doc__)
    push_p.add_argument("--config", "-c", help="config.yaml (for --create-datasource)")
    push_p.add_argument("--url", default=os.environ.get("NETROOM_GRAFANA_URL", DEFAULT_URL),
                        help=f"Grafana's URL (default {DEFAULT_URL}, or NETROOM_GRAFANA_URL)")
    push_p.add_argument("--user", help=f"basic auth user; password from {PASSWORD_ENV} "
                                       f"(default: a service account token from {TOKEN_ENV})")
    push_p.add_argument("--folder", default=DEFAULT_FOLDER, help="folder uid")
    push_p.add_argument("--lang", choices=("zh", "en", "all"), default="zh")
    push_p.add_argument("--dir", type=Path, default=DASHBOARD_DIR, help="dashboard JSON dir")
    push_p.add_argument("--create-datasource", action="store_true",
                        help="create the InfluxDB data source from --config's influxdb "
                             "section when Grafana lacks it")
    push_p.add_argument("--no-alerts", action="store_true",
                        help="dashboards only: not the alert rules, template, contact "
                             "point and policy route")
    push_p.add_argument("--unit", metavar="ID",
                        help="the dashboards of one unit of --config's sites tree, its "
                             "filter locked, into the folder netroom-<ID> (no alerts)")
    push_p.set_defaults(run=command)


def credential_from(args: argparse.Namespace) -> Credential:
    """Token or (user, password) from the environment; raise ConfigError."""
    if args.user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise ConfigError(f"{PASSWORD_ENV}: required with --user (Grafana password)")
        return (args.user, password)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"{TOKEN_ENV}: required (a Grafana service account token), "
                          f"or give --user and {PASSWORD_ENV}")
    return token


def command(args: argparse.Namespace) -> int:
    """Run ``dashboards push``; ConfigError propagates to the entry point."""
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url: must be http(s)://host:port, got {args.url!r}")
    credential = credential_from(args)
    datasource = None
    if args.create_datasource:
        if not args.config:
            raise ConfigError("--create-datasource: needs --config (its influxdb section)")
        datasource = datasource_body(read_influx(load_yaml(args.config).get("influxdb")))
    unit = None
    folder = args.folder
    if args.unit:
        if not args.config:
            raise ConfigError("--unit: needs --config (its sites tree)")
        data = load_yaml(args.config)
        unit = find_unit(read_org(data.get("sites"), data.get("rules")), args.unit)
        folder = f"{DEFAULT_FOLDER}-{unit.id}" if folder == DEFAULT_FOLDER else folder
    try:
        report = push(args.url, credential, folder, args.lang, args.dir, datasource,
                      alerting=not args.no_alerts, unit=unit)
    except PushError as exc:
        print(f"netroom dashboards push: error: {exc}", file=sys.stderr)
        return 1
    for d in report.dashboards:
        print(f"{d.uid}\t{d.title}\t{args.url.rstrip('/')}{d.url}\tversion {d.version}")
    if report.alerts:
        print(f"netroom dashboards push: {len(report.alerts)} alert rules, contact point "
              f"receivers: {', '.join(report.receivers) or 'none'}", file=sys.stderr)
    if report.alerts and not report.receivers:
        print("netroom dashboards push: warning: no contact point receiver: set "
              + ", ".join(env for _, _, env in alerts.RECEIVERS), file=sys.stderr)
    if report.datasource == "missing":
        print(f"netroom dashboards push: warning: Grafana has no data source with uid "
              f"{DATASOURCE_UID}; provision deploy/grafana/provisioning/datasources/"
              "netroom.yaml or rerun with --create-datasource", file=sys.stderr)
    return 0
