"""staff_gov_pcs: one gov PC per two staff (notice 5: 职工每 2 人 1 台政务网电脑).

Counts every gov PC not assigned to a cadre (room, class, office), since
staff share those. No data while no PC of the site reports (see
base.pcs_for_heads).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result, pcs_for_heads, why

NAME = "staff_gov_pcs"
TITLE = {"zh": "职工政务网电脑", "en": "Staff gov PCs"}
DEFAULTS: dict[str, Any] = {"staff_per_pc": 2.0}
LIMITS = {"staff_per_pc": (0.1, 1000)}
# A gov PC bought for the room also counts here: see room_gov_share.
POOL = "shared_gov"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    # round() first so 6 / 1.2 = 5.000000000000001 does not become 6.
    required = math.ceil(round(snap.site.staff / params["staff_per_pc"], 9))
    actual = snap.count("gov", not_role="cadre")
    return pcs_for_heads(snap, NAME, required, actual, "gov",
                         why("staff_pcs", have=actual, heads=snap.site.staff))
