"""room_gov_share: gov PCs are at least half of the network room's PCs.

Notice 5: 网络室政务网电脑不少于 50%. ``actual`` is a fraction (0..1).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result

NAME = "room_gov_share"
TITLE = {"zh": "网络室政务网电脑占比", "en": "Gov share of room PCs"}
DEFAULTS: dict[str, Any] = {"min_share": 0.5}
LIMITS = {"min_share": (0, 1)}
UNIT = "share"
# Gov PCs added to the room also serve staff: see staff_gov_pcs.
POOL = "shared_gov"
EPS = 1e-9  # 0.6 * 10 is 6.000000000000001 in floating point


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    share = float(params["min_share"])
    gov = snap.count("gov", "room")
    total = snap.count(role="room")
    actual = gov / total if total else 0.0
    # A room with no PCs fails: there is no room to speak of.
    ok = total > 0 and gov >= share * total - EPS
    shortfall: dict[str, float] = {}
    if not ok:
        if share >= 1:
            # Adding never reaches 100 %: every non-gov room PC must be replaced.
            need = max(total - gov, 1)
        else:
            # Smallest g >= 0 with (gov + g) / (total + g) >= share.
            need = max(math.ceil((share * total - gov) / (1 - share) - EPS), 0)
            need = max(need, 1 if total == 0 else 0)
        shortfall["gov_pcs"] = float(need)
    return Result(NAME, share, round(actual, 4), ok, shortfall,
                  f"{gov} gov of {total} room PCs")
