"""cadre_internet_pcs: every cadre has an internet PC (notice 5: 每名干部 1 台互联网电脑).

No data while no PC of the site reports (see base.pcs_for_heads).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result, pcs_for_heads, why

NAME = "cadre_internet_pcs"
TITLE = {"zh": "干部互联网电脑", "en": "Cadre internet PCs"}
DEFAULTS: dict[str, Any] = {"per_cadre": 1}
LIMITS = {"per_cadre": (0, 10)}
POOL = "cadre_internet"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    # A site without cadres needs none: required 0, which passes.
    required = math.ceil(snap.site.cadres * params["per_cadre"])
    actual = snap.count("internet", "cadre")
    return pcs_for_heads(snap, NAME, required, actual, "internet",
                         why("cadre_pcs", have=actual, heads=snap.site.cadres,
                             network="internet"))
