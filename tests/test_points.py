r"""Message -> points -> line protocol, checked against literal lines.

The per-item lines (``metrics_disks``...) are byte for byte what
influxdb-python's make_line (the library the encoder replaced) wrote for the
same points, so the series keys already stored for plain ids do not change;
disk points gain the ``path`` field. What influxd 1.6 makes of these lines is
checked against a real influxd in tests/test_lineprotocol_roundtrip.py.

The ingest's own encoder (``MessageEncoder``: lines straight from the
validated message) is held to the general one (``to_points`` +
``LineEncoder``), which stays the reference: byte-identical lines for every
case here, and for generated messages of every kind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pytest
import test_lineprotocol_roundtrip as roundtrip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.influx.line import LineEncoder, Point, series_key
from collector.ingest.points import DERIVED, MessageEncoder, to_points
from collector.ingest.subscriber import SubscriberConfig, encode_message
from netroom import protocol, schema
from netroom.mqtt import MqttConfig

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
ORG = {"detachment": "d1", "battalion": "b2"}
ALL_ITEMS = schema.ITEM_SERIES_SECTIONS


KINDS = ("status", "inventory", "metrics", "probe", "isolation", "bandwidth")
BANDWIDTH: dict[str, Any] = {  # no golden file: a speed test as a tester PC sends it
    "topic": "netroom/v1/sq-1/pc-07/bandwidth",
    "payload": {"schema": 1, "ts": 1764000000.5, "site": "sq-1", "host": "pc-07",
                "network": "gov", "role": "room", "method": "intranet",
                "server": "http://10.0.0.1:8090", "download_mbps": 93.4, "upload_mbps": 40,
                "latency_ms": 1.2, "bytes": 250000000, "duration_s": 20.1, "streams": 4}}


def golden_message(kind: str, **over: object) -> protocol.Message:
    g: dict[str, Any] = (BANDWIDTH if kind == "bandwidth"
                         else json.loads((GOLDEN / f"{kind}.json").read_text()))
    return protocol.decode(g["topic"], json.dumps({**g["payload"], **over}).encode())


def both(msg: protocol.Message, tags: Mapping[str, str] | None = None,
         time_ms: int | None = None, item_series: tuple[str, ...] = (),
         skew_s: float | None = None) -> list[str]:
    """The message's lines by the general way and by the ingest's, which must agree."""
    points = to_points(msg, tags, time_ms, item_series)
    if skew_s is not None:
        points = [p._replace(fields={**p.fields, schema.CLOCK_SKEW: skew_s}) for p in points]
    general = LineEncoder().lines(points)
    enc = MessageEncoder(item_series)
    for _ in range(2):  # the second time from the caches
        assert enc.lines(msg, tags, time_ms, skew_s) == general
    return general


def test_default_layout_is_one_point_per_message() -> None:
    for kind in KINDS:
        points = to_points(golden_message(kind), ORG)
        assert [p.measurement for p in points] == [kind], kind


def test_derived_fields_never_hide_a_field_the_agent_sends() -> None:
    for kind, names in DERIVED.items():
        assert not set(names) & set(protocol.KINDS[kind].fields), kind


def test_metrics_message_maps_to_one_point_per_section_item_when_asked() -> None:
    points = to_points(golden_message("metrics"), ORG, item_series=ALL_ITEMS)
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
    only_nics = to_points(golden_message("metrics"), ORG, item_series=("nics",))
    assert [p.measurement for p in only_nics] == ["metrics", "metrics_nics"]


# The golden metrics message at default settings: its scalars and the PC's totals.
GOLDEN_METRICS_LINE = (
    "metrics,battalion=b2,detachment=d1,host=pc-07,network=gov,role=room,site=sq-1 "
    "boot_time_s=1763990000.0,collect_ms=0.61,cpu_percent=12.5,"
    "disk_free_bytes=85899345920i,disk_read_bytes=1048576i,disk_read_count=100i,"
    "disk_total_bytes=107374182400i,disk_used_bytes=21474836480i,disk_used_percent=20.0,"
    "disk_write_bytes=2097152i,disk_write_count=200i,load1=0.42,load15=0.25,load5=0.3,"
    "mem_available_bytes=4294967296i,mem_total_bytes=8589934592i,mem_used_percent=50.0,"
    "net_bytes_recv=654321i,net_bytes_sent=123456i,net_dropin=1i,net_dropout=0i,"
    "net_errin=0i,net_errout=0i,net_packets_recv=2000i,net_packets_sent=1000i,"
    "net_speed_mbps=1000i,nics_up=1i,swap_total_bytes=2147483648i,swap_used_bytes=0i,"
    "uptime_s=10000.123,users=1i 1764000000123"
)
# make_line's lines for the golden metrics message's items (plus `path` on the disk).
GOLDEN_ITEM_LINES = [
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
    assert both(golden_message("metrics"), ORG) == [GOLDEN_METRICS_LINE]
    assert both(golden_message("metrics"), ORG, item_series=ALL_ITEMS) == [
        GOLDEN_METRICS_LINE, *GOLDEN_ITEM_LINES]


def test_inventory_is_one_point_with_its_sections_as_json() -> None:
    msg = golden_message("inventory")
    (p,) = to_points(msg, ORG, item_series=ALL_ITEMS)  # never per item
    assert p.measurement == "inventory"
    assert json.loads(p.fields["disks"]) == [
        {"mount": "/", "device": "/dev/sda2", "fstype": "ext4", "total_bytes": 107374182400}]
    assert p.fields["nics"] == ('[{"ipv4":"192.0.2.17","ipv6":"","is_up":true,'
                                '"mac":"00:e0:4c:68:00:01","mtu":1500,"name":"eth0",'
                                '"speed_mbps":1000}]')  # compact, keys sorted
    assert (p.fields["disk_count"], p.fields["disk_total_bytes"], p.fields["nic_count"]) == (
        1, 107374182400, 1)
    assert p.fields["hostname"] == "PC-07"
    (line,) = both(msg, ORG)
    assert ',disks="[{\\"device\\":\\"/dev/sda2\\",\\"fstype\\":\\"ext4\\",' in line
    # Absent sections: no field; empty ones: an empty list and a count of 0.
    bare = golden_message("inventory", disks=None, nics=[])
    (p,) = to_points(bare)
    assert "disks" not in p.fields and "disk_count" not in p.fields
    assert (p.fields["nics"], p.fields["nic_count"]) == ("[]", 0)
    both(bare)


def metrics_with(**sections: Any) -> protocol.Message:
    return golden_message("metrics", **{"disks": None, "diskio": None, "nics": None,
                                        **sections})


def totals(msg: protocol.Message) -> dict[str, Any]:
    (p,) = to_points(msg)
    both(msg)
    return {k: v for k, v in p.fields.items() if k not in msg.fields}


def test_metrics_totals_sum_the_sections() -> None:
    msg = metrics_with(
        disks=[{"mount": "/", "total_bytes": 100, "used_bytes": 60, "free_bytes": 40,
                "used_percent": 60.0},
               {"mount": "C:\\", "total_bytes": 50, "used_bytes": 45, "free_bytes": 5,
                "used_percent": 90.0},
               {"mount": "/mnt/x"}],
        diskio=[{"name": "sda", "read_bytes": 1, "write_bytes": 2, "read_count": 3,
                 "write_count": 4, "read_time_ms": 5},
                {"name": "sdb", "read_bytes": 10, "write_bytes": 20, "read_count": 30}],
        nics=[{"name": "eth0", "bytes_sent": 1, "bytes_recv": 2, "packets_sent": 3,
               "packets_recv": 4, "errin": 5, "errout": 6, "dropin": 7, "dropout": 8,
               "speed_mbps": 1000, "is_up": True},
              {"name": "wlan0", "bytes_sent": 10, "bytes_recv": 20, "speed_mbps": 300,
               "is_up": False},
              {"name": "eth1", "bytes_sent": 100, "speed_mbps": 100, "is_up": True},
              # Loopback never counts (the netroom agent leaves it out anyway).
              {"name": "lo", "bytes_sent": 10**9, "bytes_recv": 10**9, "speed_mbps": 0,
               "is_up": True},
              {"name": "Loopback Pseudo-Interface 1", "bytes_sent": 10**9, "is_up": True}],
    )
    assert totals(msg) == {
        "disk_total_bytes": 150, "disk_used_bytes": 105, "disk_free_bytes": 45,
        "disk_used_percent": 90.0,  # the fullest mount
        "disk_read_bytes": 11, "disk_write_bytes": 22, "disk_read_count": 33,
        "disk_write_count": 4,
        "net_bytes_sent": 111, "net_bytes_recv": 22, "net_packets_sent": 3,
        "net_packets_recv": 4, "net_errin": 5, "net_errout": 6, "net_dropin": 7,
        "net_dropout": 8,
        "net_speed_mbps": 1100,  # eth0 + eth1, up; wlan0 is down
        "nics_up": 2,
    }


def test_a_total_is_written_only_when_an_item_carried_its_field() -> None:
    assert totals(metrics_with()) == {}
    assert totals(metrics_with(disks=[{"mount": "/"}], diskio=[], nics=[])) == {}
    got = totals(metrics_with(disks=[{"mount": "/", "free_bytes": 7}],
                              nics=[{"name": "eth0", "bytes_recv": 1}]))
    assert got == {"disk_free_bytes": 7, "net_bytes_recv": 1}
    # Link state known, all down: none up, no speed.
    got = totals(metrics_with(nics=[{"name": "eth0", "is_up": False, "speed_mbps": 1000}]))
    assert got == {"nics_up": 0, "net_speed_mbps": 0}
    assert totals(metrics_with(nics=[{"name": "lo", "bytes_recv": 5, "is_up": True}])) == {}


def test_a_sum_past_int64_is_left_out() -> None:
    big = protocol.INT64_MAX - 1
    got = totals(metrics_with(nics=[{"name": "a", "bytes_recv": big, "bytes_sent": 1},
                                    {"name": "b", "bytes_recv": big, "bytes_sent": 2}]))
    assert got == {"net_bytes_sent": 3}


def test_a_kind_added_later_stores_its_sections_per_item(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/extending.md's example kind: nothing else in the collector changes.
    users = protocol.Kind(fields={"count": protocol.F(int)}, sections={
        "logins": protocol.Section("user", {"user": protocol.F(str, True, maxlen=64),
                                            "sessions": protocol.F(int)})})
    monkeypatch.setitem(protocol.KINDS, "users", users)
    payload = {**protocol.envelope("sq-1", "pc-1", "gov", "room", 1764000000.0), "count": 2,
               "logins": [{"user": "alice", "sessions": 2}, {"user": "bob", "sessions": 1}]}
    msg = protocol.decode(protocol.topic("sq-1", "pc-1", "users"), json.dumps(payload).encode())
    lines = both(msg)
    assert [x.split(",", 1)[0] for x in lines] == ["users", "users_logins", "users_logins"]
    assert lines[1] == ("users_logins,host=pc-1,network=gov,role=room,site=sq-1,user=alice "
                        "sessions=2i 1764000000000")


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


def test_tags_shared_across_series_are_escaped_as_each_alone() -> None:
    # A write-back's points share their org path's tags but are series of their
    # own; the encoder escapes each tag once. Its lines must be what a fresh
    # encoder writes for each point on its own.
    shared = {"detachment": "d 1,=x", "battalion_name": "第一大队", "empty": ""}
    points = [Point("compliance", {**shared, "site": site, "rule": rule, "n": n},
                    {"ok": 1}, 1764000000000)
              for site in ("sq-1", "sq 2", "sq\\3") for rule in ("all", "room video")
              for n in ("1", "1 2", "")]
    enc = LineEncoder()
    assert enc.lines(points) == [LineEncoder().line(p) for p in points]
    for p, line in zip(points, enc.lines(points)):
        assert line.startswith(series_key(p.measurement, p.tags) + " ok=")
    assert enc.lines(points)[1].startswith(
        "compliance,battalion_name=第一大队,detachment=d\\ 1\\,\\=x,n=1\\ 2,rule=all,site=sq-1 ")


def test_both_encoders_escape_alike() -> None:
    text = 'say "hi"\\ now\n,=x 政务网'
    msg = golden_message("metrics", errors=text, disks=[
        {"mount": "D:\\my data\\", "total_bytes": 1}, {"mount": "a,b=c d\n", "used_percent": 1}],
        nics=[{"name": "Ethernet 2,=x", "bytes_recv": 1}, {"name": "eth\\0", "is_up": True}])
    org = {"detachment": "d 1,=x", "battalion": "b\\2", "empty": ""}
    lines = both(msg, org, item_series=ALL_ITEMS)
    assert len(lines) == 6  # metrics, 2 disks, 1 disk I/O, 2 NICs
    assert f'errors="{text}"'.replace("\\", "\\\\") not in lines[0]  # escaped once, not twice
    assert 'errors="say \\"hi\\"\\\\ now\n,=x 政务网"' in lines[0]
    both(golden_message("inventory", serial=text, nics=[{"name": "x", "mac": text}]), org)


def test_kind_tags_clock_skew_and_time_alike() -> None:
    for kind in KINDS:
        msg = golden_message(kind)
        both(msg, ORG)
        both(msg, ORG, time_ms=1764000999000, skew_s=-1234.5, item_series=ALL_ITEMS)
    (line,) = both(golden_message("probe"), ORG)
    assert line.startswith("probe,") and ",probe=portal," in line
    assert "probe=" not in line.split(" ")[1]  # a tag, not a field


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


def test_both_encoders_refuse_an_unstorable_org_tag() -> None:
    msg = golden_message("metrics")
    for org in ({"detachment": "d1\\"}, {"detachment": "d\n1"}):
        with pytest.raises(ValueError):
            LineEncoder().lines(to_points(msg, org))
        with pytest.raises(ValueError):
            MessageEncoder().lines(msg, org)


def test_windows_mounts_are_tagged_without_trailing_backslashes() -> None:
    disks = [{"mount": m, "total_bytes": 1} for m in ("C:\\", "D:\\data\\", "E:\\\\", "/home",
                                                     "/mnt/a\nb")]
    msg = golden_message("metrics", disks=disks)
    points = to_points(msg, item_series=("disks",))
    got = [(p.tags["mount"], p.fields[schema.PATH]) for p in points
           if p.measurement == "metrics_disks"]
    assert got == [("C:", "C:\\"), ("D:\\data", "D:\\data\\"), ("E:", "E:\\\\"),
                   ("/home", "/home"), ("/mnt/a b", "/mnt/a\nb")]
    line = next(x for x in both(msg, item_series=("disks",)) if ",mount=C:," in x)
    assert 'path="C:\\\\"' in line, line
    # Inventory keeps the exact mounts in its JSON.
    (p,) = to_points(golden_message("inventory", disks=disks))
    assert [d["mount"] for d in json.loads(p.fields["disks"])] == [d["mount"] for d in disks]


BOUNDS = SubscriberConfig(MqttConfig(), "c", "netroom/v1/#", 1, 600.0, 86400.0, ("nics",))


def test_encode_message_bounds_the_clock_alike_on_both_ways() -> None:
    msg = golden_message("metrics")  # ts 1764000000.123
    t = 1764000000123
    for received, skew in ((t, None), (t + 86_400_000, None), (t + 86_400_001, -86_400_001),
                           (t - 600_000, None), (t - 600_001, 600_001)):
        general, s1 = encode_message(msg, LineEncoder(), ORG, received, BOUNDS)
        fused, s2 = encode_message(msg, MessageEncoder(BOUNDS.item_series), ORG, received,
                                   BOUNDS)
        assert general == fused and s1 == s2 == skew
        assert len(general) == 2  # metrics and its one NIC (item_series: nics)
        stored = t if skew is None else received
        assert all(line.endswith(f" {stored}") for line in general)
        assert all(("clock_skew_s=" in line) == (skew is not None) for line in general)
    will = golden_message("status", state="offline", will=True)
    lines, skew = encode_message(will, MessageEncoder(), {}, t + 5, BOUNDS)
    assert skew is None and lines[0].endswith(f" {t + 5}") and "clock_skew" not in lines[0]
    assert lines == encode_message(will, LineEncoder(), {}, t + 5, BOUNDS)[0]


# --- generated messages: the ingest's lines are the general way's, always ---

def value(f: protocol.F) -> st.SearchStrategy[Any]:
    return roundtrip.value(f, 12)


@st.composite
def decoded(draw: st.DrawFn) -> protocol.Message:
    kind = draw(st.sampled_from(sorted(protocol.KINDS)))
    spec = protocol.KINDS[kind]
    body: dict[str, Any] = {}
    for name, f in spec.fields.items():
        if f.required or draw(st.booleans()):
            body[name] = draw(value(f))
    for tag in spec.tags:
        body[tag] = draw(st.from_regex(protocol.ID_RE, fullmatch=True))
    for name, sec in spec.sections.items():
        if not draw(st.booleans()):
            continue
        items = []
        for i in range(draw(st.integers(0, 3))):
            key = draw(st.text(roundtrip.CHARS, min_size=1, max_size=6)) + str(i)  # unique
            if sec.path and draw(st.booleans()):
                key += "\\"  # a trailing backslash, as Windows mounts have
            item = {sec.key: key.replace("\n", " ")}
            for fname, f in sec.fields.items():
                if fname != sec.key and draw(st.booleans()):
                    item[fname] = draw(value(f))
            items.append(item)
        body[name] = items
    payload = {**protocol.envelope("sq-1", "pc-1", "gov", "room", 1764000000.123), **body}
    return protocol.decode(protocol.topic("sq-1", "pc-1", kind),
                           json.dumps(payload).encode())


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(decoded(), st.sampled_from([(), ALL_ITEMS, ("disks",)]),
       st.sampled_from([None, -700.25, 31.0]))
def test_generated_messages_encode_alike_on_both_ways(
        msg: protocol.Message, item_series: tuple[str, ...], skew_s: float | None) -> None:
    both(msg, ORG, item_series=item_series, skew_s=skew_s,
         time_ms=None if skew_s is None else 1764000999000)
