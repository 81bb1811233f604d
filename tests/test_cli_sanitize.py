"""Agents' text is shown by `netroom`, never obeyed by the terminal (issue 9).

A gov PC's isolation report whose reasons carry terminal escape sequences
(clear the screen, carriage returns and backspaces over "VIOLATION", a bidi
override, 8-bit CSI, an OSC title) goes the real way: MQTT -> mosquitto ->
collector -> influxd. Then the real CLI (`python -m collector.cli.main`)
prints it: text output shows those characters as visible escapes, JSON keeps
the exact data (once parsed) with every control or format character escaped.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, Callable

from harness import Publisher, message, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto

from collector.report.format import json_text, safe_text
from collector.report.i18n import agent_text

# Clear screen and home, then "canary reached" overwritten by CR and
# backspaces, a right-to-left override, 8-bit CSI, an OSC window title with
# BEL, a zero-width space, DEL. Chinese text around it must stay as it is.
HOSTILE = ("\x1b[2J\x1b[Hcanary inet-tcp reached\r正常 ok   \x08\x08\x08\x08"
           "\u202eNOITALOIV\u202c \x9b31m\x1b]0;pwned\x07 零\u200b宽 \x7f结束")
REACHED = "203.0.113.9:443\x1b[8m"
SITES = [{"id": "bureau", "name": "局", "children": [
    {"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 0}]}]


def controls(text: str) -> set[str]:
    """Characters a terminal would act on, besides the output's own line breaks."""
    return {ch for ch in text if ch != "\n"
            and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")}


def netroom(cfg: Path, *args: str, code: int = 0) -> str:
    r = run_cli("collector.cli.main", *args, "--config", str(cfg))
    assert r.returncode == code, r.stderr
    assert controls(r.stderr) == set()
    return r.stdout


def test_safe_text_and_json_text() -> None:
    assert safe_text("pc-1 违规　全角 é ✓") == "pc-1 违规　全角 é ✓"  # plain and CJK kept
    assert safe_text("a\x1b[2J\rb\x08\tc\n\u202ed\x9b\U000e0001") == \
        "a\\x1b[2J\\rb\\x08\\tc\\n\\u202ed\\x9b\\U000e0001"
    assert controls(safe_text(HOSTILE)) == set()
    doc = {"reasons": HOSTILE, "host": "pc-1", "n": [1, 2.5, None, True]}
    text = json_text(doc)
    assert json.loads(text) == doc and controls(text) == set()
    assert "零" in text and "\\u202e" in text and "\\u009b" in text


def test_hostile_isolation_report_is_shown_not_obeyed(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, influx_db, sites=SITES)
    run_collector(cfg)
    pub = Publisher(mosquitto)
    try:
        pub.publish(*message("isolation", {"violated": True, "reasons": HOSTILE,
                                           "canaries_checked": 1, "canaries_reached": 1,
                                           "reached": REACHED}, site="sq-1", host="pc-g1"))
        # A clean PC whose reasons try to fake a violation line of its own.
        pub.publish(*message("isolation", {"violated": False, "reasons": "\r\x1b[1A违规",
                                           "canaries_checked": 1, "canaries_reached": 0},
                             site="sq-1", host="pc-g2"))
    finally:
        pub.close()
    assert wait_count(influxd, influx_db, "isolation", "violated", 2) == 2

    zh = netroom(cfg, "isolation", code=1)  # a violation: exit 1
    assert controls(zh) == set()
    [row] = [line for line in zh.splitlines() if line.startswith("一中队")]
    assert row.split()[:4] == ["一中队", "—", "pc-g1", "违规"]
    # The attempt is visible, as escapes (its "canary ... reached" worded in Chinese).
    assert safe_text(agent_text(HOSTILE, "zh")) in row and "可连通外网探测目标 inet-tcp" in row
    assert "\\x1b[2J" in row and "\\r" in row and "\\x08" in row and "\\u202e" in row
    assert "零\\u200b宽" in row and "正常 ok" in row  # Chinese text kept as it is
    assert "1 台政务网电脑违规（共 2 台上报）" in zh

    en = netroom(cfg, "isolation", "--lang", "en", "--all", code=1)
    assert controls(en) == set()
    rows = [line for line in en.splitlines() if line.startswith("一中队")]
    assert [r.split()[2:4] for r in rows] == [["pc-g1", "VIOLATION"], ["pc-g2", "ok"]]
    assert safe_text(HOSTILE) in rows[0]  # English: the agent's text as sent, as escapes
    assert rows[1].split()[4] == "\\r\\x1b[1A违规"

    out = netroom(cfg, "isolation", "--all", "--format", "json", code=1)
    assert controls(out) == set()
    shown = {r["host"]: r for r in json.loads(out)}  # the exact data, once parsed
    assert (shown["pc-g1"]["reasons"], shown["pc-g1"]["reached"]) == (HOSTILE, REACHED)
    assert shown["pc-g2"]["reasons"] == "\r\x1b[1A违规"

    # The compliance report's gov_isolation detail quotes the reasons.
    out = netroom(cfg, "report", "--format", "json")
    assert controls(out) == set()
    [rule] = [r for r in json.loads(out)["sites"][0]["rules"] if r["rule"] == "gov_isolation"]
    assert rule["ok"] is False and agent_text(HOSTILE, "zh") in rule["detail"]
    for fmt in ("table", "csv", "html"):
        assert controls(netroom(cfg, "report", "--format", fmt)) == set(), fmt
