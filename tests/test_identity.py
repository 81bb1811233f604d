"""One identity per PC: host ids that tell clones apart, a client id per PC,
clones counted one by one and listed (agent/identity.py,
collector/store/loaders/devices.py, docs/collectors.md "Identity")."""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
import yaml
from harness import REPO, wait_count, write_config
from servers import Influxd, Mosquitto

from agent import identity
from agent.config import default_host
from agent.config import load as load_agent
from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.store.loaders import devices
from collector.store.rows import Loaded
from netroom import protocol

MID = "0123456789abcdef0123456789abcdef"
MACHINE = hmac.new(MID.encode(), b"netroom-host-id", hashlib.sha256).hexdigest()[:32]
UUID_A = "4c4c4544-0042-3510-8051-b7c04f4e4b32"


def hw(value: str) -> str:
    """The documented hardware part: 16 hex of SHA-256 of a fixed prefix and the value."""
    return hashlib.sha256(b"netroom-hardware-id:" + value.encode()).hexdigest()[:16]


# -- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "mid"), [
    (MID + "\n", MID), (MID.upper(), MID), ("uninitialized\n", ""), ("", ""), ("0123", "")])
def test_parse_machine_id(text: str, mid: str) -> None:
    assert identity.parse_machine_id(text) == mid


@pytest.mark.parametrize(("text", "value"), [
    (UUID_A.upper() + "\n", UUID_A),
    ("03000200-0400-0500-0006-000700080009", ""),  # AMI's default, on many boards
    ("00000000-0000-0000-0000-000000000000", ""),
    ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", ""),
    ("Not Settable", ""), ("", "")])
def test_usable_uuid(text: str, value: str) -> None:
    assert identity.usable_uuid(text) == value


@pytest.mark.parametrize(("text", "value"), [
    ("MJ0ABCDE\n", "MJ0ABCDE"), ("To be filled by O.E.M.", ""), ("Default string", ""),
    ("System Serial Number", ""), ("0000000000", ""), ("........", ""), ("N/A", ""),
    ("123", ""), ("  PF2XYZ12  ", "PF2XYZ12")])
def test_usable_serial(text: str, value: str) -> None:
    assert identity.usable_serial(text) == value


def test_usable_mac_and_locally_administered() -> None:
    assert identity.usable_mac("00-1A-2B-3C-4D-5E") == "00:1a:2b:3c:4d:5e"
    assert identity.usable_mac("00:00:00:00:00:00") == ""
    assert identity.usable_mac("01:00:5e:00:00:01") == ""  # multicast
    assert identity.usable_mac("80:00:00:00:00:00:00:00:fe:80") == ""  # Infiniband, not a MAC
    assert identity.locally_administered("02:42:ac:11:00:02")  # docker0
    assert identity.locally_administered("52:54:00:12:34:56")  # QEMU's default
    assert not identity.locally_administered("00:1a:2b:3c:4d:5e")


def _smbios(major: int, minor: int, uuid_bytes: bytes) -> bytes:
    """A raw SMBIOS table as Windows keeps it in the registry: header, type 1
    (system), type 2 (baseboard), type 127 (end)."""
    t1 = bytes([1, 27, 1, 0, 1, 2, 3, 4]) + uuid_bytes + bytes([6, 5, 6]) + \
        b"LENOVO\0" b"10T7S0BF00\0" b"ThinkCentre M720t\0" b"MJ0ABCDE\0" \
        b"LENOVO_MT_10T7\0" b"ThinkCentre M720t\0\0"
    t2 = bytes([2, 15, 2, 0, 1, 2, 3, 4, 5, 9, 6, 3, 0, 10, 0]) + \
        b"LENOVO\0" b"3136\0" b"SDK0J40697 WIN\0" b"L1HF95K01ZZ\0" b"Not Available\0" \
        b"Default string\0\0"
    end = bytes([127, 4, 0xFF, 0xFF, 0, 0])
    table = t1 + t2 + end
    return bytes([0, major, minor, 0]) + len(table).to_bytes(4, "little") + table


def test_parse_smbios_reads_uuid_and_serials_like_linux() -> None:
    raw = uuid.UUID(UUID_A).bytes_le  # SMBIOS >= 2.6: first three fields little-endian
    assert identity.parse_smbios(_smbios(3, 2, raw)) == {
        "product_uuid": UUID_A, "product_serial": "MJ0ABCDE", "board_serial": "L1HF95K01ZZ"}
    # Before 2.6 the bytes are in network order, as Linux then prints them too.
    old = identity.parse_smbios(_smbios(2, 4, raw))
    assert old["product_uuid"] == str(uuid.UUID(bytes=raw))
    assert identity.parse_smbios(b"") == {}
    assert identity.parse_smbios(_smbios(3, 2, raw)[:20]) == {}  # cut short: nothing, no crash
    # A structure claiming a length under its header would loop: stopped.
    assert identity.parse_smbios(bytes([0, 3, 2, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0])) == {}


def test_parse_wmic_uuid() -> None:
    out = "UUID                                  \r\r\n" \
          "4C4C4544-0042-3510-8051-B7C04F4E4B32  \r\r\n\r\r\n"
    assert identity.parse_wmic_uuid(out) == UUID_A
    assert identity.parse_wmic_uuid("UUID\r\r\nFFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\r\r\n") == ""
    assert identity.parse_wmic_uuid("No Instance(s) Available.\r\r\n") == ""


ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlp2s0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
wlp2s0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
enp3s0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""


def test_primary_nic_holds_the_default_route_else_comes_first_by_name() -> None:
    assert identity.parse_route_ifaces(ROUTE) == ["wlp2s0"]
    nics = [("enp3s0", "00:1a:2b:3c:4d:5e", True), ("wlp2s0", "00:1a:2b:3c:4d:5f", True),
            ("docker0", "02:42:ac:11:00:02", False)]
    assert identity.choose_mac(nics, ["wlp2s0"]) == ("wlp2s0", "00:1a:2b:3c:4d:5f")
    assert identity.choose_mac(nics) == ("enp3s0", "00:1a:2b:3c:4d:5e")
    assert identity.choose_mac(nics[2:], ["docker0"]) is None
    # Linux: a bus device and the device's own address (addr_assign_type 0).
    assert identity.burnt_in_linux("52:54:00:12:34:56", True, "0\n")  # a VM's virtio NIC
    assert not identity.burnt_in_linux("02:42:ac:11:00:02", False, "3")  # a bridge
    assert not identity.burnt_in_linux("da:3f:11:22:33:44", True, "3\n")  # randomised Wi-Fi
    assert identity.burnt_in_linux("00:1a:2b:3c:4d:5e", True, "")  # no such file: universal
    assert not identity.burnt_in_linux("02:1a:2b:3c:4d:5e", True, "")
    assert identity.is_virtual_windows("vEthernet (WSL)")
    assert identity.is_virtual_windows("VMware Network Adapter VMnet8")
    assert not identity.is_virtual_windows("以太网")


def test_hardware_falls_back_uuid_then_board_then_product_serial_then_mac() -> None:
    chain = [("product_uuid", "03000200-0400-0500-0006-000700080009"),
             ("board_serial", "Default string"), ("product_serial", "PF2XYZ12"),
             ("mac:enp3s0", "00:1a:2b:3c:4d:5e")]
    assert identity.pick_hardware(chain) == ("product_serial", "PF2XYZ12")
    assert identity.pick_hardware(chain[3:]) == ("mac:enp3s0", "00:1a:2b:3c:4d:5e")
    assert identity.pick_hardware([("product_uuid", UUID_A.upper()), *chain]) == (
        "product_uuid", UUID_A)
    assert identity.pick_hardware([]) == ("", "")


def test_host_id_short_id_host_and_client_id_are_documented_functions() -> None:
    # Fixed derivations: a PC keeps its id across agent upgrades.
    host_id = identity.compose(MACHINE, UUID_A)
    assert host_id == f"{MACHINE}.{hw(UUID_A)}"
    assert identity.compose(MACHINE, "") == MACHINE  # no hardware: as earlier agents sent
    short = hashlib.sha256(host_id.encode()).hexdigest()[:6]
    assert identity.short_id(host_id) == short
    assert protocol.split_host_id(host_id) == (MACHINE, hw(UUID_A))
    assert protocol.split_host_id("h-p1") == ("h-p1", "")

    assert identity.suffixed("pc-07", host_id) == f"pc-07-{short}"
    long = identity.suffixed("x" * 64, host_id)
    assert len(long) == 64 and protocol.ID_RE.match(long) and long.endswith("-" + short)
    # One format, matchable as netroom-agent-<site>-*: the short id once.
    assert identity.client_id("sq-1", f"pc-07-{short}", host_id) == \
        f"netroom-agent-sq-1-pc-07-{short}"
    assert identity.client_id("sq-1", "pc-07", host_id) == f"netroom-agent-sq-1-pc-07-{short}"
    other = identity.compose(MACHINE, "00:1a:2b:3c:4d:5e")
    assert identity.client_id("sq-1", "pc-07", other) != identity.client_id(
        "sq-1", "pc-07", host_id)


# -- reading ------------------------------------------------------------------


def _root(tmp: Path, mid: str = MID, dmi: dict[str, str] | None = None,
          nics: dict[str, tuple[str, str, bool]] | None = None, route: str = ROUTE) -> Path:
    """A Linux file tree as the agent reads it: machine-id, DMI, NICs, routes."""
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/machine-id").write_text(mid + "\n")
    d = root / "sys/class/dmi/id"
    d.mkdir(parents=True)
    for name, value in (dmi or {}).items():
        (d / name).write_text(value + "\n")
    for name, (mac, assign, device) in (nics or {}).items():
        n = root / "sys/class/net" / name
        n.mkdir(parents=True)
        (n / "address").write_text(mac + "\n")
        (n / "addr_assign_type").write_text(assign + "\n")
        if device:
            (n / "device").mkdir()
    (root / "proc/net").mkdir(parents=True)
    (root / "proc/net/route").write_text(route)
    return root


NICS = {"enp3s0": ("00:1a:2b:3c:4d:5e", "0", True), "wlp2s0": ("00:1a:2b:3c:4d:5f", "0", True),
        "docker0": ("02:42:ac:11:00:02", "3", False)}


def test_read_identity_prefers_the_product_uuid(tmp_path: Path) -> None:
    root = _root(tmp_path, dmi={"product_uuid": UUID_A.upper(), "board_serial": "L1HF95K01ZZ"},
                 nics=NICS)
    got = identity.read_identity(str(tmp_path / "state"), "Linux", env={}, root=str(root))
    assert got == (f"{MACHINE}.{hw(UUID_A)}", "product_uuid")
    assert not (tmp_path / "state").exists()  # the machine id was enough: nothing kept
    # Stable: the same PC reads the same id again.
    assert identity.read_identity(str(tmp_path / "state"), "Linux", env={},
                                  root=str(root)) == got


def test_read_identity_unprivileged_falls_back_to_the_routed_nics_mac(tmp_path: Path) -> None:
    root = _root(tmp_path, nics=NICS)  # DMI files unreadable (root only): absent here
    got = identity.read_identity(str(tmp_path), "Linux", env={}, root=str(root))
    assert got == (f"{MACHINE}.{hw('00:1a:2b:3c:4d:5f')}", "mac:wlp2s0")


def test_read_identity_without_hardware_is_the_machine_part(tmp_path: Path) -> None:
    root = _root(tmp_path, nics={"veth0": ("02:42:ac:11:00:02", "3", False)})
    assert identity.read_identity(str(tmp_path), "Linux", env={}, root=str(root)) == (
        MACHINE, "")


def test_clones_of_one_image_differ_by_hardware_and_the_env_override_wins(
        tmp_path: Path) -> None:
    a = identity.read_identity(str(tmp_path), "Linux", env={}, root=str(_root(
        tmp_path / "a", dmi={"product_uuid": UUID_A})))
    b = identity.read_identity(str(tmp_path), "Linux", env={}, root=str(_root(
        tmp_path / "b", dmi={"product_uuid": "4c4c4544-0042-3510-8051-b7c04f4e4b33"})))
    assert a.host_id != b.host_id and a.short != b.short
    assert protocol.split_host_id(a.host_id)[0] == protocol.split_host_id(b.host_id)[0]
    env = {identity.HARDWARE_ENV: " asset-0042 "}
    c = identity.read_identity(str(tmp_path), "Linux", env=env, root=str(_root(
        tmp_path / "c", dmi={"product_uuid": UUID_A})))
    assert c == (f"{MACHINE}.{hw('asset-0042')}", "env")


def test_read_identity_keeps_a_uuid_when_there_is_no_machine_id(tmp_path: Path) -> None:
    root = _root(tmp_path, mid="uninitialized", dmi={"product_uuid": UUID_A})
    state = tmp_path / "state"
    got = identity.read_identity(str(state), "Linux", env={}, root=str(root))
    kept = (state / "host-id").read_text().strip()
    assert got == (f"{kept}.{hw(UUID_A)}", "product_uuid")
    assert identity.read_identity(str(state), "Linux", env={}, root=str(root)) == got


# -- the agent's config -------------------------------------------------------


def _agent_config(tmp: Path, **agent: Any) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    mqtt = agent.pop("mqtt", {})
    path.write_text(yaml.safe_dump({
        "mqtt": mqtt,
        "agent": {"site": "sq-1", "network": "gov", "state_dir": str(tmp / "state"), **agent}}))
    return path


def test_default_host_and_client_id_carry_the_short_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(identity.HARDWARE_ENV, "board-A")
    cfg = load_agent(_agent_config(tmp_path / "a"))
    machine, hardware = protocol.split_host_id(cfg.host_id)
    assert hardware == hw("board-A")
    short = identity.short_id(cfg.host_id)
    assert cfg.host == identity.suffixed(default_host(), cfg.host_id)
    assert cfg.host.endswith("-" + short)
    assert cfg.mqtt.client_id == f"netroom-agent-sq-1-{cfg.host}"

    monkeypatch.setenv(identity.HARDWARE_ENV, "board-B")
    other = load_agent(_agent_config(tmp_path / "b"))
    assert protocol.split_host_id(other.host_id)[0] == machine  # one image, one machine id
    assert (other.host, other.mqtt.client_id) != (cfg.host, cfg.mqtt.client_id)


def test_a_configured_host_is_kept_and_the_client_id_still_differs_per_pc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = []
    for board in ("board-A", "board-B"):
        monkeypatch.setenv(identity.HARDWARE_ENV, board)
        cfg = load_agent(_agent_config(tmp_path / board, host="pc-07"))
        assert cfg.host == "pc-07"
        assert cfg.mqtt.client_id == f"netroom-agent-sq-1-pc-07-{identity.short_id(cfg.host_id)}"
        got.append(cfg.mqtt.client_id)
    assert got[0] != got[1]
    cfg = load_agent(_agent_config(tmp_path / "c", host="pc-07", mqtt={"client_id": "mine"}))
    assert cfg.mqtt.client_id == "mine"  # set by hand: taken as is


# -- the collector's count and clone list (pure) ------------------------------


ORG = Org(nodes={s.id: s for s in read_org(
    [{"id": "a", "cadres": 0, "staff": 0}, {"id": "b", "cadres": 0, "staff": 0}],
    None).nodes.values()})
H = 3_600_000


def _row(site: str, host: str, host_id: str, t: int, hostname: str = "",
         net: str = "gov", role: str = "room") -> dict[str, Any]:
    return {"site": site, "host": host, "host_id": host_id, "network": net, "role": role,
            "time": t, "hostname": hostname or host}


def _assemble(rows: list[tuple[dict[str, Any], int]],
              ids: Sequence[dict[str, Any]] = ()) -> Loaded:
    """rows: (newest row, time of the series' first inventory)."""
    first = [{**r, "time": began} for r, began in rows]
    return devices.assemble([r for r, _ in rows], first, ORG, ids)


def test_three_clones_with_one_hostname_count_as_three_and_are_listed() -> None:
    ids = [f"{MACHINE}.{hw(b)}" for b in ("A", "B", "C")]
    hosts = [f"pc-07-{identity.short_id(i)}" for i in ids]
    got = _assemble([(_row("a", h, i, 5 * H, "PC-07.corp.local"), H)
                     for h, i in zip(hosts, ids)])
    snap = got.facts["a"]
    assert [d.host_id for d in snap["devices"]] == [i for _, i in sorted(zip(hosts, ids))]
    by = {c.shared: c for c in snap["clones"]}
    assert set(by) == {"hostname", "machine_id"}
    assert (by["hostname"].value, by["hostname"].hosts) == ("pc-07", tuple(sorted(hosts)))
    assert (by["machine_id"].value, len(by["machine_id"].host_ids)) == (MACHINE[:8], 3)


def test_one_hostname_different_machine_ids_and_a_shared_configured_host() -> None:
    # Three PCs given one `agent.host`: one series, three host ids (distinct()).
    ids = [f"m{i}.{hw(str(i))}" for i in range(3)]
    got = _assemble([(_row("a", "pc-07", ids[2], 5 * H), H)],
                    [_row("a", "pc-07", i, 0) for i in ids])
    snap = got.facts["a"]
    assert [d.host_id for d in snap["devices"]] == ids
    assert [(c.shared, c.hosts) for c in snap["clones"]] == [("hostname", ("pc-07",) * 3)]


def test_a_machine_id_shared_across_sites_is_listed_at_both() -> None:
    got = _assemble([(_row("a", "x1", f"{MACHINE}.{hw('1')}", 2 * H), H),
                     (_row("b", "y1", f"{MACHINE}.{hw('2')}", 2 * H), H),
                     (_row("b", "y2", "other", 2 * H), H)])
    assert [(c.shared, c.hosts) for c in got.facts["a"]["clones"]] == [
        ("machine_id", ("b/y1", "x1"))]
    assert [(c.shared, c.hosts) for c in got.facts["b"]["clones"]] == [
        ("machine_id", ("a/x1", "y1"))]
    assert len(got.facts["b"]["devices"]) == 2


def test_an_upgraded_agent_is_one_pc_and_a_clone_left_behind_is_another() -> None:
    new = f"{MACHINE}.{hw('A')}"
    # The old agent reported as pc-07 until 3 h; the upgraded one from 4 h.
    got = _assemble([(_row("a", "pc-07", MACHINE, 3 * H), 0),
                     (_row("a", "pc-07-aaaaaa", new, 6 * H, "pc-07"), 4 * H)])
    assert [d.host for d in got.facts["a"]["devices"]] == ["pc-07-aaaaaa"]
    assert got.facts["a"]["clones"] == ()
    # Still reporting after the new one began: another PC of the image.
    got = _assemble([(_row("a", "pc-07", MACHINE, 5 * H), 0),
                     (_row("a", "pc-07-aaaaaa", new, 6 * H, "pc-07"), 4 * H)])
    assert [d.host for d in got.facts["a"]["devices"]] == ["pc-07", "pc-07-aaaaaa"]
    # With a configured host both ids are in one series: one PC.
    got = _assemble([(_row("a", "pc-07", new, 6 * H), 0)],
                    [_row("a", "pc-07", i, 0) for i in (MACHINE, new)])
    assert [d.host_id for d in got.facts["a"]["devices"]] == [new]


def test_a_renamed_pc_is_one_pc_and_clones_with_a_bare_machine_id_stay_apart() -> None:
    new = f"{MACHINE}.{hw('A')}"
    got = _assemble([(_row("a", "pc-07-aaaaaa", new, 3 * H, "pc-07"), 0),
                     (_row("a", "lab-1-aaaaaa", new, 6 * H, "lab-1"), 4 * H)])
    assert [d.host for d in got.facts["a"]["devices"]] == ["lab-1-aaaaaa"]
    # Earlier agents' clones: one machine id, two names, not overlapping: two PCs.
    got = _assemble([(_row("a", "pc-07", MACHINE, 3 * H), 0),
                     (_row("a", "pc-08", MACHINE, 6 * H), 4 * H)])
    assert [d.host for d in got.facts["a"]["devices"]] == ["pc-07", "pc-08"]
    assert [c.shared for c in got.facts["a"]["clones"]] == ["machine_id"]


# -- the real pipeline --------------------------------------------------------


def _kept_uuid(state: Path) -> None:
    """Each clone's state dir holds the image's kept id (used without a machine-id)."""
    state.mkdir(parents=True)
    (state / "host-id").write_text("5b3a3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n")


def test_three_agents_with_one_hostname_count_as_three_and_are_listed_as_clones(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    sites = [{"id": "sq-1", "name": "一中队", "cadres": 0, "staff": 6}]
    collector_cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db, sites=sites)
    run_collector(collector_cfg)
    boards = {"A": "board-uuid-A", "B": "board-uuid-B", "C": "board-uuid-C"}
    procs, expected = [], {}
    for name, board in boards.items():
        d = tmp_path / f"pc-{name}"
        d.mkdir()
        _kept_uuid(d / "agent-state")
        cfg = write_config(d, mosquitto, agent={"role": "office"})
        env = {identity.HARDWARE_ENV: board}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(identity.HARDWARE_ENV, board)
            expected[name] = load_agent(cfg)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(cfg), "--once"], cwd=REPO,
            env={**_environ(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:  # all three at once, like PCs booting together
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()

    # Three client ids, one per PC, none taking over another's connection.
    log = (mosquitto.datadir / "mosquitto.log").read_text()
    client_ids = {c.mqtt.client_id for c in expected.values()}
    assert len(client_ids) == 3
    for cid in client_ids:
        assert re.search(rf"New client connected from \S+ as {re.escape(cid)} ", log), cid
    assert "already connected" not in log

    # Three series, one per PC, and three PCs in the site's count.
    assert wait_count(influxd, influx_db, "inventory", "host_id", 3) == 3
    from collector.config import load as load_collector
    from collector.influx.client import InfluxSink
    from collector.store import snapshot

    ccfg = load_collector(collector_cfg)
    sink = InfluxSink(ccfg.influxdb)
    try:
        snaps = snapshot.build(snapshot.reader(sink), ccfg.org, int(time.time() * 1000))
    finally:
        sink.close()
    snap = snaps.by_site["sq-1"]
    hosts = sorted(c.host for c in expected.values())
    assert snap.count("gov") == 3
    assert sorted(d.host for d in snap.devices) == hosts
    assert {d.host_id for d in snap.devices} == {c.host_id for c in expected.values()}
    assert all(h.startswith(default_host() + "-") for h in hosts)
    name = socket.gethostname().split(".")[0].lower()
    assert [(c.shared, c.value, c.hosts) for c in snap.clones] == [
        ("hostname", name, tuple(hosts)),
        ("machine_id", protocol.split_host_id(expected["A"].host_id)[0][:8], tuple(hosts))]
    metrics = influxd.query('SELECT count("uptime_s") FROM metrics GROUP BY "host"', influx_db)
    assert len(metrics["results"][0]["series"]) == 3  # no series shared, none overwritten

    # The count rules see them: 3 shared gov PCs for the staff.
    from collector.compliance.rules import staff_gov_pcs

    assert staff_gov_pcs.evaluate(snap, staff_gov_pcs.DEFAULTS).actual == 3


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != identity.HARDWARE_ENV}
