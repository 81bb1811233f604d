"""cadre_gov_pcs: every cadre has a gov PC of their own (notice 5: 每名干部 1 台政务网电脑).

No data while no PC of the site reports (see base.pcs_for_heads).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules.base import Result, pcs_for_heads, why

NAME = "cadre_gov_pcs"
TITLE = {"zh": "干部政务网电脑", "en": "Cadre gov PCs"}
DEFAULTS: dict[str, Any] = {"per_cadre": 1}
LIMITS = {"per_cadre": (0, 10)}
POOL = "cadre_gov"


def evaluate(snap: Snapshot, params: Mapping[str, Any]) -> Result:
    # A site without cadres needs none: required 0, which passes.
    required = math.ceil(snap.site.cadres * params["per_cadre"])
    actual = snap.count("gov", "cadre")
    return pcs_for_heads(snap, NAME, required, actual, "gov",
                         why("cadre_pcs", have=actual, heads=snap.site.cadres, network="gov"))
