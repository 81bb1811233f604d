"""The notice's standards as pure functions over a site snapshot.

A rule is one module in this package exposing:

- ``NAME``: its id (``room_gov_share``), used in config and reports;
- ``TITLE``: ``{"zh": ..., "en": ...}`` for people;
- ``DEFAULTS``: its parameters and their defaults (numbers or booleans);
  ``rules.<NAME>.<param>`` in config overrides them, per site too;
- ``evaluate(snap, params) -> Result | None``: pure (no I/O, no clock; the
  snapshot carries ``now_ms``); None when the rule does not apply.

Adding one: the module, one line in ``RULES``, a config row, a test, a docs
row. Every rule also accepts the parameter ``waived`` (a reason string): a
waived rule is reported but never fails the site.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping

from collector.sites import Site


@dataclass(frozen=True)
class Device:
    """A PC as its latest inventory (within the freshness window) shows it."""

    host: str
    network: str  # gov | internet
    role: str  # cadre | room | class | office
    last_seen_ms: int  # time of that inventory, epoch ms


@dataclass(frozen=True)
class Snapshot:
    """What is known of one site at ``now_ms``; rules read nothing else.

    Later facts (bandwidth, availability, probes, isolation) are typed
    fields with empty defaults, each filled by its own loader.
    """

    site: Site
    devices: tuple[Device, ...]
    now_ms: int

    def count(self, network: str | None = None, role: str | None = None,
              not_role: str | None = None) -> int:
        """Devices matching network / role (or any role but ``not_role``)."""
        return sum(
            1 for d in self.devices
            if (network is None or d.network == network)
            and (role is None or d.role == role)
            and (not_role is None or d.role != not_role)
        )


@dataclass(frozen=True)
class Result:
    """One rule's verdict for one site.

    ``shortfall``: what must be added to pass, by what (``gov_pcs``,
    ``internet_pcs``, ``mbps``...); empty when ok or not countable.
    """

    rule: str
    required: float
    actual: float
    ok: bool
    shortfall: Mapping[str, float] = field(default_factory=dict)
    detail: str = ""
    waived: str = ""


def registry() -> tuple[ModuleType, ...]:
    """Every rule, in report column order; one line each."""
    from collector.rules import room_gov_share

    return (
        room_gov_share,
    )


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
