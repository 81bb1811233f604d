"""gov_bandwidth: the site's gov intranet link is fast enough, and its trend.

Notice 5: 提高带宽网速 and 加快推进政务网带宽扩容. The notice sets no figure; the
default ``min_mbps`` of 20 Mbit/s lets a room of eight gov PCs play 2.5 Mbit/s
video at once (see room_video). ``actual`` is the newest gov download
measurement within ``freshness_hours``; without one the result is no data
(no tester, or its tests fail: the link's speed is unknown, not slow). The
trend for logistics, in the notes: the mean of the daily means of the last
``trend_days`` against the ``trend_days`` before (see ``trend``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import NO_DATA, Reason, Result, judged, why
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
    unknown: list[Reason] = []
    notes: list[Reason] = []
    fresh = b is not None and b.ts_ms > 0 and snap.now_ms - b.ts_ms <= fresh_ms
    if b is not None and fresh:
        ago = round((snap.now_ms - b.ts_ms) / schema.HOUR_MS, 1)
        if b.upload_mbps is not None:
            notes.append(why("speed_test_up", down=b.download_mbps, up=b.upload_mbps,
                             host=b.host, ago=ago))
        else:
            notes.append(why("speed_test", down=b.download_mbps, host=b.host, ago=ago))
    else:
        unknown.append(why("no_speed_test", network="gov",
                           hours=float(params["freshness_hours"])))
    if b is not None and b.error:
        (notes if fresh else unknown).append(why("last_test_failed", network="gov",
                                                 error=b.error))
    if b is not None:
        days = int(params["trend_days"])
        t = trend(b.daily_mbps, snap.now_ms, days)
        if t is not None:
            notes.append(why("trend", delta=round(t[1] - t[0], 1), days=days,
                             recent=round(t[1], 1), before=round(t[0], 1)))
        if len(b.testers) > 1:
            notes.append(why("testers", network="gov", n=len(b.testers),
                             hosts=", ".join(b.testers)))
    if b is None or not fresh:
        return Result(NAME, NO_DATA, need, None, reasons=tuple(unknown), notes=tuple(notes))
    actual = round(b.download_mbps, 3)
    add = math.ceil(round((need - b.download_mbps) * 10, 6)) / 10
    return judged(NAME, b.download_mbps >= need - 1e-9, need, actual, {"gov_mbps": add},
                  (why("mbps_short", network="gov", add=add),), tuple(notes))
