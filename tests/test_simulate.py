"""netroom simulate: the fleet's shaping (pure), its payloads (netroom.protocol),
the command line, and the whole way through a real mosquitto, collector and
influxd to `netroom report`."""
from __future__ import annotations

import datetime as dt
import inspect
import json
import math
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from harness import REPO, run_cli, wait_count, write_config
from servers import Influxd, Mosquitto, ProductionMosquitto
from zoneinfo import ZoneInfo

from collector.cli.main import main
from collector.compliance.orgconfig import read_org
from collector.compliance.rules import registry
from collector.simulate import fleet as sim
from collector.simulate import messages
from collector.simulate.fleet import SimSite
from netroom import protocol
from netroom.settings import ConfigError

# --- the fleet's shaping ---------------------------------------------------------


def count(site: SimSite, network: str | None = None, role: str | None = None,
          not_role: str | None = None) -> int:
    return sum(1 for p in site.pcs if (network is None or p.network == network)
               and (role is None or p.role == role) and (not_role is None or p.role != not_role))


def failed_rules(site: SimSite) -> set[str]:
    """Each rule's verdict on the site, worked out from the fleet by the rules'
    default thresholds (docs/compliance.md), independently of the shaping code."""
    out = set()
    if count(site, "gov", "cadre") < site.cadres:
        out.add("cadre_gov_pcs")
    if count(site, "internet", "cadre") < site.cadres:
        out.add("cadre_internet_pcs")
    if count(site, "gov", not_role="cadre") < math.ceil(site.staff / 2):
        out.add("staff_gov_pcs")
    room = count(site, role="room")
    if not room or count(site, "gov", "room") / room < 0.5:
        out.add("room_gov_share")
    # Speed tests measure within 3 % of the site's figures.
    links = {"gov": site.gov_mbps, "internet": site.internet_mbps}
    for net, mbps in links.items():
        pcs = count(site, net, "room")
        if pcs and mbps * 1.03 / pcs < 2.5:
            out.add("room_video")
        assert not pcs or mbps * 0.97 / pcs >= 2.5 or mbps * 1.03 / pcs < 2.5, "too close"
    if site.gov_mbps * 1.03 < 20:
        out.add("gov_bandwidth")
    assert site.gov_mbps * 0.97 >= 20 or site.gov_mbps * 1.03 < 20, "too close to call"
    if site.room_closed:
        out.add("room_open_all_day")
    if any(p.portal_fails for p in site.pcs):
        out.add("portal_reachable")
    if any(p.isolation_violated for p in site.pcs):
        out.add("gov_isolation")
    return out


def test_rule_names_are_the_registry() -> None:
    assert tuple(r.NAME for r in registry()) == sim.RULE_NAMES
    assert len(sim.RULE_NAMES) == 9


@pytest.mark.parametrize("rule", sim.RULE_NAMES)
def test_a_share_of_sites_fails_the_chosen_rule_and_passes_every_other(rule: str) -> None:
    fleet = sim.build(10, 12, (rule,), fail_share=0.3, seed=7)
    failing = fleet.failing(rule)
    assert len(failing) == 3
    for site in fleet.sites:
        want = {rule} if site.id in failing else set()
        assert site.fails == want, site.id
        assert failed_rules(site) == want, site.id


@pytest.mark.parametrize("pcs", [4, 5, 6, 9, 17, 40])
def test_every_rule_at_once_at_any_size(pcs: int) -> None:
    fleet = sim.build(4, pcs, sim.RULE_NAMES, fail_share=0.5, seed=pcs)
    shaped = [s for s in fleet.sites if s.fails]
    assert len(shaped) == 2
    for site in fleet.sites:
        assert len(site.pcs) == pcs
        assert failed_rules(site) == site.fails, site.id
        assert not site.fails or set(sim.RULE_NAMES) <= site.fails
    # A room of 10 gov PCs cannot play video below 20 Mbit/s: said, not hidden.
    big = sim.build(2, 40, ("gov_bandwidth",), fail_share=0.5, seed=1)
    assert [s.fails for s in big.sites if s.fails] == [{"gov_bandwidth", "room_video"}]


def test_the_shaped_failures_look_as_the_rules_read_them() -> None:
    fleet = sim.build(6, 10, sim.RULE_NAMES, fail_share=0.5, seed=3)
    for site in fleet.sites:
        bad = bool(site.fails)
        assert (count(site, "gov", "cadre") < site.cadres) is bad
        assert (count(site, "internet", "cadre") < site.cadres) is bad
        room = count(site, role="room")
        assert (count(site, "gov", "room") * 2 < room) is bad
        assert (count(site, "gov", not_role="cadre") * 2 < site.staff) is bad
        # Shaped failures sit on gov PCs outside the room (room_video stays theirs).
        for p in site.pcs:
            if p.portal_fails or p.isolation_violated:
                assert (p.network, p.role != "room") == ("gov", True)
        assert sum(p.tester for p in site.pcs) == 2
        assert {p.network for p in site.pcs if p.tester} == {"gov", "internet"}
        assert len({p.host for p in site.pcs}) == len(site.pcs)
        assert all(protocol.ID_RE.match(p.host) for p in site.pcs)
        assert all(protocol.HOST_ID_RE.match(p.host_id) for p in site.pcs)


def test_the_fleet_follows_from_the_seed() -> None:
    a = sim.build(5, 8, ("room_video",), seed=11)
    assert a == sim.build(5, 8, ("room_video",), seed=11)
    assert a != sim.build(5, 8, ("room_video",), seed=12)
    assert sim.build(5, 8, (), seed=11).failing("room_video") == []
    assert len(sim.build(20, 4, ("room_video",), fail_share=0.0).failing("room_video")) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sites": 0}, "--sites: must be at least 1, got 0"),
    ({"pcs": 3}, "--pcs: must be at least 4"),
    ({"fail": ("nope",)}, "--fail: unknown rule 'nope'"),
    ({"fail_share": 1.5}, "--fail-share: must be between 0 and 1, got 1.5"),
    ({"interval_s": 3600}, "--interval: must be 1 to 1200 s, got 3600"),
    ({"prefix": "Sim"}, "--prefix: 'Sim' does not make valid site ids"),
])
def test_bad_arguments_are_one_line(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"sites": 2, "pcs": 6, **kwargs}
    with pytest.raises(ConfigError) as err:
        sim.build(**args)
    assert str(err.value).startswith(message)


def test_sites_tree_is_what_the_collector_reads(tmp_path: Path) -> None:
    out = tmp_path / "sites.yaml"
    assert main(["simulate", "--sites", "25", "--pcs", "6", "--fail", "room_gov_share",
                 "--write-sites", str(out), "--write-pcs", str(tmp_path / "pcs.txt")]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# The sites tree of a simulated fleet")
    org = read_org(yaml.safe_load(text)["sites"], None)
    fleet = sim.build(25, 6, ("room_gov_share",))
    assert [s.id for s in org.sites] == [s.id for s in fleet.sites]
    assert org.sites[0].name == "第1中队"
    assert org.nodes["sim"].name == "模拟局"
    assert [n.name for n in org.nodes["sim"].children] == ["第1支队", "第2支队"]
    assert org.nodes["sim-d2"].children[0].name == "第6大队"
    for s, f in zip(org.sites, fleet.sites):
        assert (s.cadres, s.staff, s.classes) == (f.cadres, f.staff, f.classes)
        assert s.room.open == ("00:00-24:00",) and s.room.timezone == "Asia/Shanghai"
    assert (tmp_path / "pcs.txt").read_text().splitlines()[0] == \
        f"{fleet.pcs[0].site},{fleet.pcs[0].host}"
    english = sim.sites_tree(sim.build(1, 4, names="en"))
    assert english[0]["name"] == "Simulated bureau"
    assert english[0]["children"][0]["children"][0]["children"][0]["name"] == "Squadron 1"


# --- the messages ------------------------------------------------------------


def test_every_payload_decodes_and_names_its_pc() -> None:
    fleet = sim.build(2, 6, sim.RULE_NAMES, fail_share=0.5, seed=5, interval_s=600)
    pcs = {(p.site, p.host): p for p in fleet.pcs}
    # A fixed end: which 6-hourly tests fall in a closed room's night (and are
    # sent at switch-on instead) depends on the hour, so a wall-clock end made
    # the bandwidth count vary from 16 to 21 between runs.
    end = 1_796_342_400.0  # 2026-12-04 00:00 UTC
    history = messages.history(fleet, end - 30 * 3600, end, check=False)
    assert inspect.isgenerator(messages.history(fleet, 0, 1))  # lazy: a tick at a time
    kinds: Counter[str] = Counter()
    last = 0.0
    for out in history:
        msg = protocol.decode(out.topic, out.payload)  # as the collector does
        pc = pcs[(msg.site, msg.host)]
        assert (msg.network, msg.role, msg.kind) == (pc.network, pc.role, out.kind)
        assert out.retain is protocol.KINDS[out.kind].retained
        assert msg.ts >= last - 1e-3  # time order
        last = msg.ts
        kinds[out.kind] += 1
        if out.kind in ("inventory", "metrics"):
            assert {k: len(v) for k, v in msg.sections.items()} == \
                ({"disks": 1, "nics": 1} if out.kind == "inventory"
                 else {"disks": 1, "diskio": 1, "nics": 1})
        if out.kind == "status" and msg.fields["state"] == "online":
            assert msg.fields["interval_s"] == 600
        if out.kind == "isolation":
            assert pc.network == "gov" and msg.fields["canaries_checked"] > 0
            assert msg.fields["violated"] is pc.isolation_violated
        if out.kind == "probe":
            assert msg.fields["ok"] is not pc.portal_fails
        if out.kind == "bandwidth":
            assert pc.tester
    assert set(kinds) == set(protocol.KINDS)
    assert kinds["metrics"] > 12 * 125  # 12 PCs, 180 ticks, one room closed 6 h a night
    assert kinds["bandwidth"] >= 4 * 5  # 4 testers, every 6 h


def test_a_pc_sends_what_the_agent_sends_when_the_agent_does() -> None:
    fleet = sim.build(1, 6, seed=2)
    site = fleet.sites[0]
    tester = next(p for p in site.pcs if p.tester and p.network == "gov")
    first = messages.due(fleet, site, tester, 1.7e9, 0)
    assert [o.kind for o in first] == ["status", "inventory", "metrics", "probe", "isolation",
                                       "bandwidth"]
    later = messages.due(fleet, site, tester, 1.7e9 + 60, 1)
    assert [o.kind for o in later] == ["metrics", "probe", "isolation"]
    plain = next(p for p in site.pcs if p.network == "internet" and not p.tester)
    assert [o.kind for o in messages.due(fleet, site, plain, 1.7e9 + 60, 1)] == \
        ["metrics", "probe"]
    hourly = messages.due(fleet, site, plain, 1.7e9 + 3600, 60)
    assert [o.kind for o in hourly] == ["status", "metrics", "probe"]
    # Counters grow with uptime, reset at the weekly reboot.
    m1, m2 = (json.loads(messages.due(fleet, site, plain, 1.7e9 + d, 1)[0].payload)
              for d in (60, 120))
    assert m2["nics"][0]["bytes_recv"] >= m1["nics"][0]["bytes_recv"]


def test_a_closing_room_is_off_at_night_and_says_so() -> None:
    fleet = sim.build(1, 6, ("room_open_all_day",), fail_share=1.0)
    site = fleet.sites[0]
    room = next(p for p in site.pcs if p.role == "room")
    cadre = next(p for p in site.pcs if p.role == "cadre")
    tz = ZoneInfo("Asia/Shanghai")
    midnight = dt.datetime(2025, 3, 4, 0, 0, 30, tzinfo=tz).timestamp()
    closing = messages.due(fleet, site, room, midnight, 5)
    assert [(o.kind, json.loads(o.payload)["state"]) for o in closing] == [("status", "offline")]
    assert messages.due(fleet, site, room, midnight + 3 * 3600, 185) == []
    assert messages.due(fleet, site, cadre, midnight + 3 * 3600, 185) != []
    opening = messages.due(fleet, site, room, midnight + 6 * 3600, 365)
    assert [o.kind for o in opening][:3] == ["status", "inventory", "metrics"]
    assert json.loads(opening[2].payload)["uptime_s"] == pytest.approx(30, abs=1)


# --- the command line ----------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--sites", "2", "--pcs", "6"], "no broker: give --broker HOST:PORT or --config FILE"),
    (["--sites", "2", "--pcs", "6", "--broker", "h:x"], "--broker: 'h:x': port 'x'"),
    (["--sites", "2", "--pcs", "6", "--broker", "h:1", "--backfill", "800"],
     "--backfill: must be 0 to 719 hours"),
    (["--sites", "2", "--pcs", "6", "--broker", "h:1", "--connections", "2",
      "--passwords", "."], "--connections and --passwords: per-PC users need one connection"),
    (["--sites", "2", "--pcs", "6", "--broker", "h:1", "--passwords", "/nonexistent"],
     "--passwords: '/nonexistent' is not a folder"),
    (["--sites", "2", "--pcs", "6", "--fail", "room_gov_share,x", "--broker", "h:1"],
     "--fail: unknown rule 'x'"),
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netroom simulate: error: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_too_many_connections_for_the_open_file_limit_is_said_up_front() -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    r = subprocess.run([sys.executable, "-m", "collector.cli.main", "simulate", "--sites",
                        "50", "--pcs", "10", "--broker", "127.0.0.1:1"], cwd=REPO,
                       capture_output=True, text=True, timeout=60, preexec_fn=low_limit,
                       check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("netroom simulate: error: 500 connections need about 564 "
                               "open files, but this process may open 200 (ulimit -n")
    assert "--connections K" in r.stderr and "Traceback" not in r.stderr


def test_shared_connections_deliver_everything(mosquitto: Mosquitto) -> None:
    r = run_cli("collector.cli.main", "simulate", "--sites", "4", "--pcs", "5",
                "--broker", f"{mosquitto.host}:{mosquitto.port}", "--connections", "3",
                "--duration", "1", "--backfill", "0.5")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("netroom simulate: 20 PCs over 3 connections (3 connected, "
                           "0 refused): sent "), line
    sent = int(line.split("sent ")[1].split(",")[0])
    assert f"acked {sent}, failed 0" in line and sent > 20 * 30


def test_until_sigterm_then_a_clean_shutdown(mosquitto: Mosquitto) -> None:
    p = subprocess.Popen([sys.executable, "-m", "collector.cli.main", "simulate", "--sites",
                          "2", "--pcs", "4", "--broker", f"127.0.0.1:{mosquitto.port}"],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        for line in p.stderr:
            if "publishing until Ctrl-C or SIGTERM" in line:
                break
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0
    # Per PC: status, inventory, metrics, probe (gov: isolation; testers:
    # bandwidth), then its status offline.
    assert "8 connected, 0 refused): sent " in out and "failed 0" in out


def test_one_user_per_pc_on_the_production_broker(tmp_path: Path) -> None:
    fleet = sim.build(2, 4, seed=9)
    prod = ProductionMosquitto(workdir=tmp_path / "prod",
                               pcs=[(p.site, p.host) for p in fleet.pcs])
    prod.start()
    try:
        folder = tmp_path / "passwords"
        folder.mkdir()
        lines = [f"{u}:{pw}" for u, pw in prod.passwords.items() if "/" in u]
        (folder / "sim.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        r = run_cli("collector.cli.main", "simulate", "--sites", "2", "--pcs", "4",
                    "--seed", "9", "--broker", f"127.0.0.1:{prod.port}",
                    "--passwords", str(folder), "--duration", "1")
        assert r.returncode == 0, r.stderr
        assert "8 connected, 0 refused" in r.stdout and "failed 0" in r.stdout
        # Another seed: other PCs, which have no users on this broker.
        (folder / "sim.txt").write_text("\n".join(
            f"{p.site}/{p.host}:wrong" for p in sim.build(2, 4, seed=10).pcs) + "\n")
        r = run_cli("collector.cli.main", "simulate", "--sites", "2", "--pcs", "4",
                    "--seed", "10", "--broker", f"127.0.0.1:{prod.port}",
                    "--passwords", str(folder), "--duration", "1")
        assert r.returncode == 1
        assert "8 connections refused" in r.stderr and "0 connected, 8 refused" in r.stdout
    finally:
        prod.kill()


# --- end to end: simulate -> mosquitto -> collector -> InfluxDB -> report ----------

DB = "simulated"


def hours_since_yesterday(tz: str = "Asia/Shanghai") -> float:
    """Hours from the start of yesterday (local) to now: what room_open_all_day judges."""
    now = dt.datetime.now(ZoneInfo(tz))
    start = (now - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (now - start).total_seconds() / 3600


def simulate_into_collector(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
                            run_collector: Callable[[Path], Any], fleet: sim.Fleet,
                            shape: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Run `netroom simulate` (``shape``, which makes ``fleet``) into a collector
    whose sites tree is the one --write-sites writes; `netroom report`'s
    verdicts: site -> rule -> result."""
    sites_file = tmp_path / "sites.yaml"
    assert main(["simulate", *shape, "--write-sites", str(sites_file)]) == 0
    tree = yaml.safe_load(sites_file.read_text(encoding="utf-8"))["sites"]
    cfg = write_config(tmp_path, mosquitto, influxd, db=DB, sites=tree)
    run_collector(cfg)
    # History from an hour before yesterday began (local): the room's whole
    # yesterday is in it, and the hour before (heartbeats read around it).
    # An interval of 20 min (the longest the collector reads heartbeats
    # around a day for) keeps it to a few thousand messages.
    backfill = math.ceil(hours_since_yesterday() + 1)
    started = time.time()
    r = run_cli("collector.cli.main", "simulate", *shape, "--backfill", str(backfill),
                "--duration", "2", "--config", str(cfg), timeout=120)
    assert r.returncode == 0, r.stderr
    n = len(fleet.pcs)
    assert f"{n} connected, 0 refused" in r.stdout and "failed 0" in r.stdout, r.stdout
    # Each PC's last message is its status offline (its clean shutdown; a room
    # switched off for the night said it at closing): once those are stored,
    # so is everything each PC sent before.
    ended = time.time()
    on = sum(messages.up(fleet, s, p, ended) for s in fleet.sites for p in s.pcs)
    wait_count(influxd, DB, "status", "state", on,
               f"\"state\" = 'offline' AND time > {int(started * 1000)}ms", timeout=30)
    doc = json.loads(run_cli("collector.cli.main", "report", "--config", str(cfg),
                             "--format", "json").stdout)
    assert doc["unregistered"] == []
    return {s["site"]: {r["rule"]: r for r in s["rules"]} for s in doc["sites"]}


def test_simulated_fleet_gives_the_shaped_verdicts(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    """The task's example: 3 sites x 6 PCs, one shaped to fail room_gov_share.
    Every other rule, room_open_all_day included (yesterday, from the
    backfilled heartbeats), must pass everywhere: the fleet is realistic
    enough for the real rules, not just for the one asked to fail."""
    shape = ["--sites", "3", "--pcs", "6", "--fail", "room_gov_share", "--seed", "4",
             "--interval", "1200"]
    fleet = sim.build(3, 6, ("room_gov_share",), seed=4, interval_s=1200)
    shaped = fleet.failing("room_gov_share")
    assert len(shaped) == 1
    verdicts = simulate_into_collector(tmp_path, mosquitto, influxd, run_collector, fleet,
                                       shape)
    assert list(verdicts) == [s.id for s in fleet.sites]
    for site in fleet.sites:
        got = verdicts[site.id]
        statuses = {rule: r["status"] for rule, r in got.items()}
        want = {rule: "fail" if site.id in shaped and rule == "room_gov_share" else "pass"
                for rule in sim.RULE_NAMES}
        assert statuses == want, (site.id, {k: got[k] for k in got if statuses[k] != want[k]})
    room = verdicts[shaped[0]]["room_gov_share"]
    gov, total = count(fleet.site(shaped[0]), "gov", "room"), count(fleet.site(shaped[0]),
                                                                     role="room")
    assert room["actual"] == pytest.approx(gov / total, abs=1e-4)
    assert room["shortfall"] == {"gov_pcs": total - 2 * gov}


def test_every_rule_fails_where_shaped_to(tmp_path: Path, mosquitto: Mosquitto,
                                          influxd: Influxd,
                                          run_collector: Callable[[Path], Any]) -> None:
    """All nine rules failing at one site of two, by evidence (fail, never no
    data), and passing at the other."""
    rules = ",".join(sim.RULE_NAMES)
    shape = ["--sites", "2", "--pcs", "8", "--fail", rules, "--fail-share", "0.5",
             "--seed", "6", "--interval", "1200"]
    fleet = sim.build(2, 8, sim.RULE_NAMES, fail_share=0.5, seed=6, interval_s=1200)
    verdicts = simulate_into_collector(tmp_path, mosquitto, influxd, run_collector, fleet,
                                       shape)
    for site in fleet.sites:
        want = "fail" if site.fails else "pass"
        got = {rule: r["status"] for rule, r in verdicts[site.id].items()}
        assert got == dict.fromkeys(sim.RULE_NAMES, want), (site.id, verdicts[site.id])
