"""Small builders for Grafana's classic dashboard JSON model (schemaVersion 39).

Every panel queries one InfluxDB (InfluxQL) data source by a fixed uid, so
the same files work through file provisioning, the HTTP API and UI import
(see dashboards/README.md, "Data source"). Texts come in pairs, Chinese
first; ``Tr`` picks one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collector.compliance import skew
from netroom import schema

Json = Dict[str, Any]

SCHEMA_VERSION = 39  # Grafana 10.4 / 11.0 write this; newer ones migrate it
DATASOURCE_UID = "netroom-influxdb"
DATASOURCE: Json = {"type": "influxdb", "uid": DATASOURCE_UID}
WIDTH = 24  # grid columns
LANGS = ("zh", "en")
# Org tree levels offered as filters; they are tag keys on `compliance`
# points (collector.compliance.orgconfig.Org.tags_for). Other level names: edit and rebuild.
ORG_LEVELS: Tuple[Tuple[str, str, str], ...] = (
    ("detachment", "支队", "Detachment"),
    ("battalion", "大队", "Battalion"),
)


def var_filter(tag: str, var: str) -> str:
    """``"site" =~ /^$site$/``: the tag matches the dashboard variable's selection."""
    return f"{schema.ident(tag)} =~ /^${var}$/"


def by_interval(*tags: str) -> str:
    """``GROUP BY time($__interval), "site", ...``: one bucket per panel interval."""
    return f"GROUP BY time($__interval), {schema.tags(*tags)}"


LEVELS = tuple(key for key, _, _ in ORG_LEVELS)
# Every unit-scoped query filters by the chosen detachment and battalion (All:
# `.*`, which also matches series without the tag), every site-scoped one by
# those and the chosen site (All: `.*` too, never a regex of every site: that
# regex is what made panels slow with 1,000 sites).
UNIT = " AND ".join(var_filter(key, key) for key in LEVELS)
SITE = f'{UNIT} AND {var_filter(schema.SITE, "site")}'
ALL = ".*"  # the All value of every multi-value variable
# Where long ranges read (collector/influx/retention.py): the retention policy
# a `$rp` / `$daily` variable picks for the dashboard's time range, the
# per-site 5-minute series (site-level panels of the one-site board) and the
# per-unit ones (UNIT_METRICS, per lowest org level and network: fleet- and
# unit-level panels).
RP_VAR, DAILY_VAR = "rp", "daily"
SITE_METRICS = f"{schema.ident(schema.RP_ROLLUP)}.{schema.ident(schema.SITE_METRICS)}"
UNIT_METRICS = f"{schema.ident(schema.RP_ROLLUP)}.{schema.ident(schema.UNIT_METRICS)}"
# Every point under a unit carries its units' names too (Org.tags_for): group
# by both, filter by the ids, show the names (legends, table columns).
UNIT_NAMES = tuple(schema.name_tag(key) for key in LEVELS)
UNIT_TAGS = (*LEVELS, *UNIT_NAMES)
UNIT_ALIAS = " ".join(f"$tag_{name}" for name in UNIT_NAMES)  # a unit's legend: its path


def in_rp(var: str, measurement: str) -> str:
    """``"$rp"."metrics"``: the measurement in the retention policy ``$var`` names."""
    return f'"${var}".{schema.ident(measurement)}'
# "Latest" queries without $timeFilter stop here: a point stamped further ahead
# (a broken clock, before the collector bounded message times) is no one's latest.
NOT_AHEAD = f"time <= now() + {skew.AHEAD_MS // schema.MINUTE_MS}m"
# The `compliance` points' status field: the five verdicts (docs/compliance.md).
STATUS = {"pass": ("达标", "Pass", "green"), "fail": ("未达标", "Fail", "red"),
          "no_data": ("无数据", "No data", "orange"),
          "not_applicable": ("不适用", "N/A", "transparent"),
          "waived": ("豁免", "Waived", "blue")}


@dataclass(frozen=True)
class Tr:
    """Picks the text of one language from a (Chinese, English) pair."""

    lang: str

    def __call__(self, zh: str, en: str) -> str:
        return zh if self.lang == "zh" else en


class Grid:
    """Numbers panels and lays them out left to right, wrapping at 24 columns."""

    def __init__(self) -> None:
        self.panels: List[Json] = []
        self._x = self._y = self._row_h = 0

    def add(self, w: int, h: int, panel: Json) -> None:
        if self._x + w > WIDTH:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        self._row_h = max(self._row_h, h)
        self.panels.append(panel)


def target(query: str, ref: str = "A", alias: str = "", table: bool = False) -> Json:
    """A raw InfluxQL query; ``alias`` may use $tag_<key> and $col."""
    t: Json = {"refId": ref, "datasource": DATASOURCE, "query": query, "rawQuery": True,
               "resultFormat": "table" if table else "time_series"}
    if alias:
        t["alias"] = alias
    return t


def value_map(t: Tr, values: Mapping[str, Tuple[str, str, str]]) -> List[Json]:
    """Grafana value mappings: raw value -> (Chinese, English, colour)."""
    return [{"type": "value", "options": {
        v: {"text": t(zh, en), "color": color, "index": i}
        for i, (v, (zh, en, color)) in enumerate(values.items())}}]


def rename(names: Mapping[str, str], hide: Sequence[str] = ("Time",),
           order: Sequence[str] = ()) -> Json:
    """An `organize` transformation: rename columns, hide others, and put the
    columns named in ``order`` (by their names before renaming) first, in that order."""
    return {"id": "organize", "options": {"renameByName": dict(names),
                                          "excludeByName": {h: True for h in hide},
                                          "indexByName": {n: i for i, n in enumerate(order)}}}


def override(name: str, **props: Any) -> Json:
    """Field properties for the field (column, series) called ``name``."""
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()]}


# Grafana's panel "Max data points" (query options): $__interval is the time
# range divided by it, so it bounds the buckets InfluxDB computes per series.
# The default is the panel's width in pixels (~1,000 on a wide panel); 300
# keeps a week at 30-minute buckets and a day at 5 minutes.
MAX_DATA_POINTS = 300


def _panel(kind: str, title: str, targets: Sequence[Json], description: str,
           defaults: Json, options: Json, overrides: Sequence[Json],
           transformations: Sequence[Json], interval: str) -> Json:
    p: Json = {"type": kind, "title": title, "description": description,
               "datasource": DATASOURCE, "targets": list(targets),
               "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
               "options": options, "transformations": list(transformations)}
    if interval:
        p["interval"] = interval  # the smallest $__interval: agents report each minute
    if kind == "timeseries":
        p["maxDataPoints"] = MAX_DATA_POINTS
    return p


def thresholds(*steps: Tuple[str, Optional[float]]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def timeseries(title: str, targets: Sequence[Json], unit: str, description: str = "", *,
               interval: str = "1m", bars: bool = False, lo: Optional[float] = None,
               hi: Optional[float] = None, overrides: Sequence[Json] = (),
               transformations: Sequence[Json] = (),
               lines: Sequence[Tuple[str, float]] = ()) -> Json:
    """A time series panel; ``lines``: (colour, value) threshold lines drawn
    across it (a requirement to compare with)."""
    custom: Dict[str, Any] = {"drawStyle": "bars" if bars else "line", "lineWidth": 1,
              "fillOpacity": 60 if bars else 10, "showPoints": "auto", "spanNulls": False,
              "axisSoftMin": lo, "axisSoftMax": hi}
    if lines:
        custom["thresholdsStyle"] = {"mode": "line"}
    defaults = {"unit": unit, "custom": {k: v for k, v in custom.items() if v is not None},
                "color": {"mode": "palette-classic"}, "mappings": [],
                "thresholds": thresholds(("transparent", None), *lines) if lines
                else thresholds(("green", None))}
    options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                          "calcs": ["lastNotNull", "max"]},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, targets, description, defaults, options,
                  overrides, transformations, interval)


# How people read a network id (netroom.protocol.NETWORKS).
NETWORK_NAMES = {"gov": ("政务网", "Gov"), "internet": ("互联网", "Internet")}


def network_legends(t: Tr) -> List[Json]:
    """``renameByRegex`` transformations (docs: "Rename by regex") turning the
    network id in series names (``... gov``, ``... gov rx``) into its name."""
    return [{"id": "renameByRegex", "options": {
        "regex": f"^(.*\\b){net}(\\b.*)?$", "renamePattern": f"$1{t(zh, en)}$2"}}
        for net, (zh, en) in NETWORK_NAMES.items()]


def network_map(t: Tr) -> List[Json]:
    """Value mappings for a network column: gov -> 政务网 / Gov."""
    return [{"type": "value", "options": {
        net: {"text": t(zh, en), "index": i} for i, (net, (zh, en)) in
        enumerate(NETWORK_NAMES.items())}}]


def network_var(t: Tr) -> Json:
    """The network filter: a custom variable of ``name : id`` pairs (docs: "Add a
    custom variable"), the names shown, the ids in queries; All = ``.*``."""
    pairs = [(t(zh, en), net) for net, (zh, en) in NETWORK_NAMES.items()]
    return {"type": "custom", "name": "network", "label": t("网络", "Network"),
            "query": ",".join(f"{text} : {value}" for text, value in pairs),
            "includeAll": True, "multi": True, "allValue": ALL, "hide": 0, "sort": 0,
            "skipUrlSync": False,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [{"selected": False, "text": text, "value": value}
                        for text, value in pairs]}


def stat(title: str, targets: Sequence[Json], unit: str = "none", description: str = "", *,
         steps: Sequence[Tuple[str, Optional[float]]] = (("blue", None),),
         decimals: Optional[int] = 0, overrides: Sequence[Json] = ()) -> Json:
    defaults: Json = {"unit": unit, "mappings": [], "thresholds": thresholds(*steps),
                      "color": {"mode": "thresholds"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
               "orientation": "auto", "textMode": "auto"}
    return _panel("stat", title, targets, description, defaults, options, overrides, (), "")


def table(title: str, targets: Sequence[Json], description: str = "", *,
          mappings: Sequence[Json] = (), overrides: Sequence[Json] = (),
          transformations: Sequence[Json] = (), cells: str = "auto") -> Json:
    defaults = {"custom": {"align": "auto", "cellOptions": {"type": cells}, "inspect": False},
                "mappings": list(mappings), "thresholds": thresholds(("green", None)),
                "color": {"mode": "thresholds"}}
    options = {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    return _panel("table", title, targets, description, defaults, options, overrides,
                  transformations, "")


# The org filters read `<level>_label` tags of `site_info` ("<id>:<name>",
# collector/store/writeback.py) and split them with Grafana's named capture
# groups (docs: "Filter and modify using named text and value capture
# groups"): the menu shows the name, queries get the id.
NAMED = "/^(?<value>[^:]+):(?<text>.*)$/"


def query_var(name: str, label: str, query: str, all_value: Optional[str] = ALL,
              regex: str = "") -> Json:
    """A multi-value variable from ``SHOW TAG VALUES`` with All = ``all_value``
    (a regex; None: every option, joined into one regex)."""
    return {"type": "query", "name": name, "label": label, "datasource": DATASOURCE,
            "query": query, "definition": query, "refresh": 1, "regex": regex, "sort": 1,
            "includeAll": True, "multi": True, "allValue": all_value, "hide": 0,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "skipUrlSync": False}


def single_var(name: str, label: str, query: str, regex: str = "") -> Json:
    """A single-value variable from ``SHOW TAG VALUES``: no All, no multi-select.
    With no current value Grafana selects the first option (sorted: the first site)."""
    return {"type": "query", "name": name, "label": label, "datasource": DATASOURCE,
            "query": query, "definition": query, "refresh": 1, "regex": regex, "sort": 1,
            "includeAll": False, "multi": False, "hide": 0, "current": {},
            "options": [], "skipUrlSync": False}


def rp_var(t: Tr, name: str, family: str) -> Json:
    """A hidden variable naming the retention policy for the time range.

    Grafana's documented mechanism: a query variable refreshed "On time range
    change" (refresh 2), whose query uses the global variables ``${__from}``
    and ``${__to}`` (epoch ms). It reads the collector's ``rp_choice`` table
    (retention.choice_lines): one row per family matches any range, raw up to
    ``influxdb.retention.switch_after``, the roll-up beyond.
    """
    span = "${__to} - ${__from}"
    query = (f"SELECT {schema.ident('rp')} FROM {schema.ident(schema.RP_FOREVER)}."
             f"{schema.ident(schema.RP_CHOICE)} WHERE {schema.tag_is('family', family)} "
             f'AND "from_ms" <= {span} AND "upto_ms" > {span}')
    label = t("数据精度", "Resolution") if family == "metrics" else t("每日数据", "Daily data")
    return {"type": "query", "name": name, "label": label, "datasource": DATASOURCE,
            "query": query, "definition": query, "refresh": 2, "regex": "", "sort": 0,
            "includeAll": False, "multi": False, "hide": 2,
            "current": {"selected": True, "text": "autogen", "value": "autogen"},
            "options": [], "skipUrlSync": True}


def custom_var(name: str, label: str, values: Sequence[str], current: str) -> Json:
    return {"type": "custom", "name": name, "label": label, "query": ",".join(values),
            "includeAll": False, "multi": False, "hide": 0, "skipUrlSync": False,
            "current": {"selected": True, "text": current, "value": current},
            "options": [{"selected": v == current, "text": v, "value": v} for v in values]}


def org_vars(t: Tr, one_site: bool = False) -> List[Json]:
    """detachment -> battalion -> site, each narrowing the next one's options,
    showing names and filtering by id (``site_info``'s labels, NAMED).

    Every level's All is ``.*`` (so series without org tags still match):
    cheap to evaluate whatever the number of sites, and queries filter on
    every level (``SITE``), so a chosen detachment still narrows the panels.
    ``one_site``: the site is single-select, no All (the first site by
    default): boards with per-PC panels, whose queries must cover one site.
    """
    out: List[Json] = []
    where: List[str] = []
    info = f"SHOW TAG VALUES FROM {schema.ident(schema.SITE_INFO)} WITH KEY ="
    for key, zh, en in ORG_LEVELS:
        cond = f' WHERE {" AND ".join(where)}' if where else ""
        out.append(query_var(key, t(zh, en),
                             f"{info} {schema.ident(schema.label_tag(key))}{cond}",
                             regex=NAMED))
        where.append(var_filter(key, key))
    site_query = (f"{info} {schema.ident(schema.label_tag(schema.SITE))} "
                  f'WHERE {" AND ".join(where)}')
    out.append(single_var("site", t("中队", "Site"), site_query, NAMED) if one_site
               else query_var("site", t("中队", "Site"), site_query, regex=NAMED))
    return out


def site_is_single(dash: Json) -> bool:
    """Whether the dashboard's ``site`` variable selects exactly one site."""
    site = next(v for v in dash["templating"]["list"] if v["name"] == "site")
    return not site["multi"] and not site["includeAll"]


def dashboard(uid: str, t: Tr, title: str, description: str, grid: Grid,
              variables: Sequence[Json], time_from: str = "now-24h") -> Json:
    return {
        "id": None, "uid": f"{uid}-{t.lang}", "title": title, "description": description,
        "tags": ["netroom", f"netroom-{t.lang}"], "timezone": "browser", "editable": True,
        "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "time": {"from": time_from, "to": "now"}, "timepicker": {}, "refresh": "1m",
        "templating": {"list": list(variables)}, "annotations": {"list": []},
        "links": [{"title": t("网络室监控", "netroom"), "type": "dashboards",
                   "tags": [f"netroom-{t.lang}"], "asDropdown": False, "includeVars": True,
                   "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "panels": grid.panels,
    }
