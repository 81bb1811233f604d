"""Grafana's InfluxDB data source, as far as dashboards' queries need it.

No Grafana server can run here, so this does what its documentation says
the InfluxDB (InfluxQL) data source does to a query before sending it
("Formatting multi-value variables", "InfluxDB query editor", "Global
variables"): ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms``;
``$__interval`` -> the time range / max data points in round steps, no less
than the panel's min interval; a query variable -> its values from its own
query, a multi-value selection as ``(a|b)`` of regex-escaped values, All as
the custom all value or else every value; a custom variable -> its value;
the global ``${__from}`` and ``${__to}`` -> the range's ends in epoch ms (also
in variable queries: a variable refreshed "On time range change" is
re-queried with the new range). A single-value variable (no All, no
multi-select) takes the value chosen, else its first option (Grafana's
choice when there is no current value or it is not among the options).
"""
from __future__ import annotations

import datetime
import re
from functools import partial
from typing import Any, Callable

from harness import series
from servers import Influxd

VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def escape_regex(value: str) -> str:
    """@grafana/data escapeRegex: what the InfluxDB data source applies to values."""
    return re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), value)


def interval_for(panel: dict[str, Any], range_ms: int) -> str:
    """$__interval: range / max data points (the panel's maxDataPoints, else 1000,
    about a wide panel's width in pixels) in Grafana's round steps, at least
    panel.interval."""
    steps = [(1_000, "1s"), (5_000, "5s"), (10_000, "10s"), (30_000, "30s"), (60_000, "1m"),
             (120_000, "2m"), (300_000, "5m"), (600_000, "10m"), (900_000, "15m"),
             (1_200_000, "20m"), (1_800_000, "30m"), (3_600_000, "1h"), (10_800_000, "3h"),
             (21_600_000, "6h"), (43_200_000, "12h"), (86_400_000, "1d")]
    floor = {s: ms for ms, s in steps}.get(panel.get("interval", ""), 0)
    points = panel.get("maxDataPoints") or 1000
    return next(s for ms, s in steps if ms >= max(range_ms / points, floor))


def named(regex: str, option: str) -> tuple[str, str] | None:
    """A variable's Regex applied to one option (docs: "Filter variables with
    regex"): None if it does not match; named groups ``text`` and ``value``
    split it; else the first group, or the option itself. (text, value)."""
    if not regex:
        return option, option
    body = regex[1:regex.rindex("/")]
    m = re.search(body.replace("(?<", "(?P<"), option)
    if m is None:
        return None
    groups = m.groupdict()
    if groups:
        value = groups.get("value") or groups.get("text") or option
        return groups.get("text") or value, value
    one = m.group(1) if m.groups() else option
    return one, one


class Grafana:
    """Interpolates queries the way Grafana's InfluxDB data source does."""

    def __init__(self, influxd: Influxd, db: str, dash: dict[str, Any],
                 chosen: dict[str, list[str]], from_ms: int, to_ms: int) -> None:
        """``chosen``: selected values per variable (default All); times in epoch ms."""
        self.influxd, self.db, self.from_ms, self.to_ms = influxd, db, from_ms, to_ms
        self.values: dict[str, str] = {"timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
                                        "__from": str(from_ms), "__to": str(to_ms)}
        self.options: dict[str, list[str]] = {}
        self.texts: dict[str, dict[str, str]] = {}  # variable -> value -> text shown
        for v in dash["templating"]["list"]:  # in order: later ones use earlier ones
            if v["type"] in ("custom", "constant") and not v.get("multi"):
                self.values[v["name"]] = v["current"]["value"]
                continue
            if v["type"] == "custom":  # multi-value: its options, as listed
                pairs = [(o["text"], o["value"]) for o in v["options"]]
            else:
                found = self.run(v["query"], {})
                # SHOW TAG VALUES: the "value" column; SELECT: the first field
                # after time (Grafana's ResponseParser takes value[1]).
                raw = {row["value"] if "value" in row else
                       next(x for k, x in row.items() if k != "time") for row in found}
                pairs = [tv for x in raw if (tv := named(v.get("regex", ""), str(x)))]
            # sort 1: alphabetical by the text shown
            pairs = sorted(set(pairs), key=lambda tv: tv[0]) if v.get("sort") else pairs
            self.texts[v["name"]] = {value: text for text, value in pairs}
            opts = [value for _, value in pairs]
            self.options[v["name"]] = sorted(opts)
            if not v.get("multi"):
                assert opts, f"variable {v['name']} has no values"
                one = chosen.get(v["name"], [])
                assert len(one) <= 1, f"variable {v['name']} is single-select"
                self.values[v["name"]] = one[0] if one else opts[0]
                continue
            picked = chosen.get(v["name"], ["$__all"])
            if picked == ["$__all"] and v["allValue"]:
                self.values[v["name"]] = v["allValue"]
                continue
            picked = opts if picked == ["$__all"] else picked
            assert picked, f"variable {v['name']} has no values"
            esc = [escape_regex(x) for x in picked]
            self.values[v["name"]] = esc[0] if len(esc) == 1 else f"({'|'.join(esc)})"

    def interpolate(self, query: str, extra: dict[str, str]) -> str:
        values = {**self.values, **extra}
        return VAR.sub(lambda m: values[m.group(1) or m.group(2)], query)

    def run(self, query: str, extra: dict[str, str]) -> list[dict[str, Any]]:
        q = self.interpolate(query, extra)
        answer = self.influxd.query(q, self.db)
        assert "error" not in answer["results"][0], (q, answer)
        return list(series(answer))

    def panel(self, panel: dict[str, Any], ref: str = "A") -> list[dict[str, Any]]:
        """One target's rows. A panel's relative time (``timeFrom``, docs: "Query
        options"; ``now/d`` today so far, ``30d`` the last 30 days) replaces
        the dashboard's range for its queries."""
        t = next(t for t in panel["targets"] if t["refId"] == ref)
        lo, hi = self.from_ms, self.to_ms
        rel = panel.get("timeFrom")
        if rel == "now/d":
            today = datetime.datetime.fromtimestamp(hi / 1000).replace(
                hour=0, minute=0, second=0, microsecond=0)
            lo = int(today.timestamp() * 1000)
        elif rel:
            unit = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}[rel[-1]]
            lo = hi - int(rel[:-1]) * unit
        return self.run(t["query"], {"__interval": interval_for(panel, hi - lo),
                                     "timeFilter": f"time >= {lo}ms and time <= {hi}ms"})

    def table(self, panel: dict[str, Any]) -> list[dict[str, Any]]:
        """What a table panel shows: every target's frame (resultFormat table),
        the panel's transformations in order, then value mappings, as rows keyed
        by column title (see ``transform``)."""
        frames = []
        for t in panel["targets"]:
            assert t["resultFormat"] == "table", (panel["title"], t["refId"])
            frames.append(frame(t["refId"], self.panel(panel, t["refId"])))
        for step in panel.get("transformations", []):
            frames = transform(step, frames)
        assert len(frames) == 1, (panel["title"], "a table shows one frame at a time")
        return displayed(panel, frames[0])


# --- Transformations (docs: "Transform data", the transformation functions) ---
# A frame is {"refId", "fields": [{"name", "title", "values", "mappings"}]}:
# "title" is the column's display name (the field name until "Organize fields
# by name" renames it), "mappings" value -> text from "Config from query
# results". Only the transformations the boards use are simulated; any other
# fails the test that reads the panel.
Frame = dict[str, Any]


def frame(ref: str, rows: list[dict[str, Any]]) -> Frame:
    """A table-format frame of InfluxQL rows: Time first (Grafana names the
    time column so), then the other columns in their order."""
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    order = (["time"] if "time" in names else []) + [n for n in names if n != "time"]
    return {"refId": ref, "fields": [
        {"name": "Time" if n == "time" else n, "title": "Time" if n == "time" else n,
         "values": [row.get(n) for row in rows], "mappings": {}} for n in order]}


def _rows(f: Frame) -> list[dict[str, Any]]:
    n = len(f["fields"][0]["values"]) if f["fields"] else 0
    return [{x["title"]: x["values"][i] for x in f["fields"]} for i in range(n)]


def transform(step: dict[str, Any], frames: list[Frame]) -> list[Frame]:
    """One transformation, as the docs describe it."""
    kind, opt = step["id"], step["options"]
    if kind == "configFromData":
        # "Config from query results", value mappings: each row of the config
        # query's frame is one mapping (Value mappings / Value -> / Display
        # text), applied to the fields ``applyTo`` matches; the config frame
        # leaves the result.
        config = next(f for f in frames if f["refId"] == opt["configRefId"])
        use = {m["handlerKey"]: m["fieldName"] for m in opt["mappings"]}
        rows = _rows(config)
        mapping = {str(r[use["mappings.value"]]): r[use["mappings.text"]] for r in rows}
        assert opt["applyTo"]["id"] == "byName"
        out = [f for f in frames if f is not config]
        for f in out:
            for x in f["fields"]:
                if x["title"] == opt["applyTo"]["options"]:
                    x["mappings"] = {**x["mappings"], **mapping}
        return out
    if kind == "organize":  # "Organize fields by name": hide, order, rename
        order = opt.get("indexByName") or {}
        for f in frames:
            kept = [x for x in f["fields"] if not opt["excludeByName"].get(x["title"])]
            kept.sort(key=lambda x: order.get(x["title"], len(order)))
            for x in kept:
                x["title"] = opt["renameByName"].get(x["title"], x["title"])
            f["fields"] = kept
        return frames
    if kind == "groupBy":
        # "Group by": one row per distinct value of the group-by fields (in the
        # order first seen), each aggregated field as "<name> (<calculation>)";
        # other fields are dropped.
        conf = opt["fields"]
        out = []
        for f in frames:
            keys = [x for x in f["fields"] if conf.get(x["title"], {}).get("operation")
                    == "groupby"]
            aggs = [x for x in f["fields"] if conf.get(x["title"], {}).get("operation")
                    == "aggregate"]
            groups: dict[tuple[Any, ...], list[int]] = {}
            for i in range(len(f["fields"][0]["values"])):
                groups.setdefault(tuple(k["values"][i] for k in keys), []).append(i)
            fields = [{**k, "values": [g[j] for g in groups]} for j, k in enumerate(keys)]
            for a in aggs:
                for calc in conf[a["title"]]["aggregations"]:
                    assert calc == "count", f"calculation {calc} is not simulated"
                    name = f"{a['title']} ({calc})"
                    fields.append({"name": name, "title": name, "mappings": {},
                                   "values": [len(ix) for ix in groups.values()]})
            out.append({**f, "fields": fields})
        return out
    if kind == "sortBy":  # "Sort by": one field, ascending or descending
        [by] = opt["sort"]
        for f in frames:
            col = next(x for x in f["fields"] if x["title"] == by["field"])
            ix = sorted(range(len(col["values"])), key=lambda i: col["values"][i],
                        reverse=bool(by.get("desc")))
            for x in f["fields"]:
                x["values"] = [x["values"][i] for i in ix]
        return frames
    raise AssertionError(f"transformation {kind} is not simulated")


def displayed(panel: dict[str, Any], f: Frame) -> list[dict[str, Any]]:
    """Rows keyed by column title, each cell as shown: its value mapping's text
    (from the transformation, the column's override, or the panel's
    defaults: docs "Configure value mappings", type value), else the value."""
    by_title: dict[str, dict[str, Any]] = {}
    for o in panel["fieldConfig"]["overrides"]:
        for prop in o["properties"]:
            if prop["id"] == "mappings" and o["matcher"]["id"] == "byName":
                by_title[o["matcher"]["options"]] = {
                    k: v["text"] for m in prop["value"] if m["type"] == "value"
                    for k, v in m["options"].items()}
    defaults = {k: v["text"] for m in panel["fieldConfig"]["defaults"].get("mappings", [])
                if m["type"] == "value" for k, v in m["options"].items()}
    for x in f["fields"]:
        maps = {**defaults, **x["mappings"], **by_title.get(x["title"], {})}
        x["values"] = [maps.get(str(v), v) if v is not None else v for v in x["values"]]
    return _rows(f)


# --- Grafana-managed alert rules (unified alerting) ---
# What Grafana's rule evaluation does with netroom's rules (docs: "Queries and
# conditions", "Reduce", "Threshold"; the InfluxDB data source's alert
# queries): each data query runs over its relativeTimeRange ending now
# ($timeFilter = time >= now - from and time <= now - to), one series per
# tag set (the tags become the alert instance's labels); Reduce turns each
# series into one number (mode dropNN: nulls and NaN dropped first; a series
# left empty gives no instance); Threshold gives 1 (firing) or 0.
REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "last": lambda v: v[-1], "max": max, "min": min, "sum": sum,
    "mean": lambda v: sum(v) / len(v), "count": len}
EVALUATORS: dict[str, Callable[[float, list[float]], bool]] = {
    "gt": lambda x, p: x > p[0], "lt": lambda x, p: x < p[0],
    "within_range": lambda x, p: p[0] < x < p[1],
    "outside_range": lambda x, p: x < p[0] or x > p[1]}


def _macro(values: dict[str, str], m: re.Match[str]) -> str:
    return values[m.group(1) or m.group(2)]


def evaluate_rule(influxd: Influxd, db: str, rule: dict[str, Any],
                  now_ms: int) -> dict[frozenset[tuple[str, str]], float] | None:
    """The firing instances of ``rule`` at ``now_ms``: labels -> reduced value.

    None when the data queries return no series at all (Grafana's "No data",
    whose outcome is the rule's noDataState)."""
    frames: dict[str, dict[frozenset[tuple[str, str]], list[float]]] = {}
    out: dict[frozenset[tuple[str, str]], float] = {}
    for q in rule["data"]:
        model, ref = q["model"], q["refId"]
        if q["datasourceUid"] != "__expr__":
            span = q["relativeTimeRange"]
            lo, hi = now_ms - span["from"] * 1000, now_ms - span["to"] * 1000
            macros = {"timeFilter": f"time >= {lo}ms and time <= {hi}ms"}
            text = VAR.sub(partial(_macro, macros), model["query"])
            answer = influxd.query(text, db)
            assert "error" not in answer["results"][0], (text, answer)
            by: dict[frozenset[tuple[str, str]], list[float]] = {}
            for res in answer["results"]:
                for s in res.get("series", []):
                    labels = frozenset((s.get("tags") or {}).items())
                    col = [c for c in s["columns"] if c != "time"]
                    assert len(col) == 1, f"one value column per series: {col}"
                    by.setdefault(labels, []).extend(
                        float(v[s["columns"].index(col[0])]) for v in s["values"]
                        if v[s["columns"].index(col[0])] is not None)
            frames[ref] = by
        elif model["type"] == "reduce":
            assert model["settings"]["mode"] == "dropNN"
            frames[ref] = {k: [REDUCERS[model["reducer"]](v)]
                           for k, v in frames[model["expression"]].items() if v}
        elif model["type"] == "threshold":
            [cond] = model["conditions"]
            ev = cond["evaluator"]
            frames[ref] = {k: [float(EVALUATORS[ev["type"]](v[-1], ev["params"]))]
                           for k, v in frames[model["expression"]].items()}
        else:
            raise AssertionError(f"expression type {model['type']} is not simulated")
    queried = [frames[q["refId"]] for q in rule["data"] if q["datasourceUid"] != "__expr__"]
    if not any(queried):
        return None
    reduced = {q["model"]["expression"]: q["refId"] for q in rule["data"]
               if q["datasourceUid"] == "__expr__" and q["model"]["type"] == "reduce"}
    for labels, (fired,) in frames[rule["condition"]].items():
        if fired:
            value_ref = next(iter(reduced.values()))
            out[labels] = frames[value_ref][labels][0]
    return out
