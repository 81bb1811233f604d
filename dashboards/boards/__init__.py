"""The dashboards, one module each exposing ``UID`` and ``build(t: Tr) -> dict``."""
from __future__ import annotations

from types import ModuleType
from typing import Tuple


def registry() -> Tuple[ModuleType, ...]:
    """Every dashboard, in the order the links list them; one line each."""
    from dashboards.boards import bandwidth, compliance, fleet, rooms

    return (
        compliance,
        rooms,
        bandwidth,
        fleet,
    )
