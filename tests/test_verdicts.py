"""The five verdicts (pass, fail, no data, not applicable, waived), rule by
rule on hand-built snapshots; a site's status and its roll-ups; the reasons
in Chinese and English; and how the report formats and the `compliance`
points carry them. Pure: the pipeline is in test_compliance_e2e.py."""
from __future__ import annotations

import ast
import csv
import dataclasses
import io
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest

from collector.compliance import rules
from collector.compliance.availability import DayOpen, RoomNow
from collector.compliance.evaluate import evaluate_all, procurement, rollups, silent, verdict
from collector.compliance.facts import (
    Bandwidth,
    Clone,
    Device,
    IsolationReport,
    ProbeResult,
    Snapshot,
    Snapshots,
)
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.compliance.rules.base import Result
from collector.report import output
from collector.report.format import cell, detail
from collector.report.html import context
from collector.report.i18n import REASONS, reason
from collector.store.writeback import compliance_points

NOW = 1_764_000_000_000  # 2025-11-24 16:00 UTC
H = 3_600_000
RULES_DIR = Path(__file__).resolve().parent.parent / "collector" / "compliance" / "rules"


def org_of(*sites: dict[str, Any]) -> Org:
    return read_org([{"id": "bj", "name": "北京局", "children": [
        {"id": "d1", "name": "一支队", "children": list(sites)}]}], None)


ORG = org_of({"id": "sq", "name": "一中队", "cadres": 1, "staff": 2})
SITE = ORG.sites[0]
PCS = (Device("c-gov", "gov", "cadre", NOW), Device("c-inet", "internet", "cadre", NOW),
       Device("r-gov", "gov", "room", NOW), Device("r-inet", "internet", "room", NOW))


def healthy(**change: Any) -> Snapshot:
    """A site where every rule passes (cadres 1, staff 2, a room of one gov and
    one internet PC, fast links, open all yesterday, the portal answering,
    sealed gov PCs), with ``change`` applied."""
    snap = Snapshot(
        SITE, PCS, NOW,
        bandwidth=(Bandwidth("gov", "r-gov", NOW - H, 50.0),
                   Bandwidth("internet", "r-inet", NOW - H, 50.0)),
        availability=(DayOpen("2025-11-24", 0, 1, 86400.0, 86400.0),),
        room_now=RoomNow(True, 2, 2),
        probes=(ProbeResult("c-gov", "gov", "portal", True, NOW - 60_000),
                ProbeResult("r-gov", "gov", "portal", True, NOW - 60_000)),
        isolation=(IsolationReport("c-gov", False, "", NOW, 2),
                   IsolationReport("r-gov", False, "", NOW, 2)))
    return dataclasses.replace(snap, **change)


def one(name: str, snap: Snapshot, **params: Any) -> Result:
    """Rule ``name``'s result through rules.evaluate (waivers, switches and all)."""
    return {r.rule: r for r in rules.evaluate(snap, {name: params})}[name]


def test_a_healthy_site_passes_every_rule() -> None:
    v = verdict(ORG, SITE, healthy())
    assert {r.rule: r.status for r in v.results} == {r.NAME: "pass" for r in rules.registry()}
    assert (v.status, v.ok, v.needs, v.reasons) == ("pass", True, {}, ())


def test_a_verdict_carries_the_sites_clones_and_they_change_no_verdict() -> None:
    # Two PCs of one image, both counted (the loader's Clone), listed to be fixed.
    clone = Clone("hostname", "r-gov", ("r-gov", "r-gov"), ("m.a", "m.b"))
    v = verdict(ORG, SITE, healthy(clones=(clone,)))
    assert (v.clones, v.status, v.needs) == ((clone,), "pass", {})
    assert verdict(ORG, SITE, healthy()).clones == ()


ONLY_INTERNET = (Device("r-inet", "internet", "room", NOW),)
NO_ROOM = (Device("c-gov", "gov", "cadre", NOW), Device("c-inet", "internet", "cadre", NOW))

# (rule, state, the healthy site changed so, the rule's params, its reasons' keys)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("cadre_gov_pcs", "fail", {"devices": PCS[1:]}, {}, ["pcs_short"]),
    ("cadre_gov_pcs", "no_data", {"devices": ()}, {}, ["no_pcs"]),
    ("cadre_internet_pcs", "fail", {"devices": PCS[:1] + PCS[2:]}, {}, ["pcs_short"]),
    ("cadre_internet_pcs", "no_data", {"devices": ()}, {}, ["no_pcs"]),
    ("staff_gov_pcs", "fail", {"devices": NO_ROOM}, {}, ["pcs_short"]),
    ("staff_gov_pcs", "no_data", {"devices": ()}, {}, ["no_pcs"]),
    ("room_gov_share", "fail", {"devices": ONLY_INTERNET}, {}, ["room_share_short"]),
    ("room_gov_share", "fail", {"devices": NO_ROOM}, {}, ["room_empty"]),
    ("room_gov_share", "no_data", {"devices": ()}, {}, ["no_pcs"]),
    ("room_video", "fail", {"bandwidth": (Bandwidth("gov", "r-gov", NOW, 1.0),
                                          Bandwidth("internet", "r-inet", NOW, 50.0))},
     {}, ["mbps_short"]),
    ("room_video", "fail", {"probes": (ProbeResult("r-gov", "gov", "web", False, NOW),)},
     {}, ["browse_failed"]),
    ("room_video", "no_data", {"bandwidth": (Bandwidth("gov", "r-gov", NOW, 50.0),)},
     {}, ["no_speed_test"]),
    ("room_video", "no_data", {"devices": ()}, {}, ["no_pcs"]),
    ("room_video", "not_applicable", {"devices": NO_ROOM}, {}, ["no_room_pcs"]),
    ("room_open_all_day", "fail",
     {"availability": (DayOpen("2025-11-24", 0, 1, 86400.0, 43200.0),)}, {}, ["open_day"]),
    ("room_open_all_day", "no_data",
     {"availability": (DayOpen("2025-11-24", 0, 1, 86400.0, 0.0),),
      "room_now": RoomNow(False, 0, 0)}, {}, ["no_heartbeats"]),
    ("room_open_all_day", "not_applicable",
     {"availability": (DayOpen("2025-11-24", 0, 1, 0.0, 0.0),)}, {}, ["day_off"]),
    ("portal_reachable", "fail",
     {"probes": (ProbeResult("c-gov", "gov", "portal", False, NOW - 60_000),)}, {},
     ["portal_unreachable", "probe_not_configured"]),
    ("portal_reachable", "no_data", {"probes": ()}, {}, ["probe_not_configured"]),
    ("portal_reachable", "no_data",
     {"probes": (ProbeResult("c-gov", "gov", "portal", True, NOW - 2 * H),
                 ProbeResult("r-gov", "gov", "portal", True, NOW - 60_000))},
     {}, ["probe_stale"]),
    ("portal_reachable", "no_data", {"devices": (), "probes": ()}, {}, ["no_pcs"]),
    ("portal_reachable", "not_applicable", {"devices": ONLY_INTERNET, "probes": ()}, {},
     ["no_gov_pcs"]),
    ("gov_isolation", "fail",
     {"isolation": (IsolationReport("c-gov", True, "wlan0 up", NOW, 0),
                    IsolationReport("r-gov", False, "", NOW, 0))}, {},
     ["isolation_violated", "isolation_not_configured"]),
    # The case: a gov PC without canaries was "达标 0/0".
    ("gov_isolation", "no_data",
     {"isolation": (IsolationReport("c-gov", False, "", NOW, 0),
                    IsolationReport("r-gov", False, "", NOW, 2))}, {},
     ["isolation_not_configured"]),
    # A report that does not say how many canaries (an older or other agent).
    ("gov_isolation", "no_data",
     {"isolation": (IsolationReport("c-gov", False, "", NOW, None),
                    IsolationReport("r-gov", False, "", NOW, 2))}, {},
     ["isolation_not_configured"]),
    ("gov_isolation", "no_data", {"isolation": (IsolationReport("c-gov", False, "", NOW, 2),)},
     {}, ["isolation_silent"]),
    # One unknown PC cannot break a limit of one violation: pass.
    ("gov_isolation", "pass", {"isolation": (IsolationReport("c-gov", False, "", NOW, 2),)},
     {"max_violations": 1}, []),
    ("gov_isolation", "not_applicable", {"devices": ONLY_INTERNET, "isolation": ()}, {},
     ["no_gov_pcs"]),
    ("gov_bandwidth", "fail", {"bandwidth": (Bandwidth("gov", "r-gov", NOW, 10.0),)}, {},
     ["mbps_short"]),
    ("gov_bandwidth", "no_data", {"bandwidth": ()}, {}, ["no_speed_test"]),
    ("gov_bandwidth", "no_data",
     {"bandwidth": (Bandwidth("gov", "r-gov", NOW - 30 * H, 50.0, error="timeout",
                              error_ms=NOW - H),)}, {}, ["no_speed_test", "last_test_failed"]),
]


@pytest.mark.parametrize(("name", "state", "change", "params", "keys"), CASES)
def test_each_rule_in_each_state(name: str, state: str, change: dict[str, Any],
                                 params: dict[str, Any], keys: list[str]) -> None:
    r = one(name, healthy(**change), **params)
    assert (r.status, [x.key for x in r.reasons]) == (state, keys), r
    assert r.ok is (state == "pass")
    # Only evidence makes a figure, and only a fail a shortfall.
    assert (r.actual is None) is (state in ("no_data", "not_applicable"))
    assert not r.shortfall or state == "fail"
    for lang in ("zh", "en"):  # every reason is worded, in both languages
        assert all(x.key in REASONS for x in (*r.reasons, *r.notes))
        text = cell(r, "", lang)
        assert (text != cell(dataclasses.replace(r, reasons=()), "", lang)) is bool(keys)


@pytest.mark.parametrize("name", [r.NAME for r in rules.registry()])
def test_every_rule_can_be_waived_and_switched_off(name: str) -> None:
    # Every rule fails or lacks data here.
    snap = healthy(devices=ONLY_INTERNET, bandwidth=(),
                   probes=(ProbeResult("c-gov", "gov", "portal", True, NOW - 2 * H),),
                   availability=(DayOpen("2025-11-24", 0, 1, 86400.0, 43200.0),),
                   isolation=(IsolationReport("c-gov", False, "", NOW, 0),))
    assert one(name, snap).status in ("fail", "no_data")
    waived = one(name, snap, waived="改造中")
    assert (waived.status, waived.ok, waived.waived, dict(waived.shortfall)) == \
        ("waived", True, "改造中", {})
    off = one(name, snap, enabled=False)
    assert (off.status, off.ok, off.disabled, [x.key for x in off.reasons]) == \
        ("not_applicable", False, True, ["rule_disabled"])
    assert detail(off, "zh") == "未启用"


def test_a_site_is_fail_then_no_data_then_pass() -> None:
    no_canary = (IsolationReport("c-gov", False, "", NOW, 0),
                 IsolationReport("r-gov", False, "", NOW, 2))
    v = verdict(ORG, SITE, healthy(isolation=no_canary))
    assert (v.status, v.ok) == ("no_data", False)
    v = verdict(ORG, SITE, healthy(isolation=no_canary, devices=PCS[1:]))  # and a fail
    assert (v.status, v.needs) == ("fail", {"gov_pcs": 1})
    # Waived and not applicable count as passing; so does a switched-off rule.
    org = org_of({"id": "sq", "name": "一中队", "cadres": 1, "staff": 2,
                  "rules": {"gov_isolation": {"waived": "待配置"},
                            "gov_bandwidth": {"enabled": False}}})
    v = verdict(org, org.sites[0], healthy(isolation=no_canary, bandwidth=(
        Bandwidth("internet", "r-inet", NOW, 50.0), Bandwidth("gov", "r-gov", NOW, 5.0))))
    assert {r.rule: r.status for r in v.results if r.status != "pass"} == \
        {"gov_isolation": "waived", "gov_bandwidth": "not_applicable"}
    assert (v.status, v.ok) == ("pass", True)


def test_a_silent_site_has_no_data_and_buys_nothing() -> None:
    org = org_of({"id": "sq", "name": "一中队", "cadres": 3, "staff": 20},
                 {"id": "sq-0", "name": "空中队", "cadres": 0, "staff": 0})
    snaps = Snapshots(NOW, {s.id: Snapshot(s, (), NOW) for s in org.sites}, ())
    assert all(silent(s) for s in snaps.by_site.values())
    assert not silent(healthy(devices=(), probes=(), isolation=(), bandwidth=(),
                              room_now=RoomNow(False, 0, 1)))
    ev = evaluate_all(org, snaps)
    for v in ev.verdicts:
        assert (v.status, v.needs) == ("no_data", {})
        assert [(x.key, x.params) for x in v.reasons] == [("site_silent", {"days": 7.0})]
        for r in v.results:
            # Nothing needed for nobody: 0 cadres need 0 PCs, evidence or not.
            assert r.status in ("no_data", "pass"), r
            if r.status == "no_data":
                assert [x.key for x in r.reasons] == ["site_silent"]
    zero = ev.verdicts[1]
    assert {r.rule for r in zero.results if r.status == "pass"} == \
        {"cadre_gov_pcs", "cadre_internet_pcs", "staff_gov_pcs"}
    assert reason("site_silent", {"days": 7.0}, "zh") == "站点 7 天内无任何上报"
    assert "需增" not in output.to_table(ev, org, "zh").split("采购缺口清单")[1]


def test_procurement_is_grouped_by_unit_with_subtotals_and_a_total() -> None:
    """Sites short of PCs under two detachments: each unit's sites, then its
    subtotal, the bureau's total last; a site without data buys nothing."""
    def sq(sid: str, name: str, cadres: int) -> dict[str, Any]:
        return {"id": sid, "name": name, "cadres": cadres, "staff": 2}

    org = read_org([{"id": "bj", "name": "北京局", "children": [
        {"id": "d1", "name": "一支队", "children": [
            {"id": "b1", "name": "一大队", "children": [sq("s1", "一中队", 2),
                                                         sq("s2", "二中队", 3)]},
            {"id": "b2", "name": "二大队", "children": [sq("s3", "三中队", 1)]}]},
        {"id": "d2", "name": "二支队", "children": [sq("s4", "四中队", 4),
                                                     sq("s5", "五中队", 9)]}]}], None)
    # One gov and one internet cadre PC each: cadres - 1 of each to buy; s5 is silent.
    snaps = Snapshots(NOW, {s.id: dataclasses.replace(healthy(), site=s) if s.id != "s5"
                            else Snapshot(s, (), NOW) for s in org.sites}, ())
    ev = evaluate_all(org, snaps)
    lines = procurement(org, ev.verdicts)
    got = [(p.kind, p.node.id if p.node else None, dict(p.needs), p.sites) for p in lines]
    assert got == [
        ("site", "s1", {"gov_pcs": 1, "internet_pcs": 1}, 1),
        ("site", "s2", {"gov_pcs": 2, "internet_pcs": 2}, 1),
        ("unit", "b1", {"gov_pcs": 3, "internet_pcs": 3}, 2),
        ("unit", "d1", {"gov_pcs": 3, "internet_pcs": 3}, 2),  # b2's s3 lacks nothing
        ("site", "s4", {"gov_pcs": 3, "internet_pcs": 3}, 1),
        ("unit", "d2", {"gov_pcs": 3, "internet_pcs": 3}, 1),
        ("total", None, {"gov_pcs": 6, "internet_pcs": 6}, 3)]
    assert [n.id for n in lines[2].path] == ["bj", "d1"]

    table = output.to_table(ev, org, "zh").split("采购缺口清单")[1].split("\n\n")[0]
    assert [re.split(r" {2,}", x.strip()) for x in table.strip().splitlines()] == [
        ["所属单位", "站点", "需增政务网电脑(台)", "需增互联网电脑(台)"],
        ["一支队/一大队", "一中队", "1", "1"], ["一支队/一大队", "二中队", "2", "2"],
        ["一支队/一大队", "小计", "3", "3"], ["一支队", "小计", "3", "3"],
        ["二支队", "四中队", "3", "3"], ["二支队", "小计", "3", "3"], ["合计", "6", "6"]]
    doc = json.loads(output.to_json(ev, org, "en"))
    assert [(x["kind"], x["id"], x["name"], x["sites"], x["needs"])
            for x in doc["procurement"]][2:4] == [
        ("unit", "b1", "一大队", 2, {"gov_pcs": 3, "internet_pcs": 3}),
        ("unit", "d1", "一支队", 2, {"gov_pcs": 3, "internet_pcs": 3})]
    assert doc["procurement"][-1] == {"kind": "total", "id": None, "name": None,
                                      "level": None, "path": [], "sites": 3,
                                      "needs": {"gov_pcs": 6, "internet_pcs": 6}}
    assert [x["name"] for x in doc["procurement"][0]["path"]] == ["北京局", "一支队", "一大队"]
    assert procurement(org, ()) == []


def test_rollups_count_no_data_apart() -> None:
    org = org_of(*({"id": f"sq-{i}", "name": f"{i}中队", "cadres": 1, "staff": 2}
                   for i in range(4)))
    s0, s1, s2, s3 = org.sites
    snaps = Snapshots(NOW, {
        s0.id: dataclasses.replace(healthy(), site=s0),
        s1.id: dataclasses.replace(healthy(devices=PCS[1:]), site=s1),  # fails
        s2.id: dataclasses.replace(healthy(bandwidth=()), site=s2),  # no tester
        s3.id: Snapshot(s3, (), NOW),  # silent
    }, ())
    ev = evaluate_all(org, snaps)
    assert [v.status for v in ev.verdicts] == ["pass", "fail", "no_data", "no_data"]
    [_, d1] = rollups(org, ev.verdicts)  # the bureau, then the detachment
    assert (d1.sites, d1.passing, d1.failing, d1.no_data) == (4, 1, 1, 2)
    assert d1.rules["cadre_gov_pcs"] == {"pass": 2, "fail": 1, "no_data": 1,
                                         "not_applicable": 0, "waived": 0}
    assert d1.rules["gov_bandwidth"] == {"pass": 2, "fail": 0, "no_data": 2,
                                         "not_applicable": 0, "waived": 0}
    doc = json.loads(output.to_json(ev, org, "en"))
    unit = doc["rollups"][0]
    assert (unit["sites"], unit["passing"], unit["failing"], unit["no_data"]) == (4, 1, 1, 2)
    assert unit["rules"]["gov_bandwidth"] == {"passing": 2, "failing": 0, "no_data": 2,
                                              "not_applicable": 0, "waived": 0, "checked": 2}
    table = output.to_table(ev, org, "zh")
    assert "站点 4  全部达标 1  未全部达标 1  无数据 2" in table
    row = next(line for line in table.splitlines() if line.startswith("一支队"))
    assert row.split()[:8] == ["一支队", "支队", "4", "1/4", "25%", "1", "2", "2/3"]
    assert "2/2 100%，无数据 2" in row  # gov_bandwidth: 2 pass of 2 known, 2 unknown
    en = output.to_table(ev, org, "en")
    assert "2/2 100%, 2 no data" in en


def _why_calls() -> list[tuple[str, str, set[str]]]:
    """(file, key, parameter names) of every why("key", ...) in the rules."""
    out = []
    for path in sorted(RULES_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "why" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                names = {k.arg for k in node.keywords if k.arg is not None}
                if any(k.arg is None for k in node.keywords):  # **hours: see open_day
                    names |= {"open_h", "required_h"}
                out.append((path.name, str(node.args[0].value), names))
    return out


def test_every_reason_a_rule_gives_is_worded_in_both_languages() -> None:
    calls = _why_calls()
    assert len(calls) > 30
    for path, key, names in calls:
        assert key in REASONS, (path, key)
        for template in REASONS[key]:
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            assert fields == names, (path, key, template)
    used = {key for _, key, _ in calls} | {"site_silent", "rule_disabled", "does_not_apply"}
    assert set(REASONS) == used  # no template left without a rule using it
    # Networks are translated; an unknown key still shows, never raises.
    assert reason("pcs_short", {"n": 2, "network": "gov"}, "zh") == "缺 2 台政务网电脑"
    assert reason("pcs_short", {"n": 2, "network": "gov"}, "en") == "2 gov PCs short"
    assert reason("later_key", {"n": 1}, "zh") == "later_key n=1"


def _fleet() -> tuple[Any, Org]:
    org = org_of({"id": "sq-ok", "name": "达标中队", "cadres": 1, "staff": 2},
                 {"id": "sq-nc", "name": "无探针中队", "cadres": 1, "staff": 2,
                  "rules": {"room_gov_share": {"waived": "机房改造中"}}},
                 {"id": "sq-nt", "name": "无测速中队", "cadres": 1, "staff": 2},
                 {"id": "sq-x", "name": "静默中队", "cadres": 2, "staff": 4})
    ok, nc, nt, x = org.sites
    snaps = Snapshots(NOW, {
        ok.id: dataclasses.replace(healthy(), site=ok),
        nc.id: dataclasses.replace(healthy(isolation=(
            IsolationReport("c-gov", False, "", NOW, 0),
            IsolationReport("r-gov", False, "", NOW, 0))), site=nc),
        nt.id: dataclasses.replace(healthy(bandwidth=()), site=nt),
        x.id: Snapshot(x, (), NOW),
    }, ())
    return evaluate_all(org, snaps), org


def test_report_formats_show_the_five_states_and_why() -> None:
    ev, org = _fleet()
    doc = json.loads(output.to_json(ev, org, "zh"))
    sites = {s["site"]: s for s in doc["sites"]}
    assert {k: (s["status"], s["ok"]) for k, s in sites.items()} == {
        "sq-ok": ("pass", True), "sq-nc": ("no_data", False), "sq-nt": ("no_data", False),
        "sq-x": ("no_data", False)}
    for s in sites.values():  # every rule listed, none left out
        assert [r["rule"] for r in s["rules"]] == [r.NAME for r in rules.registry()]
    iso = next(r for r in sites["sq-nc"]["rules"] if r["rule"] == "gov_isolation")
    assert (iso["status"], iso["ok"], iso["actual"], iso["detail"]) == \
        ("no_data", False, None,
         "2 台电脑未配置隔离检测：c-gov, r-gov；2/2 台政务网电脑上报隔离检测")
    assert iso["reasons"] == [{"key": "isolation_not_configured",
                               "params": {"n": 2, "hosts": "c-gov, r-gov"},
                               "text": "2 台电脑未配置隔离检测：c-gov, r-gov"}]
    room = next(r for r in sites["sq-nc"]["rules"] if r["rule"] == "room_gov_share")
    # ok is true only for pass; a waiver still counts as passing for the site.
    assert (room["status"], room["ok"], room["waived"]) == ("waived", False, "机房改造中")
    gb = next(r for r in sites["sq-nt"]["rules"] if r["rule"] == "gov_bandwidth")
    assert (gb["status"], gb["detail"]) == ("no_data", "政务网 24 小时内无测速")
    assert sites["sq-x"]["detail"] == "站点 7 天内无任何上报" and sites["sq-x"]["needs"] == {}
    en = json.loads(output.to_json(ev, org, "en"))
    assert en["sites"][2]["rules"][4]["detail"] == \
        "gov: no speed test in 24 h; internet: no speed test in 24 h; browsing ok on 1 room PCs"

    units = {r["rule"]: r["unit"] for r in sites["sq-ok"]["rules"]}
    assert (units["cadre_gov_pcs"], units["room_gov_share"], units["gov_bandwidth"]) == \
        ("pcs", "share", "Mbit/s")

    text = output.to_csv(ev, org, "zh")
    head = text.splitlines()[0].split(",")
    # Figures are numbers, one pair of columns per unit, the unit in the header.
    assert head[6:12] == ["实际(台)", "要求(台)", "实际(%)", "要求(%)", "实际(Mbit/s)",
                          "要求(Mbit/s)"]
    rows = list(csv.DictReader(io.StringIO(text)))
    got = {(r["站点"], r["标准"]): r for r in rows}
    assert (got[("sq-nt", "政务网带宽")]["结论"], got[("sq-nt", "政务网带宽")]["实际(Mbit/s)"],
            got[("sq-nt", "政务网带宽")]["原因"]) == ("无数据", "", "政务网 24 小时内无测速")
    assert got[("sq-x", "干部政务网电脑")]["站点结论"] == "无数据"
    assert [got[("sq-ok", "政务网带宽")][k] for k in head[6:12]] == ["", "", "", "", "50", "20"]
    assert [got[("sq-ok", "网络室政务网电脑占比")][k] for k in head[6:12]] == [
        "", "", "50", "50", "", ""]  # 0.5 of the room: 50 %
    assert [got[("sq-ok", "干部政务网电脑")][k] for k in head[6:12]] == [
        "1", "1", "", "", "", ""]
    for r in rows:  # every figure a number: no "75%" or "50 Mbit/s" text
        assert all(r[k] == "" or float(r[k]) >= 0 for k in head[6:12]), r
    en = output.to_csv(ev, org, "en").splitlines()[0].split(",")
    assert en[6:8] == ["Actual (PCs)", "Required (PCs)"]

    page = context(ev, org, "en")
    assert (page["passing"], page["failing"], page["no_data"]) == (1, 0, 3)
    x = next(s for s in page["sites"] if s["id"] == "sq-x")
    assert (x["word"], x["cls"], x["note"]) == ("no data", "nodata",
                                                "nothing received from the site in 7 days")
    assert x["cells"][0] == {"word": "no data", "figures": "", "cls": "nodata",
                             "note": "nothing received from the site in 7 days"}
    nc = next(s for s in page["sites"] if s["id"] == "sq-nc")
    assert nc["cells"][3] == {"word": "waived", "figures": "50%/50%", "cls": "waived",
                              "note": "机房改造中"}
    html = output.render("html", ev, org, "zh")
    assert "无数据" in html and "未配置隔离检测" in html and 'id="sum-nodata">3<' in html


@pytest.mark.parametrize(("lang", "words"), [
    ("zh", ("无数据（站点 7 天内无任何上报）", "无数据（政务网 24 小时内无测速）",
            "无数据（2 台电脑未配置隔离检测：c-gov, r-gov）", "豁免 50%/50%", "达标 1/1 台",
            "达标 50/20 Mbit/s")),
    ("en", ("no data (nothing received from the site in 7 days)",
            "no data (gov: no speed test in 24 h)",
            "no data (2 PCs have no isolation canaries configured: c-gov, r-gov)",
            "waived 50%/50%", "pass 1/1 PCs", "pass 50/20 Mbit/s")),
])
def test_table_cells_say_why(lang: str, words: tuple[str, ...]) -> None:
    ev, org = _fleet()
    table = output.to_table(ev, org, lang)
    for w in words:
        assert w in table, w


def test_compliance_points_carry_the_status() -> None:
    ev, org = _fleet()
    points = {(p.tags["site"], p.tags["rule"]): p.fields for p in compliance_points(ev, org)}
    assert points[("sq-ok", "all")] == {"status": "pass", "ok": 1, "no_data": 0, "failed": 0,
                                        "no_data_rules": 0}
    assert points[("sq-x", "all")] == {"status": "no_data", "ok": 0, "no_data": 1, "failed": 0,
                                       "no_data_rules": 9}
    # No data: ok 0 (never passing), no actual, nothing to buy.
    assert points[("sq-nt", "gov_bandwidth")] == {
        "status": "no_data", "no_data": 1, "ok": 0, "waived": 0, "shortfall": 0.0,
        "required": 20.0}
    assert points[("sq-nc", "room_gov_share")]["status"] == "waived"
    assert points[("sq-nc", "room_gov_share")]["ok"] == 1
    org2 = org_of({"id": "sq", "name": "一中队", "cadres": 1, "staff": 2,
                   "rules": {"gov_bandwidth": {"enabled": False}}})
    ev2 = evaluate_all(org2, Snapshots(NOW, {"sq": dataclasses.replace(
        healthy(devices=NO_ROOM), site=org2.sites[0])}, ()))
    by_rule = {p.tags["rule"]: p.fields for p in compliance_points(ev2, org2)}
    assert "gov_bandwidth" not in by_rule  # switched off: no point, as before
    # Not applicable: a status, and no ok, so mean(ok) stays the share passing.
    assert by_rule["room_video"] == {"status": "not_applicable", "no_data": 0, "required": 2.5}

