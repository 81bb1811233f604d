"""`netroom dashboards push`: upload the generated dashboards to a Grafana.

Through grafana-client's GrafanaApi, Grafana's HTTP API: GET /api/folders/<uid>
(POST /api/folders when missing), GET /api/datasources/uid/netroom-influxdb
(POST /api/datasources when missing and asked to), then POST
/api/dashboards/db with overwrite for each dashboard. File provisioning
(deploy/grafana/provisioning/) needs none of this; see dashboards/README.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Tuple, Union
from urllib.parse import urlsplit

from collector.influx.settings import InfluxConfig, read_influx
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
    """What push did; ``datasource`` is exists, created or missing."""

    dashboards: tuple[Pushed, ...]
    datasource: str


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
         timeout_s: float = 10.0) -> Report:
    """Create or overwrite every ``lang`` dashboard in ``folder`` (a folder uid).

    ``credential``: a service account token, or (user, password).
    ``datasource``: created when Grafana lacks uid netroom-influxdb (else
    only reported as missing). Raises PushError.
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
    # grafana-client's methods carry no type hints: treat its objects as Any.
    api: Any = GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)
    try:
        _ensure_folder(api, folder, FOLDER_TITLES.get(lang, DEFAULT_FOLDER), GrafanaClientError)
        ds_state = _ensure_datasource(api, datasource, GrafanaClientError)
        done = []
        for dash in dashboards:
            # id null: Grafana matches by uid, so one file is one dashboard everywhere.
            r = api.dashboard.update_dashboard({
                "dashboard": {**dash, "id": None}, "folderUid": folder, "overwrite": True,
                "message": "netroom dashboards push"})
            done.append(Pushed(str(r.get("uid", dash["uid"])), str(dash["title"]),
                               str(r.get("url", "")), int(r.get("version", 0))))
    except GrafanaException as exc:
        raise PushError(f"{url}: Grafana answered {exc.status_code}: {_reason(exc)}") from None
    except niquests.exceptions.RequestException as exc:
        raise PushError(f"{url}: cannot reach Grafana: {type(exc).__name__}") from None
    return Report(tuple(done), ds_state)


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
    try:
        report = push(args.url, credential, args.folder, args.lang, args.dir, datasource)
    except PushError as exc:
        print(f"netroom dashboards push: error: {exc}", file=sys.stderr)
        return 1
    for d in report.dashboards:
        print(f"{d.uid}\t{d.title}\t{args.url.rstrip('/')}{d.url}\tversion {d.version}")
    if report.datasource == "missing":
        print(f"netroom dashboards push: warning: Grafana has no data source with uid "
              f"{DATASOURCE_UID}; provision deploy/grafana/provisioning/datasources/"
              "netroom.yaml or rerun with --create-datasource", file=sys.stderr)
    return 0
