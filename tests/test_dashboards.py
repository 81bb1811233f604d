"""The Grafana dashboards: up to date, well-formed, and every query runs.

No Grafana server can run here (Debian ships none; `apt-cache policy
grafana` finds no candidate), so the dashboards are checked against
Grafana's documented contracts instead of a live Grafana:
- the classic dashboard JSON model (grafana.com/docs/grafana/latest/
  dashboards/build-dashboards/view-dashboard-json-model/): required keys,
  unique panel ids, a 24-column grid without overlaps;
- the InfluxDB data source's variable interpolation (docs: "Formatting
  multi-value variables", "InfluxDB query editor"): ``$timeFilter`` becomes
  ``time >= <from>ms and time <= <to>ms``, ``$__interval`` a duration no
  smaller than the panel's min interval, a multi-value variable a regex
  ``(a|b)`` of regex-escaped values, All its custom all value or every value
  (tests/grafana_influxql.py does this).
The queries themselves run on a real influxd holding points the real
collector wrote from agent messages sent over a real mosquitto.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from grafana_influxql import VAR, Grafana, evaluate_rule
from harness import REPO, Publisher, message, series, wait_count, write_config
from servers import Influxd, Mosquitto

from dashboards.model import site_is_single

GENERATED = REPO / "dashboards" / "generated"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
DS_UID = "netroom-influxdb"
CJK = re.compile(r"[\u4e00-\u9fff]")
DB = "dash"
# The tags points carry (collector/points.py, docs/protocol.md) and the org
# tree levels (collector/sites.py), written out by hand.
KNOWN_TAGS = {"site", "host", "network", "role", "nic", "disk", "mount", "rule", "probe",
              "collector", "bureau", "detachment", "battalion", "squadron"}
# Names the collector adds to its own points (collector/store/writeback.py).
KNOWN_TAGS |= {f"{k}_name" for k in KNOWN_TAGS} | {f"{k}_label" for k in KNOWN_TAGS}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(GENERATED.glob("*.json"))}


def targets(dash: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in dash["panels"]:
        for t in panel["targets"]:
            yield panel, t


def test_generated_files_are_what_build_py_writes(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "dashboards.build", "--out", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in GENERATED.glob("*.json")}
    assert sorted(fresh) == sorted(committed), "run: python3 -m dashboards.build"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} is stale: run python3 -m dashboards.build"


def test_every_dashboard_follows_the_documented_json_model() -> None:
    dashes = dashboards()
    uids = {d["uid"] for d in dashes.values()}
    assert len(dashes) == 12 and len(uids) == 12  # 6 dashboards x zh, en
    for name, d in dashes.items():
        lang = name.rsplit("-", 1)[1].removesuffix(".json")
        assert name == f"{d['uid']}.json" and d["uid"].endswith(f"-{lang}")
        for key in ("uid", "title", "tags", "timezone", "editable", "panels", "time",
                    "templating", "annotations", "refresh", "schemaVersion", "version"):
            assert key in d, (name, key)
        assert d["id"] is None and d["schemaVersion"] >= 36
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"])
        texts = [d["title"], *(p["title"] for p in d["panels"]),
                 *(v.get("label", "") for v in d["templating"]["list"])]
        if lang == "zh":  # Chinese by default: every title and filter label
            assert all(CJK.search(x) for x in texts if x != "CPU"), name
        else:  # English throughout, not one Chinese character left anywhere
            assert not CJK.search(json.dumps(d, ensure_ascii=False)), name
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for p in d["panels"]:
            assert p["type"] in {"timeseries", "table", "stat", "row"}, (name, p["title"])
            g = p["gridPos"]
            if p["type"] == "row":  # a heading across the board: no query of its own
                assert (g["x"], g["w"], g["h"], p["targets"]) == (0, 24, 1, []), name
                assert p["collapsed"] is False and p["panels"] == []
            assert g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["x"] + g["w"] <= 24
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, (name, p["title"], "overlaps another panel")
            cells |= mine
            assert p["datasource"]["uid"] == DS_UID, (name, p["title"])
            assert p["targets"] or p["type"] == "row", (name, p["title"])
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
        names = [v["name"] for v in d["templating"]["list"]]
        assert names[:3] == ["detachment", "battalion", "site"], name
        defined = {*names, "timeFilter", "__interval", "__from", "__to"}
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                assert v["datasource"]["uid"] == DS_UID
                tags = set(re.findall(r'KEY = "(\w+)"|"(\w+)" =~', v["query"]))
                assert {a or b for a, b in tags} <= KNOWN_TAGS, v["query"]
        for _, t in targets(d):
            assert t["datasource"]["uid"] == DS_UID and t["rawQuery"] is True
            used = {a or b for a, b in VAR.findall(t["query"])}
            assert used <= defined, (name, t["query"])


# Panels grouped by PC on boards whose site filter has All: each lists only
# the PCs at fault (clocks) or one tester per site and network, never every PC.
FAULT_LISTS = {"PCs with skewed clocks", "Messages re-stamped on arrival", "Latest speed test",
               "PCs whose update failed or was rolled back"}
# The hardware register is a row per PC by definition; it reads one point per
# PC (ORDER BY time DESC LIMIT 1 over daily inventories, not a time series)
# and says so, and how to narrow it (tests/test_dashboards_inventory.py).
REGISTERS = {"Hardware register"}


def outer_group_by(query: str) -> str:
    """The outermost query's GROUP BY clause ('' when only a subquery groups)."""
    tail = query[query.rfind("GROUP BY"):] if "GROUP BY" in query else ""
    tail = re.sub(r"time\([^)]*\)", "", tail)
    return "" if ")" in tail else tail


def test_per_pc_panels_are_only_under_a_single_select_site() -> None:
    """A query per PC over 40,000 PCs is never fast: panels with a series or
    row per PC live on boards whose site is single-select (no All), and every
    other board's site takes All as `.*`, not a regex of every site."""
    per_pc_boards = set()
    boards = dashboards()
    for name, d in boards.items():
        en = {p["id"]: p["title"] for p in boards[name.replace("-zh.", "-en.")]["panels"]}
        site = next(v for v in d["templating"]["list"] if v["name"] == "site")
        single = site_is_single(d)
        if single:
            per_pc_boards.add(d["uid"].rsplit("-", 1)[0])
            assert site["current"] == {} and "allValue" not in site, name
        else:
            assert site["includeAll"] and site["allValue"] == ".*", name
        for v in d["templating"]["list"]:
            if v.get("multi"):
                assert v["allValue"] == ".*", (name, v["name"])
        for p, t in targets(d):
            if en[p["id"]] in REGISTERS:
                assert "LIMIT 1" in t["query"] or t["refId"] != "A", (name, p["title"])
                assert ("one row per pc" in p["description"].lower()
                        if name.endswith("-en.json") else "每台电脑一行" in p["description"])
                continue
            if '"host"' in outer_group_by(t["query"]) and en[p["id"]] not in FAULT_LISTS:
                assert single, (name, p["title"], "per-PC panel on a board with All sites")
                assert ("single-select" in p["description"] if name.endswith("-en.json")
                        else "单选" in p["description"]), (name, p["title"])
        if single:  # nothing on it reads the per-unit series (the site filter is lost)
            assert all("unit_metrics" not in t["query"] for _, t in targets(d)), name
        else:  # the host filter is only offered where one site bounds its options
            assert "host" not in {v["name"] for v in d["templating"]["list"]}, name
    assert per_pc_boards == {"netroom-pcs"}
    for title in ("CPU per PC", "Memory per PC", "NIC traffic per PC", "NIC utilisation",
                  "PCs", "Link speed", "Room PC status"):
        assert panel("netroom-pcs-en", title)


def test_unit_series_the_boards_read_is_the_one_the_collector_writes() -> None:
    from collector.influx import retention
    from collector.influx.settings import InfluxConfig
    from dashboards import model

    cqs = retention.continuous_queries("netroom", "autogen", InfluxConfig().retention,
                                       ["battalion"])
    [unit] = [cq for cq in cqs if cq.base == "netroom_unit_5m"]
    assert f'INTO "netroom".{model.UNIT_METRICS} FROM' in unit.select


def test_provisioning_files_name_the_dashboards_data_source() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "netroom.yaml").read_text("utf-8"))
    assert ds["apiVersion"] == 1
    [source] = ds["datasources"]
    assert (source["uid"], source["type"], source["access"]) == (DS_UID, "influxdb", "proxy")
    assert source["url"] == "http://127.0.0.1:8086"
    assert source["jsonData"]["dbName"] == source["database"] == "netroom"
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "netroom.yaml").read_text("utf-8"))
    [provider] = prov["providers"]
    assert provider["type"] == "file" and provider["folderUid"] == "netroom"
    assert provider["options"]["path"].startswith("/")


TREE = [{"id": "bj", "name": "局", "children": [
    {"id": "zd-1", "name": "一支队", "children": [{"id": "dd-1", "name": "一大队", "children": [
        {"id": "sq-1", "name": "一中队", "cadres": 1, "staff": 2},
        {"id": "sq-2", "name": "二中队", "cadres": 1, "staff": 2}]}]},
    {"id": "zd-2", "name": "二支队", "children": [{"id": "dd-2", "name": "二大队", "children": [
        {"id": "sq-3", "name": "三中队", "cadres": 0, "staff": 0},
        {"id": "sq-4", "name": "四中队", "cadres": 1, "staff": 2}]}]}]}]
# (site, host, network, role); by hand, with the 4 PC-count rules:
# sq-1 passes all (1 cadre: gov + internet PC; staff 2 -> 1 gov non-cadre PC;
# room 1 gov of 2), sq-2 fails (no cadre PCs, no gov PC), sq-3 passes (nobody
# to equip, room 1 gov of 1), sq-4 never reported: no data (never a pass).
PCS = [("sq-1", "c1-gov", "gov", "cadre"), ("sq-1", "c1-inet", "internet", "cadre"),
       ("sq-1", "r1-gov", "gov", "room"), ("sq-1", "r1-inet", "internet", "room"),
       ("sq-2", "r2-inet", "internet", "room"), ("sq-3", "r3-gov", "gov", "room")]
# room_video too: every room network of sq-1 and sq-3 has a fresh speed test
# fast enough for its room PCs (so they still pass), sq-2's failed (no data).
COUNT_RULES = ("cadre_gov_pcs", "cadre_internet_pcs", "staff_gov_pcs", "room_gov_share",
               "room_video")
FUTURE_MS = 4_070_908_800_000  # 2099-01-01: a broken clock's stamp


@pytest.fixture
def seeded(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
           run_collector: Callable[[Path], Any]) -> tuple[float, float]:
    """Every kind of point the dashboards read; returns (now, t0) in epoch s."""
    from collector.compliance.rules import registry
    from collector.influx.client import InfluxSink
    from collector.store import snapshot

    off = {r.NAME: {"enabled": False} for r in registry() if r.NAME not in COUNT_RULES}
    cfg = write_config(tmp_path, mosquitto, influxd, db=DB, sites=TREE, rules=off)
    svc = run_collector(cfg)
    now = time.time()
    t0 = (int(now) // 60) * 60 - 600  # four minutes of NIC counters, minute-aligned
    msgs = [message("inventory", {"hostname": h, "host_id": f"id-{h}"}, site=s, host=h,
                    network=n, role=r, ts=now - 1) for s, h, n, r in PCS]
    for i, recv in enumerate((1000, 61000, 500, 60500)):  # reboot between 2nd and 3rd
        msgs.append(message("metrics", {"cpu_percent": 10.0, "mem_used_percent": 40.0,
                                        "uptime_s": 60.0 * i, "collect_ms": 5.0,
                                        "disks": [{"mount": "/", "used_percent": 42.0}],
                                        "nics": [{"name": "eth0", "bytes_recv": recv,
                                                  "bytes_sent": 2 * recv, "speed_mbps": 1000,
                                                  "is_up": True}]},
                            site="sq-1", host="r1-gov", ts=t0 + 60 * i))
    for s, h, n, r in PCS:
        if r == "room":  # sq-3's room PC last reported 50 minutes ago: closed now
            msgs.append(message("metrics", {"cpu_percent": 20.0, "mem_used_percent": 50.0,
                                            "uptime_s": 900.0, "collect_ms": 4.0}, site=s,
                                host=h, network=n, role=r,
                                ts=now - (3000 if s == "sq-3" else 5)))
    # r1-gov could not install the agent version its settings name (the fleet
    # board's agent tables; tests/test_versions.py has a whole rollout).
    msgs += [message("status", {"state": "online", "interval_s": 60.0, "agent_version": "1.4.0",
                                "update_state": "failed", "update_version": "1.5.0",
                                "update_error": "manifest.json: signature does not verify"},
                     host="r1-gov", ts=now),
             message("status", {"state": "offline", "will": True}, site="sq-3", host="r3-gov",
                     ts=now - 3000),
             message("bandwidth", {"method": "speedtest", "download_mbps": 95.5,
                                   "upload_mbps": 40.0, "latency_ms": 12.0}, host="r1-gov",
                     ts=t0),
             message("bandwidth", {"method": "speedtest", "error": "timeout"}, site="sq-2",
                     host="r2-inet", network="internet", ts=t0),
             # sq-2's newest internet test: 1 Mbit/s for its room PC (2.5 needed).
             message("bandwidth", {"method": "speedtest", "download_mbps": 1.0,
                                   "upload_mbps": 1.0, "latency_ms": 80.0}, site="sq-2",
                     host="r2-inet", network="internet", ts=t0 + 30),
             message("bandwidth", {"method": "speedtest", "download_mbps": 30.0,
                                   "upload_mbps": 10.0, "latency_ms": 20.0}, host="r1-inet",
                     network="internet", role="room", ts=t0),
             message("bandwidth", {"method": "speedtest", "download_mbps": 50.0,
                                   "upload_mbps": 20.0, "latency_ms": 9.0}, site="sq-3",
                     host="r3-gov", role="room", ts=t0),
             # r1-gov reached an internet canary (an isolation violation), c1-gov did not.
             message("isolation", {"violated": True, "reasons": "canary reached",
                                   "canaries_checked": 1, "canaries_reached": 1},
                     host="r1-gov", ts=now - 30),
             message("isolation", {"violated": False, "canaries_checked": 1,
                                   "canaries_reached": 0}, host="c1-gov", role="cadre",
                     ts=now - 30)]
    pub = Publisher(mosquitto)
    pub.publish_many(msgs)
    pub.close()
    for _ in range(2):  # the stats timer would take stats_interval (1 s) per point
        svc.write_stats()
        time.sleep(0.01)  # distinct millisecond timestamps
    wait_count(influxd, DB, "metrics", "collect_ms", 8)
    wait_count(influxd, DB, "inventory", "host_id", len(PCS))
    wait_count(influxd, DB, "bandwidth", "method", 5)
    wait_count(influxd, DB, "isolation", "violated", 2)
    wait_count(influxd, DB, "status", "state", 2)
    wait_count(influxd, DB, "collector", "received", 2)
    sink = InfluxSink(svc.cfg.influxdb)  # the evaluation thread's own client, as in service.py
    svc.evaluate_now(snapshot.reader(sink))
    sink.close()
    assert wait_count(influxd, DB, "compliance", "ok", 4, "\"rule\" = 'all'") == 4
    # `availability` (fields day, required_s, open_s; collector/heartbeats.py
    # reads them) has no writer yet: its points go in as line protocol. The
    # newest sq-1 day is a day off (nothing required) and must not count.
    # The org path as the collector tags it: ids and names (Org.tags_for).
    zd1 = ",bureau=bj,battalion=dd-1,detachment=zd-1,bureau_name=局,battalion_name=一大队," \
          "detachment_name=一支队"
    zd2 = ",bureau=bj,battalion=dd-2,detachment=zd-2,bureau_name=局,battalion_name=二大队," \
          "detachment_name=二支队"
    path = {"sq-1": f"{zd1},site_name=一中队", "sq-2": f"{zd1},site_name=二中队",
            "sq-3": f"{zd2},site_name=三中队"}
    days = [("sq-1", 90, "D-1", 36000, 32400), ("sq-1", 60, "D", 0, 0),
            ("sq-2", 90, "D-1", 36000, 18000)]
    influxd.write("\n".join(
        f'availability,site={s}{path[s]} day="{d}",required_s={req}.0,open_s={op}.0 '
        f"{int((now - ago * 60) * 1000)}" for s, ago, d, req, op in days), DB)
    # Clocks, as line protocol too (data the fleet board must read whichever
    # collector and protocol version wrote it): two agents' measured offsets
    # (r1-gov 5 min fast, c1-gov right), a metrics message the collector
    # re-stamped on arrival (r1-inet's clock 36 days behind), and a tick
    # stamped 2099 by sq-3's room PC, which has been silent for 50 minutes.
    tags = {h: f"site={s},host={h},network={n},role={r}{path.get(s, '')}"
            for s, h, n, r in PCS}
    ms = int(now * 1000)
    influxd.write("\n".join([
        f'status,{tags["r1-gov"]} state="online",clock_offset_s=312.5,clock_error_s=0.2 '
        f"{ms - 2000}",
        f'status,{tags["c1-gov"]} state="online",clock_offset_s=-0.4,clock_error_s=0.2 '
        f"{ms - 2000}",
        f'status,{tags["r2-inet"]} state="online" {ms - 2000}',
        f"metrics,{tags['r1-inet']} cpu_percent=20,mem_used_percent=50,uptime_s=900,"
        f"collect_ms=4,clock_skew_s=-3110400 {ms - 3000}",
        f"metrics,{tags['r3-gov']} cpu_percent=20,collect_ms=4 {FUTURE_MS}"]), DB)
    # The PC totals on `metrics` (disk_used_percent, net_bytes_recv...), as
    # the collector writes them from the same messages (netroom.schema,
    # "metrics totals"): written here too so the boards are checked whichever
    # collector version wrote the points (same series, time, values: one point).
    influxd.write("\n".join(
        f"metrics,{tags['r1-gov']} net_bytes_recv={recv}i,net_bytes_sent={2 * recv}i,"
        f"net_speed_mbps=1000i,nics_up=1i,disk_used_percent=42 {(t0 + 60 * i) * 1000}"
        for i, recv in enumerate((1000, 61000, 500, 60500))), DB)
    # r2-inet's NICs: 1000 bytes/s in, 2000 out, for six whole 5-minute buckets
    # ending before t0: its 5-minute rates are exact (8000 and 16000 bit/s).
    b0 = (t0 - 1800) // 300 * 300
    influxd.write("\n".join(
        f"metrics,{tags['r2-inet']} cpu_percent=30,mem_used_percent=60,collect_ms=4,"
        f"net_bytes_recv={60_000 * i}i,net_bytes_sent={120_000 * i}i,net_speed_mbps=100i,"
        f"nics_up=1i,disk_used_percent=70 {(b0 + 60 * i) * 1000}" for i in range(30)), DB)
    # The roll-ups, as the continuous queries would write them five minutes on.
    from collector.influx import retention
    sink = InfluxSink(svc.cfg.influxdb)
    levels = svc.cfg.org.level_tags()
    retention.ensure(sink, svc.cfg.influxdb, levels)
    retention.backfill(sink, svc.cfg.influxdb, (b0 - 600) * 1000, int(now * 1000) + 60_000,
                       levels)
    sink.close()
    return now, t0


def test_every_query_of_every_dashboard_returns_series_on_collector_written_data(
        influxd: Influxd, seeded: tuple[float, float]) -> None:
    now, _ = seeded
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))
    rps = {r["name"] for r in series(influxd.query("SHOW RETENTION POLICIES", DB))}
    known = {"rp": rps,
             "measurement": {r["name"] for r in series(influxd.query("SHOW MEASUREMENTS", DB))},
             "tag": {r["tagKey"] for rp in rps
                     for r in series(influxd.query(f'SHOW TAG KEYS FROM "{rp}"./.*/', DB))},
             "field": {r["fieldKey"] for rp in rps
                       for r in series(influxd.query(f'SHOW FIELD KEYS FROM "{rp}"./.*/', DB))}}
    # need_<key> is written only where a site needs that (collector/store/writeback.py).
    names = set().union(*known.values(), {f"need_{n}_{k}" for n in ("gov", "internet")
                                          for k in ("pcs", "mbps")})
    for name, dash in dashboards().items():
        if name.startswith("netroom-inventory-"):  # tests/test_dashboards_inventory.py
            continue  # runs them on full inventories and a hardware change
        # One site for the per-PC board: sq-2 holds every kind of point it reads.
        one = {"site": ["sq-2"]} if site_is_single(dash) else {}
        for chosen in ({**one}, {"detachment": ["zd-1"], **one}):
            g = Grafana(influxd, DB, dash, chosen, *span)
            assert g.options["detachment"] == ["zd-1", "zd-2"]
            assert g.options["site"] == (["sq-1", "sq-2"] if "detachment" in chosen
                                         else ["sq-1", "sq-2", "sq-3", "sq-4"])
            for panel, t in targets(dash):
                aliases = set(re.findall(r'AS "(\w+)"', t["query"]))
                idents = set(re.findall(r'"(\w+)"', t["query"]))
                assert idents <= names | aliases, (name, idents - names - aliases)
                assert g.panel(panel, t["refId"]), (name, chosen, panel["title"], t["query"])


def panel(lang_uid: str, title: str) -> dict[str, Any]:
    return next(p for p in dashboards()[f"{lang_uid}.json"]["panels"] if p["title"] == title)


def values(rows: list[dict[str, Any]], col: str) -> list[Any]:
    return [r[col] for r in rows if r.get(col) is not None]


def test_panels_show_the_hand_computed_figures(influxd: Influxd,
                                               seeded: tuple[float, float]) -> None:
    now, _ = seeded
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))
    boards = dashboards()
    comp = Grafana(influxd, DB, boards["netroom-compliance-en.json"], {}, *span)
    assert values(comp.panel(panel("netroom-compliance-en", "Sites evaluated")), "sites") == [4]
    assert values(comp.panel(panel("netroom-compliance-en", "Passing every rule")),
                  "passing") == [2]
    # The silent sq-4 is neither failing nor passing: counted apart.
    assert values(comp.panel(panel("netroom-compliance-en", "Failing")), "failing") == [1]
    assert values(comp.panel(panel("netroom-compliance-en", "No data")), "no_data") == [1]
    assert values(comp.panel(panel("netroom-compliance-en", "Pass rate")),
                  "pass_rate") == [50]
    by_unit = {r["battalion"]: (r["battalion_name"], r["pass_rate"], r["passing"],
                                r["failing"], r["no_data"])
               for r in comp.panel(panel("netroom-compliance-en", "Pass rate by unit"))}
    assert by_unit == {"dd-1": ("一大队", 50, 1, 1, 0), "dd-2": ("二大队", 50, 1, 0, 1)}
    # Shown by name: the id columns only filter.
    [organize] = panel("netroom-compliance-zh", "各单位达标率")["transformations"]
    assert organize["options"]["excludeByName"]["battalion"] is True
    assert organize["options"]["renameByName"]["battalion_name"] == "大队"
    matrix = {(r["site"], r["rule"]): r["status"]
              for r in comp.panel(panel("netroom-compliance-en", "Sites × rules"))}
    assert matrix[("sq-2", "all")] == "fail" and matrix[("sq-2", "cadre_gov_pcs")] == "fail"
    assert matrix[("sq-1", "all")] == matrix[("sq-3", "room_gov_share")] == "pass"
    assert matrix[("sq-4", "all")] == matrix[("sq-4", "cadre_gov_pcs")] == "no_data"
    details = {(r["site"], r["rule"]): (r["status"], r["actual"])
               for r in comp.panel(panel("netroom-compliance-en", "Details and shortfall"))}
    assert details[("sq-4", "staff_gov_pcs")] == ("no_data", None)  # nothing measured
    assert details[("sq-2", "cadre_gov_pcs")] == ("fail", 0)
    zh = panel("netroom-compliance-zh", "各中队达标情况")
    texts = {k: v["text"] for k, v in zh["fieldConfig"]["defaults"]["mappings"][0]["options"]
             .items()}
    assert texts == {"pass": "达标", "fail": "未达标", "no_data": "无数据",
                     "not_applicable": "不适用", "waived": "豁免"}
    one = Grafana(influxd, DB, boards["netroom-compliance-en.json"], {"detachment": ["zd-1"]},
                  *span)
    assert values(one.panel(panel("netroom-compliance-en", "Sites evaluated")), "sites") == [2]

    rooms = Grafana(influxd, DB, boards["netroom-rooms-en.json"], {}, *span)
    # room_state (the collector's verdict on each room now): sq-1 and sq-2 open;
    # sq-3's room PC has been silent for 50 minutes (its tick stamped 2099 is
    # no one's latest), sq-4 never reported.
    assert values(rooms.panel(panel("netroom-rooms-en", "Rooms open now")), "rooms") == [2]
    assert values(rooms.panel(panel("netroom-rooms-en", "Room PCs online")), "pcs") == [3]
    # Both closed rooms must be open now (the default window is all day, every day).
    assert values(rooms.panel(panel("netroom-rooms-en", "Closed, must be open")),
                  "alarm") == [2]
    # sq-1: 32400 / 36000 = 90 % (its day off skipped), sq-2: 18000 / 36000 = 50 %
    assert values(rooms.panel(panel("netroom-rooms-en", "Mean open share, latest day")),
                  "open_share") == [pytest.approx(70)]

    pcs = Grafana(influxd, DB, boards["netroom-pcs-en.json"], {}, *span)
    assert pcs.values["site"] == "sq-1"  # single-select: the first site by default
    assert pcs.values["rp"] == "autogen"  # 2 h: the raw points
    # r1-gov: +60000 bytes per 60 s = 8000 bit/s received, twice that sent;
    # the reboot (61000 -> 500) is skipped rather than shown as a negative rate.
    per_pc = pcs.panel(panel("netroom-pcs-en", "NIC traffic per PC"))
    assert values([r for r in per_pc if r["host"] == "r1-gov"], "rx") == [8000, 8000]
    sent = pcs.panel(panel("netroom-pcs-en", "NIC traffic per PC"), "B")
    assert values([r for r in sent if r["host"] == "r1-gov"], "tx") == [16000, 16000]
    util = pcs.panel(panel("netroom-pcs-en", "NIC utilisation"))
    assert values([r for r in util if r["host"] == "r1-gov"], "rx") == [
        pytest.approx(0.0008)] * 2  # of 1 Gbit/s
    assert {r["site"] for r in per_pc} == {"sq-1"}  # one site only
    # Per site: the sum of the PCs' 5-minute rates (site_metrics): r2-inet's
    # six buckets give five rates (the first has no bucket before it).
    sq2 = Grafana(influxd, DB, boards["netroom-pcs-en.json"], {"site": ["sq-2"]}, *span)
    site_sum = sq2.panel(panel("netroom-pcs-en", "NIC traffic per network"))
    assert values(site_sum, "rx")[:5] == [8000] * 5
    site_tx = sq2.panel(panel("netroom-pcs-en", "NIC traffic per network"), "B")
    assert values(site_tx, "tx")[:5] == [16000] * 5
    # Per unit (unit_metrics): battalion dd-1's internet PCs are r2-inet's alone
    # before t0 (sq-1's internet PCs sent no NIC counters).
    bw = Grafana(influxd, DB, boards["netroom-bandwidth-en.json"], {}, *span)
    assert bw.values["daily"] == "autogen"
    unit_rx = bw.panel(panel("netroom-bandwidth-en", "NIC traffic per unit and network"))
    assert values([r for r in unit_rx if (r["battalion"], r["network"]) == ("dd-1", "internet")],
                  "rx")[:5] == [8000] * 5
    tests = {(r["site"], r["network"]): r
             for r in bw.panel(panel("netroom-bandwidth-en", "Latest speed test"))}
    per_pc = bw.panel(panel("netroom-bandwidth-en", "Bandwidth per room PC"))
    # dd-1: sq-1 min(95.5 gov, 30 internet) / 1 room PC each, sq-2 1 / 1: their mean
    assert values([r for r in per_pc if r["battalion"] == "dd-1"], "mean") == [15.5]
    assert tests[("sq-1", "gov")]["download_mbps"] == 95.5
    assert tests[("sq-2", "internet")]["failed"] == 1

    fleet = Grafana(influxd, DB, boards["netroom-fleet-en.json"], {}, *span)
    # site_metrics summed per 5 minutes (the stat shows the latest): the three
    # PCs that reported 5 s ago (sq-3's room PC has been silent for 50 minutes).
    reporting = {r["time"]: r["pcs"]
                 for r in fleet.panel(panel("netroom-fleet-en", "PCs reporting"))}
    assert reporting[int(now - 5) // 300 * 300 * 1000] == 3
    assert values(fleet.panel(panel("netroom-fleet-en", "PCs with inventory")), "pcs") == [6]
    assert values(fleet.panel(panel("netroom-fleet-en", "Spooled batches")),
                  "spool_batches") == [0]
    # Clocks: only r1-gov is off by a minute or more; r1-inet's message was re-stamped.
    skewed = fleet.panel(panel("netroom-fleet-en", "PCs with skewed clocks"))
    assert [(r["site"], r["host"], r["offset_s"], r["error_s"]) for r in skewed] == [
        ("sq-1", "r1-gov", 312.5, 0.2)]
    restamped = fleet.panel(panel("netroom-fleet-en", "Messages re-stamped on arrival"))
    assert [(r["site"], r["host"], r["skew_s"], r["restamped"]) for r in restamped] == [
        ("sq-1", "r1-inet", -3110400, 1)]
    # Per unit: battalion dd-1 before t0 is r2-inet alone (sq-2): six buckets
    # of 30 % CPU, 70 % disk, one PC reporting.
    cpu = fleet.panel(panel("netroom-fleet-en", "Mean CPU per unit"))
    assert values([r for r in cpu if r["battalion"] == "dd-1"], "mean")[:6] == [30] * 6
    disk = fleet.panel(panel("netroom-fleet-en", "Fullest disk per unit"))
    assert values([r for r in disk if r["battalion"] == "dd-1"], "max")[:6] == [70] * 6
    pcs_unit = fleet.panel(panel("netroom-fleet-en", "PCs reporting per unit and network"))
    assert values([r for r in pcs_unit if (r["battalion"], r["network"]) == (
        "dd-1", "internet")], "mean")[:6] == [1] * 6
    units = {r["battalion"]: r for r in fleet.panel(panel("netroom-fleet-en", "PCs by unit"))}
    assert units["dd-1"]["disk_used_percent"] == 70
    zh = panel("netroom-fleet-zh", "时钟偏差的电脑")
    assert zh["transformations"][0]["options"]["renameByName"]["offset_s"] == "时钟偏差"
    # Agent versions, from the evaluation's roll-up: r1-gov failed; no version is named.
    assert fleet.values["agent_evaluated"].isdigit()
    agents = fleet.panel(panel("netroom-fleet-en", "Agent versions per site"))
    assert [(r["site_name"], r["target"], r["version"], r["state"], r["pcs"])
            for r in agents] == [("一中队", "none", "1.4.0", "failed", 1)]
    failed = fleet.panel(panel("netroom-fleet-en", "PCs whose update failed or was rolled back"))
    assert [(r["site_name"], r["host"], r["state"], r["update_error"]) for r in failed] == [
        ("一中队", "r1-gov", "failed", "manifest.json: signature does not verify")]


def test_long_ranges_read_the_roll_ups(influxd: Influxd, seeded: tuple[float, float]) -> None:
    """Beyond influxdb.retention.switch_after (3 days) the $rp and $daily variables
    name the roll-up policies, and every query still runs there."""
    now, _ = seeded
    span = (int((now - 8 * 86400) * 1000), int((now + 60) * 1000))
    for name, dash in dashboards().items():
        g = Grafana(influxd, DB, dash, {}, *span)
        assert g.values.get("rp", "rollup") == "rollup", name
        assert g.values.get("daily", "forever") == "forever", name
        for p, t in targets(dash):
            g.panel(p, t["refId"])  # runs without an error (Grafana.run asserts)
    # Up to 10 minutes ago: without r2-inet's 20 % of just now, whatever
    # $__interval the range gives (a bucket holding both would mix them).
    # r2-inet's 5-minute means of 30 % CPU, read from the roll-up.
    pcs = Grafana(influxd, DB, dashboards()["netroom-pcs-en.json"], {"site": ["sq-2"]},
                  span[0], int((now - 600) * 1000))
    cpu = pcs.panel(panel("netroom-pcs-en", "CPU per PC"))
    assert values([r for r in cpu if r["host"] == "r2-inet"], "mean")[0] == 30


def test_rooms_board_lists_every_registered_room_closed_ones_first_with_names(
        influxd: Influxd, seeded: tuple[float, float]) -> None:
    now, _ = seeded
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))
    board = dashboards()["netroom-rooms-zh.json"]
    g = Grafana(influxd, DB, board, {}, *span)
    table = panel("netroom-rooms-zh", "各网络室当前状态")
    assert table["timeFrom"] == "now/d"
    rows = {r["site"]: r for r in g.panel(table)}
    # Every registered room, the closed ones too (the old board listed only rooms
    # with a PC online), with its name.
    assert {s: r["site_name"] for s, r in rows.items()} == {
        "sq-1": "一中队", "sq-2": "二中队", "sq-3": "三中队", "sq-4": "四中队"}
    assert [(rows[s]["open"], rows[s]["required_now"], rows[s]["alarm"]) for s in sorted(rows)] \
        == [(1, 1, 0), (1, 1, 0), (0, 1, 1), (0, 1, 1)]
    # sq-3 closed at its room PC's last heartbeat, 50 minutes ago (min_online 1).
    assert rows["sq-3"]["closed_since_ms"] == pytest.approx((now - 3000) * 1000, abs=5000)
    assert rows["sq-3"]["room_pcs"] == 1 and rows["sq-3"]["min_online"] == 1
    assert rows["sq-4"]["room_pcs"] == 0
    today = {r["site"]: r["today_share"] for r in g.panel(table, "B")}
    assert today == {"sq-1": 100, "sq-2": 100, "sq-3": 0, "sq-4": 0}
    latest = {r["site"]: (r["day"], r["latest_share"]) for r in g.panel(table, "C")}
    assert latest["sq-1"] == ("D-1", pytest.approx(90))
    assert latest["sq-2"] == ("D-1", pytest.approx(50))
    assert latest["sq-3"][1] == 0  # the collector's own day: its room PC was off
    # Closed-and-required first, in red: sorted by the alarm column, mapped to red.
    alarm = "应开未开"
    assert table["options"]["sortBy"] == [{"displayName": alarm, "desc": True}]
    [mapping] = next(o for o in table["fieldConfig"]["overrides"]
                     if o["matcher"]["options"] == alarm)["properties"][0]["value"]
    assert mapping["options"]["1"] == {"text": "是", "color": "red", "index": 0}


def test_filters_show_names_and_filter_by_id(influxd: Influxd,
                                             seeded: tuple[float, float]) -> None:
    now, _ = seeded
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))
    for lang in ("zh", "en"):
        board = dashboards()[f"netroom-compliance-{lang}.json"]
        g = Grafana(influxd, DB, board, {"battalion": ["dd-1"]}, *span)
        assert g.texts["detachment"] == {"zd-1": "一支队", "zd-2": "二支队"}
        assert g.texts["battalion"] == {"dd-1": "一大队", "dd-2": "二大队"}
        assert g.texts["site"] == {"sq-1": "一中队", "sq-2": "二中队"}  # narrowed by dd-1
        details = g.panel(panel(f"netroom-compliance-{lang}", "达标明细与缺口" if lang == "zh"
                                else "Details and shortfall"))
        assert {r["site_name"] for r in details} == {"一中队", "二中队"}
    bw = dashboards()["netroom-bandwidth-zh.json"]
    net = next(v for v in bw["templating"]["list"] if v["name"] == "network")
    assert [(o["text"], o["value"]) for o in net["options"]] == [
        ("政务网", "gov"), ("互联网", "internet")]
    legends = next(p for p in bw["panels"] if p["title"] == "下行带宽")["transformations"]
    assert [t["options"]["renamePattern"] for t in legends] == ["$1政务网$2", "$1互联网$2"]
    assert re.sub(legends[0]["options"]["regex"].replace("\\\\", "\\"), "\\1政务网\\2",
                  "zd-1 dd-1 gov") == "zd-1 dd-1 政务网"


def test_procurement_per_unit_sums_the_sites_needs(influxd: Influxd,
                                                   seeded: tuple[float, float]) -> None:
    now, _ = seeded
    span = (int((now - 7200) * 1000), int((now + 60) * 1000))
    g = Grafana(influxd, DB, dashboards()["netroom-bandwidth-zh.json"], {}, *span)
    rows = {r["battalion"]: r for r in g.panel(panel("netroom-bandwidth-zh", "采购缺口（按单位）"))}
    # sq-2 (dd-1): 1 cadre without a gov and an internet PC; 2 staff need 1 gov
    # PC; its room has no gov PC (room_gov_share: 1): gov PCs max(cadre 1, ...)
    # per pool, added across pools. sq-4 has no data: nothing to buy on no evidence.
    assert rows["dd-1"]["battalion_name"] == "一大队"
    assert rows["dd-1"]["internet_pcs"] == 1 and rows["dd-1"]["gov_pcs"] >= 1
    assert not rows["dd-2"]["gov_pcs"] and not rows["dd-2"]["internet_pcs"]  # none needed
    assert rows["dd-1"]["internet_mbps"] == 1.5  # sq-2's room PC: 2.5 - 1 Mbit/s
    assert rows["dd-1"]["sites"] == 2


# --- pass rates from the per-unit roll-up (unit_compliance) ---------------------
# Units of different sizes: dd-1 three sites, dd-2 one, dd-3 two, and sq-5
# hung directly under zd-1 (a unit of its own, with no battalion).
UNIT_TREE = [{"id": "bj", "name": "局", "children": [
    {"id": "zd-1", "name": "一支队", "children": [
        {"id": "dd-1", "name": "一大队", "children": [
            {"id": f"sq-{n}", "name": f"{n}中队", "cadres": 1, "staff": 2} for n in (1, 2, 3)]},
        {"id": "dd-2", "name": "二大队", "children": [
            {"id": "sq-4", "name": "4中队", "cadres": 1, "staff": 2}]},
        {"id": "sq-5", "name": "5中队", "cadres": 1, "staff": 2}]},
    {"id": "zd-2", "name": "二支队", "children": [
        {"id": "dd-3", "name": "三大队", "children": [
            {"id": f"sq-{n}", "name": f"{n}中队", "cadres": 1, "staff": 2} for n in (6, 7)]}]}]}]
UNIT_RULES = ("cadre_gov_pcs", "room_gov_share", "gov_bandwidth")
# Per pass (four, 5 minutes apart), per site: a verdict per rule; "x" =
# not_applicable, "-" = no_data, "w" = waived, "p" / "f". sq-3 never has data;
# room_gov_share does not apply at sq-2, sq-6 and sq-4, dd-2's only site.
UNIT_PASSES = [
    {"sq-1": "ppp", "sq-2": "wxp", "sq-3": "---", "sq-4": "fxp", "sq-5": "ppf", "sq-6": "pxp",
     "sq-7": "fff"},
    {"sq-1": "pfp", "sq-2": "wxp", "sq-3": "---", "sq-4": "pxp", "sq-5": "ppp", "sq-6": "pxf",
     "sq-7": "pfp"},
    {"sq-1": "ppp", "sq-2": "fxp", "sq-3": "---", "sq-4": "px-", "sq-5": "ppp", "sq-6": "pxp",
     "sq-7": "ppp"},
    {"sq-1": "fff", "sq-2": "pxp", "sq-3": "---", "sq-4": "pxp", "sq-5": "wpp", "sq-6": "fxp",
     "sq-7": "ppw"}]
# What the two panels read before the roll-up (their previous texts): the
# sites' own `compliance` points.
OLD_PER_RULE = ('SELECT mean("ok") * 100 FROM "compliance" WHERE $timeFilter '
                'AND "detachment" =~ /^$detachment$/ AND "battalion" =~ /^$battalion$/ '
                'GROUP BY time($__interval), "rule" fill(none)')
OLD_BY_UNIT = ('SELECT mean("ok") * 100 AS "pass_rate", sum("ok") AS "passing", '
               'count("ok") - sum("ok") - sum("no_data") AS "failing", '
               'sum("no_data") AS "no_data", count("ok") AS "sites" FROM ('
               'SELECT last("ok") AS "ok", last("no_data") AS "no_data" FROM "compliance" '
               "WHERE $timeFilter AND \"rule\" = 'all' AND \"detachment\" =~ /^$detachment$/ "
               'AND "battalion" =~ /^$battalion$/ GROUP BY "site", "detachment", "battalion", '
               '"detachment_name", "battalion_name") GROUP BY "detachment", "battalion", '
               '"detachment_name", "battalion_name"')


def unit_fleet(influxd: Influxd, db: str, t0_ms: int) -> None:
    """UNIT_PASSES evaluated at t0 + 1 min + k x 5 min, written as the collector
    writes an evaluation (compliance, unit_compliance, site_info), with rp_choice."""
    from collector.compliance.evaluate import Evaluation, Verdict
    from collector.compliance.orgconfig import read_org
    from collector.compliance.rules.base import Result
    from collector.influx import retention
    from collector.influx.client import InfluxSink
    from collector.influx.line import LineEncoder
    from collector.influx.settings import read_influx
    from collector.store import writeback

    org = read_org(UNIT_TREE, None)
    status = {"p": "pass", "f": "fail", "-": "no_data", "x": "not_applicable", "w": "waived"}
    actual = {"p": 1.0, "f": 0.0, "w": 0.0}
    lines: list[str] = []
    for k, verdicts in enumerate(UNIT_PASSES):
        ev = Evaluation(t0_ms + 60_000 + 300_000 * k, tuple(
            Verdict(s, tuple(Result(rule, status[c], 1.0, actual.get(c),
                                    {"gov_pcs": 1.0} if c == "f" else {})
                             for rule, c in zip(UNIT_RULES, verdicts[s.id])))
            for s in org.sites), ())
        lines += LineEncoder().lines([*writeback.compliance_points(ev, org),
                                      *writeback.unit_compliance_points(ev, org),
                                      *writeback.site_info_points(org, ev.now_ms)])
    influxd.write("\n".join(lines), db)
    cfg = read_influx({"url": influxd.url, "database": db})
    sink = InfluxSink(cfg)
    retention.ensure(sink, cfg, org.level_tags())
    # The daily tier, as its continuous query writes it.
    retention.backfill(sink, cfg, t0_ms - 86_400_000, t0_ms + 86_400_000, org.level_tags(),
                       only=("netroom_unit_compliance_1d",))
    sink.close()


def test_unit_roll_up_gives_the_pass_rates_of_the_site_points(influxd: Influxd,
                                                               influx_db: str) -> None:
    """"Pass rate per rule" and "Pass rate by unit" read `unit_compliance`; on
    units of 1 to 3 sites, a site without data, a rule that does not apply and
    waivers, they show what their previous texts computed from every site's
    `compliance` points: per rule and 5 minutes, per unit at the newest pass;
    with All and with one detachment; and over a long range from the daily tier."""
    # Yesterday at noon UTC: the four passes and their day, whatever the time now.
    t0_ms = ((int(time.time()) // 86400 - 1) * 86400 + 43200) * 1000
    unit_fleet(influxd, influx_db, t0_ms)
    board = dashboards()["netroom-compliance-en.json"]
    per_rule = panel("netroom-compliance-en", "Pass rate per rule")
    by_unit = panel("netroom-compliance-en", "Pass rate by unit")
    span = (t0_ms, t0_ms + 3_600_000)

    def rates(rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
        return {(r["rule"], r["time"]): next(v for k, v in r.items() if k not in ("rule", "time"))
                for r in rows}

    def table(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[Any, ...]]:
        """Per unit: pass rate (rounded: sum / sum and mean differ in the last bit),
        passing, failing, no data, sites."""
        return {(r["detachment"], r.get("battalion", "")): (
            round(r["pass_rate"], 9), r["passing"], r["failing"], r["no_data"], r["sites"])
            for r in rows}

    # dd-2 alone: room_gov_share applies to none of its sites, so it has no
    # pass rate at all (not 0 %): 2 rules + all, 4 passes.
    for chosen, lines in (({}, 4 * 4), ({"detachment": ["zd-1"]}, 4 * 4),
                          ({"battalion": ["dd-3"]}, 4 * 4), ({"battalion": ["dd-2"]}, 3 * 4)):
        g = Grafana(influxd, influx_db, board, chosen, *span)
        assert g.values["daily"] == "autogen"
        new = rates(g.panel(per_rule))
        old = rates(g.run(OLD_PER_RULE, {"__interval": "5m"}))
        assert new.keys() == old.keys() and len(new) == lines, (chosen, new.keys())
        assert all(new[k] == pytest.approx(old[k]) for k in new), (chosen, new, old)
        assert table(g.panel(by_unit)) == table(g.run(OLD_BY_UNIT, {})), chosen
    # By hand. Pass 1 (in the 5 minutes from t0), room_gov_share: n/a at sq-2,
    # sq-4 and sq-6; sq-1 and sq-5 pass, sq-7 fails, sq-3 has no data (not
    # passing): 2 of 4.
    g = Grafana(influxd, influx_db, board, {}, *span)
    assert rates(g.panel(per_rule))[("room_gov_share", t0_ms)] == 50
    # The newest pass: dd-1 sq-1 fails, sq-2 passes, sq-3 no data; zd-1's own
    # sq-5 passes with a waiver; dd-2's sq-4 and dd-3's sq-6 (fail) sq-7 (waived).
    assert {(r["detachment_name"], r.get("battalion_name", "")): (
        r["pass_rate"], r["passing"], r["failing"], r["no_data"], r["sites"])
        for r in g.panel(by_unit)} == {
        ("一支队", "一大队"): (pytest.approx(100 / 3), 1, 1, 1, 3),
        ("一支队", "二大队"): (100, 1, 0, 0, 1), ("一支队", ""): (100, 1, 0, 0, 1),
        ("二支队", "三大队"): (50, 1, 1, 0, 2)}
    # Eight days: the daily tier (the day's means per unit). Every unit has
    # the same four passes, so the day's rate is that of its site verdicts.
    long = Grafana(influxd, influx_db, board, {}, t0_ms - 7 * 86_400_000, t0_ms + 86_400_000)
    assert long.values["daily"] == "forever"
    day = rates(long.panel(per_rule))
    whole_day = rates(long.run(OLD_PER_RULE.replace("$__interval", "1d"), {}))
    assert len(day) == 4 and {r for r, _ in day} == {"all", *UNIT_RULES}
    assert {r: v for (r, _), v in day.items()} == pytest.approx(
        {r: v for (r, _), v in whole_day.items()})


ALERTING = PROVISIONING / "alerting"


def alert_rules() -> dict[str, dict[str, Any]]:
    [group] = yaml.safe_load((ALERTING / "netroom-rules.yaml").read_text("utf-8"))["groups"]
    return {r["uid"]: r for r in group["rules"]}


def test_every_alert_fires_for_the_fixture_that_should_and_not_the_other(
        influxd: Influxd, seeded: tuple[float, float]) -> None:
    """Each rule's query runs on the collector-written data and goes through
    Reduce and Threshold as Grafana evaluates it (tests/grafana_influxql.py)."""
    now, _ = seeded
    rules = alert_rules()
    at = int(now * 1000) + 1000

    def firing(uid: str) -> dict[frozenset[tuple[str, str]], float] | None:
        return evaluate_rule(influxd, DB, rules[f"netroom-{uid}"], at)

    def sites(found: dict[frozenset[tuple[str, str]], float] | None, *keys: str
              ) -> set[tuple[str, ...]]:
        assert found is not None
        return {tuple(dict(labels)[k] for k in keys) for labels in found}

    # sq-3's room closed 50 minutes ago inside its required hours (> 30 min);
    # sq-1 and sq-2 are open; sq-4 has no room PC (nothing to call closed).
    closed = firing("room-closed")
    assert sites(closed, "site", "site_name") == {("sq-3", "三中队")}
    assert closed is not None and next(iter(closed.values())) == pytest.approx(50, abs=1)
    # r1-gov reached an internet canary; c1-gov's report was clean.
    assert sites(firing("isolation"), "site", "host") == {("sq-1", "r1-gov")}
    # sq-2 fails the PC-count rules; sq-1 and sq-3 pass, sq-4 has no data.
    failing = sites(firing("rule-failing"), "site", "rule")
    assert {s for s, _ in failing} == {"sq-2"} and ("sq-2", "cadre_gov_pcs") in failing
    # r3-gov's Last Will (the broker found it silent); r1-gov is online.
    assert sites(firing("agent-silent"), "site", "host") == {("sq-3", "r3-gov")}
    # The collector's stats: write_errors at 0 from the start, the spool empty.
    assert firing("collector-write-errors") == {} and firing("spool") == {}
    # No hardware change at all: no data, which this rule treats as OK
    # (tests/test_dashboards_inventory.py has the removal that fires it).
    assert firing("hardware-removed") is None
    assert rules["netroom-hardware-removed"]["noDataState"] == "OK"
    # Now the collector fails writes and spools: both fire for it.
    influxd.write("\n".join(
        f"collector,collector=c2 write_errors={n}i,spool_batches={b}i {at - 300_000 + 60_000 * i}"
        for i, (n, b) in enumerate(((0, 2), (0, 3), (4, 5), (7, 6)))), DB)
    assert sites(firing("collector-write-errors"), "collector") == {("c2",)}
    assert sites(firing("spool"), "collector") == {("c2",)}
    # A collector whose stats stopped: no data, which this rule treats as alerting.
    assert rules["netroom-collector-write-errors"]["noDataState"] == "Alerting"
    assert evaluate_rule(influxd, DB, rules["netroom-collector-write-errors"],
                         at + 3_600_000) is None


def test_alerting_files_follow_grafanas_documented_provisioning_format() -> None:
    """Grafana cannot run here, so the files are checked against the format of
    Grafana's documentation ("Create and manage alerting resources using file
    provisioning", apiVersion 1: groups/rules, contactPoints/receivers,
    policies, templates) and its provisioning types (pkg/services/provisioning/
    alerting: rule model queries and annotations are not interpolated; contact
    point settings and labels are, so only the URLs hold ``$``)."""
    from dashboards import alerts
    from dashboards.build import write_alerting

    files = {p.name: p.read_text("utf-8") for p in sorted(ALERTING.glob("*.yaml"))}
    assert sorted(files) == sorted(alerts.provisioning_files())
    fresh = {p.name: p.read_text("utf-8") for p in write_alerting(Path(str(ALERTING) + ".tmp"))}
    for p in Path(str(ALERTING) + ".tmp").iterdir():
        p.unlink()
    Path(str(ALERTING) + ".tmp").rmdir()
    assert fresh == files, "stale alerting files: run python3 -m dashboards.build"
    docs = {n: yaml.safe_load(t) for n, t in files.items()}
    assert all(d["apiVersion"] == 1 for d in docs.values())
    [group] = docs["netroom-rules.yaml"]["groups"]
    assert set(group) == {"orgId", "name", "folder", "interval", "rules"}
    assert group["folder"] == "网络室监控 netroom" and group["interval"] == "60s"
    uids = [r["uid"] for r in group["rules"]]
    assert len(uids) == len(set(uids)) == 7
    for r in group["rules"]:
        assert {"uid", "title", "condition", "data", "noDataState", "execErrState", "for",
                "annotations", "labels"} <= set(r)
        assert r["noDataState"] in {"NoData", "Alerting", "OK"}
        assert r["execErrState"] in {"Error", "Alerting", "OK"}
        assert CJK.search(r["title"]) and CJK.search(r["annotations"]["summary"])
        assert "$" not in json.dumps(r["labels"])
        refs = [q["refId"] for q in r["data"]]
        assert r["condition"] in refs and len(refs) == len(set(refs))
        for q in r["data"]:
            assert set(q) == {"refId", "relativeTimeRange", "datasourceUid", "model"}
            assert q["model"]["refId"] == q["refId"]
            if q["datasourceUid"] == "__expr__":
                assert q["model"]["type"] in {"reduce", "threshold", "math"}
                assert q["model"]["expression"] in refs
            else:  # only Grafana's time macros: no dashboard variable
                assert q["datasourceUid"] == DS_UID and q["model"]["rawQuery"] is True
                used = {a or b for a, b in VAR.findall(q["model"]["query"])}
                assert used <= {"timeFilter", "__interval", "__from", "__to"}, used
                assert q["relativeTimeRange"]["from"] > q["relativeTimeRange"]["to"] >= 0
    [cp] = docs["netroom-contact-points.yaml"]["contactPoints"]
    assert cp["name"] == "netroom"
    kinds = {r["type"]: r for r in cp["receivers"]}
    assert set(kinds) == {"webhook", "dingding", "wecom"}
    for r in kinds.values():
        assert set(r) >= {"uid", "type", "settings"}
        assert re.fullmatch(r"\$NETROOM_ALERT_[A-Z]+_URL", r["settings"]["url"])
        assert "$" not in r["settings"]["message"]
    [policy] = docs["netroom-policies.yaml"]["policies"]
    assert policy["receiver"] == "netroom" and "alertname" in policy["group_by"]
    [tpl] = docs["netroom-templates.yaml"]["templates"]
    assert tpl["name"] == "netroom" and "$" not in tpl["template"]
    for name in ("netroom.title", "netroom.message"):
        assert f'{{{{ define "{name}" }}}}' in tpl["template"]
    assert "告警" in tpl["template"] and "政务网带宽" in tpl["template"]  # rule titles, zh


def test_collector_self_metrics_carry_write_errors_from_the_start(
        influxd: Influxd, seeded: tuple[float, float]) -> None:
    """The alert on write errors needs the field before the first error."""
    rows = list(series(influxd.query(
        'SELECT "write_errors", "spool_batches" FROM "collector" WHERE "collector" != \'c2\'',
        DB)))
    assert rows and all(r["write_errors"] == 0 and r["spool_batches"] == 0 for r in rows)
