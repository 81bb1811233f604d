"""bandwidth: each site's speed tests per network, for room_video and gov_bandwidth.

Reads the ``bandwidth`` measurement over the last LOOKBACK_DAYS (which
bounds the rules' freshness_hours and trend_days): per site and network the
newest successful download measurement, the newest test of any outcome
(a failure after the last success is reported), the testers, and the daily
mean download (UTC days). Which measurements are fresh enough is the rules'
call: they see the timestamps.
"""
from __future__ import annotations

from typing import Any

from collector.compliance.facts import Bandwidth
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import schema

LOOKBACK_DAYS = 28
GROUP = schema.group_by(schema.SITE, schema.NETWORK, schema.HOST)


def queries(now_ms: int) -> tuple[str, str, str]:
    """The three InfluxQL queries (only numbers we computed go into the text)."""
    where = f"WHERE time > {now_ms - LOOKBACK_DAYS * schema.DAY_MS}ms AND time <= {now_ms}ms"
    frm = f"FROM {schema.ident(schema.BANDWIDTH)}"
    return (
        f'SELECT "download_mbps", "upload_mbps", "latency_ms" {frm} '
        f'{where} AND "download_mbps" >= 0 {GROUP} ORDER BY time DESC LIMIT 1',
        f'SELECT "method", "error" {frm} {where} {GROUP} '
        "ORDER BY time DESC LIMIT 1",
        f'SELECT mean("download_mbps") AS "mbps" {frm} '
        f"{where} GROUP BY time(1d), {schema.tags(schema.SITE, schema.NETWORK)} fill(none)",
    )


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    ok, newest, daily = (read(q) for q in queries(now_ms))
    return assemble(ok, newest, daily, org)


def assemble(ok: list[Row], newest: list[Row], daily: list[Row], org: Org) -> Loaded:
    """Pure: rows of the three queries -> ``{"bandwidth": (...)}`` per site in ``org``."""
    best: dict[tuple[str, str], Row] = {}
    for r in ok:
        k = _key(r)
        if k not in best or int(r["time"]) > int(best[k]["time"]):
            best[k] = r
    last: dict[tuple[str, str], Row] = {}
    testers: dict[tuple[str, str], set[str]] = {}
    for r in newest:
        k = _key(r)
        testers.setdefault(k, set()).add(r[schema.HOST])
        if k not in last or int(r["time"]) > int(last[k]["time"]):
            last[k] = r
    days: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in daily:
        if r.get("mbps") is not None:
            k = _key(r)
            days.setdefault(k, []).append((int(r["time"]), float(r["mbps"])))
    facts: dict[str, list[Bandwidth]] = {}
    for k in sorted(set(best) | set(last)):
        site, net = k
        if org.site(site) is None:
            continue  # the devices loader reports strays
        b, n = best.get(k), last.get(k)
        ts = int(b["time"]) if b is not None else 0
        failed = n is not None and bool(n.get("error")) and int(n["time"]) > ts
        facts.setdefault(site, []).append(Bandwidth(
            network=net,
            host=b[schema.HOST] if b is not None else "",
            ts_ms=ts,
            download_mbps=float(b["download_mbps"]) if b is not None else 0.0,
            upload_mbps=_opt(b, "upload_mbps"),
            latency_ms=_opt(b, "latency_ms"),
            error=str(n["error"]) if failed and n is not None else "",
            error_ms=int(n["time"]) if failed and n is not None else 0,
            testers=tuple(sorted(testers.get(k, ()))),
            daily_mbps=tuple(sorted(days.get(k, []))),
        ))
    return Loaded({site: {"bandwidth": tuple(bs)} for site, bs in facts.items()})


def _key(r: Row) -> tuple[str, str]:
    return r[schema.SITE], r[schema.NETWORK]


def _opt(row: Row | None, name: str) -> Any:
    value = None if row is None else row.get(name)
    return None if value is None else float(value)
