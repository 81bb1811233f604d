"""Grafana alerting for netroom: rules, contact points, policy, message templates.

Built here, like the boards, so the rules stay consistent with the names the
collector writes (netroom.schema) and with the rules' titles. Two ways out:
``provisioning_files()`` for Grafana's file provisioning
(deploy/grafana/provisioning/alerting/, written by ``python3 -m
dashboards.build``), and ``api_rules()`` etc. for ``netroom dashboards push``
(Grafana's alerting provisioning HTTP API).

Every rule reads only what the collector writes in normal running, uses only
Grafana's time macros (``$timeFilter``; each query's relative time range
sets it), no dashboard variable, and fires per site (or PC, or collector):
a query ``A``, a reduction ``B`` (last), a threshold ``C``.

- room closed: ``room_state.closed_required_s`` (collector/store/writeback.py)
  > ROOM_CLOSED_MIN minutes: the room has been closed that long inside its
  required opening hours (``min_online`` honoured: room_state.open);
- isolation violated: any ``isolation`` report with violated = true within
  the last 10 minutes (gov PCs check every 60 s): fires at once;
- site newly failing a rule: the newest ``compliance`` point of a site and
  rule is a fail (ok 0 and no_data 0): fires when it starts failing;
- agent silent: a Last Will (``status.will``) within the last hour: the
  broker found the agent silent beyond its MQTT keep-alive (a clean shutdown
  sends none);
- collector write errors: ``collector.write_errors`` grew in 10 minutes (the
  field is in every stats point, 0 from start); no stats at all in 10
  minutes alerts too (the collector or its InfluxDB is down);
- spool: ``collector.spool_batches`` above 0 for 10 minutes;
- hardware removed: an ``inventory_change`` with ``delta_bytes`` < 0 (memory
  or disk capacity gone, docs/inventory.md) within the last hour, per PC and
  kind; the change carries its inventory's own time (at agent start and once
  a day), so it fires within the hour the inventory arrives and resolves an
  hour later.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from collector.compliance.rules import RULES
from dashboards.model import DATASOURCE, DATASOURCE_UID, Json
from netroom import schema

FOLDER_TITLE = "网络室监控 netroom"  # deploy/grafana/provisioning/dashboards/netroom.yaml
FOLDER_UID = "netroom"
GROUP = "netroom"
GROUP_INTERVAL_S = 60
CONTACT_POINT = "netroom"
TEMPLATE = "netroom"
LABEL = "netroom"  # every rule carries netroom=<its id>; the policy routes on it
ROOM_CLOSED_MIN = 30  # minutes closed within the required hours before the alert
HARDWARE_WINDOW_S = 3600  # a removal (inventory_change) alerts for this long
# Contact point receivers: (uid, Grafana type, environment variable of the URL).
RECEIVERS: Tuple[Tuple[str, str, str], ...] = (
    ("netroom-webhook", "webhook", "NETROOM_ALERT_WEBHOOK_URL"),
    ("netroom-dingding", "dingding", "NETROOM_ALERT_DINGDING_URL"),
    ("netroom-wecom", "wecom", "NETROOM_ALERT_WECOM_URL"),
)
EXPR = {"type": "__expr__", "uid": "__expr__"}


def _query(ref: str, query: str, seconds: int) -> Json:
    return {"refId": ref, "relativeTimeRange": {"from": seconds, "to": 0},
            "datasourceUid": DATASOURCE_UID,
            "model": {"refId": ref, "datasource": DATASOURCE, "query": query, "rawQuery": True,
                      "resultFormat": "time_series", "intervalMs": 1000,
                      "maxDataPoints": 43200}}


def _expr(ref: str, model: Json) -> Json:
    return {"refId": ref, "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
            "model": {"refId": ref, "datasource": EXPR, **model}}


def _rule(uid: str, title: str, query: str, seconds: int, op: str, value: float,
          summary: str, *, severity: str = "critical", no_data: str = "OK",
          reducer: str = "last") -> Json:
    """A rule A (InfluxQL over the last ``seconds``) -> B (reduce) -> C (threshold)."""
    return {
        "uid": f"netroom-{uid}", "title": title, "condition": "C",
        "data": [_query("A", query, seconds),
                 _expr("B", {"type": "reduce", "expression": "A", "reducer": reducer,
                             "settings": {"mode": "dropNN"}}),
                 _expr("C", {"type": "threshold", "expression": "B",
                             "conditions": [{"evaluator": {"type": op, "params": [value]}}]})],
        "noDataState": no_data, "execErrState": "Error", "for": "0s",
        "annotations": {"summary": summary},
        "labels": {LABEL: uid, "severity": severity},
        "isPaused": False,
    }


def _from(measurement: str) -> str:
    return f"FROM {schema.ident(measurement)} WHERE $timeFilter"


def rules() -> List[Json]:
    """The alert rules (Grafana's provisioning model), Chinese titles and summaries."""
    site, name = schema.SITE, schema.name_tag(schema.SITE)
    by_site = schema.group_by(site, name)
    collector = schema.group_by(schema.SELF_TAG)
    return [
        _rule("room-closed", "网络室应开未开",
              f'SELECT last("closed_required_s") / 60 AS "closed_min" '
              f"{_from(schema.ROOM_STATE)} {by_site}", 1800, "gt", ROOM_CLOSED_MIN,
              "{{ $labels.site_name }}（{{ $labels.site }}）网络室在规定开放时段内已关闭 "
              '{{ printf "%.0f" $values.B.Value }} 分钟'),
        _rule("isolation", "政务网电脑违规外联",
              f'SELECT count("violated") AS "violations" {_from(schema.ISOLATION)} '
              f'AND "violated" = true {schema.group_by(site, name, schema.HOST)}', 600, "gt", 0,
              "{{ $labels.site_name }}（{{ $labels.site }}）的政务网电脑 {{ $labels.host }} "
              "可访问互联网或桥接两网"
              '（近 10 分钟 {{ printf "%.0f" $values.B.Value }} 次）'),
        _rule("rule-failing", "中队新出现未达标项",
              f'SELECT 1 - last("ok") - last("no_data") AS "failing" '
              f"{_from(schema.COMPLIANCE)} AND {schema.ident(schema.RULE)} != "
              f"'{schema.RULE_ALL}' {schema.group_by(site, name, schema.RULE)}", 1200, "gt", 0,
              "{{ $labels.site_name }}（{{ $labels.site }}）未达标：{{ $labels.rule }}",
              severity="warning"),
        _rule("agent-silent", "电脑代理失联",
              f'SELECT count("will") AS "wills" {_from(schema.STATUS)} AND "will" = true '
              f"{schema.group_by(site, name, schema.HOST)}", 3600, "gt", 0,
              "{{ $labels.site_name }}（{{ $labels.site }}）的电脑 {{ $labels.host }} "
              "超过心跳时限未上报"
              "（消息服务器发出遗嘱消息）", severity="warning"),
        _rule("collector-write-errors", "采集服务写入错误",
              f'SELECT sum("d") AS "write_errors" FROM (SELECT non_negative_difference('
              f'"write_errors") AS "d" {_from(schema.SELF)} {collector}) {collector}', 600,
              "gt", 0, "采集服务 {{ $labels.collector }} 近 10 分钟写入 InfluxDB 出错 "
              '{{ printf "%.0f" $values.B.Value }} 次；无数据表示采集服务或 InfluxDB 已停止',
              no_data="Alerting"),
        _rule("spool", "采集服务缓存积压",
              f'SELECT min("spool_batches") AS "spool_batches" {_from(schema.SELF)} '
              f"{collector}", 600, "gt", 0,
              "采集服务 {{ $labels.collector }} 的落盘缓存 10 分钟来一直有 "
              '{{ printf "%.0f" $values.B.Value }} 批未写入 InfluxDB', reducer="last"),
        _rule("hardware-removed", "电脑内存或硬盘被拆除",
              f'SELECT count("delta_bytes") AS "removed" {_from(schema.INVENTORY_CHANGE)} '
              f'AND "delta_bytes" < 0 {schema.group_by(site, schema.HOST, schema.CHANGE_TAG)}',
              HARDWARE_WINDOW_S, "gt", 0,
              "中队 {{ $labels.site }} 的电脑 {{ $labels.host }} "
              '{{ if eq $labels.change "memory" }}内存{{ else }}硬盘{{ end }}容量减少'
              '（{{ printf "%.0f" $values.B.Value }} 处），详见硬件台账或 netroom changes',
              severity="warning"),
    ]


def rule_titles() -> Dict[str, str]:
    return {r.NAME: r.TITLE["zh"] for r in RULES}


def template_text() -> str:
    """The Chinese message templates: netroom.title, netroom.message (no ``$``:
    nothing in them may look like an environment variable)."""
    names = "".join(f'{{{{ else if eq .Labels.rule "{k}" }}}}{v}'
                    for k, v in rule_titles().items())
    return (
        '{{ define "netroom.title" }}【网络室监控】{{ if eq .Status "firing" }}告警'
        '{{ else }}恢复{{ end }}：{{ .CommonLabels.alertname }}'
        "（{{ len .Alerts.Firing }} 条告警）{{ end }}\n"
        '{{ define "netroom.rule" }}{{ if not .Labels.rule }}' + names +
        "{{ else }}{{ .Labels.rule }}{{ end }}{{ end }}\n"
        '{{ define "netroom.message" }}{{ range .Alerts }}'
        '{{ if eq .Status "firing" }}【告警】{{ else }}【已恢复】{{ end }}'
        "{{ .Annotations.summary }}"
        '{{ if .Labels.rule }}（规则：{{ template "netroom.rule" . }}）{{ end }}'
        "，开始于 {{ .StartsAt.Local.Format \"2006-01-02 15:04\" }}\n"
        "{{ end }}{{ end }}\n")


def receivers(urls: Mapping[str, str]) -> List[Json]:
    """Contact point receivers whose URL ``urls`` gives, by environment variable."""
    out = []
    for uid, kind, env in RECEIVERS:
        url = urls.get(env)
        if not url:
            continue
        settings: Json = {"url": url}
        if kind == "webhook":
            settings.update({"httpMethod": "POST", "title": '{{ template "netroom.title" . }}',
                             "message": '{{ template "netroom.message" . }}'})
        elif kind == "dingding":
            settings.update({"msgType": "actionCard", "title": '{{ template "netroom.title" . }}',
                             "message": '{{ template "netroom.message" . }}'})
        else:  # wecom
            settings.update({"msgtype": "markdown", "title": '{{ template "netroom.title" . }}',
                             "message": '{{ template "netroom.message" . }}'})
        out.append({"uid": uid, "type": kind, "settings": settings,
                    "disableResolveMessage": False})
    return out


def policy() -> Json:
    """The notification policy: every alert to the netroom contact point,
    grouped per rule; a netroom route per rule label."""
    return {"receiver": CONTACT_POINT, "group_by": ["grafana_folder", "alertname"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
            "routes": [{"receiver": CONTACT_POINT, "object_matchers": [[LABEL, "=~", ".+"]],
                        "group_by": ["grafana_folder", "alertname"],
                        "repeat_interval": "4h"}]}


def provisioning_files() -> Dict[str, Json]:
    """File name -> content of Grafana's alerting provisioning files (apiVersion 1).

    Contact point URLs are ``$NETROOM_ALERT_..._URL``: Grafana interpolates
    environment variables in contact point settings; rule queries and
    annotations are not interpolated, templates and labels hold no ``$``.
    """
    env_urls = {env: f"${env}" for _, _, env in RECEIVERS}
    return {
        "netroom-rules.yaml": {"apiVersion": 1, "groups": [{
            "orgId": 1, "name": GROUP, "folder": FOLDER_TITLE,
            "interval": f"{GROUP_INTERVAL_S}s", "rules": rules()}]},
        "netroom-contact-points.yaml": {"apiVersion": 1, "contactPoints": [{
            "orgId": 1, "name": CONTACT_POINT, "receivers": receivers(env_urls)}]},
        "netroom-policies.yaml": {"apiVersion": 1, "policies": [{"orgId": 1, **policy()}]},
        "netroom-templates.yaml": {"apiVersion": 1, "templates": [{
            "orgId": 1, "name": TEMPLATE, "template": template_text()}]},
    }


HEADER = ("# Generated by python3 -m dashboards.build from dashboards/alerts.py: edit that,\n"
          "# not this file. Grafana unified alerting file provisioning (apiVersion 1);\n"
          "# dashboards/README.md, \"Alerts\", says how to install and what each rule means.\n")


def render_yaml(content: Json) -> str:
    """Stable YAML: keys in order, no anchors, multi-line strings as blocks."""
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return HEADER + yaml.dump(content, Dumper=Dumper, allow_unicode=True, sort_keys=False,
                              width=1000)


def api_rule(rule: Json, folder_uid: str) -> Json:
    """A rule as the alerting provisioning API takes it (POST/PUT alert-rules)."""
    return {**rule, "orgID": 1, "folderUID": folder_uid, "ruleGroup": GROUP}


def api_contact_points(urls: Mapping[str, str]) -> List[Json]:
    """Embedded contact points (API form): one per receiver with a URL set."""
    return [{**r, "name": CONTACT_POINT} for r in receivers(urls)]


def merge_policy(tree: Optional[Json]) -> Json:
    """``tree`` (Grafana's current policy tree) with netroom's route first,
    replacing any earlier netroom route; other routes are kept."""
    mine = policy()["routes"][0]
    if not tree:
        return policy()
    routes: Sequence[Any] = tree.get("routes") or []
    kept = [r for r in routes if r.get("object_matchers") != mine["object_matchers"]]
    return {**tree, "routes": [mine, *kept]}
