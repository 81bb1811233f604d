"""gov_bandwidth: the site's gov intranet link is fast enough, and its trend.

Notice 5: 提高带宽网速 and 加快推进政务网带宽扩容. The notice sets no figure; the
default ``min_mbps`` of 20 Mbit/s lets a room of eight gov PCs play 2.5 Mbit/s
video at once (see room_video). ``actual`` is the newest gov download
measurement within ``freshness_hours`` (0 without one, which fails). The
trend for logistics, in ``detail``: the mean of the daily means of the last
``trend_days`` against the ``trend_days`` before (see ``trend``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result
from netroom import schema

NAME = "gov_bandwidth"
TITLE = {"zh": "政务网带宽", "en": "Gov bandwidth"}
DEFAULTS: dict[str, Any] = {"min_mbps": 20.0, "freshness_hours": 24.0, "trend_days": 7}
LIMITS = {"min_mbps": (0.1, 100_000), "freshness_hours": (1, 672), "trend_days": (1, 14)}
UNIT = "Mbit/s"
POOL = "bandwidth"  # see room_video


def trend(daily: tuple[tuple[int, float], ...], now_ms: int, days: int
          ) -> tuple[float, float] | None:
    """(previous, recent) mean of daily means (Mbit/s), or None if a window is empty.

    Recent: days starting within the last ``days`` days before ``now_ms``;
    previous: the ``days`` days before those.
    """
    cut = now_ms - days * schema.DAY_MS
    recent = [v for t, v in daily if cut <= t <= now_ms]
    before = [v for t, v in daily if cut - days * schema.DAY_MS <= t < cut]
    if not recent or not before:
        return None
    return sum(before) / len(before), sum(recent) / len(recent)


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    need = float(params["min_mbps"])
    fresh_ms = float(params["freshness_hours"]) * schema.HOUR_MS
    b = snap.bandwidth_on("gov")
    notes: list[str] = []
    fresh = b is not None and b.ts_ms > 0 and snap.now_ms - b.ts_ms <= fresh_ms
    actual = b.download_mbps if b is not None and fresh else 0.0
    if b is not None and fresh:
        up = f", up {b.upload_mbps:g}" if b.upload_mbps is not None else ""
        ago = (snap.now_ms - b.ts_ms) / schema.HOUR_MS
        notes.append(f"down {b.download_mbps:g} Mbit/s{up} by {b.host}, {ago:.1f} h ago")
    else:
        notes.append(f"no gov speed test in {params['freshness_hours']:g} h")
    if b is not None and b.error:
        notes.append(f"last test failed: {b.error}")
    if b is not None:
        t = trend(b.daily_mbps, snap.now_ms, int(params["trend_days"]))
        if t is not None:
            notes.append(f"trend {t[1] - t[0]:+.1f} Mbit/s ({int(params['trend_days'])} d "
                         f"mean {t[1]:.1f} vs {t[0]:.1f} before)")
        if len(b.testers) > 1:
            notes.append(f"{len(b.testers)} testers ({', '.join(b.testers)}): keep one per "
                         "site and network, or their tests share the link")
    ok = fresh and actual >= need - 1e-9
    shortfall: dict[str, float] = {}
    if fresh and not ok:
        shortfall["gov_mbps"] = math.ceil(round((need - actual) * 10, 6)) / 10
    return Result(NAME, need, round(actual, 3), ok, shortfall, "; ".join(notes))
