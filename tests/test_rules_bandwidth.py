"""room_video and gov_bandwidth on hand-built snapshots; every figure by hand."""
from __future__ import annotations

from typing import Any

import pytest

from collector.compliance import evaluate as compliance
from collector.compliance.facts import Bandwidth, Device, ProbeResult, Snapshot
from collector.compliance.model import Site
from collector.compliance.rules import evaluate
from collector.compliance.rules import gov_bandwidth as gb
from collector.compliance.rules import room_video as rv
from collector.compliance.rules.base import Result
from collector.report.format import detail

NOW = 1_750_000_000_000  # epoch ms
H = 3_600_000
D = 24 * H
SITE = Site("sq", "sq", (("bureau", "b"),))


def snap(room: dict[str, int], *bw: Bandwidth, other: int = 0) -> Snapshot:
    devs = [Device(f"{net}{i}", net, "room", NOW) for net, n in room.items() for i in range(n)]
    devs += [Device(f"c{i}", "gov", "cadre", NOW) for i in range(other)]
    return Snapshot(SITE, tuple(devs), NOW, tuple(bw))


def video(s: Snapshot, **params: Any) -> Result:
    return rv.evaluate(s, {**rv.DEFAULTS, **params})


def gov(s: Snapshot, **params: Any) -> Result:
    return gb.evaluate(s, {**gb.DEFAULTS, **params})


def test_room_video_per_network() -> None:
    # gov 30 / 10 = 3.0 >= 2.5; internet 12 / 6 = 2.0 < 2.5: 6 x 2.5 - 12 = 3.0 to add.
    r = video(snap({"gov": 10, "internet": 6}, Bandwidth("gov", "t", NOW - H, 30.0),
                   Bandwidth("internet", "u", NOW - 2 * H, 12.0)))
    assert r is not None
    assert (r.required, r.actual, r.ok, dict(r.shortfall)) == \
        (2.5, 2.0, False, {"internet_mbps": 3.0})
    assert detail(r, "en") == ("internet: 3 Mbit/s to add; "
                               "gov: 30 Mbit/s / 10 room PCs = 3.00 Mbit/s per PC; "
                               "internet: 12 Mbit/s / 6 room PCs = 2.00 Mbit/s per PC")
    assert detail(r, "zh").startswith("互联网带宽需增 3 Mbit/s；政务网 30 Mbit/s ÷ 10 台网络室电脑")


def test_room_video_passes_and_ignores_networks_without_room_pcs() -> None:
    # Only gov room PCs: 20 / 8 = 2.5, exactly enough; the internet figure is irrelevant.
    r = video(snap({"gov": 8}, Bandwidth("gov", "t", NOW, 20.0), Bandwidth("internet", "u", 0)))
    assert r is not None and (r.actual, r.ok, dict(r.shortfall)) == (2.5, True, {})


def test_room_video_without_fresh_measurement_has_no_data() -> None:
    # 25 h old > 24 h: no proof either way; nothing to buy.
    old = Bandwidth("gov", "t", NOW - 25 * H, 100.0, error="latency: refused",
                    error_ms=NOW - H)
    r = video(snap({"gov": 4}, old))
    assert (r.status, r.actual, r.ok, dict(r.shortfall)) == ("no_data", None, False, {})
    assert detail(r, "en") == "gov: no speed test in 24 h; gov: last test failed: latency: refused"
    assert detail(r, "zh") == "政务网 24 小时内无测速；政务网最近一次测速失败：latency: refused"
    # With a 48 h window the same test counts: 100 / 4 = 25 per PC.
    r = video(snap({"gov": 4}, old), freshness_hours=48)
    assert (r.actual, r.ok) == (25.0, True)
    # Never measured at all (a site without a tester).
    r = video(snap({"internet": 2}))
    assert (r.status, r.actual, dict(r.shortfall)) == ("no_data", None, {})
    assert detail(r, "zh") == "互联网 24 小时内无测速"
    # One network measured and short, the other unknown: the evidence fails it.
    r = video(snap({"gov": 4, "internet": 2}, Bandwidth("gov", "t", NOW, 5.0)))
    assert (r.status, r.actual, dict(r.shortfall)) == ("fail", 1.25, {"gov_mbps": 5.0})
    assert [x.key for x in r.reasons] == ["mbps_short", "no_speed_test"]


def test_room_video_rounds_the_shortfall_up() -> None:
    # 7 x 2.5 = 17.5; 17.46 measured: 0.04 short -> 0.1 (buying 0.04 would not pass).
    r = video(snap({"gov": 7}, Bandwidth("gov", "t", NOW, 17.46)))
    assert r is not None and dict(r.shortfall) == {"gov_mbps": 0.1}
    # 10 x 2.5 - 18.3 = 6.7 (6.699999... in floating point, still 6.7).
    r = video(snap({"gov": 10}, Bandwidth("gov", "t", NOW, 18.3)))
    assert r is not None and dict(r.shortfall) == {"gov_mbps": 6.7}
    # A stricter bitrate: 4 x 5 - 12 = 8.
    r = video(snap({"gov": 4}, Bandwidth("gov", "t", NOW, 12.0)), per_pc_mbps=5)
    assert r is not None and (r.required, r.actual, dict(r.shortfall)) == \
        (5.0, 3.0, {"gov_mbps": 8.0})


def test_room_video_needs_browsing_to_work_where_it_is_probed() -> None:
    fast = Bandwidth("gov", "t", NOW, 100.0)
    base = snap({"gov": 3}, fast)  # hosts gov0, gov1, gov2
    probes = (ProbeResult("gov0", "gov", "portal", True, NOW - H),
              ProbeResult("gov1", "gov", "portal", False, NOW - 2 * H),
              ProbeResult("gov2", "gov", "portal", False, NOW - 30 * H),  # stale: ignored
              ProbeResult("gov2", "gov", "dns-only", False, NOW))  # not a browse probe
    r = video(Snapshot(SITE, base.devices, NOW, base.bandwidth, probes=probes))
    # 100 / 3 = 33.333 per PC is plenty; gov1's failed portal page fails the room.
    assert r is not None and (r.actual, r.ok, dict(r.shortfall)) == (33.333, False, {})
    assert detail(r, "en").startswith("browsing failed on gov1 (portal); ")
    ok = tuple(p for p in probes if p.host != "gov1")
    r = video(Snapshot(SITE, base.devices, NOW, base.bandwidth, probes=ok))
    assert r.ok and detail(r, "en").endswith("browsing ok on 1 room PCs")
    # Not checked when switched off.
    r = video(Snapshot(SITE, base.devices, NOW, base.bandwidth, probes=probes), browse_probes="")
    assert r is not None and r.ok


def test_room_video_does_not_apply_without_room_pcs() -> None:
    r = video(snap({}, Bandwidth("gov", "t", NOW, 30.0), other=3))
    assert (r.status, detail(r, "zh")) == ("not_applicable", "无网络室电脑")
    # No PC reports at all: nothing known.
    r = video(snap({}, Bandwidth("gov", "t", NOW, 30.0)))
    assert (r.status, detail(r, "en")) == ("no_data", "no PC of the site reports")


def test_room_video_flags_a_second_tester() -> None:
    r = video(snap({"gov": 2}, Bandwidth("gov", "a", NOW, 30.0, testers=("a", "b"))))
    assert r.ok
    assert detail(r, "en").endswith("gov: 2 testers (a, b), keep one")


def test_gov_bandwidth() -> None:
    # 18.3 < 20: 1.7 to add.
    r = gov(snap({}, Bandwidth("gov", "t", NOW - 2 * H, 18.3, 9.5)))
    assert (r.required, r.actual, r.ok, dict(r.shortfall)) == \
        (20.0, 18.3, False, {"gov_mbps": 1.7})
    assert detail(r, "en") == ("gov: 1.7 Mbit/s to add; "
                               "down 18.3 Mbit/s, up 9.5 Mbit/s by t, 2.0 h ago")
    assert detail(r, "zh") == ("政务网带宽需增 1.7 Mbit/s；"
                               "t 2.0 小时前测得下行 18.3 Mbit/s、上行 9.5 Mbit/s")
    r = gov(snap({}, Bandwidth("gov", "t", NOW, 45.0)))
    assert (r.actual, r.ok, dict(r.shortfall)) == (45.0, True, {})
    r = gov(snap({}, Bandwidth("gov", "t", NOW, 45.0)), min_mbps=50)
    assert (r.required, r.ok, dict(r.shortfall)) == (50.0, False, {"gov_mbps": 5.0})


def test_gov_bandwidth_needs_a_fresh_gov_test() -> None:
    # Only an internet test: the gov link is unknown: no data, nothing to buy.
    r = gov(snap({}, Bandwidth("internet", "t", NOW, 500.0)))
    assert (r.status, r.actual, r.ok, dict(r.shortfall)) == ("no_data", None, False, {})
    assert detail(r, "en") == "gov: no speed test in 24 h"
    assert detail(r, "zh") == "政务网 24 小时内无测速"
    r = gov(snap({}, Bandwidth("gov", "t", NOW - 30 * H, 500.0, error="timed out after 120 s",
                               error_ms=NOW - H)))
    assert (r.status, r.actual, dict(r.shortfall)) == ("no_data", None, {})
    assert detail(r, "en") == ("gov: no speed test in 24 h; "
                               "gov: last test failed: timed out after 120 s")


def test_trend() -> None:
    # Previous week: days at 10 and 20 -> 15; last week: 18, 20, 25 -> 21; +6.
    daily = ((NOW - 13 * D, 10.0), (NOW - 8 * D, 20.0),
             (NOW - 6 * D, 18.0), (NOW - 3 * D, 20.0), (NOW - 2 * H, 25.0),
             (NOW - 20 * D, 99.0))  # older than two weeks: ignored
    assert gb.trend(daily, NOW, 7) == (15.0, 21.0)
    assert gb.trend(daily[2:5], NOW, 7) is None  # nothing the week before
    r = gov(snap({}, Bandwidth("gov", "t", NOW - 2 * H, 25.0, daily_mbps=daily)))
    assert "trend +6.0 Mbit/s (7 d mean 21.0 vs 15.0 before)" in detail(r, "en")
    assert "近 7 天均值 21.0 Mbit/s，此前 15.0，变化 +6.0 Mbit/s" in detail(r, "zh")
    # Three-day windows: the last 3 days hold 20 (exactly 3 d ago: the edge counts)
    # and 25 -> 22.5; the 3 days before hold 18.
    assert gb.trend(daily, NOW, 3) == (18.0, 22.5)


def test_one_purchase_pool_takes_the_larger_shortfall() -> None:
    # room_video: 10 x 2.5 - 18.3 = 6.7 gov; gov_bandwidth: 20 - 18.3 = 1.7 gov;
    # internet: 4 x 2.5 - 4 = 6. One gov purchase serves both rules: 6.7, not 8.4.
    s = snap({"gov": 10, "internet": 4}, Bandwidth("gov", "t", NOW, 18.3),
             Bandwidth("internet", "u", NOW, 4.0))
    results = [r for r in evaluate(s, {}) if r.rule in ("room_video", "gov_bandwidth")]
    assert compliance.needs(results) == pytest.approx({"gov_mbps": 6.7, "internet_mbps": 6.0})


def test_waived_and_disabled() -> None:
    s = snap({"gov": 10}, Bandwidth("gov", "t", NOW, 1.0))
    by = {r.rule: r for r in evaluate(s, {"room_video": {"waived": "link upgrade ordered"},
                                          "gov_bandwidth": {"enabled": False}})}
    assert (by["gov_bandwidth"].status, by["gov_bandwidth"].disabled) == ("not_applicable", True)
    assert by["room_video"].ok and by["room_video"].waived == "link upgrade ordered"
    assert (by["room_video"].status, dict(by["room_video"].shortfall)) == ("waived", {})
