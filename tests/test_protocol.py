"""The wire contract: golden payloads checked by both encoder and decoder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.__main__ import Agent
from agent.config import AgentConfig, MqttConfig
from netroom import protocol

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "golden").glob("*.json"))


def golden(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_payload_decodes(path: Path) -> None:
    g = golden(path)
    raw = json.dumps(g["payload"], ensure_ascii=False).encode()
    msg = protocol.decode(g["topic"], raw)
    p = g["payload"]
    assert (msg.site, msg.host, msg.network, msg.role) == (
        p["site"], p["host"], p["network"], p["role"])
    assert msg.ts == p["ts"]
    for name, value in msg.fields.items():
        assert value == p[name]
    for name, items in msg.sections.items():
        assert [dict(i) for i in items] == p[name]
    # Nothing in the golden file is silently dropped by the decoder.
    envelope = {"schema", "ts", "site", "host", "network", "role"}
    assert set(p) - envelope == set(msg.fields) | set(msg.sections)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_payload_encodes_identically(path: Path) -> None:
    g = golden(path)
    c = g["config"]
    agent = Agent(AgentConfig(c["site"], c["host"], c["network"], c["role"], MqttConfig()))
    body = {k: v for k, v in g["payload"].items()
            if k not in ("schema", "ts", "site", "host", "network", "role")}
    topic, payload = agent.message(path.stem, body, g["payload"]["ts"])
    assert topic == g["topic"]
    assert json.loads(payload) == g["payload"]


def _payload(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"schema": 1, "ts": 1764000000.0, "site": "sq-1", "host": "pc-1",
                         "network": "gov", "role": "room", "cpu_percent": 5.0, "collect_ms": 1.0}
    p.update(over)
    return p


INVALID = [
    ("netroom/v1/sq-1/pc-1/metrics", b"{not json", "json", "not JSON"),
    ("netroom/v1/sq-1/pc-1/metrics", b"[1, 2]", "json", "not a JSON object"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(site="sq-2")).encode(),
     "mismatch", "do not match topic"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(schema=2)).encode(),
     "schema", "schema must be 1"),
    ("netroom/v1/sq-1/pc-1/nonsense", json.dumps(_payload()).encode(), "topic", "unknown kind"),
    ("netroom/v2/sq-1/pc-1/metrics", json.dumps(_payload()).encode(), "topic", "is not"),
    ("netroom/v1/sq 1/pc-1/metrics", json.dumps(_payload()).encode(), "topic",
     "not a valid site id"),
    ("netroom/v1/Sq_1/pc-1/metrics", json.dumps(_payload(site="Sq_1")).encode(), "topic",
     "not a valid site id"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(cpu_percent="high")).encode(),
     "field", "cpu_percent: must be a number"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(cpu_percent=250)).encode(),
     "field", "out of range"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(users=1.5)).encode(),
     "field", "must be an integer"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(users=True)).encode(),
     "field", "must be a number"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(network="lan")).encode(),
     "field", "network: must be one of gov, internet"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(ts=12)).encode(), "field", "ts"),
    ("netroom/v1/sq-1/pc-1/metrics",
     b'{"schema":1,"ts":NaN,"site":"sq-1","host":"pc-1"}', "field", "ts: must be finite"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(nics=[{"bytes_sent": 1}])).encode(),
     "field", "nics[0].name: required"),
    ("netroom/v1/sq-1/pc-1/metrics", json.dumps(_payload(nics={"eth0": {}})).encode(),
     "field", "nics: must be a list"),
    ("netroom/v1/sq-1/pc-1/inventory", json.dumps(_payload()).encode(),
     "field", "hostname: required"),
    ("netroom/v1/sq-1/pc-1/metrics", b" " * (protocol.MAX_PAYLOAD_BYTES + 1), "size", "limit"),
]


@pytest.mark.parametrize("topic,payload,code,reason", INVALID)
def test_invalid_messages_are_refused_with_a_reason(topic: str, payload: bytes, code: str,
                                                    reason: str) -> None:
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode(topic, payload)
    assert err.value.code == code
    assert reason in str(err.value)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = json.dumps(_payload(gpu_percent=3.0)).encode()
    msg = protocol.decode("netroom/v1/sq-1/pc-1/metrics", raw)
    assert "gpu_percent" not in msg.fields
    assert msg.fields["cpu_percent"] == 5.0


def test_chinese_text_round_trips_as_utf8() -> None:
    topic, payload = protocol.topic("sq-1", "pc-1", "inventory"), protocol.encode(
        _payload(hostname="政工网-01", host_id="x"))
    assert "政工网-01".encode() in payload  # not \\u-escaped: readable in mosquitto_sub
    assert protocol.decode(topic, payload).fields["hostname"] == "政工网-01"


def test_docs_protocol_tables_match_the_code() -> None:
    """docs/protocol.md is generated from KINDS; regenerate with scripts/protocol_doc.py."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "scripts/protocol_doc.py", "--check"], cwd=root,
                       check=False)
    assert r.returncode == 0, "run: python3 scripts/protocol_doc.py"


# --- fit: the limits applied by the sender ---------------------------------

def _wire(kind: str, body: dict[str, Any]) -> protocol.Message:
    payload = protocol.envelope("sq-1", "pc-1", "gov", "room", 1764000000.0)
    payload.update(body)
    return protocol.decode(protocol.topic("sq-1", "pc-1", kind), protocol.encode(payload))


def test_fit_truncates_an_over_long_string() -> None:
    body = {"hostname": "政" * 300, "host_id": "x" * 200, "arch": "a" * 40}
    with pytest.raises(protocol.ProtocolError, match="hostname: longer than 256"):
        _wire("inventory", body)
    out = protocol.fit("inventory", body)
    assert (len(out["hostname"]), len(out["host_id"]), len(out["arch"])) == (256, 128, 32)
    assert out["hostname"] == "政" * 256
    assert _wire("inventory", out).fields["host_id"] == "x" * 128
    assert body["hostname"] == "政" * 300  # the input is left as it was


def test_fit_cuts_an_over_long_list_and_its_items_strings() -> None:
    nics = [{"name": f"veth{i:04d}" + "n" * 70, "bytes_sent": i} for i in range(200)]
    body = {"cpu_percent": 1.0, "collect_ms": 1.0, "errors": "users: PermissionError: x",
            "nics": nics}
    with pytest.raises(protocol.ProtocolError, match="nics: must be a list of at most 128"):
        _wire("metrics", body)
    out = protocol.fit("metrics", body)
    assert len(out["nics"]) == 128 and out["nics"][0]["bytes_sent"] == 0
    assert all(len(n["name"]) == 64 for n in out["nics"])
    assert out["errors"] == "users: PermissionError: x; nics: 200 items, sent the first 128"
    msg = _wire("metrics", out)
    assert len(msg.sections["nics"]) == 128 and msg.fields["cpu_percent"] == 1.0


def test_fit_leaves_valid_bodies_equal() -> None:
    for path in GOLDEN:
        g = golden(path)
        body = {k: v for k, v in g["payload"].items()
                if k not in ("schema", "ts", "site", "host", "network", "role")}
        assert protocol.fit(path.stem, body) == body, path.stem
    odd = {"cpu_percent": "high", "nics": "none", "future_field": "x" * 5000}
    assert protocol.fit("metrics", odd) == odd  # not its business: decode() judges


def test_fit_output_decodes() -> None:
    body = {"violated": True, "reasons": "r" * 3000, "reached": "a," * 800,
            "bridges": "wlan0:wireless:up," * 100, "default_route_ifaces": "e" * 600}
    msg = _wire("isolation", protocol.fit("isolation", body))
    assert len(msg.fields["reasons"]) == 2048 and len(msg.fields["reached"]) == 1024


def test_agent_messages_go_through_fit() -> None:
    agent = Agent(AgentConfig("sq-1", "pc-1", "gov", "room", MqttConfig()))
    topic, payload = agent.message("probe", {"probe": "portal", "method": "http",
                                             "target": "http://" + "p" * 600, "ok": False,
                                             "error": "e" * 1000}, 1764000000.0)
    msg = protocol.decode(topic, payload)
    assert len(msg.fields["target"]) == 512 and len(msg.fields["error"]) == 512


# --- ids ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["pc-1\n", "pc-1\r\n", "", "-pc", "pc 1", "pc/1", "a" * 65])
def test_id_re_refuses(value: str) -> None:
    assert not protocol.ID_RE.match(value)


def test_id_re_takes_host_names() -> None:
    for value in ("pc-1", "PC_01.lab", "a" * 64, "9"):
        assert protocol.ID_RE.match(value)
    with pytest.raises(protocol.ProtocolError, match="topic host 'pc-1\\\\n'"):
        protocol.parse_topic("netroom/v1/sq-1/pc-1\n/metrics")


@pytest.mark.parametrize(("site", "host", "error"), [
    ("sq-1", "PC_01.lab", ""),
    ("SQ-1", "pc-1", "agent.site: must be 1-64 letters a-z, digits or '-'"),
    ("sq_1", "pc-1", "agent.site: must be 1-64 letters a-z"),
    ("sq.1", "pc-1", "agent.site: must be 1-64 letters a-z"),
    ("sq-1\n", "pc-1", "agent.site: must be 1-64 letters a-z"),
    ("sq-1", "pc-1\n", "agent.host: must be 1-64 letters, digits, '.', '_' or '-'"),
])
def test_agent_site_is_a_sites_tree_id_and_host_a_protocol_id(
        tmp_path: Path, site: str, host: str, error: str) -> None:
    import yaml

    from agent.config import ConfigError, load

    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"site": site, "host": host, "network": "gov",
                                              "state_dir": str(tmp_path)}}), encoding="utf-8")
    if not error:
        cfg = load(path)
        assert (cfg.site, cfg.host) == (site, host)
        return
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(error)


# --- what InfluxDB can store: UTF-8, int64, schema, ids, depth, tags --------

METRICS = "netroom/v1/sq-1/pc-1/metrics"


def _raw(**over: Any) -> bytes:
    """The payload as JSON with \\u escapes, so a lone surrogate gets through."""
    return json.dumps(_payload(**over)).encode()


UNSTORABLE = [
    # A lone surrogate anywhere: a field, an unknown key, a section item, raw bytes.
    (_raw(errors="disk \ud800 failed"), "utf8", "lone surrogate"),
    (_raw(**{"future\udc80": 1}), "utf8", "lone surrogate"),
    (_raw(nics=[{"name": "eth\udfff", "bytes_sent": 1}]), "utf8", "lone surrogate"),
    (_raw(disks=[{"mount": "\udc80", "total_bytes": 1}]), "utf8", "lone surrogate"),
    (_raw(errors="x").replace(b'"x"', b'"\xed\xa0\x80"'), "utf8", "not UTF-8"),
    (_raw(errors="x").replace(b'"x"', b'"\xff"'), "utf8", "not UTF-8"),
    # Integers beyond int64, whatever the field's type.
    (_raw(mem_total_bytes=2**63), "int64", "mem_total_bytes: 9223372036854775808 is outside"),
    (_raw(mem_total_bytes=-(2**63) - 1), "int64", "outside int64"),
    (_raw(nics=[{"name": "eth0", "bytes_recv": 2**64}]), "int64", "nics[0].bytes_recv"),
    (_raw(load1=10**400), "int64", "load1"),  # was an OverflowError
    (_raw(users=1e19), "int64", "users: 1e+19 is outside int64"),
    # schema is the integer 1.
    (_raw(schema=True), "schema", "schema must be 1, got True"),
    (_raw(schema=1.0), "schema", "schema must be 1, got 1.0"),
    (_raw(schema="1"), "schema", "schema must be 1, got '1'"),
    # Ids end where the string ends.
    (_raw(host="pc-1\n"), "mismatch", "do not match topic"),
    # Nesting, refused before parsing: never a RecursionError.
    (b"[" * 130_000 + b"]" * 130_000, "too_deep", "deeper than 32"),
    (b'{"":' * 50_000 + b"1" + b"}" * 50_000, "too_deep", "deeper than 32"),
    (_raw(future=1).replace(b"1}", b"[" * 100_000 + b"]" * 100_000 + b"}"), "too_deep", ""),
    (_raw(future=json.loads("[" * 33 + "]" * 33)), "too_deep", ""),
    # Item keys become tags: InfluxDB cannot store these.
    (_raw(nics=[{"name": "Ethernet\\", "bytes_sent": 1}]), "tag", "ends in a backslash"),
    (_raw(nics=[{"name": "eth\n0", "bytes_sent": 1}]), "tag", "contains a line feed"),
    (_raw(diskio=[{"name": "", "read_bytes": 1}]), "tag", "is empty"),
    (_raw(disks=[{"mount": "", "total_bytes": 1}]), "tag", "has no tag value"),
    (_raw(disks=[{"mount": "\\\\", "total_bytes": 1}]), "tag", "has no tag value"),
]


@pytest.mark.parametrize("payload,code,reason", UNSTORABLE, ids=[
    "surrogate-field",
    "surrogate-unknown-key",
    "surrogate-nic-name",
    "surrogate-mount",
    "surrogate-utf8-bytes",
    "invalid-utf8-byte",
    "int-2**63",
    "int-below-int64",
    "section-int-2**64",
    "float-field-10**400",
    "int-field-1e19",
    "schema-true",
    "schema-1.0",
    "schema-string",
    "host-trailing-newline",
    "130000-deep-list",
    "50000-deep-object",
    "100000-deep-in-field",
    "33-deep",
    "nic-trailing-backslash",
    "nic-line-feed",
    "diskio-empty-name",
    "mount-empty",
    "mount-only-backslashes",
])
def test_what_influxdb_cannot_store_is_refused_with_its_code(payload: bytes, code: str,
                                                              reason: str) -> None:
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode(METRICS, payload)
    assert err.value.code == code, err.value
    assert reason in str(err.value)


def test_a_probe_name_with_a_trailing_newline_is_not_an_id() -> None:
    body = {"probe": "portal\n", "method": "http", "target": "http://portal", "ok": True}
    with pytest.raises(protocol.ProtocolError, match="probe: 'portal\\\\n' is not a valid id"):
        _wire("probe", body)
    assert _wire("probe", {**body, "probe": "portal"}).fields["probe"] == "portal"


def test_the_limits_themselves_are_accepted() -> None:
    msg = protocol.decode(METRICS, _raw(
        mem_total_bytes=2**63 - 1, load1=2**63 - 1, users=3.0,
        errors="[" * 2000,  # brackets in a string are not nesting
        future=json.loads("[" * 31 + "]" * 31),  # 32 deep with the payload object
        nics=[{"name": "以太网 2 (vEthernet, =)", "bytes_sent": 0}],
        disks=[{"mount": m, "total_bytes": 1} for m in ("C:\\", "D:\\data\\", "/mnt/a\nb")]))
    assert msg.fields["mem_total_bytes"] == 2**63 - 1
    assert msg.fields["load1"] == float(2**63 - 1) and msg.fields["users"] == 3
    assert [d["mount"] for d in msg.sections["disks"]] == ["C:\\", "D:\\data\\", "/mnt/a\nb"]
    # A pair of surrogate escapes is one character, and fine.
    assert protocol.decode(METRICS, _raw(errors="😀")).fields["errors"] == "😀"
    # A UTF-8 byte order mark is skipped, as json.loads(bytes) did.
    assert protocol.decode(METRICS, b"\xef\xbb\xbf" + _raw()).fields["cpu_percent"] == 5.0


def test_tag_rules() -> None:
    assert [protocol.tag_problem(v) for v in ("eth0", "a\\b", " ", "", "C:\\", "a\nb")] == [
        "", "", "", "is empty", "ends in a backslash", "contains a line feed"]
    assert [protocol.path_tag(p) for p in ("/", "C:\\", "D:\\data\\\\", "/a\nb", "\\")] == [
        "/", "C:", "D:\\data", "/a b", ""]


def test_encode_sends_a_lone_surrogate_as_a_question_mark() -> None:
    # What Python makes of a file name's undecodable bytes (surrogateescape).
    payload = protocol.encode(_payload(errors=b"/mnt/caf\xe9".decode("utf-8", "surrogateescape")))
    assert protocol.decode(METRICS, payload).fields["errors"] == "/mnt/caf?"


# --- the collector's decoder (collector/ingest/decode.py) is the reference's ---

def _outcome(decode: Any, topic: str, payload: bytes) -> str:
    """The message, or the error's (code, reason), as repr: 1 is not 1.0 here."""
    try:
        return repr(decode(topic, payload))
    except protocol.ProtocolError as exc:
        return repr((exc.code, str(exc)))


_EDGES = [
    _raw(users=3.0), _raw(cpu_percent=100), _raw(cpu_percent=100.0000001), _raw(load1=2**63 - 1),
    _raw(load1=float(2**63)), _raw(load1=-1.0), _raw(ts=946684800), _raw(ts=4102444800.5),
    _raw(load1=1e308), _raw(errors="😀"), b"\xef\xbb\xbf" + _raw(), _raw(errors="x" * 2049),
    _raw(load1=9.3e18), _raw(collect_ms=None), _raw(disks=[{"mount": "C:\\", "total_bytes": 1}]),
    _raw(disks=[{"mount": "/a\nb", "used_percent": 5}]), _raw(nics=[{"name": "eth0"}]),
    _raw(nics=[{"name": "eth0", "is_up": 1}]), _raw(nics=[{"name": "lo", "speed_mbps": True}]),
    _raw(nics=[{"name": f"e{i}"} for i in range(129)]), _raw(nics=["eth0"]), _raw(nics=None),
    _raw(role="class", network="internet"), _raw(role=None), _raw(schema=10**30),
    _raw(users=10**30), _raw(load1=-(10**30)), _raw(network=1), _raw(host=None),
    b'{"schema":1,"ts":1764000000,"site":"sq-1","host":"pc-1","network":"gov","role":"room",'
    b'"collect_ms":Infinity}',
    b'{"schema":1,"ts":1764000000,"site":"sq-1","host":"pc-1","network":"gov","role":"room",'
    b'"collect_ms":1e400}',
    b'{"schema":1,"schema":1,"ts":1764000000,"site":"sq-1","host":"pc-1","network":"gov",'
    b'"role":"room","collect_ms":1,"collect_ms":2}',
]


@pytest.mark.parametrize("topic,payload", [
    *[(g["topic"], json.dumps(g["payload"], ensure_ascii=False).encode())
      for g in map(golden, GOLDEN)],
    *[(t, p) for t, p, _, _ in INVALID],
    *[(METRICS, p) for p, _, _ in UNSTORABLE],
    *[(METRICS, p) for p in _EDGES],
    ("netroom/v1/sq-1/pc-1/probe", _raw(probe="portal\n", method="http", target="t", ok=True)),
    ("netroom/v1/sq-1/pc-1/probe", _raw(probe="portal", method="http", target="t", ok=True)),
    ("netroom/v1/sq-1/pc-1/status", _raw(state="offline", will=True)),
])
def test_the_ingest_decoder_gives_what_protocol_decode_gives(topic: str, payload: bytes) -> None:
    from collector.ingest.decode import Decoder

    decoder = Decoder()
    want = _outcome(protocol.decode, topic, payload)
    assert _outcome(decoder.decode, topic, payload) == want
    assert _outcome(decoder.decode, topic, payload) == want  # topic now cached


def _values() -> Any:
    from hypothesis import strategies as st

    return st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
        st.sampled_from(["gov", "room", "online", "http", "C:\\", "", "\n", "\ud800"]))


def _payloads() -> Any:
    """Golden payloads with fields replaced, removed or added, items too."""
    from hypothesis import strategies as st

    def mutate(draw: Any, obj: dict[str, Any], depth: int) -> dict[str, Any]:
        out = dict(obj)
        for key in draw(st.lists(st.sampled_from([*sorted(out), "future"]), max_size=4)):
            value = out.get(key)
            if isinstance(value, list) and depth == 0 and draw(st.booleans()):
                out[key] = [mutate(draw, i, 1) if isinstance(i, dict) else i for i in value]
            elif draw(st.booleans()):
                out.pop(key, None)
            else:
                out[key] = draw(_values())
        return out

    @st.composite
    def build(draw: Any) -> tuple[str, bytes]:
        g = golden(draw(st.sampled_from(GOLDEN)))
        body = mutate(draw, g["payload"], 0)
        raw = json.dumps(body, ensure_ascii=draw(st.booleans()), allow_nan=True)
        return g["topic"], raw.encode("utf-8", "surrogatepass")

    return build()


def test_the_ingest_decoder_gives_what_protocol_decode_gives_for_any_payload() -> None:
    from hypothesis import HealthCheck, given, settings

    from collector.ingest.decode import Decoder

    decoder = Decoder()

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_payloads())
    def check(case: tuple[str, bytes]) -> None:
        topic, payload = case
        assert _outcome(decoder.decode, topic, payload) == _outcome(protocol.decode, topic,
                                                                    payload)

    check()
