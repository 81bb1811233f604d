"""`netroom dashboards push` against Grafana's documented HTTP API.

A contract test: no Grafana server can run here (Debian ships none), so a
small http.server on 127.0.0.1 answers the endpoints push uses the way
Grafana's HTTP API reference documents them (grafana.com/docs/grafana/
latest/developers/http_api/: dashboard "Create / Update dashboard", folder,
data source): GET/POST /api/folders, GET /api/datasources/uid/:uid, POST
/api/datasources, POST /api/dashboards/db, each behind Bearer or Basic
auth. The test asserts what the real grafana-client sends.
"""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from harness import REPO, run_cli
from servers import free_port

from collector.cli.dashboards import PushError, datasource_body, push
from collector.influx.settings import InfluxConfig

TOKEN = "glsa_test_token"
BASIC = ("admin", "s3cret")
GENERATED = REPO / "dashboards" / "generated"


class FakeGrafana(ThreadingHTTPServer):
    """Grafana's documented answers for folders, data sources and dashboards."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {version, folderUid, dashboard}
        # Alerting provisioning API (developers/http_api/alerting_provisioning/).
        self.rules: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.contact_points: dict[str, dict[str, Any]] = {}
        self.policy: dict[str, Any] = {"receiver": "grafana-default-email",
                                       "routes": [{"receiver": "ops"}]}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        basic = base64.b64encode(":".join(BASIC).encode()).decode()
        return auth in (f"Bearer {TOKEN}", f"Basic {basic}")

    def _handle(self, method: str) -> None:
        body: Any = None
        if method in ("POST", "PUT"):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        g = self.server
        g.requests.append((method, self.path, dict(self.headers), body))
        if not self._authorized():
            self._answer(401, {"message": "Unauthorized"})
            return
        route = (method, self.path.rstrip("/"))
        if method == "GET" and self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in g.folders:
                self._answer(200, g.folders[uid])
            else:
                self._answer(404, {"message": "folder not found"})
        elif route == ("POST", "/api/folders"):
            if body["uid"] in g.folders:
                self._answer(409, {"message": "a folder with the same uid already exists"})
                return
            g.folders[body["uid"]] = {"id": len(g.folders) + 1, "uid": body["uid"],
                                      "title": body["title"], "version": 1,
                                      "url": f"/dashboards/f/{body['uid']}/"}
            self._answer(200, g.folders[body["uid"]])
        elif method == "GET" and self.path.startswith("/api/datasources/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in g.datasources:
                self._answer(200, g.datasources[uid])
            else:
                self._answer(404, {"message": "Data source not found"})
        elif route == ("POST", "/api/datasources"):
            g.datasources[body["uid"]] = {**body, "id": len(g.datasources) + 1}
            self._answer(200, {"datasource": g.datasources[body["uid"]], "id": 1,
                               "message": "Datasource added", "name": body["name"]})
        elif route == ("POST", "/api/dashboards/db"):
            self._save_dashboard(body)
        elif self.path.startswith("/api/v1/provisioning/"):
            self._provisioning(method, self.path.split("?")[0][len("/api/v1/provisioning/"):],
                               body)
        else:
            self._answer(404, {"message": "Not found"})

    def _save_dashboard(self, body: dict[str, Any]) -> None:
        g = self.server
        dash = body.get("dashboard")
        if not isinstance(dash, dict) or not dash.get("title"):
            self._answer(400, {"message": "Dashboard title cannot be empty"})
            return
        if body.get("folderUid") and body["folderUid"] not in g.folders:
            self._answer(400, {"message": "folder not found"})
            return
        old = g.dashboards.get(dash["uid"])
        if old is not None and not body.get("overwrite"):
            self._answer(412, {"message": "A dashboard with the same uid already exists",
                               "status": "name-exists"})
            return
        version = 1 if old is None else old["version"] + 1
        g.dashboards[dash["uid"]] = {"version": version, "folderUid": body.get("folderUid"),
                                     "dashboard": dash}
        slug = dash["title"].lower().replace(" ", "-")
        self._answer(200, {"id": len(g.dashboards), "uid": dash["uid"], "status": "success",
                           "url": f"/d/{dash['uid']}/{slug}", "version": version,
                           "slug": slug})

    def _provisioning(self, method: str, path: str, body: Any) -> None:
        g = self.server
        kind, _, uid = path.partition("/")
        if kind == "alert-rules":
            if method == "GET":
                if uid in g.rules:
                    self._answer(200, g.rules[uid])
                else:
                    self._answer(404, {"message": "rule not found"})
                return
            for key in ("uid", "title", "condition", "data", "folderUID", "ruleGroup", "for",
                        "noDataState", "execErrState"):
                if key not in body:
                    self._answer(400, {"message": f"invalid alert rule: no {key}"})
                    return
            if method == "PUT" and uid not in g.rules:
                self._answer(404, {"message": "rule not found"})
                return
            g.rules[body["uid"]] = body
            self._answer(201 if method == "POST" else 200, body)
        elif kind == "templates" and method == "PUT":
            g.templates[uid] = body
            self._answer(202, body)
        elif kind == "contact-points":
            if method == "GET":
                self._answer(200, list(g.contact_points.values()))  # type: ignore[arg-type]
                return
            if not body.get("settings", {}).get("url"):
                self._answer(400, {"message": "url is required"})
                return
            g.contact_points[body["uid"]] = body
            self._answer(202, body)
        elif kind == "policies":
            if method == "PUT":
                g.policy = body
                self._answer(202, {"message": "policies updated"})
            else:
                self._answer(200, g.policy)
        else:
            self._answer(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGrafana]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # never through a proxy from the environment
    server = FakeGrafana()
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def files(lang: str) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(GENERATED.glob(f"*-{lang}.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        out[d["uid"]] = d
    return out


def test_push_creates_the_folder_and_posts_every_dashboard_with_a_token(
        grafana: FakeGrafana) -> None:
    report = push(grafana.url, TOKEN, folder="netroom", lang="zh", alerting=False)
    zh = files("zh")
    assert [(m, p) for m, p, _, _ in grafana.requests] == [
        ("GET", "/api/folders/netroom"), ("POST", "/api/folders"),
        ("GET", "/api/datasources/uid/netroom-influxdb"),
        *[("POST", "/api/dashboards/db")] * len(zh)]
    assert grafana.folders["netroom"]["title"] == "网络室监控"
    for _, _, headers, body in grafana.requests:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        if body is not None:
            assert headers["Content-Type"].startswith("application/json")
    posted = [b for m, p, _, b in grafana.requests if p == "/api/dashboards/db"]
    for body in posted:
        assert body["overwrite"] is True and body["folderUid"] == "netroom"
        assert body["dashboard"] == zh[body["dashboard"]["uid"]]  # the file, id null
    assert report.datasource == "missing"
    assert sorted(d.uid for d in report.dashboards) == sorted(zh)
    assert {d.version for d in report.dashboards} == {1}
    assert all(d.url == f"/d/{d.uid}/" + d.title.lower().replace(" ", "-")
               for d in report.dashboards)


def test_second_push_overwrites_and_creates_the_missing_data_source_with_basic_auth(
        grafana: FakeGrafana) -> None:
    push(grafana.url, TOKEN, lang="zh", alerting=False)
    grafana.requests.clear()
    influx = InfluxConfig(url="http://127.0.0.1:8086", database="netroom", username="grafana",
                          password="pw")
    report = push(grafana.url, BASIC, lang="all", datasource=datasource_body(influx),
                  alerting=False)
    paths = [(m, p) for m, p, _, _ in grafana.requests]
    assert ("POST", "/api/folders") not in paths  # it exists now
    assert report.datasource == "created"
    ds = grafana.datasources["netroom-influxdb"]
    assert (ds["type"], ds["access"], ds["url"]) == ("influxdb", "proxy", "http://127.0.0.1:8086")
    assert ds["jsonData"]["dbName"] == "netroom" and ds["user"] == "grafana"
    assert ds["secureJsonData"] == {"password": "pw"}
    versions = {d.uid: d.version for d in report.dashboards}
    assert versions == {**{u: 2 for u in files("zh")}, **{u: 1 for u in files("en")}}


def test_push_errors_are_one_line(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match=r"answered 401: Unauthorized$"):
        push(grafana.url, "wrong-token")
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PushError, match="cannot reach Grafana"):
        push(closed, TOKEN, timeout_s=2)
    with pytest.raises(PushError, match="no dashboards"):
        push(grafana.url, TOKEN, directory=Path("/nonexistent"))


def test_cli_pushes_with_a_token_from_the_environment(grafana: FakeGrafana) -> None:
    env = {"NETROOM_GRAFANA_TOKEN": TOKEN, "NO_PROXY": "127.0.0.1"}
    r = run_cli("collector.cli.main", "dashboards", "push", "--url", grafana.url, "--lang", "en",
                env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in lines) == sorted(files("en"))
    assert all(f"\t{grafana.url}/d/" in line for line in lines)
    assert "no data source with uid netroom-influxdb" in r.stderr
    bad = run_cli("collector.cli.main", "dashboards", "push", "--url", grafana.url,
                  env={"NETROOM_GRAFANA_TOKEN": ""})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "netroom dashboards: error: NETROOM_GRAFANA_TOKEN: required (a Grafana service "
        "account token), or give --user and NETROOM_GRAFANA_PASSWORD"]


def test_push_uploads_the_alert_rules_template_contact_points_and_policy_route(
        grafana: FakeGrafana) -> None:
    from dashboards import alerts

    env = {"NETROOM_ALERT_DINGDING_URL": "https://gw.example/robot/send?access_token=x",
           "NETROOM_ALERT_WECOM_URL": "https://gw.example/webhook/send?key=y"}
    report = push(grafana.url, TOKEN, lang="zh", environ=env)
    assert sorted(report.alerts) == sorted(r["uid"] for r in alerts.rules())
    assert sorted(report.receivers) == ["netroom-dingding", "netroom-wecom"]  # no webhook URL
    for rule in grafana.rules.values():
        assert rule["folderUID"] == "netroom" and rule["ruleGroup"] == "netroom"
        assert "$timeFilter" in rule["data"][0]["model"]["query"]  # sent as is, not escaped
    assert grafana.contact_points["netroom-dingding"]["settings"]["url"] == env[
        "NETROOM_ALERT_DINGDING_URL"]
    assert grafana.contact_points["netroom-wecom"]["type"] == "wecom"
    assert "netroom.message" in grafana.templates["netroom"]["template"]
    # netroom's route first, the org's own routes kept.
    routes = grafana.policy["routes"]
    assert routes[0]["receiver"] == "netroom" and {"receiver": "ops"} in routes
    # A second push updates (PUT) rather than creating twice, and keeps one route.
    grafana.requests.clear()
    push(grafana.url, TOKEN, lang="zh", environ=env)
    assert ("PUT", "/api/v1/provisioning/alert-rules/netroom-isolation") in [
        (m, p) for m, p, _, _ in grafana.requests]
    assert [r["receiver"] for r in grafana.policy["routes"]].count("netroom") == 1


def test_push_unit_makes_its_own_folder_with_the_unit_filter_locked(
        grafana: FakeGrafana, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "sites:\n- id: bj\n  name: 局\n  children:\n  - id: zd-1\n    name: 一支队\n"
        "    children:\n    - id: dd-1\n      name: 一大队\n      children:\n"
        "      - {id: sq-1, name: 一中队, cadres: 1, staff: 2}\n", encoding="utf-8")
    env = {"NETROOM_GRAFANA_TOKEN": TOKEN, "NO_PROXY": "127.0.0.1"}
    r = run_cli("collector.cli.main", "dashboards", "push", "--url", grafana.url, "--config",
                str(cfg), "--unit", "dd-1", env=env)
    assert r.returncode == 0, r.stderr
    assert grafana.folders["netroom-dd-1"]["title"] == "网络室监控 · 一大队"
    assert not grafana.rules  # alerts are the bureau's, not pushed per unit
    assert len(grafana.dashboards) == len(files("zh"))
    for uid, saved in grafana.dashboards.items():
        assert saved["folderUid"] == "netroom-dd-1" and uid.endswith("-dd-1")
        dash = saved["dashboard"]
        assert dash["title"].endswith(" · 一大队")
        by_name = {v["name"]: v for v in dash["templating"]["list"]}
        for level, value in (("detachment", "zd-1"), ("battalion", "dd-1")):
            assert by_name[level]["type"] == "constant" and by_name[level]["hide"] == 2
            assert by_name[level]["query"] == value
        assert by_name["site"]["type"] == "query"  # the unit's sites stay selectable
    bad = run_cli("collector.cli.main", "dashboards", "push", "--url", grafana.url, "--config",
                  str(cfg), "--unit", "sq-1", env=env)
    assert bad.returncode == 2 and "is not a unit" in bad.stderr
