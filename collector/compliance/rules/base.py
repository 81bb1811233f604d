"""A rule's result, and the verdict shared by the PC-count rules."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Result:
    """One rule's verdict for one site.

    ``shortfall``: what must be added to pass, by what (``gov_pcs``,
    ``internet_pcs``, ``gov_mbps``...); empty when ok or not countable.
    """

    rule: str
    required: float
    actual: float
    ok: bool
    shortfall: Mapping[str, float] = field(default_factory=dict)
    detail: str = ""
    waived: str = ""


def pcs_for_heads(name: str, required: int, actual: int, kind: str, detail: str) -> Result:
    """The PC-count rules' verdict: ``actual`` PCs of ``kind`` (``gov``,
    ``internet``) against ``required``; the shortfall is the difference."""
    ok = actual >= required
    shortfall = {} if ok else {f"{kind}_pcs": float(required - actual)}
    return Result(name, required, actual, ok, shortfall, detail)
