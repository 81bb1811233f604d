"""The notice's standards as pure functions over a site snapshot.

A rule is one module in this package exposing:

- ``NAME``: its id (``room_gov_share``), used in config and reports;
- ``TITLE``: ``{"zh": ..., "en": ...}`` for people;
- ``DEFAULTS``: its parameters and their defaults (numbers or booleans);
  ``rules.<NAME>.<param>`` in config overrides them, per site too;
- ``evaluate(snap, params) -> Result | None``: pure (no I/O, no clock; the
  snapshot carries ``now_ms``); None when the rule does not apply.

and optionally:

- ``LIMITS``: ``{param: (lo, hi)}`` inclusive bounds checked at config load
  (a number without limits must be >= 0; ``None`` leaves a side open);
- ``UNIT``: how people read required/actual: ``""`` a count (default),
  ``"share"`` a fraction shown as %, else a unit suffix such as ``"Mbit/s"``;
- ``POOL``: rules naming the same pool are fixed by the same purchase, so
  the procurement list takes the largest shortfall per key within a pool and
  adds pools up (default: the rule's own NAME, i.e. always added).

Adding one: the module, one line in ``RULES``, a config row, a test, a docs
row. Every rule also accepts the parameter ``waived`` (a reason string): a
waived rule is reported but never fails the site.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

from collector.compliance.facts import Snapshot
from collector.compliance.rules import (
    cadre_gov_pcs,
    cadre_internet_pcs,
    gov_bandwidth,
    gov_isolation,
    portal_reachable,
    room_gov_share,
    room_open_all_day,
    room_video,
    staff_gov_pcs,
)
from collector.compliance.rules.base import Result

__all__ = ["RULES", "Result", "evaluate", "registry"]


# Every rule, in report column order; one line each.
RULES: tuple[ModuleType, ...] = (
    cadre_gov_pcs,
    cadre_internet_pcs,
    staff_gov_pcs,
    room_gov_share,
    room_video,
    room_open_all_day,
    portal_reachable,
    gov_isolation,
    gov_bandwidth,
)


def registry() -> tuple[ModuleType, ...]:
    """Every rule, in report column order."""
    return RULES


def evaluate(snap: Snapshot, params: Mapping[str, Mapping[str, Any]]) -> list[Result]:
    """Run every rule on ``snap`` with the site's effective parameters."""
    results = []
    for rule in registry():
        p = params.get(rule.NAME, {})
        if p.get("enabled", True) is False:
            continue
        r: Result | None = rule.evaluate(snap, {**rule.DEFAULTS, **p})
        if r is None:
            continue
        if p.get("waived"):
            r = Result(r.rule, r.required, r.actual, True, {}, r.detail, str(p["waived"]))
        results.append(r)
    return results
