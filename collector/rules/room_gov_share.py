"""room_gov_share: gov PCs are at least half of the network room's PCs."""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.rules import Result, Snapshot

NAME = "room_gov_share"
TITLE = {"zh": "网络室政务网电脑占比", "en": "Gov share of room PCs"}
DEFAULTS: dict[str, Any] = {"min_share": 0.5}


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    share = float(params["min_share"])
    gov = snap.count("gov", "room")
    total = snap.count(role="room")
    actual = gov / total if total else 0.0
    # A room with no PCs fails: there is no room to speak of.
    ok = total > 0 and actual >= share
    shortfall: dict[str, float] = {}
    if not ok:
        # Smallest g added to the room with (gov + g) / (total + g) >= share.
        need = math.ceil((share * total - gov) / (1 - share)) if share < 1 else total - gov
        shortfall["gov_pcs"] = max(need, 1 if total == 0 else 0)
    return Result(NAME, share, round(actual, 4), ok, shortfall,
                  f"{gov} gov of {total} room PCs")
