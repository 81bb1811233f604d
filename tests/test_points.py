r"""Message -> points -> line protocol, checked against literal lines.

The golden message's lines are byte for byte what influxdb-python's make_line
(the library the encoder replaced) wrote for the same points, so the series
keys already stored for plain ids do not change; disk points gain the
``path`` field. What influxd 1.6 makes of these lines is checked against a
real influxd in tests/test_lineprotocol_roundtrip.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.influx.line import LineEncoder, Point
from collector.ingest.points import to_points
from netroom import protocol, schema

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
ORG = {"detachment": "d1", "battalion": "b2"}


def golden_message(kind: str, **over: object) -> protocol.Message:
    g = json.loads((GOLDEN / f"{kind}.json").read_text())
    return protocol.decode(g["topic"], json.dumps({**g["payload"], **over}).encode())


def test_metrics_message_maps_to_one_point_per_section_item() -> None:
    points = to_points(golden_message("metrics"), ORG)
    by_m = {(p.measurement, p.tags.get("nic") or p.tags.get("disk") or p.tags.get("mount")): p
            for p in points}
    assert set(by_m) == {("metrics", None), ("metrics_disks", "/"),
                         ("metrics_diskio", "sda"), ("metrics_nics", "eth0")}
    base = {"site": "sq-1", "host": "pc-07", "network": "gov", "role": "room",
            "detachment": "d1", "battalion": "b2"}
    assert by_m[("metrics", None)].tags == base
    assert by_m[("metrics_nics", "eth0")].tags == {**base, "nic": "eth0"}
    assert by_m[("metrics_nics", "eth0")].fields["bytes_recv"] == 654321
    assert "name" not in by_m[("metrics_nics", "eth0")].fields
    assert by_m[("metrics_disks", "/")].fields[schema.PATH] == "/"
    assert "mount" not in by_m[("metrics_disks", "/")].fields
    assert all(p.time_ms == 1764000000123 for p in points)


# make_line's lines for the golden metrics message (plus `path` on the disk).
GOLDEN_LINES = [
    "metrics,battalion=b2,detachment=d1,host=pc-07,network=gov,role=room,site=sq-1 "
    "boot_time_s=1763990000.0,collect_ms=0.61,cpu_percent=12.5,load1=0.42,load15=0.25,"
    "load5=0.3,mem_available_bytes=4294967296i,mem_total_bytes=8589934592i,"
    "mem_used_percent=50.0,swap_total_bytes=2147483648i,swap_used_bytes=0i,"
    "uptime_s=10000.123,users=1i 1764000000123",
    "metrics_disks,battalion=b2,detachment=d1,host=pc-07,mount=/,network=gov,role=room,"
    'site=sq-1 free_bytes=85899345920i,path="/",total_bytes=107374182400i,'
    "used_bytes=21474836480i,used_percent=20.0 1764000000123",
    "metrics_diskio,battalion=b2,detachment=d1,disk=sda,host=pc-07,network=gov,role=room,"
    "site=sq-1 read_bytes=1048576i,read_count=100i,read_time_ms=30i,write_bytes=2097152i,"
    "write_count=200i,write_time_ms=40i 1764000000123",
    "metrics_nics,battalion=b2,detachment=d1,host=pc-07,network=gov,nic=eth0,role=room,"
    "site=sq-1 bytes_recv=654321i,bytes_sent=123456i,dropin=1i,dropout=0i,errin=0i,"
    "errout=0i,is_up=True,packets_recv=2000i,packets_sent=1000i,speed_mbps=1000i "
    "1764000000123",
]


def test_plain_ids_keep_their_series_keys() -> None:
    assert LineEncoder().lines(to_points(golden_message("metrics"), ORG)) == GOLDEN_LINES


# Backslashes in tags single, a line feed in a string as is; the rest as make_line.
TRICKY_LINE = (
    r'metrics_disks,host=h\1,mount=D:\data,network=gov,role=room,site=sq\ 1\,\=x '
    r'big=4611686018427387904i,empty="",flag=True,free_bytes=12i,neg=-3i,off=False,'
    'text="say \\"hi\\"\\\\ now\n",tiny=1e-09,used_percent=12.5,whole=3.0,'
    r'zh="政务网 电脑" 1764000000123'
)


def test_encoder_escapes_what_influxdb_reads_back() -> None:
    tricky = Point(
        "metrics_disks",
        {"site": "sq 1,=x", "host": "h\\1", "mount": "D:\\data", "network": "gov",
         "role": "room", "empty": ""},
        {"free_bytes": 12, "used_percent": 12.5, "big": 2**62, "tiny": 1e-9, "neg": -3,
         "flag": True, "off": False, "text": 'say "hi"\\ now\n', "zh": "政务网 电脑",
         "empty": "", "whole": 3.0, "unknown": None},
        1764000000123,
    )
    enc = LineEncoder()
    for _ in range(2):  # second time from the caches
        assert enc.line(tricky) == TRICKY_LINE


@pytest.mark.parametrize(("tags", "fields"), [
    ({"mount": "C:\\"}, {"x": 1}),  # a tag value ending in a backslash: 400 in any escaping
    ({"nic": "eth\n0"}, {"x": 1}),  # a line feed would start a line of its own
    ({"nic\\": "eth0"}, {"x": 1}),
    ({"nic": "eth0"}, {"x\\": 1}),
    ({"nic": "eth0"}, {"x": None}),  # no field: InfluxDB refuses the line
])
def test_encoder_refuses_what_influxdb_cannot_store(tags: dict[str, str],
                                                    fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LineEncoder().line(Point("m", tags, fields, 1))


def test_windows_mounts_are_tagged_without_trailing_backslashes() -> None:
    disks = [{"mount": m, "total_bytes": 1} for m in ("C:\\", "D:\\data\\", "E:\\\\", "/home",
                                                     "/mnt/a\nb")]
    for kind in ("metrics", "inventory"):
        points = to_points(golden_message(kind, disks=disks))
        got = [(p.tags["mount"], p.fields[schema.PATH]) for p in points
               if p.measurement == f"{kind}_disks"]
        assert got == [("C:", "C:\\"), ("D:\\data", "D:\\data\\"), ("E:", "E:\\\\"),
                       ("/home", "/home"), ("/mnt/a b", "/mnt/a\nb")]
        line = next(x for x in LineEncoder().lines(points) if ",mount=C:," in x)
        assert 'path="C:\\\\"' in line, line
