"""The hardware register's comparison, on literal inventories: what is a change
(collector.compliance.hardware) and what is churn."""
from __future__ import annotations

from typing import Any

from collector.compliance.hardware import ADDED, CHANGED, REMOVED, Change, diff, document, merge
from collector.compliance.orgconfig import read_org
from collector.compliance.register import Disk, MinSpec, Nic, Pc, below, duplicates
from collector.store.inventory import assemble

GIB = 2**30

FIELDS: dict[str, Any] = {
    "hostname": "PC-07.corp.local", "host_id": "m.0123456789abcdef",
    "os_name": "Kylin V10", "os_version": "V10", "kernel": "4.19.90-24",
    "cpu_model": "Phytium  FTC663", "cpu_cores": 4, "cpu_mhz": 2300.0,
    "mem_total_bytes": 8 * GIB - 300 * 2**20, "serial": "SN-1", "boot_time_s": 1.7e9,
}
SECTIONS: dict[str, Any] = {
    "disks": [{"mount": "/", "device": "/dev/sda2", "fstype": "ext4", "total_bytes": 500 * 10**9},
              {"mount": "/media/usb", "device": "/dev/sdc1", "fstype": "exfat",
               "total_bytes": 32 * 10**9},
              {"mount": "/boot/efi", "device": "/dev/sda1", "fstype": "vfat",
               "total_bytes": 512 * 2**20}],
    "nics": [{"name": "eth0", "mac": "00:1a:2b:3c:4d:5e", "ipv4": "10.0.0.7", "speed_mbps": 1000,
              "is_up": True},
             {"name": "docker0", "mac": "02:42:ac:11:00:01", "ipv4": "172.17.0.1"},
             {"name": "wlan0", "mac": "00:00:00:00:00:00"}],
}


def doc(fields: dict[str, Any] | None = None, sections: dict[str, Any] | None = None,
        site: str = "sq-1") -> dict[str, Any]:
    return document(site, {**FIELDS, **(fields or {})}, {**SECTIONS, **(sections or {})})


def test_document_keeps_what_is_compared() -> None:
    d = doc()
    assert d == {"site": "sq-1", "hostname": "pc-07", "os": "Kylin V10",
                 "cpu": "Phytium FTC663 x4", "memory": 8 * GIB - 300 * 2**20, "serial": "SN-1",
                 "disks": {"/": [500 * 10**9, "ext4", "/dev/sda2"]},
                 "nics": {"00:1a:2b:3c:4d:5e": "eth0"}}


def test_first_and_same_and_churn_make_no_change() -> None:
    assert diff(doc(), doc()) == []
    churn = doc({"mem_total_bytes": FIELDS["mem_total_bytes"] + 40 * 2**20,  # kernel reserve
                 "cpu_mhz": 3100.0, "boot_time_s": 1.8e9, "kernel": "4.19.90-25",
                 "hostname": "pc-07"},
                {"nics": [{"name": "enp3s0", "mac": "00:1A:2B:3C:4D:5E", "ipv4": "10.0.0.99",
                           "speed_mbps": 100, "is_up": False},
                          {"name": "veth9", "mac": "b6:11:22:33:44:55"}],
                 "disks": [{"mount": "/", "device": "/dev/sdb2", "fstype": "ext4",
                            "total_bytes": 500 * 10**9}]})
    assert diff(doc(), churn) == []


def test_unknown_parts_are_not_removals_and_keep_their_value() -> None:
    blind = document("sq-1", {"hostname": "pc-07", "host_id": "m"}, {})
    assert diff(doc(), blind) == []
    kept = merge(doc(), blind)
    assert kept["serial"] == "SN-1" and kept["disks"] == doc()["disks"]
    assert diff(kept, doc()) == []


def test_each_real_change_is_one_change() -> None:
    after = doc({"mem_total_bytes": 4 * GIB - 300 * 2**20, "os_version": "V10 SP1",
                 "serial": "SN-2", "cpu_cores": 8, "hostname": "pc-08"},
                {"disks": [{"mount": "/", "device": "/dev/nvme0n1p2", "fstype": "ext4",
                            "total_bytes": 1000 * 10**9},
                           {"mount": "/data", "device": "/dev/sdb1", "fstype": "xfs",
                            "total_bytes": 2000 * 10**9}],
                 "nics": [{"name": "eth0", "mac": "00:1a:2b:3c:4d:99"},
                          {"name": "eth1", "mac": "00:aa:bb:cc:dd:ee"}]},
                site="sq-2")
    got = diff(doc(), after)
    assert [(c.aspect, c.item, c.action) for c in got] == [
        ("site", "", CHANGED), ("hostname", "", CHANGED), ("os", "", CHANGED),
        ("cpu", "", CHANGED), ("serial", "", CHANGED), ("memory", "", REMOVED),
        ("disk", "/", CHANGED), ("disk", "/data", ADDED),
        ("nic", "eth0", CHANGED), ("nic", "eth1", ADDED)]
    by = {(c.aspect, c.item): c for c in got}
    assert by[("memory", "")] == Change("memory", "", REMOVED, "7.7 GiB", "3.7 GiB",
                                        8 * GIB - 300 * 2**20, 4 * GIB - 300 * 2**20)
    assert by[("disk", "/")].before == "/dev/sda2 ext4 465.7 GiB"
    assert by[("disk", "/")].after_n == 1000 * 10**9
    assert by[("os", "")].after == "Kylin V10 V10 SP1"
    assert by[("nic", "eth0")].before == "eth0 00:1a:2b:3c:4d:5e"


def test_removals() -> None:
    after = doc(sections={"disks": [{"mount": "/", "fstype": "ext4", "device": "/dev/sda2",
                                     "total_bytes": 500 * 10**9},
                                    {"mount": "D:\\", "fstype": "NTFS", "total_bytes": 10**12}],
                          "nics": [{"name": "eth1", "mac": "00:aa:bb:cc:dd:ee"}]})
    back = diff(after, doc())
    assert [(c.aspect, c.item, c.action, c.after) for c in back] == [
        ("disk", "D:\\", REMOVED, ""), ("nic", "eth0", ADDED, "eth0 00:1a:2b:3c:4d:5e"),
        ("nic", "eth1", REMOVED, "")]


def test_register_places_pcs_as_the_compliance_check_does() -> None:
    """A PC that moved counts once, where it reports now; a PC of a site not in
    the tree is listed all the same; times are the newest seen."""
    org = read_org([{"id": "sq-1", "cadres": 1, "staff": 1},
                    {"id": "sq-2", "cadres": 1, "staff": 1}], None)

    def row(site: str, host: str, host_id: str, t: int) -> dict[str, Any]:
        return {"site": site, "host": host, "network": "gov", "role": "cadre",
                "host_id": host_id, "hostname": host, "time": t, "mem_total_bytes": 2 * GIB,
                "disks": '[{"mount":"/","total_bytes":1000}]',
                "nics": '[{"mac":"00:1a:2b:3c:4d:5e","name":"eth0"}]'}

    rows = [row("sq-1", "pc-1", "m1.00000000000000a1", 1000),
            row("sq-2", "pc-1", "m1.00000000000000a1", 2000),
            row("sq-9", "pc-9", "m9.00000000000000a9", 1500)]
    seen = [{"site": "sq-2", "host": "pc-1", "time": 5000}]
    versions = [{"site": "sq-2", "host": "pc-1", "settings_version": "v3"}]
    got = assemble(rows, seen, versions, org)
    assert [(p.site, p.host, p.last_seen_ms, p.settings_version, p.disk_total_bytes,
             p.nics[0].mac) for p in got] == [
        ("sq-2", "pc-1", 5000, "v3", 1000, "00:1a:2b:3c:4d:5e"),
        ("sq-9", "pc-9", 1500, "", 1000, "00:1a:2b:3c:4d:5e")]


def pc(host: str, serial: str, macs: list[str], mem_gib: float = 8, cores: int = 4,
       os_name: str = "Windows 10") -> Pc:
    return Pc("sq-1", host, "gov", "cadre", f"m-{host}", host, os_name, "10.0.19045", "x86_64",
              "i5", cores, cores, int(mem_gib * GIB), (Disk("C:\\", "C:\\", "NTFS", 256 * GIB),),
              tuple(Nic(f"eth{i}", m) for i, m in enumerate(macs)), "Lenovo", "M720", serial,
              "1.4.0", 0, 0, "")


def test_duplicates_by_serial_and_burnt_in_mac_only() -> None:
    pcs = [pc("a", "S1", ["00:1a:00:00:00:01", "02:42:00:00:00:01"]),
           pc("b", "S1", ["00:1a:00:00:00:02", "02:42:00:00:00:01"]),
           pc("c", "S3", ["00:1A:00:00:00:02"]), pc("d", "", ["00:1a:00:00:00:04"]),
           pc("e", "", [])]
    got = duplicates(pcs)
    assert got == {"m-a": [("serial", "S1", [("sq-1", "b")])],
                   "m-b": [("mac", "00:1a:00:00:00:02", [("sq-1", "c")]),
                           ("serial", "S1", [("sq-1", "a")])],
                   "m-c": [("mac", "00:1a:00:00:00:02", [("sq-1", "b")])]}


def test_below_the_minimum_spec() -> None:
    spec = MinSpec(memory_gib=4, cores=2, disk_gib=500, os=("Windows 10", "kylin"))
    assert below(pc("a", "", [], mem_gib=3.7), spec) == [("disk_gib", "256", "500")]
    assert below(pc("b", "", [], mem_gib=3.5, cores=1, os_name="Windows 7"), spec) == [
        ("memory_gib", "3.5", "4"), ("cores", "1", "2"), ("disk_gib", "256", "500"),
        ("os", "Windows 7 10.0.19045", "Windows 10, kylin")]
    assert below(pc("c", "", [], mem_gib=1), None) == []
