"""The hardware register end to end: inventories with hand-made differences go
through mosquitto, the collector and influxd; exactly the expected
``inventory_change`` points come out (none for churn), once, across a
restart; ``netroom inventory`` and ``netroom changes`` show what was
published, by name, in Chinese; the dashboard's InfluxQL answers on real data."""
from __future__ import annotations

import copy
import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import T0, Publisher, message, run_cli, series, wait_count, write_config
from servers import Influxd, Mosquitto, wait_until

from collector.store.state.db import path_in
from netroom import schema

GIB = 2**30
TREE: list[dict[str, Any]] = [{
    "id": "bureau", "name": "市局", "children": [{
        "id": "zd-1", "name": "一支队", "min_spec": {"memory_gib": 4, "cores": 2},
        "children": [
            {"id": "sq-1", "name": "一中队", "cadres": 1, "staff": 2},
            {"id": "sq-2", "name": "二中队", "cadres": 1, "staff": 2,
             "min_spec": {"os": ["Kylin", "UOS"]}},
        ]}]}]

BASE: dict[str, Any] = {
    "hostname": "PC-1", "host_id": "m1.00000000000000a1", "os_name": "Kylin V10",
    "os_version": "V10 SP1", "kernel": "4.19.90-24", "arch": "aarch64",
    "cpu_model": "Phytium FTC663", "cpu_cores": 4, "cpu_threads": 4, "cpu_mhz": 2300.0,
    "mem_total_bytes": 8 * GIB - 200 * 2**20, "vendor": "Great Wall", "model": "TD120A2",
    "serial": "GW-0001", "boot_time_s": T0 - 3600.0, "agent_version": "1.4.0",
    "disks": [{"mount": "/", "device": "/dev/sda2", "fstype": "ext4", "total_bytes": 500 * 10**9},
              {"mount": "/data", "device": "/dev/sda3", "fstype": "xfs",
               "total_bytes": 200 * 10**9}],
    "nics": [{"name": "eth0", "mac": "00:1a:2b:3c:4d:5e", "ipv4": "10.1.0.7",
              "speed_mbps": 1000, "mtu": 1500, "is_up": True}],
}


def step(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body.update(changes)
    return body


def inventory(body: dict[str, Any], k: int, site: str = "sq-1", host: str = "pc-1"
              ) -> tuple[str, bytes]:
    return message("inventory", body, site=site, host=host, network="gov", role="cadre",
                   ts=T0 + k * 60)


def changes(influxd: Influxd, db: str) -> list[dict[str, Any]]:
    return list(series(influxd.query(f'SELECT * FROM "{schema.INVENTORY_CHANGE}"', db)))


def pending(spool: Path) -> int:
    return _rows(spool, "hardware_changes")


MEM_OUT = dict(mem_total_bytes=4 * GIB - 200 * 2**20)
SWAPPED = [{"mount": "/", "device": "/dev/nvme0n1p2", "fstype": "ext4",
            "total_bytes": 1000 * 10**9}, BASE["disks"][1]]


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
          run_collector: Callable[[Path], Any]) -> tuple[Path, Any]:
    config = write_config(tmp_path, mosquitto, influxd, influx_db, sites=TREE)
    return config, run_collector(config)


def test_changes_once_and_only_real_ones(fleet: tuple[Path, Any], tmp_path: Path,
                                         mosquitto: Mosquitto, influxd: Influxd,
                                         influx_db: str,
                                         run_collector: Callable[[Path], Any]) -> None:
    config, svc = fleet
    churn = step(kernel="4.19.90-25", cpu_mhz=1800.0, boot_time_s=T0 + 60.0,
                 hostname="pc-1.corp",
                 disks=[{**BASE["disks"][0], "device": "/dev/sdb2"}, BASE["disks"][1],
                        {"mount": "/media/usb", "device": "/dev/sdc1", "fstype": "vfat",
                         "total_bytes": 16 * 10**9}],
                 nics=[{**BASE["nics"][0], "ipv4": "10.1.0.99", "speed_mbps": 100},
                       {"name": "docker0", "mac": "02:42:ac:11:00:01", "ipv4": "172.17.0.1"}])
    pub = Publisher(mosquitto)
    try:
        pub.publish_many([
            inventory(BASE, 0),  # first: no change
            # Free space moves in metrics, never in the register.
            message("metrics", {"disks": [{"mount": "/", "total_bytes": 500 * 10**9,
                                           "free_bytes": 100 * 10**9}]},
                    site="sq-1", host="pc-1", role="cadre", ts=T0 + 30),
            message("metrics", {"disks": [{"mount": "/", "total_bytes": 500 * 10**9,
                                           "free_bytes": 90 * 10**9}]},
                    site="sq-1", host="pc-1", role="cadre", ts=T0 + 90),
            inventory(churn, 1),  # IP, link speed, boot time, MHz, kernel, USB stick
            inventory(step(**MEM_OUT), 2),  # a memory module removed
            inventory(step(**MEM_OUT, disks=SWAPPED), 3),  # the system disk swapped
            inventory(step(**MEM_OUT, disks=SWAPPED, os_version="V10 SP2"), 4),  # upgraded
            inventory(step(**MEM_OUT, disks=SWAPPED, os_version="V10 SP2"), 5,
                      site="sq-2"),  # moved to another squadron
        ])
        wait_count(influxd, influx_db, schema.INVENTORY_CHANGE, "action", 4)
        assert wait_until(
            lambda: any(r["change"] == "site" for r in changes(influxd, influx_db)), 20)
        got = sorted((int(r["time"]), r["site"], r["host"], r["change"], r.get("item") or "",
                      r["action"], r["before"], r["after"]) for r in changes(influxd, influx_db))
        t = (T0 + 60 * 2) * 1000
        assert got == [
            (t, "sq-1", "pc-1", "memory", "", "removed", "7.8 GiB", "3.8 GiB"),
            (t + 60_000, "sq-1", "pc-1", "disk", "/", "changed",
             "/dev/sda2 ext4 465.7 GiB", "/dev/nvme0n1p2 ext4 931.3 GiB"),
            (t + 120_000, "sq-1", "pc-1", "os", "", "changed", "Kylin V10 V10 SP1",
             "Kylin V10 V10 SP2"),
            (t + 180_000, "sq-2", "pc-1", "site", "", "changed", "sq-1", "sq-2"),
        ]
        mem = next(r for r in changes(influxd, influx_db) if r["change"] == "memory")
        assert (mem["before_bytes"], mem["after_bytes"], mem["delta_bytes"]) == (
            8 * GIB - 200 * 2**20, 4 * GIB - 200 * 2**20, -4 * GIB)
        assert (mem["detachment"], mem["network"], mem["role"]) == ("zd-1", "gov", "cadre")
        assert wait_until(lambda: pending(tmp_path / "spool") == 0, 20)

        # A restart keeps each PC's last inventory: a redelivered one changes
        # nothing, a new NIC is one change, and nothing is written twice.
        svc.stop()
        run_collector(config)
        moved = step(**MEM_OUT, disks=SWAPPED, os_version="V10 SP2")
        pub.publish_many([
            inventory(moved, 5, site="sq-2"),
            inventory({**moved, "nics": [*BASE["nics"], {"name": "eth1",
                                                         "mac": "00:aa:bb:cc:dd:ee"}]},
                      6, site="sq-2")])
        wait_count(influxd, influx_db, schema.INVENTORY_CHANGE, "action", 5)
        assert wait_until(lambda: pending(tmp_path / "spool") == 0, 20)
        nic = [r for r in changes(influxd, influx_db) if r["change"] == "nic"]
        assert [(r["item"], r["action"], r["after"]) for r in nic] == [
            ("eth1", "added", "eth1 00:aa:bb:cc:dd:ee")]
        assert len(changes(influxd, influx_db)) == 5
    finally:
        pub.close()


def test_register_and_changes_commands(fleet: tuple[Path, Any], tmp_path: Path,
                                       mosquitto: Mosquitto, influxd: Influxd,
                                       influx_db: str) -> None:
    config, _ = fleet
    small = step(hostname="pc-2", host_id="m2.00000000000000b2", mem_total_bytes=2 * GIB,
                 cpu_cores=2, serial="GW-0001", os_name="Windows 7", os_version="6.1.7601",
                 nics=[{"name": "eth0", "mac": "00:1a:2b:3c:4d:77"}])
    pub = Publisher(mosquitto)
    try:
        pub.publish_many([inventory(BASE, 0), inventory(step(**MEM_OUT), 1),
                          inventory(small, 1, site="sq-2", host="pc-2"),
                          message("status", {"state": "online", "settings_version": "v7"},
                                  site="sq-1", host="pc-1", role="cadre", ts=T0 + 200)])
        wait_count(influxd, influx_db, schema.INVENTORY_CHANGE, "action", 1)
        wait_count(influxd, influx_db, schema.STATUS, "state", 1)
    finally:
        pub.close()

    out = tmp_path / "register.csv"
    r = run_cli("collector.cli.main", "inventory", "--config", str(config), "--format", "csv",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert list(rows[0])[:6] == ["所属单位", "站点", "主机", "计算机名", "网络", "用途"]
    assert "内存 (GiB)" in rows[0] and "硬盘总容量 (GiB)" in rows[0]
    by = {row["主机"]: row for row in rows}
    assert set(by) == {"pc-1", "pc-2"}
    one, two = by["pc-1"], by["pc-2"]
    assert (one["所属单位"], one["站点"], one["网络"], one["用途"]) == (
        "一支队", "一中队", "政务网", "干部")
    assert float(one["内存 (GiB)"]) == round((4 * GIB - 200 * 2**20) / GIB, 2)
    assert float(one["硬盘总容量 (GiB)"]) == round(700 * 10**9 / GIB, 2)
    assert (one["CPU 核数"], one["序列号"], one["厂商"], one["型号"], one["架构"]) == (
        "4", "GW-0001", "Great Wall", "TD120A2", "aarch64")
    assert one["网卡 MAC"] == "eth0 00:1a:2b:3c:4d:5e"
    assert one["设置版本"] == "v7" and one["客户端版本"] == "1.4.0"
    assert one["待更换"] == ""  # 3.8 GiB reported counts as 4 GiB of modules
    assert "二中队/pc-2" in one["硬件重复"] and "GW-0001" in one["硬件重复"]
    assert "一中队/pc-1" in two["硬件重复"]
    assert "内存 2.0 GiB < 4 GiB" in two["待更换"] and "Windows 7" in two["待更换"]

    # The report's procurement part lists the same PC to replace, by name.
    r = run_cli("collector.cli.main", "report", "--config", str(config), "--format", "json")
    assert r.returncode == 0, r.stderr
    [replace] = json.loads(r.stdout)["to_replace"]
    assert (replace["unit"], replace["name"], replace["host"]) == ("一支队", "二中队", "pc-2")
    assert [x["key"] for x in replace["shortfalls"]] == ["memory_gib", "os"]
    assert replace["text"] == two["待更换"]
    r = run_cli("collector.cli.main", "report", "--config", str(config))
    assert r.returncode == 0, r.stderr
    head = r.stdout.split("待更换电脑（低于最低配置 min_spec）\n", 1)[1].splitlines()
    assert head[0].split()[:4] == ["所属单位", "站点", "主机", "不足之处"]
    assert head[1].split()[:3] == ["一支队", "二中队", "pc-2"]
    r = run_cli("collector.cli.main", "report", "--config", str(config), "--format", "html",
                "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert '<table id="replace">' in r.stdout and "memory 2.0 GiB &lt; 4 GiB" in r.stdout

    r = run_cli("collector.cli.main", "inventory", "--config", str(config), "--format", "json",
                "--site", "sq-2", "--lang", "en")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(x["host"], x["site"], x["mem_total_bytes"], x["host_id"]) for x in doc["rows"]] == [
        ("pc-2", "二中队", 2 * GIB, "m2.00000000000000b2")]

    r = run_cli("collector.cli.main", "changes", "--config", str(config), "--since", "30d")
    assert r.returncode == 0, r.stderr
    assert "硬件变更记录: 1" in r.stdout and "内存" in r.stdout and "一中队" in r.stdout
    r = run_cli("collector.cli.main", "changes", "--config", str(config), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout.lstrip("\ufeff"))))
    assert [(x["站点"], x["变更项"], x["变更"], x["变更前"], x["变更后"]) for x in rows] == [
        ("一中队", "内存", "移除", "7.8 GiB", "3.8 GiB")]

    r = run_cli("collector.cli.main", "inventory", "--config", str(config), "--site", "nope")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "netroom inventory: error: --site: 'nope' is not a node of the sites tree"]

    # The InfluxQL of the "inventory" dashboard's panels (docs/inventory.md).
    def q(text: str) -> list[dict[str, Any]]:
        return list(series(influxd.query(text.replace("$timeFilter", "time > now() - 30d"),
                                         influx_db)))

    table = q(TABLE_QUERY)
    assert {(r["host"], r["serial"], r["mem_total_bytes"]) for r in table} == {
        ("pc-1", "GW-0001", 4 * GIB - 200 * 2**20), ("pc-2", "GW-0001", 2 * GIB)}
    buckets = {name: q(text) for name, text in MEMORY_QUERIES.items()}
    assert {k: v[0]["pcs"] if v else 0 for k, v in buckets.items()} == {
        "< 4 GiB": 1, "4-8 GiB": 1, "8-16 GiB": 0, ">= 16 GiB": 0}
    os_rows = q(OS_QUERY)
    assert sorted(r["os"] for r in os_rows) == ["Kylin V10", "Windows 7"]
    assert [(r["change"], r["action"], r["before"]) for r in q(CHANGES_QUERY)] == [
        ("memory", "removed", "7.8 GiB")]
    assert q(REMOVED_ALERT)[0]["removed"] == 1


# The dashboard panels' queries, as docs/inventory.md gives them.
TABLE_QUERY = ('SELECT "hostname", "os_name", "os_version", "arch", "cpu_model", "cpu_cores", '
               '"mem_total_bytes", "disk_total_bytes", "nics", "vendor", "model", "serial", '
               '"agent_version" FROM "inventory" WHERE $timeFilter '
               'GROUP BY "site", "host" ORDER BY time DESC LIMIT 1')
MEMORY_QUERIES = {
    name: ('SELECT count("m") AS "pcs" FROM (SELECT last("mem_total_bytes") AS "m" '
           f'FROM "inventory" WHERE $timeFilter GROUP BY "site", "host") WHERE {cond}')
    for name, cond in (("< 4 GiB", '"m" < 3865470566'),
                       ("4-8 GiB", '"m" >= 3865470566 AND "m" < 7730941133'),
                       ("8-16 GiB", '"m" >= 7730941133 AND "m" < 15461882265'),
                       (">= 16 GiB", '"m" >= 15461882265'))}
OS_QUERY = ('SELECT last("os_name") AS "os", last("arch") AS "arch" FROM "inventory" '
            'WHERE $timeFilter GROUP BY "site", "host"')
CHANGES_QUERY = ('SELECT "change", "item", "action", "before", "after" FROM "inventory_change" '
                 'WHERE $timeFilter GROUP BY "site", "host"')
REMOVED_ALERT = ('SELECT count("delta_bytes") AS "removed" FROM "inventory_change" '
                 'WHERE "delta_bytes" < 0 AND $timeFilter')


def test_a_lost_state_is_seeded_from_influxdb(fleet: tuple[Path, Any], tmp_path: Path,
                                              mosquitto: Mosquitto, influxd: Influxd,
                                              influx_db: str,
                                              run_collector: Callable[[Path], Any]) -> None:
    """The state file deleted (a lost disk): the new one takes each PC's last
    inventory from InfluxDB, so the next one is compared with it, not taken as
    a first one."""
    config, svc = fleet
    pub = Publisher(mosquitto)
    try:
        pub.publish(*inventory(BASE, 0))
        wait_count(influxd, influx_db, schema.INVENTORY, "host_id", 1)
        assert wait_until(lambda: _rows(tmp_path / "spool", "hardware") == 1, 20)
        svc.stop()
        for f in (tmp_path / "spool").glob("state.sqlite*"):
            f.unlink()
        run_collector(config)
        assert wait_until(lambda: _rows(tmp_path / "spool", "hardware") == 1, 20)  # seeded
        pub.publish(*inventory(step(**MEM_OUT), 1))
        wait_count(influxd, influx_db, schema.INVENTORY_CHANGE, "action", 1)
        assert [(r["change"], r["action"]) for r in changes(influxd, influx_db)] == [
            ("memory", "removed")]
    finally:
        pub.close()


def _rows(spool: Path, table: str) -> int:
    try:
        with sqlite3.connect(path_in(str(spool))) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_bad_min_spec_is_one_line_naming_the_key(tmp_path: Path, mosquitto: Mosquitto,
                                                 influxd: Influxd) -> None:
    tree = copy.deepcopy(TREE)
    tree[0]["children"][0]["children"][1]["min_spec"] = {"memory_gb": 4}
    config = write_config(tmp_path, mosquitto, influxd, sites=tree)
    for command in ("inventory", "changes"):
        r = run_cli("collector.cli.main", command, "--config", str(config))
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [
            f"netroom {command}: error: sites.bureau.zd-1.sq-2.min_spec.memory_gb: unknown key"]
    tree[0]["children"][0]["min_spec"] = {"cores": "two"}
    r = run_cli("collector", "--config", str(write_config(tmp_path, mosquitto, influxd,
                                                          sites=tree)), timeout=60)
    assert r.returncode == 2 and "zd-1.min_spec.cores: must be an integer" in r.stderr
