"""The org tree (bureau -> detachment -> battalion -> squadron) and its sites.

Only the types live here for now; parsing of the `sites` and `rules`
sections is added by the compliance work (issue 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Room:
    """The network room's required opening: windows "HH:MM-HH:MM" in ``timezone``.

    ``days``: ISO weekdays (1 = Monday) the windows apply on.
    """

    open: tuple[str, ...] = ("00:00-24:00",)
    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    timezone: str = "Asia/Shanghai"
    min_online: int = 1


@dataclass(frozen=True)
class Site:
    """A leaf of the tree: one squadron with its headcounts."""

    id: str
    name: str
    path: tuple[tuple[str, str], ...]  # ancestors as (level, id), root first
    cadres: int = 0
    staff: int = 0
    classes: int = 0
    room: Room = field(default_factory=Room)
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
