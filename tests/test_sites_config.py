"""The `sites` tree and `rules` section: parsing, defaults, and the one-line
errors (exit 2) of the collector and of `netroom report`."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import REPO, run_cli

from collector.compliance.model import Room
from collector.compliance.orgconfig import read_org
from collector.config import load
from netroom.settings import ConfigError

S = "sites.bj.d1.b1.sq-1"


def sq(sid: str = "sq-1", **kw: Any) -> dict[str, Any]:
    return {"id": sid, "cadres": 1, "staff": 2, **kw}


def tree(*leaves: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": "bj", "name": "北京局", "children": [
        {"id": "d1", "name": "一支队", "children": [
            {"id": "b1", "name": "一大队", "children": list(leaves) or [sq()]}]}]}]


def test_tree_levels_path_tags_and_defaults() -> None:
    org = read_org(tree(sq("sq-1", name="一中队", classes=3), sq("sq-2")), None)
    assert [s.id for s in org.sites] == ["sq-1", "sq-2"]
    s1 = org.site("sq-1")
    assert s1 is not None
    assert (s1.name, s1.cadres, s1.staff, s1.classes) == ("一中队", 1, 2, 3)
    assert org.site("sq-2").name == "sq-2"  # type: ignore[union-attr]
    # Ids to filter by, names to show (one value per site: no series of their own).
    assert org.tags_for("sq-1") == {"bureau": "bj", "detachment": "d1", "battalion": "b1",
                                    "bureau_name": "北京局", "detachment_name": "一支队",
                                    "battalion_name": "一大队", "site_name": "一中队"}
    assert org.level_tags() == ["battalion", "battalion_name", "bureau", "bureau_name",
                                "detachment", "detachment_name"]  # what units roll up by
    assert org.tags_for("nowhere") == {}
    assert s1.room == Room(("00:00-24:00",), (1, 2, 3, 4, 5, 6, 7), "Asia/Shanghai", 1)
    assert (org.freshness_days, org.evaluate_interval_s, org.rules) == (7, 300, {})
    assert [s.id for s in org.sites_under("d1")] == ["sq-1", "sq-2"]
    assert [s.id for s in org.sites_under("sq-2")] == ["sq-2"]
    assert [org.nodes[i].level for i in ("bj", "d1", "b1")] == ["bureau", "detachment",
                                                               "battalion"]


def test_any_depth_and_custom_levels() -> None:
    deep = [{"id": "a", "children": [{"id": "b", "level": "zone", "children": [
        {"id": "c", "children": [{"id": "d", "children": [{"id": "e", "children": [
            sq("leaf")]}]}]}]}]}]
    org = read_org(deep, None)
    tags = org.tags_for("leaf")
    assert {k: v for k, v in tags.items() if not k.endswith("_name")} == {
        "bureau": "a", "zone": "b", "battalion": "c", "squadron": "d", "level5": "e"}
    assert tags["zone_name"] == "b" and tags["level5_name"] == "e"  # no name: the id
    assert tags["site_name"] == "leaf"
    flat = read_org([sq("alone")], None)  # a site without any unit
    assert flat.tags_for("alone") == {"site_name": "alone"}


def test_rules_defaults_overrides_waivers() -> None:
    org = read_org(tree(sq("sq-1", rules={
        "room_gov_share": {"waived": "机房改造中", "min_share": 0.6},
        "staff_gov_pcs": {"enabled": True}})), {
        "freshness_days": 3, "evaluate_interval": 60,
        "staff_gov_pcs": {"staff_per_pc": 3, "enabled": False},
        "cadre_gov_pcs": {"per_cadre": 2}, "room_gov_share": {"min_share": 0.55}})
    assert (org.freshness_days, org.evaluate_interval_s) == (3, 60)
    params = org.params(org.sites[0])
    assert params["room_gov_share"] == {"waived": "机房改造中", "min_share": 0.6}
    assert params["staff_gov_pcs"] == {"staff_per_pc": 3.0, "enabled": True}
    assert params["cadre_gov_pcs"] == {"per_cadre": 2}


def test_agent_settings_are_inherited_down_the_tree() -> None:
    """`agents:` blocks: a node's keys over its units' (mappings merged, lists
    replaced whole); testers and per-PC sections at sites (docs/settings.md)."""
    portal = {"name": "portal", "kind": "http", "target": "http://10.0.0.80/",
              "networks": ["gov"]}
    web = {"name": "web", "kind": "tcp", "target": "10.0.0.81:443"}
    sites: list[dict[str, Any]] = [{"id": "bj", "agents": {"interval": 60, "probes": [portal],
                                     "bandwidth": {"url": "http://10.0.0.5:8090",
                                                   "quiet_hours": "08:00-18:00"}},
              "children": [
                  {"id": "d1", "agents": {"isolation": {"interval": 30}}, "children": [
                      sq("sq-1", agents={"bandwidth": {"interval": 3600}, "probes": [web],
                                         "testers": {"gov": "pc-07"},
                                         "hosts": {"pc-07": {"interval": 30}}}),
                      sq("sq-2")]},
                  sq("sq-3")]}]
    org = read_org(sites, None)
    one = org.site("sq-1").settings  # type: ignore[union-attr]
    assert dict(one.settings) == {
        "interval": 60, "probes": [web], "isolation": {"interval": 30},
        "bandwidth": {"url": "http://10.0.0.5:8090", "quiet_hours": "08:00-18:00",
                      "interval": 3600}}
    assert (dict(one.testers), dict(one.hosts)) == ({"gov": "pc-07"}, {"pc-07": {"interval": 30}})
    two = org.site("sq-2").settings  # type: ignore[union-attr]
    assert two.settings["probes"] == [portal] and two.testers == {} and two.hosts == {}
    three = org.site("sq-3").settings  # type: ignore[union-attr]
    assert "isolation" not in three.settings  # d1's block is not its unit's
    assert dict(org.nodes["d1"].agents) == {"isolation": {"interval": 30}}
    # One version per site, from its content: the same config gives the same
    # version (a collector restart changes nothing), any change a new one.
    versions = org.settings_versions()
    assert sorted(versions) == ["sq-1", "sq-2", "sq-3"]
    assert len(set(versions.values())) == 3
    assert read_org(sites, None).settings_versions() == versions
    one_block = sites[0]["children"][0]["children"][0]["agents"]
    one_block["hosts"]["pc-07"]["interval"] = 20
    changed = read_org(sites, None).settings_versions()
    assert changed["sq-1"] != versions["sq-1"] and changed["sq-2"] == versions["sq-2"]
    # Without any block a site still has settings (empty) and a version.
    assert read_org(tree(), None).site("sq-1").settings.settings == {}  # type: ignore[union-attr]


def test_room_windows_days_timezone() -> None:
    room = {"open": ["14:00-24:00", "08:00-12:00"], "days": [5, 1], "timezone": "Asia/Urumqi",
            "min_online": 2}
    got = read_org(tree(sq(room=room)), None).sites[0].room
    assert got == Room(("14:00-24:00", "08:00-12:00"), (1, 5), "Asia/Urumqi", 2)


BAD_SITES = [
    (tree(sq("SQ 1")), "sites.bj.d1.b1.children[0].id: must be 1-64 of a-z, 0-9 and '-'"),
    (tree(sq("sq-1"), sq("sq-1")), "sites.bj.d1.b1.children[1].id: 'sq-1' is used twice"),
    (tree(sq("b1")), "sites.bj.d1.b1.children[0].id: 'b1' is used twice"),
    (tree({"id": "sq-1", "staff": 2}), f"{S}.cadres: required"),
    (tree(sq(staff=-1)), f"{S}.staff: must be between 0 and 100000, got -1"),
    (tree(sq(cadres="3")), f"{S}.cadres: must be an integer, got '3'"),
    (tree(sq(colour="red")), f"{S}.colour: unknown key"),
    (tree(sq(room={"open": ["8:00-12:00"]})), f'{S}.room.open[0]: must be "HH:MM-HH:MM"'),
    (tree(sq(room={"open": ["22:00-02:00"]})), f"{S}.room.open[0]: '22:00-02:00' must "
                                               "start before it ends"),
    (tree(sq(room={"open": ["00:00-24:01"]})), f"{S}.room.open[0]: '00:00-24:01'"),
    (tree(sq(room={"open": ["24:00-24:00"]})), f"{S}.room.open[0]: '24:00-24:00'"),
    (tree(sq(room={"open": ["08:00-12:00", "11:00-13:00"]})),
     f"{S}.room.open: windows overlap"),
    (tree(sq(room={"open": []})), f"{S}.room.open: must list at least one window"),
    (tree(sq(room={"days": [0]})), f"{S}.room.days: must be ISO weekdays 1 (Monday) to 7"),
    (tree(sq(room={"days": [1, 8]})), f"{S}.room.days: must be ISO weekdays"),
    (tree(sq(room={"days": [2, 2]})), f"{S}.room.days: must list each weekday at most"),
    (tree(sq(room={"timezone": "Mars/Olympus"})),
     f"{S}.room.timezone: unknown time zone 'Mars/Olympus'"),
    ([{"id": "d1", "children": [], "name": "x"}], "sites.d1.children: must be a non-empty list"),
    ([{"id": "d1", "staff": 3, "children": [sq()]}], "sites.d1.staff: only sites"),
    ([{"id": "d1", "level": "host", "children": [sq()]}], "sites.d1.level: 'host' cannot be a"),
    ([{"id": "d1", "level": "nic", "children": [sq()]}], "sites.d1.level: 'nic' cannot be a"),
    ([{"id": "d1", "level": "zone_name", "children": [sq()]}],
     "sites.d1.level: 'zone_name' cannot end in '_name' or '_label'"),
    ([{"id": "d1", "level": "zone", "children": [{"id": "d2", "level": "zone",
                                                   "children": [sq()]}]}],
     "sites.d1.d2.level: 'zone' is already an ancestor's level"),
    ({"id": "x"}, "sites: must be a list of nodes"),
    (tree(sq(rules={"room_gov_shares": {}})), f"{S}.rules.room_gov_shares: unknown rule"),
    (tree(sq(rules={"freshness_days": 3})), f"{S}.rules.freshness_days: unknown rule"),
    # Agent settings (`agents:`, docs/settings.md): what an agent would refuse.
    (tree(sq(agents={"intervall": 5})), f"{S}.agents.intervall: unknown key"),
    (tree(sq(agents={"interval": 0})), f"{S}.agents.interval: must be between 1"),
    (tree(sq(agents={"probes": [{"name": "p", "kind": "tcp", "target": "portal"}]})),
     f"{S}.agents.probes[0].target: no port, got 'portal'"),
    (tree(sq(agents={"isolation": {"canaries": [{"kind": "ftp", "target": "x"}]}})),
     f"{S}.agents.isolation.canaries[0].kind: must be one of http, tcp, dns"),
    (tree(sq(agents={"bandwidth": {"tester": True}})),
     f"{S}.agents.bandwidth.tester: name the site's tester PCs in its agents.testers"),
    (tree(sq(agents={"bandwidth": {"method": "speedtest"}})),
     f"{S}.agents.bandwidth.method: gov PCs have no internet"),
    (tree(sq(agents={"testers": {"lan": "pc-1"}})),
     f"{S}.agents.testers: networks are gov, internet, got 'lan'"),
    (tree(sq(agents={"testers": {"gov": "pc 1"}})), f"{S}.agents.testers.gov: must be a host"),
    (tree(sq(agents={"testers": {"gov": "pc-7"}})),
     f"{S}.agents.testers.gov: pc-7 runs the speed tests: {S}.agents.bandwidth.url: required "
     "for the intranet speed test"),
    (tree(sq(agents={"hosts": {"pc-7": {"clock": {"url": "ftp://x"}}}})),
     f"{S}.agents.hosts.pc-7.clock.url: must be http(s)://"),
    (tree(sq(agents={"hosts": {"pc-7": {"site": "sq-2"}}})),
     f"{S}.agents.hosts.pc-7.site: unknown key"),
    (tree(sq(agents={"quiet_hours": "08:00-18:00"})), f"{S}.agents.quiet_hours: unknown key"),
    (tree(sq(agents=[1])), f"{S}.agents: must be a mapping"),
    ([{"id": "d1", "agents": {"testers": {"gov": "pc-1"}}, "children": [sq()]}],
     "sites.d1.agents.testers: only a site's block has it"),
    # A unit's settings are checked at the unit, with what it inherits.
    ([{"id": "d1", "agents": {"bandwidth": {"duration": 60}}, "children": [sq()]}],
     "sites.d1.agents.bandwidth.timeout: must be at least 2 x duration + 5 s (125), got 120"),
    ([{"id": "d1", "agents": {"bandwidth": {"duration": 60, "timeout": 200}},
       "children": [sq(agents={"bandwidth": {"timeout": 100}})]}],
     "sites.d1.sq-1.agents.bandwidth.timeout: must be at least 2 x duration + 5 s (125)"),
    (tree(sq(agents={"bandwidth": {"quiet_hours": date(2025, 1, 1)}})),
     f"{S}.agents.bandwidth.quiet_hours: must be text, a number"),
]


@pytest.mark.parametrize(("sites", "message"), BAD_SITES)
def test_bad_sites_are_one_line_errors(sites: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        read_org(sites, None)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


BAD_RULES = [
    ({"bogus": {}}, "rules.bogus: unknown rule (known: "),
    ({"room_gov_share": {"share": 0.5}}, "rules.room_gov_share.share: unknown key"),
    ({"room_gov_share": {"min_share": 1.5}}, "rules.room_gov_share.min_share: must be between "
                                             "0 and 1, got 1.5"),
    ({"room_gov_share": {"min_share": "half"}}, "rules.room_gov_share.min_share: must be a "
                                                "number, got 'half'"),
    ({"staff_gov_pcs": {"staff_per_pc": 0}}, "rules.staff_gov_pcs.staff_per_pc: must be between"),
    ({"cadre_gov_pcs": {"per_cadre": 1.5}}, "rules.cadre_gov_pcs.per_cadre: must be an integer"),
    ({"cadre_gov_pcs": {"enabled": "no"}}, "rules.cadre_gov_pcs.enabled: must be true or false"),
    ({"cadre_gov_pcs": {"waived": ["x"]}}, "rules.cadre_gov_pcs.waived: must be a string"),
    ({"cadre_gov_pcs": 3}, "rules.cadre_gov_pcs: must be a mapping"),
    ({"freshness_days": 0}, "rules.freshness_days: must be between"),
    ({"evaluate_interval": "5m"}, "rules.evaluate_interval: must be a number"),
    ([1], "rules: must be a mapping"),
]


@pytest.mark.parametrize(("rules", "message"), BAD_RULES)
def test_bad_rules_are_one_line_errors(rules: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        read_org(tree(), rules)
    assert str(e.value).startswith(message), str(e.value)


def write(tmp: Path, **sections: Any) -> Path:
    path = tmp / "config.yaml"
    base = {"mqtt": {"host": "127.0.0.1", "port": 1}, "influxdb": {"url": "http://127.0.0.1:1"},
            "collector": {"spool_dir": str(tmp / "spool")}}
    path.write_text(yaml.safe_dump({**base, **sections}, allow_unicode=True), encoding="utf-8")
    return path


def test_collector_config_carries_the_org(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, sites=tree(), rules={"freshness_days": 2}))
    assert [s.id for s in cfg.org.sites] == ["sq-1"] and cfg.org.freshness_days == 2
    assert load(write(tmp_path)).org.sites == []  # no tree: nothing to evaluate


def test_the_shipped_config_yaml_is_valid() -> None:
    org = load(REPO / "config.yaml").org
    assert [s.id for s in org.sites] == ["demo-squadron"]


@pytest.mark.parametrize("module", ["collector", "collector.cli.main"])
def test_bad_tree_stops_start_up_with_exit_2(tmp_path: Path, module: str) -> None:
    cfg = write(tmp_path, sites=tree(sq(room={"days": [9]})))
    args = ("--config", str(cfg)) if module == "collector" else ("report", "--config", str(cfg))
    r = run_cli(module, *args, timeout=30)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{S}.room.days: must be ISO weekdays" in lines[0], lines


def test_report_usage_errors_exit_2(tmp_path: Path) -> None:
    r = run_cli("collector.cli.main", "report", "--config", str(write(tmp_path, sites=tree())),
                "--site", "nope")
    assert (r.returncode, r.stderr.strip()) == (
        2, "netroom report: error: --site: 'nope' is not a node of the sites tree")
    r = run_cli("collector.cli.main", "report", "--config", str(write(tmp_path)))
    assert (r.returncode, r.stderr.strip()) == (
        2, "netroom report: error: sites: no sites configured, nothing to report on")
    r = run_cli("collector.cli.main", "report", "--config", str(write(tmp_path, rules={"x": {}})))
    assert r.returncode == 2 and r.stderr.startswith("netroom report: error: rules.x: unknown")
    r = run_cli("collector.cli.main", "report", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run_cli("collector.cli.main", "report", "--config", str(tmp_path / "x"), "--format", "pdf")
    assert r.returncode == 2 and "invalid choice: 'pdf'" in r.stderr  # argparse's own
