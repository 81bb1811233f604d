r"""What goes in comes back out, through a real influxd 1.6.

A message goes through netroom.protocol.decode, collector.ingest.points and
collector.influx.line.LineEncoder (and the ingest's MessageEncoder, which
must write the same lines), is written to influxd over HTTP /write and read
back with /query. It either reads back exactly as sent (every tag value,
string, integer and float; a disk's exact mount from its ``path`` field, its
tag being the mount without trailing backslashes; inventory's sections from
their JSON fields; the metrics totals as summed here from the body) or
decode() refuses it with the code its fault calls for.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from servers import INFLUXD_BIN, Influxd

from collector.influx.line import LineEncoder
from collector.ingest.points import MessageEncoder, to_points
from netroom import protocol, schema

SITE, HOST = "sq-1", "pc-1"
TS, T_MS = 1764000000.123, 1764000000123
ORG = {"detachment": "d-1", "battalion": "b.2"}  # config ids, as the collector adds them
MESSAGE_TAGS = {"site": SITE, "host": HOST, "network": "gov", "role": "room", **ORG}
ALL_ITEMS = schema.ITEM_SERIES_SECTIONS  # collector.item_series: every metrics section

# Characters with a meaning in line protocol or JSON, often; any other
# character that UTF-8 can carry (no surrogates), the rest of the time.
SPECIAL = "\\ ,=\"'\n\r\t\x00#{}[]:/.-_i"
CHARS = st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8"))
# Item keys: NIC and disk names any text a tag can hold (the faults below add
# those it cannot); mounts any text at all, Windows ones often.
NAME_CHARS = st.one_of(st.sampled_from(SPECIAL.replace("\n", "")),
                       st.characters(codec="utf-8", exclude_characters="\n"))
NAMES = st.text(NAME_CHARS, min_size=1, max_size=12).map(
    lambda k: k + "x" if k.endswith("\\") else k)
MOUNTS = st.one_of(st.text(CHARS, min_size=1, max_size=12).map(
                       lambda k: k if k.strip("\\") else k + "x"),
                   st.sampled_from(["C:\\", "D:\\data\\", "/", "/mnt/my disk", "\\\\srv\\share\\",
                                    "E:\\\\", "C:\\\n", "\\\n\\", "\\"]))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One influxd for every example (a database each)."""
    if not Path(INFLUXD_BIN).exists():
        pytest.fail(f"{INFLUXD_BIN} is missing: run `bash scripts/setup.sh`", pytrace=False)
    with Influxd(workdir=tmp_path_factory.mktemp("influxd")) as s:
        yield s


_db_numbers = itertools.count()


def fresh_db(server: Influxd) -> str:
    db = f"rt_{next(_db_numbers)}"
    server.post(f'CREATE DATABASE "{db}"')
    return db


def write_and_read(server: Influxd, db: str, lines: list[str]
                   ) -> dict[str, list[dict[str, Any]]]:
    """Write ``lines`` to ``db``; every measurement's rows, None left out."""
    server.write("\n".join(lines), db)
    measurements = sorted({line.split(",", 1)[0] for line in lines})
    q = "; ".join(f'SELECT * FROM "{m}"' for m in measurements)
    out: dict[str, list[dict[str, Any]]] = {}
    for result in server.query(q, db)["results"]:
        for series in result.get("series", []):
            out[series["name"]] = [
                {c: v for c, v in zip(series["columns"], row) if v is not None}
                for row in series["values"]]
    return out


# The metrics totals, stated here apart from the code: section -> item field -> total.
SUMS = {
    "disks": {"total_bytes": "disk_total_bytes", "used_bytes": "disk_used_bytes",
              "free_bytes": "disk_free_bytes"},
    "diskio": {"read_bytes": "disk_read_bytes", "write_bytes": "disk_write_bytes",
               "read_count": "disk_read_count", "write_count": "disk_write_count"},
    "nics": {f: f"net_{f}" for f in ("bytes_sent", "bytes_recv", "packets_sent",
                                     "packets_recv", "errin", "errout", "dropin", "dropout")},
}


def derived(kind: str, sections: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What the collector adds to the kind's point, from the (stored) items."""
    out: dict[str, Any] = {}

    def add(name: str, values: list[Any], how: Any = sum) -> None:
        if values and how(values) <= protocol.INT64_MAX:
            out[name] = how(values)

    if kind == "inventory":
        for name, count in (("disks", "disk_count"), ("nics", "nic_count")):
            if name in sections:
                out[name] = json.dumps(sections[name], separators=(",", ":"),
                                       ensure_ascii=False, sort_keys=True)
                out[count] = len(sections[name])
        add("disk_total_bytes", [d["total_bytes"] for d in sections.get("disks", [])
                                 if "total_bytes" in d])
    elif kind == "metrics":
        for name, fields in SUMS.items():
            items = [i for i in sections.get(name, [])
                     if name != "nics" or (i["name"] != "lo" and not i["name"].startswith(
                         "Loopback Pseudo-Interface"))]
            for f, total in fields.items():
                add(total, [i[f] for i in items if f in i])
            if name == "disks":
                add("disk_used_percent", [i["used_percent"] for i in items
                                          if "used_percent" in i], max)
            if name == "nics":
                up = [i for i in items if i.get("is_up") is True]
                if any("speed_mbps" in i for i in items):
                    add("net_speed_mbps", [sum(i.get("speed_mbps", 0) for i in up)])
                if any("is_up" in i for i in items):
                    out["nics_up"] = len(up)
    return out


def expected_rows(kind: str, body: dict[str, Any], item_series: tuple[str, ...] = ()
                  ) -> dict[str, list[dict[str, Any]]]:
    """What InfluxDB must hold for an accepted message, straight from the body."""
    spec = protocol.KINDS[kind]

    def stored(fields: Mapping[str, protocol.F], name: str, value: Any) -> Any:
        return float(value) if fields[name].type is float else value

    rows: dict[str, list[dict[str, Any]]] = {}
    sections = {name: [{k: stored(sec.fields, k, v) for k, v in item.items()}
                       for item in body[name]]
                for name, sec in spec.sections.items() if name in body}
    scalars = {k: stored(spec.fields, k, v) for k, v in body.items() if k in spec.fields}
    scalars.update(derived(kind, sections))
    if scalars:
        rows[kind] = [{"time": T_MS, **MESSAGE_TAGS, **scalars}]
    if kind != "metrics":
        return rows
    for name, sec in spec.sections.items():
        if name not in item_series:
            continue
        for item in sections.get(name, []):
            fields = {k: v for k, v in item.items() if k != sec.key}
            if not fields:
                continue
            key = item[sec.key]
            if sec.path:  # the rule: no line feed, no trailing backslash; exact in `path`
                tag = key.replace("\n", " ").rstrip("\\")
                fields[schema.PATH] = key
            else:
                tag = key
            row = {"time": T_MS, **MESSAGE_TAGS, schema.section_tag(kind, name): tag, **fields}
            rows.setdefault(f"{kind}_{name}", []).append(row)
    return rows


def assert_same(got: dict[str, list[dict[str, Any]]],
                expected: dict[str, list[dict[str, Any]]]) -> None:
    """Same measurements, series (one per item tag), columns and values.

    A float compares as a float: InfluxDB's JSON writes 4.618488453248246e16
    as 46184884532482460 and 5.0 as 5, which json reads as integers."""
    tag_of = {schema.section_measurement(k, s): schema.section_tag(k, s)
              for k, spec in protocol.KINDS.items() for s in spec.sections}

    def series(rows: dict[str, list[dict[str, Any]]]) -> dict[Any, dict[str, Any]]:
        return {(m, r.get(tag_of.get(m, ""))): r for m, rs in rows.items() for r in rs}

    g, e = series(got), series(expected)
    assert g.keys() == e.keys()
    for key, row in e.items():
        assert g[key].keys() == row.keys(), key
        for col, want in row.items():
            have = g[key][col]
            if type(want) is float:
                assert type(have) in (int, float) and float(have) == want, (key, col, have, want)
            else:
                assert type(have) is type(want) and have == want, (key, col, have, want)


def value(f: protocol.F, longest: int = 24) -> st.SearchStrategy[Any]:
    """A valid value for field ``f``, strings up to ``longest`` characters
    (faults are added by ``messages``)."""
    if f.choices:
        return st.sampled_from(f.choices)
    if f.type is str:
        return st.text(CHARS, max_size=min(f.maxlen, longest))
    if f.type is bool:
        return st.booleans()
    top = protocol.INT64_MAX if f.max is None else int(f.max)
    ints = st.integers(min_value=int(f.min or 0), max_value=top)
    if f.type is int:
        return ints
    return st.one_of(ints, st.floats(min_value=f.min, max_value=f.max, allow_nan=False,
                                     allow_infinity=False))


def key_problem(sec: protocol.Section, key: str) -> bool:
    """The tag rule, stated independently of the code: a key becomes a tag."""
    if sec.path:
        return not key.replace("\n", " ").rstrip("\\")
    return key == "" or key.endswith("\\") or "\n" in key


# A fault -> (where it goes, the value, the code decode must give).
FAULTS: dict[str, tuple[str, Any, str]] = {
    "lone surrogate in a string field": ("string", "x\ud800y", "utf8"),
    "lone surrogate in an unknown key": ("key", "future\udc80", "utf8"),
    "lone surrogate in a section item": ("item", "\udfff", "utf8"),
    "integer over int64": ("int", 2**63, "int64"),
    "integer under int64": ("int", -(2**63) - 1, "int64"),
    "float field given 10**400": ("float", 10**400, "int64"),
    "integral float over int64": ("int", 1e19, "int64"),
    "NaN": ("float", float("nan"), "field"),
    "Infinity": ("float", float("inf"), "field"),
    "schema true": ("schema", True, "schema"),
    "schema 1.0": ("schema", 1.0, "schema"),
    "33 levels deep": ("deep", 33, "too_deep"),
    "NIC name ending in a backslash": ("nic", "Ethernet\\", "tag"),
    "NIC name with a line feed": ("nic", "eth\n0", "tag"),
    "empty NIC name": ("nic", "", "tag"),
    "mount of backslashes only": ("item", "\\\\", "tag"),
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, dict[str, Any], bytes, set[str]]:
    """(kind, body, payload, the codes decode may refuse it with; empty: valid)."""
    kind = draw(st.sampled_from(["metrics", "inventory"]))
    spec = protocol.KINDS[kind]
    body: dict[str, Any] = {}
    for name, f in spec.fields.items():
        if f.required or draw(st.booleans()):
            body[name] = draw(value(f))
    codes: set[str] = set()
    for name, sec in spec.sections.items():
        key_values = MOUNTS if sec.path else NAMES
        keys = draw(st.lists(key_values, max_size=3, unique_by=(
            (lambda k: k.replace("\n", " ").rstrip("\\")) if sec.path else (lambda k: k))))
        items = []
        for key in keys:
            item = {sec.key: key}
            for fname, f in sec.fields.items():
                if fname != sec.key and draw(st.booleans()):
                    item[fname] = draw(value(f))
            if key_problem(sec, key):
                codes.add("tag")
            items.append(item)
        if items:
            body[name] = items
    payload = {**protocol.envelope(SITE, HOST, "gov", "room", TS), **body}
    fault = draw(st.sampled_from([None] * 24 + sorted(FAULTS)))
    if fault is not None:
        where, bad, code = FAULTS[fault]
        if where == "string":
            payload["errors"] = bad
        elif where == "key":
            payload[bad] = 1
        elif where == "item":
            payload["disks"] = [*payload.get("disks", []), {"mount": bad, "total_bytes": 1}]
        elif where == "nic":
            payload["nics"] = [*payload.get("nics", []), {"name": bad, "speed_mbps": 1000}]
        elif where == "int":
            payload["mem_total_bytes"] = bad
        elif where == "float":
            payload["load1" if kind == "metrics" else "cpu_mhz"] = bad
        elif where == "schema":
            payload["schema"] = bad
        else:
            deep: Any = 1
            for _ in range(bad):
                deep = [deep]
            payload["future"] = deep
        # These are checked before any field: theirs must be the code.
        codes = {code} if code in ("utf8", "too_deep", "schema") else {*codes, code}
    text = json.dumps(payload, ensure_ascii=draw(st.booleans()))
    return kind, body, text.encode("utf-8", "surrogatepass"), codes


def check(server: Influxd, case: tuple[str, dict[str, Any], bytes, set[str]]) -> str:
    """Refused with one of the expected codes, or read back exactly: the outcome."""
    kind, body, payload, codes = case
    try:
        msg = protocol.decode(protocol.topic(SITE, HOST, kind), payload)
    except protocol.ProtocolError as err:
        assert codes, f"refused a valid message: {err.code}: {err}"
        assert err.code in codes, f"{err.code}: {err}, expected one of {codes}"
        return f"refused: {err.code}"
    assert not codes, f"accepted a message that should be refused with {codes}"
    lines = LineEncoder().lines(to_points(msg, ORG, item_series=ALL_ITEMS))
    assert MessageEncoder(ALL_ITEMS).lines(msg, ORG) == lines
    # At default settings: the kind's own point only, the same line.
    assert MessageEncoder().lines(msg, ORG) == LineEncoder().lines(to_points(msg, ORG))
    assert MessageEncoder().lines(msg, ORG) == lines[:1]
    got = write_and_read(server, fresh_db(server), lines) if lines else {}
    assert_same(got, expected_rows(kind, body, ALL_ITEMS))
    return "read back" if lines else "no points"


@settings(max_examples=200, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages())
def test_a_message_reads_back_exactly_or_is_refused_with_its_reason(
        server: Influxd, case: tuple[str, dict[str, Any], bytes, set[str]]) -> None:
    event(check(server, case))  # pytest --hypothesis-show-statistics counts outcomes


@pytest.mark.parametrize("kind", ["metrics", "inventory"])
def test_windows_mounts_read_back_from_the_path_field(server: Influxd, kind: str) -> None:
    mounts = ["C:\\", "D:\\data\\", "E:\\mnt\\disk 2", "/"]
    disks = [{"mount": m, "total_bytes": 100 + i} for i, m in enumerate(mounts)]
    body: dict[str, Any] = {"disks": disks}
    if kind == "metrics":
        body["collect_ms"] = 1.0
    if kind == "inventory":
        body.update(hostname="PC-1", host_id="x")
    payload = {**protocol.envelope(SITE, HOST, "gov", "room", TS), **body}
    msg = protocol.decode(protocol.topic(SITE, HOST, kind),
                          json.dumps(payload, ensure_ascii=False).encode())
    db = fresh_db(server)
    got = write_and_read(server, db, MessageEncoder(("disks",)).lines(msg, ORG))
    if kind == "inventory":  # one point: the exact mounts in its JSON field
        (row,) = got["inventory"]
        assert [d["mount"] for d in json.loads(row["disks"])] == mounts
        assert (row["disk_count"], row["disk_total_bytes"]) == (4, 406)
        return
    rows = sorted(got[f"{kind}_disks"], key=lambda r: r["total_bytes"])
    assert [(r["mount"], r[schema.PATH]) for r in rows] == [
        ("C:", "C:\\"), ("D:\\data", "D:\\data\\"), ("E:\\mnt\\disk 2", "E:\\mnt\\disk 2"),
        ("/", "/")]
    # The tags as InfluxDB keeps them: single backslashes, nothing doubled.
    shown = server.query(f'SHOW TAG VALUES FROM "{kind}_disks" WITH KEY = "mount"', db)
    values = sorted(v[1] for v in shown["results"][0]["series"][0]["values"])
    assert values == ["/", "C:", "D:\\data", "E:\\mnt\\disk 2"]
