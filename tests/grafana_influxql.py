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

import re
from typing import Any

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


class Grafana:
    """Interpolates queries the way Grafana's InfluxDB data source does."""

    def __init__(self, influxd: Influxd, db: str, dash: dict[str, Any],
                 chosen: dict[str, list[str]], from_ms: int, to_ms: int) -> None:
        """``chosen``: selected values per variable (default All); times in epoch ms."""
        self.influxd, self.db, self.from_ms, self.to_ms = influxd, db, from_ms, to_ms
        self.values: dict[str, str] = {"timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
                                        "__from": str(from_ms), "__to": str(to_ms)}
        self.options: dict[str, list[str]] = {}
        for v in dash["templating"]["list"]:  # in order: later ones use earlier ones
            if v["type"] == "custom":
                self.values[v["name"]] = v["current"]["value"]
                continue
            found = self.run(v["query"], {})
            # SHOW TAG VALUES: the "value" column; SELECT: the first field
            # after time (Grafana's ResponseParser takes value[1]).
            opts = sorted({row["value"] if "value" in row else
                           next(x for k, x in row.items() if k != "time") for row in found})
            self.options[v["name"]] = opts
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
        t = next(t for t in panel["targets"] if t["refId"] == ref)
        return self.run(t["query"], {"__interval": interval_for(
            panel, self.to_ms - self.from_ms)})
