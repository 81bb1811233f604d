"""The dashboards, one module each exposing ``UID`` and ``build(t: Tr) -> dict``."""
from __future__ import annotations

from types import ModuleType
from typing import Tuple

from dashboards.boards import bandwidth, compliance, fleet, inventory, pcs, rooms

# Every dashboard, in the order the links list them; one line each.
BOARDS: Tuple[ModuleType, ...] = (
    compliance,
    rooms,
    bandwidth,
    fleet,
    inventory,
    pcs,
)


def registry() -> Tuple[ModuleType, ...]:
    return BOARDS
