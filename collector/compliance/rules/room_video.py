"""room_video: the network room's PCs can all watch video at once.

Notice 5: 网络室……必须保证能够浏览网页、观看视频. Per network with room PCs,
the site's newest measured download bandwidth (Mbit/s, within
``freshness_hours``) divided by that network's room PCs must reach
``per_pc_mbps``, the bitrate of one video stream (2.5 Mbit/s: 720p). The two
networks are separate links, so each is checked on its own; ``actual`` is
the lowest per-PC figure (none without a verdict). Browsing: every room
PC's latest result (within ``freshness_hours``) of the probes named in
``browse_probes`` (comma-separated, see the ``probes`` config) must have
succeeded; room PCs that run none of them are not checked.

Fails on evidence (a fresh test too slow for the room, a failed browse
probe); otherwise no data while a network with room PCs has no fresh speed
test (nothing proves the room can play video, nor that it cannot). No data
when no PC of the site reports; does not apply to a site whose PCs report
but none from the room (room_gov_share fails it).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import (
    FAIL,
    NO_DATA,
    NOT_APPLICABLE,
    Reason,
    Result,
    hosts_text,
    judged,
    why,
)
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


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    per_pc = float(params["per_pc_mbps"])
    fresh_ms = float(params["freshness_hours"]) * schema.HOUR_MS
    if not snap.devices:
        return Result(NAME, NO_DATA, per_pc, None, reasons=(why("no_pcs"),))
    rooms = {n: snap.count(n, "room") for n in NETWORKS if snap.count(n, "room")}
    if not rooms:  # room_gov_share already fails the site
        return Result(NAME, NOT_APPLICABLE, per_pc, None, reasons=(why("no_room_pcs"),))
    per: list[float] = []
    shortfall: dict[str, float] = {}
    short: list[Reason] = []  # evidence of failure
    unknown: list[Reason] = []  # networks without a fresh test
    notes: list[Reason] = []
    for net, pcs in rooms.items():
        b = snap.bandwidth_on(net)
        if b is None or not b.ts_ms or snap.now_ms - b.ts_ms > fresh_ms:
            unknown.append(why("no_speed_test", network=net,
                               hours=float(params["freshness_hours"])))
            if b is not None and b.error:
                unknown.append(why("last_test_failed", network=net, error=b.error))
            continue
        per.append(b.download_mbps / pcs)
        need = per_pc * pcs - b.download_mbps
        notes.append(why("per_pc", network=net, mbps=b.download_mbps, pcs=pcs,
                         per_pc=b.download_mbps / pcs))
        if need > 1e-9:
            # Round up to 0.1 Mbit/s: buying a little less would not pass.
            shortfall[f"{net}_mbps"] = math.ceil(round(need * 10, 6)) / 10
            short.append(why("mbps_short", network=net, add=shortfall[f"{net}_mbps"]))
        if len(b.testers) > 1:
            notes.append(why("testers", network=net, n=len(b.testers),
                             hosts=", ".join(b.testers)))
    failed, browsed = browse(snap, str(params["browse_probes"]), fresh_ms)
    if failed:
        short.append(failed)
    elif browsed:
        notes.append(browsed)
    actual = round(min(per), 3) if per else None
    if short:
        return Result(NAME, FAIL, per_pc, actual, shortfall, (*short, *unknown), tuple(notes))
    if unknown:
        return Result(NAME, NO_DATA, per_pc, None, reasons=tuple(unknown), notes=tuple(notes))
    return judged(NAME, True, per_pc, actual or 0.0, notes=tuple(notes))


def browse(snap: Snapshot, probes: str, fresh_ms: float) -> tuple[Reason | None, Reason | None]:
    """(why browsing failed on a room PC, or a note of where it worked), from
    each room PC's latest fresh browse-probe results."""
    names = {n.strip() for n in probes.split(",") if n.strip()}
    room = {d.host for d in snap.devices if d.role == "room"}
    results = [p for p in snap.probes if p.probe in names and p.host in room
               and snap.now_ms - p.time_ms <= fresh_ms]
    failed = sorted({f"{p.host} ({p.probe})" for p in results if not p.ok})
    if failed:
        return why("browse_failed", hosts=hosts_text(failed)), None
    if results:
        return None, why("browse_ok", n=len({p.host for p in results}))
    return None, None

