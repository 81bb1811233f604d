"""Message -> points -> line protocol, checked against literal lines.

The expected lines were printed once by influxdb-python's make_line (the
library the encoder replaced), so stored series keys stay the same."""
from __future__ import annotations

import json
from pathlib import Path

from collector.influx.line import LineEncoder, Point
from collector.ingest.points import to_points
from netroom import protocol

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def test_metrics_message_maps_to_one_point_per_section_item() -> None:
    g = json.loads((GOLDEN / "metrics.json").read_text())
    msg = protocol.decode(g["topic"], json.dumps(g["payload"]).encode())
    points = to_points(msg, {"detachment": "d1", "battalion": "b2"})
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
    assert all(p.time_ms == 1764000000123 for p in points)


# make_line's output for the tricky point below, byte for byte (module docstring).
TRICKY_LINE = (
    r'metrics_disks,host=h\\1,mount=C:\\,network=gov,role=room,site=sq\ 1\,\=x '
    r'big=4611686018427387904i,empty="",flag=True,free_bytes=12i,neg=-3i,off=False,'
    r'text="say \"hi\"\\ now\n",tiny=1e-09,used_percent=12.5,whole=3.0,'
    r'zh="政务网 电脑" 1764000000123'
)


def test_encoder_escapes_per_the_line_protocol_spec() -> None:
    tricky = Point(
        "metrics_disks",
        {"site": "sq 1,=x", "host": "h\\1", "mount": "C:\\", "network": "gov", "role": "room"},
        {"free_bytes": 12, "used_percent": 12.5, "big": 2**62, "tiny": 1e-9, "neg": -3,
         "flag": True, "off": False, "text": 'say "hi"\\ now\n', "zh": "政务网 电脑",
         "empty": "", "whole": 3.0},
        1764000000123,
    )
    enc = LineEncoder()
    for _ in range(2):  # second time from the caches
        assert enc.line(tricky) == TRICKY_LINE
