"""PCs not on the centre's settings in `netroom report` (docs/settings.md):
each PC's latest online status (settings_version, settings_error,
settings_local) against its site's version, listed per site when not current
(stale, refused, none) in the table (zh, en) and the HTML; every PC with its
state in the JSON; no CSV row; no verdict changes. The loader on hand-made
rows and its query; rendering on a hand-built evaluation; then the real CLI on
PCs' statuses sent through mosquitto and the collector into influxd."""
from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any, Callable

from harness import Publisher, message, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto

from collector.compliance import skew
from collector.compliance.evaluate import Evaluation, evaluate_all
from collector.compliance.facts import Device, Snapshot, Snapshots
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.report import output
from collector.report.html import context
from collector.store.loaders import settings as loader
from collector.store.snapshot import VERDICT_LOADERS
from netroom import central, schema

NOW = 1_764_000_000_000  # 2025-11-24 16:00 UTC
OLD = "0a7d33e1c52b9f10"  # a version the sites no longer have
# An agent's words: terminal escapes and markup in them are shown, never obeyed.
HOSTILE = "settings.probes[0].target: bad\x1b[2J<b>"
SITES: list[dict[str, Any]] = [{"id": "bj", "name": "北京局", "agents": {"interval": 60},
                                "children": [
    {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 2,
     "agents": {"hosts": {"pc-1": {"interval": 30}}}},
    {"id": "sq-2", "name": "二中队", "cadres": 0, "staff": 0}]}]


def _org() -> Org:
    return read_org(SITES, None)


def _row(site: str, host: str, t: int, version: str | None = None, error: str | None = None,
         local: str | None = None) -> tuple[str, str, str | None, str | None, str | None, int]:
    """A PC's latest online status as the settings loader assembles it."""
    return (site, host, version, error, local, t)


def _states(org: Org) -> dict[str, tuple[central.SettingsState, ...]]:
    v = org.settings_versions()
    got = loader.assemble([
        _row("sq-1", "pc-1", NOW - 5000, v["sq-1"]),
        _row("sq-1", "pc-2", NOW - 4000, OLD, local="interval,probes"),
        _row("sq-1", "pc-3", NOW - 3000, OLD, HOSTILE),
        _row("sq-1", "pc-4", NOW - 2000),
        _row("sq-2", "lab-1", NOW - 1000, v["sq-2"], local="isolation.enabled"),
        _row("sq-9", "ghost", NOW, OLD),  # a site not in the tree: the devices loader's
    ], org)
    assert set(got.facts) == {"sq-1", "sq-2"} and got.unregistered == ()
    return {site: f["settings"] for site, f in got.facts.items()}


def _evaluation(with_states: bool = True) -> tuple[Evaluation, Org]:
    org = _org()
    s1, s2 = org.sites
    states = _states(org) if with_states else {}
    pcs = (Device("pc-1", "gov", "office", NOW, "a.1"), Device("pc-2", "gov", "office", NOW, "b.2"))
    snaps = Snapshots(NOW, {
        s1.id: Snapshot(s1, pcs, NOW, settings=states.get("sq-1", ())),
        s2.id: Snapshot(s2, (Device("lab-1", "gov", "room", NOW, "c.3"),), NOW,
                        settings=states.get("sq-2", ()))}, ())
    return evaluate_all(org, snaps), org


def _section(table: str, title: str) -> list[str]:
    """The table report's lines from ``title`` to the next blank line."""
    lines = table.splitlines()
    start = lines.index(title)
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


# -- the loader ----------------------------------------------------------------


def test_loader_is_registered_and_reads_the_fleet_in_one_bounded_query() -> None:
    assert loader.load in VERDICT_LOADERS
    org = _org()
    seen: list[str] = []

    def read(q: str) -> list[dict[str, Any]]:
        seen.append(q)
        return []

    assert loader.load(read, org, NOW).facts == {}
    assert len(seen) == 1
    since = NOW - round(org.freshness_days * schema.DAY_MS)
    assert seen[0] == (
        'SELECT "state", "settings_version", "settings_error", "settings_local" '
        "FROM \"status\" WHERE \"state\" = 'online' "
        f"AND time > {since}ms AND time <= {skew.horizon(NOW)}ms "
        'GROUP BY "site", "host" ORDER BY time DESC LIMIT 1')


def test_loader_compares_each_pc_with_its_sites_version() -> None:
    org = _org()
    v = org.settings_versions()
    assert v["sq-1"] != v["sq-2"]  # pc-1's section is part of sq-1's version
    states = _states(org)
    assert [(s.host, s.state) for s in states["sq-1"]] == [
        ("pc-1", "current"), ("pc-2", "stale"), ("pc-3", "refused"), ("pc-4", "none")]
    assert states["sq-1"][1] == central.SettingsState(
        "sq-1", "pc-2", v["sq-1"], OLD, "", "interval,probes", NOW - 4000)
    assert states["sq-1"][2].error == HOSTILE
    assert [(s.host, s.state, s.local) for s in states["sq-2"]] == [
        ("lab-1", "current", "isolation.enabled")]


# -- rendering -------------------------------------------------------------------


def test_table_lists_pcs_not_on_their_settings_in_zh() -> None:
    ev, org = _evaluation()
    v1 = org.settings_versions()["sq-1"]
    zh = _section(output.to_table(ev, org, "zh"), "设置未同步的电脑")
    assert zh[1].split() == ["站点", "名称", "主机", "状态", "详情"]
    assert [line.split(maxsplit=4) for line in zh[2:5]] == [
        ["sq-1", "一中队", "pc-2", "运行过期设置",
         f"运行 {OLD}，应为 {v1}；本机设置优先：interval,probes"],
        ["sq-1", "一中队", "pc-3", "拒绝了中心下发的设置",
         f"运行 {OLD}，应为 {v1}；原因：settings.probes[0].target: bad\\x1b[2J<b>"],
        ["sq-1", "一中队", "pc-4", "未收到中心设置"]]
    assert zh[5:] == ["(设置最新 2/5 40%)",
                      "(电脑开机并连上服务器后自动更新设置；修改 config.yaml 后须重启采集服务)"]
    assert "\x1b" not in output.to_table(ev, org, "zh")


def test_table_in_en() -> None:
    ev, org = _evaluation()
    v1 = org.settings_versions()["sq-1"]
    en = _section(output.to_table(ev, org, "en"), "PCs not on the centre's settings")
    assert en[1].split() == ["Site", "Name", "Host", "State", "Detail"]
    assert [re.split(r" {2,}", line) for line in en[2:5]] == [
        ["sq-1", "一中队", "pc-2", "running stale settings",
         f"runs {OLD}, should run {v1}; own settings win: interval,probes"],
        ["sq-1", "一中队", "pc-3", "refused the centre's settings",
         f"runs {OLD}, should run {v1}; reason: settings.probes[0].target: bad\\x1b[2J<b>"],
        ["sq-1", "一中队", "pc-4", "no settings from the centre"]]
    assert en[5] == "(settings up to date 2/5 40%)"
    assert en[6] == "(PCs update once on and connected; restart the collector after " \
                    "editing config.yaml)"


def test_nothing_to_list() -> None:
    ev, org = _evaluation(with_states=False)  # no PC sent an online status
    assert _section(output.to_table(ev, org, "zh"), "设置未同步的电脑") == \
        ["设置未同步的电脑", "无"]
    page = output.render("html", ev, org, "zh")
    assert '<p id="settings">无</p>' in page and "settings-summary" not in page
    assert [s["settings"] for s in json.loads(output.to_json(ev, org, "zh"))["sites"]] == [[], []]
    # Every PC current: none to list, and how many are.
    org = _org()
    v = org.settings_versions()
    states = central.settings_states(v, [("sq-1", "pc-1", v["sq-1"], "", "", NOW)])
    s1, s2 = org.sites
    ev = evaluate_all(org, Snapshots(NOW, {s1.id: Snapshot(s1, (), NOW, settings=tuple(states)),
                                           s2.id: Snapshot(s2, (), NOW)}, ()))
    assert _section(output.to_table(ev, org, "en"), "PCs not on the centre's settings") == \
        ["PCs not on the centre's settings", "None", "(settings up to date 1/1 100%)"]


def test_json_lists_every_pc_with_its_state() -> None:
    ev, org = _evaluation()
    v = org.settings_versions()
    text = output.to_json(ev, org, "en")
    assert "\x1b" not in text  # escaped in the text, exact once parsed
    sites = {s["site"]: s for s in json.loads(text)["sites"]}
    got = sites["sq-1"]["settings"]
    assert [{k: x[k] for k in ("host", "state", "running", "expected", "error", "local")}
            for x in got] == [
        {"host": "pc-1", "state": "current", "running": v["sq-1"], "expected": v["sq-1"],
         "error": "", "local": ""},
        {"host": "pc-2", "state": "stale", "running": OLD, "expected": v["sq-1"],
         "error": "", "local": "interval,probes"},
        {"host": "pc-3", "state": "refused", "running": OLD, "expected": v["sq-1"],
         "error": HOSTILE, "local": ""},
        {"host": "pc-4", "state": "none", "running": "", "expected": v["sq-1"],
         "error": "", "local": ""}]
    assert got[0]["seen"] == "2025-11-24T23:59:55+08:00"  # the room's time zone
    assert [x["state"] for x in sites["sq-2"]["settings"]] == ["current"]


def test_settings_change_no_verdict_and_no_csv_row() -> None:
    with_states, org = _evaluation()
    without, _ = _evaluation(with_states=False)
    assert [(v.status, v.results) for v in with_states.verdicts] == \
        [(v.status, v.results) for v in without.verdicts]
    assert output.to_csv(with_states, org, "zh") == output.to_csv(without, org, "zh")
    rows = list(csv.DictReader(io.StringIO(output.to_csv(with_states, org, "zh"))))
    assert {r["站点"] for r in rows} == {"sq-1", "sq-2"}


def test_html_has_a_settings_section_escaped() -> None:
    ev, org = _evaluation()
    v1 = org.settings_versions()["sq-1"]
    page = context(ev, org, "zh")
    assert page["settings"] == [
        {"site": "sq-1", "name": "一中队", "host": "pc-2", "word": "运行过期设置", "cls": "nodata",
         "text": f"运行 {OLD}，应为 {v1}；本机设置优先：interval,probes"},
        {"site": "sq-1", "name": "一中队", "host": "pc-3", "word": "拒绝了中心下发的设置",
         "cls": "fail",
         "text": f"运行 {OLD}，应为 {v1}；原因：settings.probes[0].target: bad\\x1b[2J<b>"},
        {"site": "sq-1", "name": "一中队", "host": "pc-4", "word": "未收到中心设置", "cls": "",
         "text": ""}]
    assert page["settings_summary"] == "设置最新 2/5 40%"
    html = output.render("html", ev, org, "zh")
    assert "<h2>设置未同步的电脑</h2>" in html and '<table id="settings">' in html
    assert "bad\\x1b[2J&lt;b&gt;" in html and "<b>" not in html and "\x1b" not in html
    assert '<p class="note" id="settings-summary">设置最新 2/5 40%</p>' in html
    en = output.render("html", ev, org, "en")
    assert "<h2>PCs not on the centre&#39;s settings</h2>" in en
    assert "refused the centre&#39;s settings" in en and "own settings win: interval" in en


# -- the real pipeline and CLI -----------------------------------------------


def test_report_cli_shows_stale_and_refused_pcs(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """Four PCs' online statuses: one current, one stale, one that refused
    the centre's settings, and one whose newest status carries no version (an
    older status did: it must not stand in for the newest)."""
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=SITES)
    run_collector(cfg)
    v1 = _org().settings_versions()["sq-1"]
    now = time.time()

    def status(host: str, ts: float, **fields: str) -> tuple[str, bytes]:
        return message("status", {"state": "online", **fields}, site="sq-1", host=host,
                       role="office", ts=ts)

    pub = Publisher(mosquitto)
    try:
        pub.publish_many([
            status("pc-1", now - 60, settings_version=v1),
            status("pc-2", now - 60, settings_version=OLD, settings_local="interval"),
            status("pc-3", now - 60, settings_version=OLD,
                   settings_error="settings.interval: must be at least 1, got 0"),
            status("pc-4", now - 120, settings_version=v1),
            status("pc-4", now - 60),
            message("status", {"state": "offline", "will": True}, site="sq-1", host="pc-1",
                    role="office", ts=now - 30)])
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "status", "state", 6) == 6

    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    sites = {s["site"]: s for s in json.loads(r.stdout)["sites"]}
    assert [(x["host"], x["state"], x["running"], x["expected"], x["error"], x["local"])
            for x in sites["sq-1"]["settings"]] == [
        ("pc-1", "current", v1, v1, "", ""),
        ("pc-2", "stale", OLD, v1, "", "interval"),
        ("pc-3", "refused", OLD, v1, "settings.interval: must be at least 1, got 0", ""),
        ("pc-4", "none", "", v1, "", "")]
    assert sites["sq-2"]["settings"] == []

    r = run_cli("collector.cli.main", "report", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    zh = _section(r.stdout, "设置未同步的电脑")
    assert [line.split(maxsplit=4) for line in zh[2:5]] == [
        ["sq-1", "一中队", "pc-2", "运行过期设置",
         f"运行 {OLD}，应为 {v1}；本机设置优先：interval"],
        ["sq-1", "一中队", "pc-3", "拒绝了中心下发的设置",
         f"运行 {OLD}，应为 {v1}；原因：settings.interval: must be at least 1, got 0"],
        ["sq-1", "一中队", "pc-4", "未收到中心设置"]]
    assert zh[5] == "(设置最新 1/4 25%)"
