"""The notice's standards as pure functions over a site snapshot.

A rule is one module in this package exposing:

- ``NAME``: its id (``room_gov_share``), used in config and reports;
- ``TITLE``: ``{"zh": ..., "en": ...}`` for people;
- ``DEFAULTS``: its parameters and their defaults (numbers or booleans);
  ``rules.<NAME>.<param>`` in config overrides them, per site too;
- ``evaluate(snap, params) -> Result``: pure (no I/O, no clock; the
  snapshot carries ``now_ms``). A Result has one of five states (see
  ``base``): pass or fail only on evidence, no_data without any,
  not_applicable where the standard does not apply, and waived (set here,
  from the ``waived`` parameter). Reasons are keys with parameters
  (``base.why``), worded in collector/report/i18n.py. Returning None is
  still accepted and means not_applicable.

and optionally:

- ``LIMITS``: ``{param: (lo, hi)}`` inclusive bounds checked at config load
  (a number without limits must be >= 0; ``None`` leaves a side open);
- ``UNIT``: how people read required/actual: ``""`` a count (default),
  ``"share"`` a fraction shown as %, else a unit suffix such as ``"Mbit/s"``;
- ``POOL``: rules naming the same pool are fixed by the same purchase, so
  the procurement list takes the largest shortfall per key within a pool and
  adds pools up (default: the rule's own NAME, i.e. always added).

Adding one: the module, one line in ``RULES``, a config row, a test, a docs
row, its reason keys in collector/report/i18n.py. Every rule also accepts
``enabled`` (false: listed as not_applicable, not checked) and ``waived`` (a
reason string): a waived rule is reported but never fails the site.
"""
from __future__ import annotations

import dataclasses
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
from collector.compliance.rules.base import (
    DISABLED,
    NOT_APPLICABLE,
    STATUSES,
    WAIVED,
    Reason,
    Result,
    why,
)

__all__ = ["RULES", "STATUSES", "Reason", "Result", "evaluate", "registry"]


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
    """Every rule's Result on ``snap`` with the site's effective parameters, in
    RULES order: switched-off rules too (not_applicable), so none is left out."""
    results = []
    for rule in registry():
        p = params.get(rule.NAME, {})
        if p.get("enabled", True) is False:
            results.append(Result(rule.NAME, NOT_APPLICABLE, reasons=(DISABLED,)))
            continue
        r: Result | None = rule.evaluate(snap, {**rule.DEFAULTS, **p})
        if r is None:
            r = Result(rule.NAME, NOT_APPLICABLE, reasons=(why("does_not_apply"),))
        if p.get("waived") and r.status != NOT_APPLICABLE:
            # What the evidence said stays in the notes; the verdict is the waiver.
            r = dataclasses.replace(r, status=WAIVED, shortfall={}, reasons=(),
                                    notes=(*r.reasons, *r.notes), waived=str(p["waived"]))
        results.append(r)
    return results
