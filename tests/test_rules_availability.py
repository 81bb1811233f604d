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
from collector.report.format import detail

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
    assert detail(r, "en") == ("open 11.5 h of 12.0 h on 2025-11-24; 7 days: 85.1%; "
                               "closed since 11-24 21:30")
    assert detail(r, "zh") == ("2025-11-24 开放 11.5 小时，应开放 12.0 小时；近 7 天开放率 85.1%；"
                               "自 11-24 21:30 起关闭")
    week = room_open_all_day.evaluate(snap(availability=WEEK), params(room_open_all_day, days=7))
    assert week is not None and (week.ok, week.actual) == (False, round(71.5 / 84, 4))
    # The reason a fail shows: the hours of the period.
    assert detail(week, "en").startswith("open 71.5 h of 84.0 h (2025-11-18..2025-11-24); ")
    assert [x.key for x in week.reasons] == ["open_days"]


def test_room_open_all_day_does_not_apply_on_a_day_off() -> None:
    off = (*WEEK[:-1], day("2025-11-24", 0, 0))
    r = room_open_all_day.evaluate(snap(availability=off), params(room_open_all_day))
    assert (r.status, detail(r, "zh")) == ("not_applicable", "期间无需开放")
    # Room PCs that send heartbeats, never open in the period: a failure.
    closed = RoomNow(False, 0, 2, NOW - 30 * int(H) * 1000)
    never = room_open_all_day.evaluate(
        snap(availability=(day("2025-11-24", 12, 0),), room_now=closed),
        params(room_open_all_day))
    assert (never.status, never.actual) == ("fail", 0.0)
    # No heartbeat from any room PC at all: nothing known, no data.
    silent = room_open_all_day.evaluate(
        snap(availability=(day("2025-11-24", 12, 0),), room_now=RoomNow(False, 0, 0)),
        params(room_open_all_day))
    assert (silent.status, silent.actual, detail(silent, "zh")) == \
        ("no_data", None, "网络室电脑无心跳上报")


def test_room_open_all_day_leaves_out_the_days_before_the_first_report() -> None:
    """Agents installed on 2025-11-23: the days before say nothing of the room
    (not 0 % open); a closed day after the first report still fails."""
    days = tuple(DayOpen(f"2025-11-{18 + i}", 86_400_000 * i, 86_400_000 * (i + 1), 12 * H,
                         o * H) for i, o in enumerate((0, 0, 0, 0, 0, 12, 0)))
    first = 86_400_000 * 5 + 1  # during 2025-11-23
    closed = RoomNow(False, 0, 3, NOW - int(2.5 * H * 1000))
    week = room_open_all_day.evaluate(snap(availability=days, room_now=closed,
                                           room_first_ms=first),
                                      params(room_open_all_day, days=7))
    # 2025-11-23 (first report that day, 12 h open) and 11-24 (closed): 12 of 24 h.
    assert (week.status, week.actual) == ("fail", 0.5)
    assert detail(week, "en").startswith("open 12.0 h of 24.0 h (2025-11-23..2025-11-24)")
    # Before it, with nothing to judge: no data, and why.
    early = room_open_all_day.evaluate(
        snap(availability=days[:4], room_now=closed, room_first_ms=first),
        params(room_open_all_day, days=2))
    assert (early.status, early.actual, early.shortfall) == ("no_data", None, {})
    assert detail(early, "zh") == "考核期在网络室电脑首次上报之前，无从判断"
    # Without a known first report the days count as before (closed: a fail).
    unknown = room_open_all_day.evaluate(snap(availability=days, room_now=closed),
                                         params(room_open_all_day, days=7))
    assert (unknown.status, unknown.actual) == ("fail", round(12 / 84, 4))


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
    # g1 reached; g2 failed; g3's result is stale; g4 ran no portal probe:
    # with g2 failing, 100 % is out of reach whatever g3 and g4 would say.
    assert (r.status, r.actual) == ("fail", 0.25)
    assert detail(r, "en") == ("1 PCs cannot reach the portal: g2; "
                               "1 PCs do not run the portal probe (portal); "
                               "1 PCs have no portal probe result in 30 min; "
                               "1 of 4 gov PCs reach the portal")
    lenient = portal_reachable.evaluate(snap(devices=devices, probes=probes),
                                        params(portal_reachable, min_share=0.2, max_age_min=60))
    assert (lenient.status, lenient.actual) == ("pass", 0.5)
    # No gov PC ran the probe: nothing known, no data (never a pass or a fail).
    none = portal_reachable.evaluate(snap(devices=devices, probes=probes[3:]),
                                     params(portal_reachable))
    assert (none.status, none.actual, detail(none, "zh")) == \
        ("no_data", None, "4 台电脑未配置门户探测（portal）；0/4 台政务网电脑可访问政工网")


def test_gov_isolation_fails_until_the_report_clears() -> None:
    devices = (Device("g1", "gov", "room", NOW), Device("g2", "gov", "cadre", NOW),
               Device("g3", "gov", "room", NOW))
    leak = IsolationReport("g1", True, "canary tcp4 reached", NOW, 2)
    clean = IsolationReport("g2", False, "", NOW, 2)
    r = gov_isolation.evaluate(snap(devices=devices, isolation=(leak, clean)),
                               params(gov_isolation))
    assert (r.status, r.actual, r.required) == ("fail", 1, 0)
    assert detail(r, "en") == ("1 PCs in violation: g1: canary tcp4 reached; "
                               "1 PCs sent no isolation report: g3; "
                               "2 of 3 gov PCs reported an isolation check")
    cleared = IsolationReport("g1", False, "", NOW, 2)
    both = (Device("g1", "gov", "room", NOW), Device("g2", "gov", "cadre", NOW))
    ok = gov_isolation.evaluate(snap(devices=both, isolation=(cleared, clean)),
                                params(gov_isolation))
    assert (ok.status, ok.actual) == ("pass", 0)
    # g3 has not reported yet: nothing proves it sealed.
    unknown = gov_isolation.evaluate(snap(devices=devices, isolation=(cleared, clean)),
                                     params(gov_isolation))
    assert (unknown.status, unknown.actual) == ("no_data", None)
    assert gov_isolation.evaluate(snap(), params(gov_isolation)).status == "no_data"
