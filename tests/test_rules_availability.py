"""room_open_all_day, portal_reachable and gov_isolation on hand-built snapshots."""
from __future__ import annotations

from typing import Any

from collector.compliance.availability import DayOpen, RoomNow
from collector.compliance.facts import Device, IsolationReport, ProbeResult, Snapshot
from collector.compliance.model import Site
from collector.compliance.rules import (
    gov_isolation,
    portal_reachable,
    room_open_all_day,
)

NOW = 1_764_000_000_000  # 2025-11-24 16:00 UTC = 2025-11-25 00:00 in Shanghai
H = 3600.0
SITE = Site("sq-1", "一中队", (("bureau", "b"),))


def snap(**facts: Any) -> Snapshot:
    devices = facts.pop("devices", ())
    return Snapshot(SITE, devices, NOW, **facts)


def params(rule: Any, **over: Any) -> dict[str, Any]:
    return {**rule.DEFAULTS, **over}


def day(name: str, required_h: float, open_h: float) -> DayOpen:
    return DayOpen(name, 0, 1, required_h * H, open_h * H)


WEEK = tuple(day(f"2025-11-{18 + i}", 12, o) for i, o in enumerate((12, 12, 0, 12, 12, 12, 11.5)))


def test_room_open_all_day_judges_yesterday_and_reports_the_week() -> None:
    closed = RoomNow(False, 0, 3, NOW - int(2.5 * H * 1000))  # 2025-11-24 21:30 local
    r = room_open_all_day.evaluate(snap(availability=WEEK, room_now=closed),
                                   params(room_open_all_day))
    assert r is not None
    # Yesterday: 11.5 of 12 h = 0.9583 >= 0.95.
    assert (r.ok, r.actual, r.required) == (True, 0.9583, 0.95)
    # The week: 71.5 of 84 h.
    assert r.detail == ("open 11.5 h of 12.0 h on 2025-11-24; 7 days: 85.1%; "
                        "closed since 11-24 21:30")
    week = room_open_all_day.evaluate(snap(availability=WEEK), params(room_open_all_day, days=7))
    assert week is not None and (week.ok, week.actual) == (False, round(71.5 / 84, 4))


def test_room_open_all_day_does_not_apply_on_a_day_off() -> None:
    off = (*WEEK[:-1], day("2025-11-24", 0, 0))
    assert room_open_all_day.evaluate(snap(availability=off), params(room_open_all_day)) is None
    # Nothing known at all: the room was never seen open, a failure.
    never = room_open_all_day.evaluate(snap(availability=(day("2025-11-24", 12, 0),)),
                                       params(room_open_all_day))
    assert never is not None and (never.ok, never.actual) == (False, 0.0)


def probe(host: str, ok: bool, age_min: float = 1, name: str = "portal",
          network: str = "gov") -> ProbeResult:
    return ProbeResult(host, network, name, ok, NOW - int(age_min * 60_000))


def test_portal_reachable_counts_every_gov_pc() -> None:
    devices = (*(Device(h, "gov", "room", NOW) for h in ("g1", "g2", "g3", "g4")),
               Device("i1", "internet", "room", NOW))
    probes = (probe("g1", True), probe("g2", False), probe("g3", True, age_min=45),
              probe("i1", True, network="internet"), probe("g4", True, name="other"))
    r = portal_reachable.evaluate(snap(devices=devices, probes=probes),
                                  params(portal_reachable))
    # g1 reached; g2 failed; g3's result is stale; g4 ran no portal probe.
    assert r is not None and (r.ok, r.actual) == (False, 0.25)
    assert r.detail == "1 of 4 gov PCs reach probe 'portal': not g2, g3, g4"
    lenient = portal_reachable.evaluate(snap(devices=devices, probes=probes),
                                        params(portal_reachable, min_share=0.2, max_age_min=60))
    assert lenient is not None and (lenient.ok, lenient.actual) == (True, 0.5)
    # No gov PC ran the probe: not deployed at this site.
    assert portal_reachable.evaluate(snap(devices=devices, probes=probes[3:]),
                                     params(portal_reachable)) is None


def test_gov_isolation_fails_until_the_report_clears() -> None:
    devices = (Device("g1", "gov", "room", NOW), Device("g2", "gov", "cadre", NOW),
               Device("g3", "gov", "room", NOW))
    leak = IsolationReport("g1", True, "canary tcp4 reached", NOW)
    clean = IsolationReport("g2", False, "", NOW)
    r = gov_isolation.evaluate(snap(devices=devices, isolation=(leak, clean)),
                               params(gov_isolation))
    assert r is not None and (r.ok, r.actual, r.required) == (False, 1, 0)
    assert r.detail == "2 of 3 gov PCs reported; g1: canary tcp4 reached; 1 never reported"
    cleared = IsolationReport("g1", False, "", NOW)
    ok = gov_isolation.evaluate(snap(devices=devices, isolation=(cleared, clean)),
                                params(gov_isolation))
    assert ok is not None and (ok.ok, ok.actual) == (True, 0)
    assert gov_isolation.evaluate(snap(), params(gov_isolation)) is None
