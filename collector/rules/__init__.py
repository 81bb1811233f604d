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

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping

from collector.availability import DayOpen, RoomNow
from collector.sites import Site


@dataclass(frozen=True)
class Device:
    """A PC as its latest inventory (within the freshness window) shows it."""

    host: str
    network: str  # gov | internet
    role: str  # cadre | room | class | office
    last_seen_ms: int  # time of that inventory, epoch ms


@dataclass(frozen=True)
class Bandwidth:
    """A site's speed tests on one network (collector/loaders/bandwidth.py).

    ``ts_ms``: time of the newest successful download measurement (epoch
    ms; 0 = none in the loader's lookback), by ``host``, in Mbit/s and ms.
    ``error``/``error_ms``: the newest test, if it failed after that one.
    ``testers``: hosts that tested in the lookback (one is expected).
    ``daily_mbps``: (UTC day start ms, mean download Mbit/s), oldest first.
    """

    network: str
    host: str = ""
    ts_ms: int = 0
    download_mbps: float = 0.0
    upload_mbps: float | None = None
    latency_ms: float | None = None
    error: str = ""
    error_ms: int = 0
    testers: tuple[str, ...] = ()
    daily_mbps: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """A host's latest result of the probe named ``probe``, at ``time_ms`` (epoch ms)."""

    host: str
    network: str
    probe: str
    ok: bool
    time_ms: int


@dataclass(frozen=True)
class IsolationReport:
    """A gov PC's latest isolation report, at ``time_ms`` (epoch ms)."""

    host: str
    violated: bool
    reasons: str
    time_ms: int


@dataclass(frozen=True)
class Snapshot:
    """What is known of one site at ``now_ms``; rules read nothing else.

    Later facts (bandwidth, availability, probes, isolation) are typed
    fields with empty defaults, each filled by its own loader.
    """

    site: Site
    devices: tuple[Device, ...]
    now_ms: int
    bandwidth: tuple[Bandwidth, ...] = ()  # one per network tested
    availability: tuple[DayOpen, ...] = ()  # the room's last complete days, oldest first
    room_now: RoomNow | None = None  # open now, or closed since
    probes: tuple[ProbeResult, ...] = ()  # each host's latest result per probe
    isolation: tuple[IsolationReport, ...] = ()  # each gov PC's latest isolation report

    def bandwidth_on(self, network: str) -> Bandwidth | None:
        return next((b for b in self.bandwidth if b.network == network), None)

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


def registry() -> tuple[ModuleType, ...]:
    """Every rule, in report column order; one line each."""
    from collector.rules import (
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

    return (
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
