"""A rule's result: one of five states, its figures, shortfall and reasons.

States (``Result.status``):

- ``pass``: the evidence meets the standard;
- ``fail``: the evidence falls short of it (only a fail has a shortfall);
- ``no_data``: there is no evidence either way (a site that never reported,
  a gov PC with no isolation canaries, no speed test in the window);
- ``not_applicable``: the standard does not apply to this site now (no gov
  PCs to isolate, a period with no opening hours, the rule switched off);
- ``waived``: the site has a waiver; counts as a pass.

Reasons are structured, never prose: a key of
``collector.report.i18n.REASONS`` and its parameters, so that the report can
say them in the reader's language. ``reasons`` say why a result is not a
pass (shown in the report's cell); ``notes`` add context (figures behind a
pass, a trend) and go into the detail only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

from collector.compliance.facts import Snapshot

PASS = "pass"  # noqa: S105 - a verdict, not a password
FAIL = "fail"
NO_DATA = "no_data"
NOT_APPLICABLE = "not_applicable"
WAIVED = "waived"
STATUSES = (PASS, FAIL, NO_DATA, NOT_APPLICABLE, WAIVED)

Param = Union[str, int, float]


@dataclass(frozen=True)
class Reason:
    """Why, for people: ``key`` (in collector.report.i18n.REASONS) and its values.

    A parameter named ``network`` is translated (gov -> 政务网); numbers are
    formatted by the template; other strings are shown as they are.
    """

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)


def why(key: str, **params: Param) -> Reason:
    """``why("pcs_short", n=2, network="gov")``: a Reason, tersely."""
    return Reason(key, params)


# The reason of every rule that is switched off for a site (enabled: false).
DISABLED = why("rule_disabled")


@dataclass(frozen=True)
class Result:
    """One rule's verdict for one site.

    ``required``/``actual``: in the rule's UNIT; ``actual`` is None exactly
    when there is no verdict from evidence (no data, not applicable): a
    partial figure would read as a measurement.
    ``shortfall``: what must be added to pass, by what (``gov_pcs``,
    ``internet_pcs``, ``gov_mbps``...); only a fail with something countable
    has one, so only evidence makes a procurement line.
    ``waived``: the waiver's reason (status ``waived``).
    """

    rule: str
    status: str
    required: float | None = None
    actual: float | None = None
    shortfall: Mapping[str, float] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()
    waived: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"{self.rule}: unknown status {self.status!r}")
        if self.shortfall and self.status != FAIL:
            raise ValueError(f"{self.rule}: a {self.status} result has no shortfall")
        if self.actual is not None and self.status in (NO_DATA, NOT_APPLICABLE):
            raise ValueError(f"{self.rule}: a {self.status} result has no actual figure")

    @property
    def ok(self) -> bool:
        """True for a pass, and for a waiver (which counts as one)."""
        return self.status in (PASS, WAIVED)

    @property
    def disabled(self) -> bool:
        """Switched off for this site (``enabled: false``): listed, never shown as a column."""
        return self.status == NOT_APPLICABLE and self.reasons == (DISABLED,)


def judged(rule: str, ok: bool, required: float, actual: float,
           shortfall: Mapping[str, float] | None = None, reasons: tuple[Reason, ...] = (),
           notes: tuple[Reason, ...] = ()) -> Result:
    """A verdict from evidence: pass, or fail with its shortfall and reasons."""
    if ok:
        return Result(rule, PASS, required, actual, {}, (), notes)
    return Result(rule, FAIL, required, actual, dict(shortfall or {}), reasons, notes)


def pcs_for_heads(snap: Snapshot, name: str, required: int, actual: int, network: str,
                  note: Reason) -> Result:
    """The PC-count rules' verdict: ``actual`` PCs of ``network`` (``gov``,
    ``internet``) against ``required``; the shortfall is the difference.

    Nothing is needed for nobody (required 0 passes, evidence or not); but a
    site none of whose PCs reports has shown nothing yet: no data, not a
    shortfall to buy.
    """
    if required > 0 and not snap.devices:
        return Result(name, NO_DATA, required, None, reasons=(why("no_pcs"),))
    short = required - actual
    return judged(name, short <= 0, required, actual, {f"{network}_pcs": float(short)},
                  (why("pcs_short", n=short, network=network),), (note,))


def hosts_text(names: list[str], most: int = 5) -> str:
    """``a, b, c`` (host names, as they are), `` ...`` after the first ``most``."""
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")
