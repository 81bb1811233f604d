"""room_gov_share: gov PCs are at least half of the network room's PCs.

Notice 5: 网络室政务网电脑不少于 50%. ``actual`` is a fraction (0..1).
No data while no PC of the site reports at all; a site whose PCs report but
none of them from the room fails (the room has no PCs to speak of).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import NO_DATA, Result, judged, why

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
    if not snap.devices:
        return Result(NAME, NO_DATA, share, None, reasons=(why("no_pcs"),))
    actual = gov / total if total else 0.0
    note = why("room_share", gov=gov, total=total)
    # A room with no PCs fails: there is no room to speak of.
    if total > 0 and gov >= share * total - EPS:
        return judged(NAME, True, share, round(actual, 4), notes=(note,))
    if share >= 1:
        # Adding never reaches 100 %: every non-gov room PC must be replaced.
        need = max(total - gov, 1)
    else:
        # Smallest g >= 0 with (gov + g) / (total + g) >= share.
        need = max(math.ceil((share * total - gov) / (1 - share) - EPS), 0)
        need = max(need, 1 if total == 0 else 0)
    reason = why("room_empty") if total == 0 else why("room_share_short", n=need)
    return judged(NAME, False, share, round(actual, 4), {"gov_pcs": float(need)},
                  (reason,), (note,))
