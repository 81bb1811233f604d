"""room_video: the network room's PCs can all watch video at once.

Notice 5: 网络室……必须保证能够浏览网页、观看视频. Per network with room PCs,
the site's newest measured download bandwidth (Mbit/s, within
``freshness_hours``) divided by that network's room PCs must reach
``per_pc_mbps``, the bitrate of one video stream (2.5 Mbit/s: 720p). The two
networks are separate links, so each is checked on its own; ``actual`` is
the lowest per-PC figure, 0 when a network has no fresh measurement (which
fails: nothing proves the room can play video). Browsing: every room PC's
latest result (within ``freshness_hours``) of the probes named in
``browse_probes`` (comma-separated, see the ``probes`` config) must have
succeeded; room PCs that run none of them are not checked.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result
from netroom import schema
from netroom.protocol import NETWORKS

NAME = "room_video"
TITLE = {"zh": "网络室电脑可观看视频", "en": "Room PCs can play video"}
DEFAULTS: dict[str, Any] = {"per_pc_mbps": 2.5, "freshness_hours": 24.0,
                            "browse_probes": "portal,web"}
LIMITS = {"per_pc_mbps": (0.1, 1000), "freshness_hours": (1, 672)}
UNIT = "Mbit/s"
# More bandwidth on a network serves both this rule and gov_bandwidth.
POOL = "bandwidth"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result | None:
    per_pc = float(params["per_pc_mbps"])
    fresh_ms = float(params["freshness_hours"]) * schema.HOUR_MS
    rooms = {n: snap.count(n, "room") for n in NETWORKS if snap.count(n, "room")}
    if not rooms:
        return None  # no room PCs: room_gov_share already fails the site
    per: list[float] = []
    shortfall: dict[str, float] = {}
    notes: list[str] = []
    for net, pcs in rooms.items():
        b = snap.bandwidth_on(net)
        if b is None or not b.ts_ms or snap.now_ms - b.ts_ms > fresh_ms:
            per.append(0.0)
            failed = f", last test failed: {b.error}" if b is not None and b.error else ""
            notes.append(f"{net}: no speed test in {params['freshness_hours']:g} h{failed}")
            continue
        per.append(b.download_mbps / pcs)
        need = per_pc * pcs - b.download_mbps
        if need > 1e-9:
            # Round up to 0.1 Mbit/s: buying a little less would not pass.
            shortfall[f"{net}_mbps"] = math.ceil(round(need * 10, 6)) / 10
        notes.append(f"{net}: {b.download_mbps:g} Mbit/s / {pcs} room PCs "
                     f"= {b.download_mbps / pcs:.2f} per PC")
        if len(b.testers) > 1:
            notes.append(f"{net}: {len(b.testers)} testers ({', '.join(b.testers)}), "
                         "keep one")
    actual = min(per)
    browse_failed, note = browse(snap, str(params["browse_probes"]), fresh_ms)
    ok = all(p >= per_pc - 1e-9 for p in per) and not browse_failed
    detail = "; ".join(filter(None, [*notes, note]))
    return Result(NAME, per_pc, round(actual, 3), ok, {} if ok else shortfall, detail)


def browse(snap: Snapshot, probes: str, fresh_ms: float) -> tuple[bool, str]:
    """(whether a room PC's latest fresh browse-probe result failed, a note)."""
    names = {n.strip() for n in probes.split(",") if n.strip()}
    room = {d.host for d in snap.devices if d.role == "room"}
    results = [p for p in snap.probes if p.probe in names and p.host in room
               and snap.now_ms - p.time_ms <= fresh_ms]
    failed = sorted({f"{p.host} ({p.probe})" for p in results if not p.ok})
    if failed:
        more = " ..." if len(failed) > 5 else ""
        return True, f"browsing failed on {', '.join(failed[:5])}{more}"
    if results:
        return False, f"browsing ok on {len({p.host for p in results})} room PCs"
    return False, ""
