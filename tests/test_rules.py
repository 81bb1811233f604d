"""The rules as pure functions over hand-built snapshots; every expected
figure is worked out by hand in the comments. Also the pure parts around
them: which inventories count (loaders.devices.assemble) and the
procurement sum (compliance.needs)."""
from __future__ import annotations

from typing import Any

import pytest

from collector.compliance import evaluate as compliance
from collector.compliance import rules
from collector.compliance.facts import Device, Snapshot
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.compliance.rules import (
    cadre_gov_pcs,
    cadre_internet_pcs,
    room_gov_share,
    staff_gov_pcs,
)
from collector.compliance.rules.base import Result
from collector.report.format import detail
from collector.store.loaders import devices

NOW = 1_750_000_000_000
MINE = ("cadre_gov_pcs", "cadre_internet_pcs", "staff_gov_pcs", "room_gov_share")


def site(cadres: int = 0, staff: int = 0, rules_: dict[str, Any] | None = None) -> Any:
    org = read_org([{"id": "s", "cadres": cadres, "staff": staff, "rules": rules_ or {}}], None)
    return org.sites[0]


def snap(cadres: int = 0, staff: int = 0, pcs: str = "", **kw: Any) -> Snapshot:
    """``pcs``: space-separated network/role[xN], e.g. "gov/cadre x2 internet/room"."""
    devs, n = [], 0
    tokens = pcs.split()
    for i, tok in enumerate(tokens):
        if tok.startswith("x"):
            continue
        times = int(tokens[i + 1][1:]) if i + 1 < len(tokens) and tokens[i + 1].startswith("x") \
            else 1
        net, role = tok.split("/")
        for _ in range(times):
            n += 1
            devs.append(Device(f"pc{n}", net, role, NOW))
    return Snapshot(site(cadres, staff, kw.get("rules_")), tuple(devs), NOW)


def run(rule: Any, s: Snapshot, **params: Any) -> Result:
    r: Result = rule.evaluate(s, {**rule.DEFAULTS, **params})
    return r


def facts(r: Result) -> tuple[float | None, float | None, bool, dict[str, float]]:
    return (r.required, r.actual, r.ok, dict(r.shortfall))


MIXED = "gov/cadre x2 internet/cadre x3 gov/room x2 internet/room x3 gov/office"


def test_mixed_site_each_rule() -> None:
    s = snap(3, 7, MIXED)
    assert facts(run(cadre_gov_pcs, s)) == (3, 2, False, {"gov_pcs": 1})  # 2 of 3 cadres
    assert facts(run(cadre_internet_pcs, s)) == (3, 3, True, {})
    # staff 7 -> ceil(3.5) = 4; shared gov: 2 room + 1 office = 3
    assert facts(run(staff_gov_pcs, s)) == (4, 3, False, {"gov_pcs": 1})
    # room 2 gov of 5 = 0.4; (2 + g) / (5 + g) >= 0.5 -> g >= 1
    assert facts(run(room_gov_share, s)) == (0.5, 0.4, False, {"gov_pcs": 1})


def test_no_cadres_no_staff_empty_room() -> None:
    s = snap(0, 0, "internet/office")
    assert facts(run(cadre_gov_pcs, s)) == (0, 0, True, {})
    assert facts(run(cadre_internet_pcs, s)) == (0, 0, True, {})
    assert facts(run(staff_gov_pcs, s)) == (0, 0, True, {})
    # The site reports, but no PC is in its room: that fails, and one gov PC
    # fixes it: 1 / 1.
    room = run(room_gov_share, s)
    assert facts(room) == (0.5, 0, False, {"gov_pcs": 1})
    assert detail(room, "zh") == "网络室无电脑；网络室 0 台电脑中政务网 0 台"


@pytest.mark.parametrize(("staff", "per", "required"), [
    (9, 2.0, 5), (8, 2.0, 4), (1, 2.0, 1), (6, 1.5, 4), (7, 1.5, 5), (6, 1.2, 5), (5, 1.0, 5),
])
def test_staff_gov_pcs_rounds_up(staff: int, per: float, required: int) -> None:
    r = run(staff_gov_pcs, snap(0, staff, "gov/room x4 gov/cadre x9"), staff_per_pc=per)
    # cadre PCs never count for staff: 4 shared gov PCs.
    assert facts(r) == (required, 4, required <= 4,
                        {} if required <= 4 else {"gov_pcs": required - 4})


@pytest.mark.parametrize(("share", "pcs", "actual", "add"), [
    (0.5, "gov/room x3 internet/room x3", 0.5, 0),
    (0.5, "gov/room x2 internet/room x6", 0.25, 4),  # (2+4)/(8+4) = 0.5
    (0.6, "gov/room x4 internet/room x6", 0.4, 5),  # (4+5)/(10+5) = 0.6 exactly
    (0.6, "gov/room x6 internet/room x4", 0.6, 0),  # 6 / 10 = 0.6 passes
    (1.0, "gov/room x3 internet/room x2", 0.6, 2),  # replace both internet PCs
    (0.0, "internet/room", 0.0, 0),
    (0.5, "internet/room", 0.0, 1),
])
def test_room_gov_share_smallest_addition(share: float, pcs: str, actual: float, add: int
                                          ) -> None:
    r = run(room_gov_share, snap(0, 0, pcs + " gov/cadre x5"), min_share=share)
    assert (r.actual, r.ok, dict(r.shortfall)) == \
        (actual, add == 0, {} if add == 0 else {"gov_pcs": add})


def test_cadre_rules_with_per_cadre_two() -> None:
    s = snap(2, 0, "gov/cadre x3 internet/cadre x4")
    assert facts(run(cadre_gov_pcs, s, per_cadre=2)) == (4, 3, False, {"gov_pcs": 1})
    assert facts(run(cadre_internet_pcs, s, per_cadre=2)) == (4, 4, True, {})


def test_evaluate_applies_waivers_and_disabled_rules() -> None:
    s = snap(1, 2, "internet/room x2")
    params: dict[str, dict[str, Any]] = {
        "room_gov_share": {"waived": "机房改造中"}, "cadre_internet_pcs": {"enabled": False},
        "staff_gov_pcs": {"staff_per_pc": 1.0}}
    got = {r.rule: r for r in rules.evaluate(s, params)}
    # Switched off: listed as not applicable, never left out.
    off = got["cadre_internet_pcs"]
    assert (off.status, off.ok, off.disabled, detail(off, "en")) == \
        ("not_applicable", False, True, "not enabled")
    assert list(got) == [r.NAME for r in rules.registry()]
    room = got["room_gov_share"]
    assert (room.status, room.ok, room.waived, dict(room.shortfall), room.actual) == \
        ("waived", True, "机房改造中", {}, 0)
    # What the evidence said stays in the detail.
    # (0 + g) / (2 + g) >= 0.5 -> g = 2.
    assert detail(room, "en") == "2 gov PCs to add to the room; 0 gov of 2 room PCs"
    assert facts(got["staff_gov_pcs"]) == (2, 0, False, {"gov_pcs": 2})
    assert facts(got["cadre_gov_pcs"]) == (1, 0, False, {"gov_pcs": 1})


def test_needs_share_room_and_staff_purchases_and_add_cadre_ones() -> None:
    # cadres 2 (0 gov, 1 internet); staff 10 -> 5, shared gov 2; room 2 of 5.
    s = snap(2, 10, "internet/cadre gov/room x2 internet/room x3")
    results = [r for r in rules.evaluate(s, {}) if r.rule in MINE]
    by = {r.rule: dict(r.shortfall) for r in results}
    assert by == {"cadre_gov_pcs": {"gov_pcs": 2}, "cadre_internet_pcs": {"internet_pcs": 1},
                  "staff_gov_pcs": {"gov_pcs": 3}, "room_gov_share": {"gov_pcs": 1}}
    # 3 gov PCs put in the room serve staff (5 of 5) and the room (5 of 8);
    # the 2 cadres' gov PCs come on top: 5 gov, 1 internet.
    assert compliance.needs(results) == {"gov_pcs": 5, "internet_pcs": 1}


def row(site_: str, host: str, hid: str, t: int, net: str = "gov", role: str = "room"
        ) -> dict[str, Any]:
    return {"site": site_, "host": host, "host_id": hid, "network": net, "role": role,
            "time": t}


def test_devices_latest_placement_counts_and_twins_stay_apart() -> None:
    org = Org(nodes={s.id: s for s in read_org(
        [{"id": "a", "cadres": 0, "staff": 0}, {"id": "b", "cadres": 0, "staff": 0}],
        None).nodes.values()})
    h = 3_600_000
    last = [
        row("a", "mover", "m", 1 * h), row("b", "mover", "m", 3 * h),  # moved a -> b
        row("a", "pc-01", "clone", 5 * h), row("b", "pc-01", "clone", 6 * h),  # twins
        row("a", "pc-02", "x", 4 * h), row("b", "pc-02", "y", 4 * h),  # same name only
        row("a", "re", "r", 2 * h, role="room"), row("a", "re", "r", 7 * h, role="office"),
        row("zz", "stray", "s", 2 * h),
    ]
    first = [
        row("a", "mover", "m", 0), row("b", "mover", "m", 2 * h),
        row("a", "pc-01", "clone", 1 * h), row("b", "pc-01", "clone", 2 * h),
        row("a", "pc-02", "x", 4 * h), row("b", "pc-02", "y", 4 * h),
        row("a", "re", "r", 1 * h, role="room"), row("a", "re", "r", 6 * h, role="office"),
        row("zz", "stray", "s", 2 * h),
    ]
    got = devices.assemble(last, first, org)
    placed = {site_: sorted((d.host, d.role) for d in v["devices"])
              for site_, v in got.facts.items()}
    assert placed == {"a": [("pc-01", "room"), ("pc-02", "room"), ("re", "office")],
                      "b": [("mover", "room"), ("pc-01", "room"), ("pc-02", "room")]}
    assert [(s.site, s.host, s.last_seen_ms) for s in got.unregistered] == [("zz", "stray", 2 * h)]
