"""Clones in `netroom report`: PCs cloned from one image (one hostname, or one
OS machine id) are listed per site as clones to fix, in the table (zh, en),
the JSON and the HTML; the CSV (one row per site and rule) has no place for
them. Rendering on a hand-built evaluation, then the real CLI on three PCs
of one image sent through mosquitto and the collector into influxd."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Callable

from harness import Publisher, message, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto

from collector.compliance.evaluate import Evaluation, evaluate_all
from collector.compliance.facts import Clone, Device, Snapshot, Snapshots
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.report import output
from collector.report.html import context

NOW = 1_764_000_000_000  # 2025-11-24 16:00 UTC
MACHINE = "5d41402abc4b2a76b9719d911017c592"  # one image's machine part (hash of its id)
HOSTS = ("pc-07-1a2b3c", "pc-07-4d5e6f", "pc-07-7a8b9c")
IDS = tuple(f"{MACHINE}.{b * 16}" for b in "abc")
# A hostname is the agent's word: terminal escapes and markup in it are shown, never obeyed.
HOSTILE = "pc-07\x1b[2J<b>"


def _org() -> Org:
    return read_org([{"id": "bj", "name": "北京局", "children": [
        {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 6},
        {"id": "sq-2", "name": "二中队", "cadres": 0, "staff": 0}]}], None)


def _evaluation(clones: tuple[Clone, ...]) -> tuple[Evaluation, Org]:
    org = _org()
    s1, s2 = org.sites
    pcs = tuple(Device(h, "gov", "office", NOW, i) for h, i in zip(HOSTS, IDS))
    snaps = Snapshots(NOW, {s1.id: Snapshot(s1, pcs, NOW, clones=clones),
                            s2.id: Snapshot(s2, (Device("x", "gov", "room", NOW, "y"),), NOW)},
                      ())
    return evaluate_all(org, snaps), org


CLONES = (Clone("hostname", HOSTILE, HOSTS, IDS),
          Clone("machine_id", MACHINE[:8], (*HOSTS[:2], "sq-9/pc-x"), (*IDS[:2], "z")))


def _section(table: str, title: str) -> list[str]:
    """The table report's lines from ``title`` to the end."""
    lines = table.splitlines()
    return lines[lines.index(title):]


def test_table_lists_clones_per_site_in_zh_and_en() -> None:
    ev, org = _evaluation(CLONES)
    assert [len(v.clones) for v in ev.verdicts] == [2, 0]
    zh = _section(output.to_table(ev, org, "zh"), "克隆电脑（需修正）")
    assert zh[1].split() == ["站点", "名称", "克隆电脑"]
    assert zh[2].split(maxsplit=2) == [
        "sq-1", "一中队",
        "主机名相同 pc-07\\x1b[2J<b>：pc-07-1a2b3c、pc-07-4d5e6f、pc-07-7a8b9c"]
    assert zh[3].split(maxsplit=2)[2] == \
        "机器标识相同 5d41402a：pc-07-1a2b3c、pc-07-4d5e6f、sq-9/pc-x"
    assert zh[4] == "(同一镜像克隆的电脑须改主机名并重新生成 machine-id)"
    assert len(zh) == 5  # sq-2 has none: no row
    en = _section(output.to_table(ev, org, "en"), "Cloned PCs (to fix)")
    assert en[1].split() == ["Site", "Name", "Cloned", "PCs"]
    assert en[2].split(maxsplit=2)[2] == \
        "same hostname pc-07\\x1b[2J<b>: pc-07-1a2b3c, pc-07-4d5e6f, pc-07-7a8b9c"
    assert en[3].split(maxsplit=2)[2] == \
        "same machine id 5d41402a: pc-07-1a2b3c, pc-07-4d5e6f, sq-9/pc-x"
    assert en[4] == "(Clones of one image need their own hostname and machine id)"
    assert "\x1b" not in output.to_table(ev, org, "zh")


def test_no_clones_says_none() -> None:
    ev, org = _evaluation(())
    assert _section(output.to_table(ev, org, "zh"), "克隆电脑（需修正）") == \
        ["克隆电脑（需修正）", "无"]
    assert _section(output.to_table(ev, org, "en"), "Cloned PCs (to fix)") == \
        ["Cloned PCs (to fix)", "None"]
    assert [s["clones"] for s in json.loads(output.to_json(ev, org, "zh"))["sites"]] == [[], []]
    page = output.render("html", ev, org, "zh")
    assert '<p id="clones">无</p>' in page and "同一镜像克隆" not in page


def test_json_carries_each_sites_clones_as_data() -> None:
    ev, org = _evaluation(CLONES)
    text = output.to_json(ev, org, "en")
    assert "\x1b" not in text  # escaped in the text, exact once parsed
    sites = {s["site"]: s for s in json.loads(text)["sites"]}
    assert sites["sq-1"]["clones"] == [
        {"shared": "hostname", "value": HOSTILE, "hosts": list(HOSTS), "host_ids": list(IDS)},
        {"shared": "machine_id", "value": MACHINE[:8],
         "hosts": [*HOSTS[:2], "sq-9/pc-x"], "host_ids": [*IDS[:2], "z"]}]
    assert sites["sq-2"]["clones"] == []
    # Clones change no verdict: each still counts as a PC (3 gov PCs for 6 staff).
    staff = next(r for r in sites["sq-1"]["rules"] if r["rule"] == "staff_gov_pcs")
    assert (staff["status"], staff["actual"]) == ("pass", 3)


def test_html_has_a_clone_section_escaped() -> None:
    ev, org = _evaluation(CLONES)
    page = context(ev, org, "zh")
    assert page["clones"] == [
        {"site": "sq-1", "name": "一中队",
         "text": "主机名相同 pc-07\\x1b[2J<b>：pc-07-1a2b3c、pc-07-4d5e6f、pc-07-7a8b9c"},
        {"site": "sq-1", "name": "一中队",
         "text": "机器标识相同 5d41402a：pc-07-1a2b3c、pc-07-4d5e6f、sq-9/pc-x"}]
    html = output.render("html", ev, org, "zh")
    assert "<h2>克隆电脑（需修正）</h2>" in html and 'id="clones"' in html
    assert "同一镜像克隆的电脑须改主机名并重新生成 machine-id" in html
    assert "pc-07\\x1b[2J&lt;b&gt;：" in html and "<b>" not in html and "\x1b" not in html
    en = output.render("html", ev, org, "en")
    assert "<h2>Cloned PCs (to fix)</h2>" in en and "same machine id 5d41402a: " in en


def test_csv_has_no_clone_rows() -> None:
    ev, org = _evaluation(CLONES)
    with_clones = output.to_csv(ev, org, "zh")
    assert with_clones == output.to_csv(_evaluation(())[0], org, "zh")
    rows = list(csv.DictReader(io.StringIO(with_clones)))
    assert {r["站点"] for r in rows} == {"sq-1", "sq-2"}


# -- the real pipeline and CLI -----------------------------------------------


def test_report_cli_lists_three_pcs_sharing_a_hostname(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    """Three PCs of one image, each with its own hardware part and default host
    (``<hostname>-<short id>``, agent/identity.py), sending their inventory."""
    sites = [{"id": "bj", "name": "北京局", "children": [
        {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 6},
        {"id": "sq-2", "name": "二中队", "cadres": 0, "staff": 0}]}]
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(cfg)
    hw = [hashlib.sha256(b"netroom-hardware-id:" + b).hexdigest()[:16] for b in (b"A", b"B", b"C")]
    pcs = [(h, f"{MACHINE}.{x}") for h, x in zip(HOSTS, hw)]
    pub = Publisher(mosquitto)
    try:
        pub.publish_many([message("inventory", {"hostname": "PC-07.corp.local", "host_id": i},
                                  site="sq-1", host=h, role="office") for h, i in pcs]
                         + [message("inventory", {"hostname": "lab-1", "host_id": "other.1"},
                                    site="sq-2", host="lab-1")])
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "inventory", "host_id", 4) == 4

    r = run_cli("collector.cli.main", "report", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    zh = _section(r.stdout, "克隆电脑（需修正）")
    assert [line.split(maxsplit=2) for line in zh[2:4]] == [
        ["sq-1", "一中队", "主机名相同 pc-07：" + "、".join(HOSTS)],
        ["sq-1", "一中队", f"机器标识相同 {MACHINE[:8]}：" + "、".join(HOSTS)]]
    assert zh[4] == "(同一镜像克隆的电脑须改主机名并重新生成 machine-id)"

    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "json",
                "--lang", "en")
    assert r.returncode == 0, r.stderr
    sites_doc = {s["site"]: s for s in json.loads(r.stdout)["sites"]}
    assert sites_doc["sq-1"]["clones"] == [
        {"shared": "hostname", "value": "pc-07", "hosts": list(HOSTS),
         "host_ids": [i for _, i in pcs]},
        {"shared": "machine_id", "value": MACHINE[:8], "hosts": list(HOSTS),
         "host_ids": [i for _, i in pcs]}]
    assert sites_doc["sq-2"]["clones"] == []
    staff = next(x for x in sites_doc["sq-1"]["rules"] if x["rule"] == "staff_gov_pcs")
    assert staff["actual"] == 3  # three PCs, not one

    out = tmp_path / "report.html"
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--format", "html",
                "--lang", "en", "--output", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "<h2>Cloned PCs (to fix)</h2>" in html
    assert "same hostname pc-07: " + ", ".join(HOSTS) in html
