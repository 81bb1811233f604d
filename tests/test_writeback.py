"""The per-unit compliance roll-up (collector/store/writeback.py,
unit_compliance_points) on a hand-made evaluation: the figures per unit and
rule, the unit a site hung higher up belongs to, and that its pass rates are
those of the per-site ``compliance`` points. Pure; the dashboards read it in
test_dashboards.py, on a real influxd."""
from __future__ import annotations

from typing import Any

from collector.compliance.evaluate import Evaluation, Verdict
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.compliance.rules.base import DISABLED, Result
from collector.store.writeback import compliance_points, unit_compliance_points

NOW = 1_764_000_000_000
# Units of different sizes: dd-1 has three sites, dd-2 one, and sq-5 hangs
# directly under zd-1 (no battalion): its own unit, not dd-1's or dd-2's.
def squadron(n: int) -> dict[str, Any]:
    return {"id": f"sq-{n}", "name": f"{n}中队", "cadres": 1, "staff": 2}


TREE = [{"id": "bj", "name": "局", "children": [{"id": "zd-1", "name": "一支队", "children": [
    {"id": "dd-1", "name": "一大队", "children": [squadron(1), squadron(2), squadron(3)]},
    {"id": "dd-2", "name": "二大队", "children": [squadron(4)]},
    squadron(5)]}]}]
CADRE, ROOM, BW = "cadre_gov_pcs", "room_gov_share", "gov_bandwidth"


def result(rule: str, status: str) -> Result:
    if status == "disabled":
        return Result(rule, "not_applicable", reasons=(DISABLED,))
    return Result(rule, status, 1.0, {"pass": 1.0, "fail": 0.0, "waived": 0.0}.get(status),
                  {"gov_pcs": 1.0} if status == "fail" else {})


# Per site: cadre, room, bandwidth verdicts.
VERDICTS = {"sq-1": ("pass", "fail", "pass"),  # fails
            "sq-2": ("waived", "not_applicable", "pass"),  # passes with a waiver
            "sq-3": ("no_data", "pass", "pass"),  # no data: never passing
            "sq-4": ("fail", "disabled", "not_applicable"),  # room switched off here
            "sq-5": ("pass", "pass", "pass")}


def fleet() -> tuple[Evaluation, Org]:
    org = read_org(TREE, None)
    verdicts = tuple(Verdict(s, tuple(result(rule, status) for rule, status in
                                      zip((CADRE, ROOM, BW), VERDICTS[s.id])))
                     for s in org.sites)
    return Evaluation(NOW, verdicts, ()), org


def by_unit(ev: Evaluation, org: Org) -> dict[tuple[str, str], dict[str, Any]]:
    """(unit, rule) -> fields; the unit is the battalion, else the detachment."""
    return {(p.tags.get("battalion", p.tags["detachment"]), p.tags["rule"]): dict(p.fields)
            for p in unit_compliance_points(ev, org)}


def test_unit_points_count_the_sites_verdicts_per_rule() -> None:
    ev, org = fleet()
    got = by_unit(ev, org)
    keys = ("sites", "passing", "failing", "no_data", "waived")
    figures = {k: tuple(v[f] for f in keys) for k, v in got.items()}
    assert figures == {
        # dd-1: cadre pass, waived (passing), no data (not passing).
        ("dd-1", CADRE): (3, 2, 0, 1, 1),
        ("dd-1", ROOM): (2, 1, 1, 0, 0),  # sq-2's n/a left out
        ("dd-1", BW): (3, 3, 0, 0, 0),
        ("dd-1", "all"): (3, 1, 1, 1, 1),  # sq-2 passes thanks to a waiver
        # dd-2: room switched off at its only site (no point); bandwidth n/a
        # there: a point with no site it applies to.
        ("dd-2", CADRE): (1, 0, 1, 0, 0),
        ("dd-2", BW): (0, 0, 0, 0, 0),
        ("dd-2", "all"): (1, 0, 1, 0, 0),
        ("zd-1", CADRE): (1, 1, 0, 0, 0),
        ("zd-1", ROOM): (1, 1, 0, 0, 0),
        ("zd-1", BW): (1, 1, 0, 0, 0),
        ("zd-1", "all"): (1, 1, 0, 0, 0)}
    assert all(type(x) is int for v in got.values() for x in v.values())
    points = unit_compliance_points(ev, org)
    assert {p.measurement for p in points} == {"unit_compliance"}
    assert {p.time_ms for p in points} == {NOW}
    dd1 = next(p for p in points if p.tags.get("battalion") == "dd-1")
    assert {k: v for k, v in dd1.tags.items() if k != "rule"} == {
        "bureau": "bj", "detachment": "zd-1", "battalion": "dd-1", "bureau_name": "局",
        "detachment_name": "一支队", "battalion_name": "一大队"}  # no site, no site_name
    top = next(p for p in points if "battalion" not in p.tags)
    assert set(top.tags) == {"bureau", "detachment", "bureau_name", "detachment_name", "rule"}


def test_unit_pass_rates_are_those_of_the_site_points() -> None:
    """sum(passing) / sum(sites) over the units = mean(ok) over the sites'
    ``compliance`` points, per rule and for all (what the dashboards used to read)."""
    ev, org = fleet()
    units = unit_compliance_points(ev, org)
    sites = compliance_points(ev, org)
    for rule in (CADRE, ROOM, BW, "all"):
        oks = [p.fields["ok"] for p in sites if p.tags["rule"] == rule and "ok" in p.fields]
        mine = [p.fields for p in units if p.tags["rule"] == rule]
        assert sum(f["passing"] for f in mine) / sum(f["sites"] for f in mine) == \
            sum(oks) / len(oks), rule
        assert sum(f["no_data"] for f in mine) == sum(
            p.fields["no_data"] for p in sites if p.tags["rule"] == rule and "ok" in p.fields)
