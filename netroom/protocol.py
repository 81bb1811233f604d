"""The wire contract between agents and the collector.

Topic: ``netroom/v1/<site>/<host>/<kind>``; payload: one UTF-8 JSON object.
The other way, collector to agents, settings go on ``netroom/settings/v1/<site>``
(netroom.central): outside ``netroom/v1/#``, so ingest never sees them.
Both sides import this module, so the agent's encoder and the collector's
validator cannot drift apart. docs/protocol.md is the human-readable copy;
keep the two in step.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping, NamedTuple

SCHEMA = 1
TOPIC_PREFIX = "netroom/v1"
MAX_PAYLOAD_BYTES = 256 * 1024
# JSON nesting (objects and lists inside each other): a payload is 3 deep
# (object, section list, item); deeper is refused before parsing, so a
# 100,000-deep payload costs a byte scan, never a RecursionError.
MAX_DEPTH = 32
# What InfluxDB stores as an integer field (an int64); JSON has no bound.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NETWORKS = ("gov", "internet")
ROLES = ("cadre", "room", "class", "office")
# A status's update_state: current (runs the version its settings name),
# updating (getting or installing it), failed (could not get, verify or
# install it; tried again later), rolled_back (it started but did not report
# within the deadline, or crashed, and the PC went back; not tried again
# until the settings name another version), unsupported (this install
# cannot update itself: see update_error).
UP_TO_DATE, UPDATING, UPDATE_FAILED, ROLLED_BACK, UNSUPPORTED = (
    "current", "updating", "failed", "rolled_back", "unsupported")
UPDATE_STATES = (UP_TO_DATE, UPDATING, UPDATE_FAILED, ROLLED_BACK, UNSUPPORTED)
# An identifier is one MQTT topic level and one InfluxDB tag value: keep it
# free of wildcards, separators and spaces.
# \Z, not $: "$" also matches before a trailing newline.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
# Sites and units: the collector's `sites` tree, every agent's `site`, the
# installers (deploy/: same pattern, checked by tests/test_deploy_*.py).
SITE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
SITE_ID_TEXT = "1-64 of a-z, 0-9 and '-', starting with a letter or digit"
# Timestamps outside these bounds are a broken clock, not data (UTC epoch s).
TS_MIN = 946684800.0  # 2000-01-01
TS_MAX = 4102444800.0  # 2100-01-01


class ProtocolError(ValueError):
    """A message that does not follow the contract; str() is the reason.

    ``code`` classifies it for counting (the collector's ``invalid_<code>``):
    topic, size, too_deep (nesting over MAX_DEPTH), utf8 (bytes that are not
    UTF-8, or a lone surrogate such as JSON ``"\\ud800"`` in any string or
    key), json, schema, mismatch, field, int64 (an integer outside int64),
    tag (a section item's key that InfluxDB cannot store as a tag value).
    """

    def __init__(self, reason: str, code: str = "field") -> None:
        super().__init__(reason)
        self.code = code


class F(NamedTuple):
    """One payload field: its JSON type, whether required, bounds, unit."""

    type: type
    required: bool = False
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    maxlen: int = 256


class Section(NamedTuple):
    """A list of objects in a payload (one per disk, NIC...).

    ``key`` names the field identifying an item; the collector makes it a tag,
    so it must be a valid tag value (tag_problem()). A ``path`` key (a mount
    point) may be any non-empty text instead: the collector tags the item with
    path_tag(key) and keeps the exact text in a string field.
    """

    key: str
    fields: Mapping[str, F]
    max_items: int = 64
    path: bool = False


class Kind(NamedTuple):
    fields: Mapping[str, F]
    sections: Mapping[str, Section] = {}
    retained: bool = False
    # Required string fields that name a series of the host (a probe's name):
    # the collector stores them as tags, so two of them never overwrite each other.
    tags: tuple[str, ...] = ()


def _n(unit: str = "", required: bool = False, lo: float | None = 0, hi: float | None = None) -> F:
    return F(float, required, unit, lo, hi)


def _i(unit: str = "", required: bool = False, lo: float | None = 0, hi: float | None = None) -> F:
    return F(int, required, unit, lo, hi)


def _s(required: bool = False, maxlen: int = 256) -> F:
    return F(str, required, maxlen=maxlen)


_NIC_INV = {
    "name": _s(True, 64),
    "mac": _s(maxlen=64),  # InfiniBand addresses are 59 characters
    "ipv4": _s(maxlen=512),
    "ipv6": _s(maxlen=1024),
    "speed_mbps": _i("Mbit/s"),
    "mtu": _i("bytes"),
    "is_up": F(bool),
}
_DISK_INV = {
    "mount": _s(True),
    "device": _s(),
    "fstype": _s(maxlen=32),
    "total_bytes": _i("bytes"),
}
_DISK_USE = {
    "mount": _s(True),
    "total_bytes": _i("bytes"),
    "used_bytes": _i("bytes"),
    "free_bytes": _i("bytes"),
    "used_percent": _n("%", hi=100),
}
_DISKIO = {
    "name": _s(True, 64),
    "read_bytes": _i("bytes"),
    "write_bytes": _i("bytes"),
    "read_count": _i(),
    "write_count": _i(),
    "read_time_ms": _i("ms"),
    "write_time_ms": _i("ms"),
}
_NIC_USE = {
    "name": _s(True, 64),
    "bytes_sent": _i("bytes"),
    "bytes_recv": _i("bytes"),
    "packets_sent": _i(),
    "packets_recv": _i(),
    "errin": _i(),
    "errout": _i(),
    "dropin": _i(),
    "dropout": _i(),
    "speed_mbps": _i("Mbit/s"),
    "is_up": F(bool),
}

# A status's state: online (at each connection) or offline (at a clean
# stop, or the Last Will).
STATE, ONLINE, OFFLINE = "state", "online", "offline"

KINDS: dict[str, Kind] = {
    "status": Kind(
        retained=True,
        fields={
            STATE: F(str, True, choices=(ONLINE, OFFLINE)),
            # True only in the Last Will: the broker sends it when the agent
            # vanished, so `ts` is when the agent connected, not when it died.
            "will": F(bool),
            "agent_version": _s(maxlen=32),
            "interval_s": _n("s", lo=1),
            # agent.clock (docs/collectors.md): this PC's clock minus the
            # reference's (positive: ahead) and the bound of the true offset
            # around it; in `online` statuses, only when measured.
            "clock_offset_s": _n("s", lo=None),
            "clock_error_s": _n("s"),
            # Settings from the centre (netroom.central, docs/settings.md), in
            # `online` statuses: the version this PC runs (absent: none yet),
            # why it refused the latest document (absent: it did not), and the
            # settings keys its own file sets, which win (comma-separated).
            "settings_version": _s(maxlen=64),
            "settings_error": _s(maxlen=512),
            "settings_local": _s(maxlen=512),
            # The agent's self-update (docs/updates.md), in `online` statuses
            # while its settings name a version (agent.update.version): where
            # it stands (UPDATE_STATES), the version named, and why it failed,
            # was rolled back or cannot update itself. An agent older than
            # self-update sends none of them.
            "update_state": F(str, choices=UPDATE_STATES),
            "update_version": _s(maxlen=32),
            "update_error": _s(maxlen=512),
        },
    ),
    "inventory": Kind(
        retained=True,
        fields={
            "hostname": _s(True),
            "host_id": _s(True, 128),
            "os_name": _s(),
            "os_version": _s(),
            "kernel": _s(),
            "arch": _s(maxlen=32),
            "cpu_model": _s(),
            "cpu_cores": _i(),
            "cpu_threads": _i(),
            "cpu_mhz": _n("MHz"),
            "mem_total_bytes": _i("bytes"),
            "vendor": _s(),
            "model": _s(),
            "serial": _s(),
            "bios_version": _s(),
            "boot_time_s": _n("s since epoch"),
            "agent_version": _s(maxlen=32),
            "errors": _s(maxlen=2048),
        },
        sections={
            "disks": Section("mount", _DISK_INV, path=True),
            "nics": Section("name", _NIC_INV, max_items=128),
        },
    ),
    "metrics": Kind(
        fields={
            "cpu_percent": _n("%", hi=100),
            "load1": _n(),
            "load5": _n(),
            "load15": _n(),
            "mem_total_bytes": _i("bytes"),
            "mem_available_bytes": _i("bytes"),
            "mem_used_percent": _n("%", hi=100),
            "swap_total_bytes": _i("bytes"),
            "swap_used_bytes": _i("bytes"),
            "users": _i(),
            "boot_time_s": _n("s since epoch"),
            "uptime_s": _n("s"),
            # Required: a metrics message is the PC's heartbeat, and the
            # collector reads heartbeats from this field (collector/store/heartbeats.py).
            "collect_ms": _n("ms", True),
            "errors": _s(maxlen=2048),
        },
        sections={
            "disks": Section("mount", _DISK_USE, path=True),
            "diskio": Section("name", _DISKIO),
            "nics": Section("name", _NIC_USE, max_items=128),
        },
    ),
    # One speed test by a tester PC (docs/bandwidth.md). A failed test is a
    # record too: `error` set, the measured fields absent.
    "bandwidth": Kind(
        fields={
            "method": F(str, True, choices=("speedtest", "intranet")),
            "server": _s(maxlen=512),
            "download_mbps": _n("Mbit/s"),
            "upload_mbps": _n("Mbit/s"),
            "latency_ms": _n("ms"),
            "jitter_ms": _n("ms"),
            "bytes": _i("bytes"),
            "duration_s": _n("s"),
            "streams": _i(),
            "error": _s(maxlen=512),
        },
    ),
    # One probe result (docs/availability.md): the probe named `probe`
    # reached `target` or not.
    "probe": Kind(
        tags=("probe",),
        fields={
            "probe": _s(True, 64),
            "method": F(str, True, choices=("http", "tcp", "dns")),
            "target": _s(True, 512),
            "ok": F(bool, True),
            "latency_ms": _n("ms"),
            "status": _i("HTTP status code", hi=999),
            "address": _s(maxlen=64),
            "error": _s(maxlen=512),
        },
    ),
    # A gov PC's leak check (docs/availability.md): internet canaries it
    # reached, interfaces that could bridge networks, default routes.
    "isolation": Kind(
        fields={
            "violated": F(bool, True),
            "reasons": _s(maxlen=2048),
            # Canaries configured on this PC (each is checked every run): 0 = none
            # configured, so a clean report proves nothing (gov_isolation: no data).
            "canaries_checked": _i(),
            "canaries_reached": _i(),
            "reached": _s(maxlen=1024),
            "bridges": _s(maxlen=1024),
            "bridges_up": _i(),
            "default_routes": _i(),
            "default_route_ifaces": _s(maxlen=512),
            "collect_ms": _n("ms"),
            "errors": _s(maxlen=2048),
        },
    ),
}


class Message(NamedTuple):
    """A validated message. ``fields`` holds scalars, ``sections`` lists."""

    kind: str
    site: str
    host: str
    ts: float
    network: str
    role: str
    fields: Mapping[str, Any]
    sections: Mapping[str, list[Mapping[str, Any]]]


def topic(site: str, host: str, kind: str) -> str:
    return f"{TOPIC_PREFIX}/{site}/{host}/{kind}"


def parse_topic(name: str) -> tuple[str, str, str]:
    """Split a topic into (site, host, kind), or raise ProtocolError."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_PREFIX:
        raise ProtocolError(
            f"topic {name!r} is not {TOPIC_PREFIX}/<site>/<host>/<kind>", "topic"
        )
    site, host, kind = parts[2:]
    if kind not in KINDS:
        raise ProtocolError(f"unknown kind {kind!r}", "topic")
    if not SITE_ID_RE.fullmatch(site):
        raise ProtocolError(f"topic site {site!r} is not a valid site id ({SITE_ID_TEXT})",
                            "topic")
    if not ID_RE.fullmatch(host):
        raise ProtocolError(f"topic host {host!r} is not a valid id", "topic")
    return site, host, kind


def envelope(site: str, host: str, network: str, role: str, ts: float) -> dict[str, Any]:
    """The fields every payload carries; ``ts`` is UTC epoch seconds."""
    return {
        "schema": SCHEMA,
        "ts": round(ts, 3),
        "site": site,
        "host": host,
        "network": network,
        "role": role,
    }


def fit(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` cut to the limits of KINDS[kind], so senders need not copy them.

    Strings longer than their field's maxlen are truncated (in sections too),
    section lists longer than max_items keep their first items; a cut list is
    noted in the kind's ``errors`` field when it has one. Everything else
    passes unchanged, for decode() to judge.
    """
    spec = KINDS[kind]
    out = dict(body)
    cuts = []
    for name, sec in spec.sections.items():
        items = out.get(name)
        if not isinstance(items, list):
            continue
        if len(items) > sec.max_items:
            cuts.append(f"{name}: {len(items)} items, sent the first {sec.max_items}")
            items = items[:sec.max_items]
        out[name] = [_fit_strings(i, sec.fields) if isinstance(i, dict) else i for i in items]
    if cuts and "errors" in spec.fields:
        errors = out.get("errors")
        out["errors"] = "; ".join([errors, *cuts] if isinstance(errors, str) and errors
                                  else cuts)
    return _fit_strings(out, spec.fields)


def _fit_strings(obj: dict[str, Any], spec: Mapping[str, F]) -> dict[str, Any]:
    long = [n for n, f in spec.items()
            if f.type is str and isinstance(obj.get(n), str) and len(obj[n]) > f.maxlen]
    if not long:
        return obj
    out = dict(obj)
    for name in long:
        out[name] = out[name][:spec[name].maxlen]
    return out


def encode(payload: Mapping[str, Any]) -> bytes:
    """The payload as UTF-8 JSON. A string that cannot be UTF-8 (a lone
    surrogate, as Python makes of a file name's undecodable bytes) has those
    characters sent as ``?``: the collector would refuse the whole message."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "replace")


def tag_problem(value: str) -> str:
    """Why InfluxDB 1.x cannot store ``value`` as a tag value exactly ('' if it can).

    Checked against influxd 1.6 (tests/test_lineprotocol_roundtrip.py): a
    tag value cannot be empty (an empty tag is no tag), cannot end in a
    backslash (it escapes the separator that follows, whatever the
    escaping: 400) and cannot hold a line feed (a raw one ends the line, an
    escaped one is stored with its backslash).
    """
    if not value:
        return "is empty"
    if value[-1] == "\\":
        return "ends in a backslash"
    if "\n" in value:
        return "contains a line feed"
    return ""


# An agent's host id (inventory host_id): "<machine>.<hardware>", the hardware
# part 16 hex (agent/identity.py); earlier agents sent the machine part alone.
HOST_ID_RE = re.compile(r"(.+)\.([0-9a-f]{16})\Z")


def split_host_id(host_id: str) -> tuple[str, str]:
    """(machine part, hardware part); (host_id, "") without a hardware part."""
    m = HOST_ID_RE.match(host_id)
    return (m.group(1), m.group(2)) if m else (host_id, "")


def path_tag(path: str) -> str:
    r"""The tag value for a path-like key (Section.path: a mount point).

    Line feeds become spaces and trailing backslashes are dropped, so mount
    ``C:\`` is tagged ``C:`` and ``D:\data\`` ``D:\data``; plain paths
    (``/``, ``/home``) are unchanged. '' means the path has no tag value
    (decode() refuses it). The exact path is stored in a string field.
    """
    return path.replace("\n", " ").rstrip("\\")


# A JSON string, so that brackets inside strings are not counted as nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
# \uD800-\uDFFF: the only way a surrogate gets into strict-UTF-8 text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_depth(payload: bytes | bytearray) -> None:
    # Nesting cannot exceed the number of openers: a typical message has a
    # few dozen, and two counts (C speed) settle it without a scan.
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return
    brackets = _JSON_STRING.sub(b"", payload).translate(_TO_SQUARE, _NOT_BRACKET)
    depth = 0
    for b in brackets:
        if b == 0x5B:  # "["
            depth += 1
            if depth > MAX_DEPTH:
                raise ProtocolError(f"nested deeper than {MAX_DEPTH} levels", "too_deep")
        else:
            depth -= 1


def decode(topic_name: str, payload: bytes | bytearray) -> Message:
    """Validate one message off the wire; raise ProtocolError with a reason."""
    site, host, kind = parse_topic(topic_name)
    obj = _parse(payload)
    schema = obj.get("schema")
    if type(schema) is not int or schema != SCHEMA:  # not true, not 1.0
        raise ProtocolError(f"schema must be {SCHEMA}, got {schema!r}", "schema")
    if obj.get("site") != site or obj.get("host") != host:
        raise ProtocolError(
            f"payload site/host {obj.get('site')!r}/{obj.get('host')!r} "
            f"do not match topic {site}/{host}",
            "mismatch",
        )
    ts = _check("ts", obj.get("ts"), F(float, True, "s", TS_MIN, TS_MAX))
    network = _check("network", obj.get("network"), F(str, True, choices=NETWORKS))
    role = _check("role", obj.get("role"), F(str, True, choices=ROLES))
    spec = KINDS[kind]
    fields = _check_object(obj, spec.fields, "")
    for tag in spec.tags:
        if not ID_RE.fullmatch(fields[tag]):
            raise ProtocolError(f"{tag}: {fields[tag]!r} is not a valid id")
    sections: dict[str, list[Mapping[str, Any]]] = {}
    for name, sec in spec.sections.items():
        items = obj.get(name)
        if items is not None:
            sections[name] = _check_section(name, sec, items)
    return Message(kind, site, host, ts, network, role, fields, sections)


def _parse(payload: bytes | bytearray) -> dict[str, Any]:
    """The payload's JSON object: not too big, not too deep, strictly UTF-8."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}", "size")
    _check_depth(payload)
    try:
        text = payload.decode("utf-8")  # strict: json.loads(bytes) lets surrogates pass
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"payload is not UTF-8: {exc}", "utf8") from None
    if text[:1] == "\ufeff":  # a UTF-8 byte order mark, which json.loads(bytes) skipped
        text = text[1:]
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"payload is not JSON: {exc}", "json") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:  # pairs became one character; a lone surrogate cannot be encoded
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("a string holds a lone surrogate (not UTF-8)", "utf8") from None
    if not isinstance(obj, dict):
        raise ProtocolError("payload is not a JSON object", "json")
    return obj


def _check_section(name: str, sec: Section, items: Any) -> list[Mapping[str, Any]]:
    if not isinstance(items, list) or len(items) > sec.max_items:
        raise ProtocolError(f"{name}: must be a list of at most {sec.max_items} objects")
    checked: list[Mapping[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ProtocolError(f"{name}[{i}]: must be an object")
        out = _check_object(item, sec.fields, f"{name}[{i}].")
        key = out[sec.key]
        # The common case in three tests; the exact rule when they fail.
        if not key or key[-1] == "\\" or "\n" in key:
            if not sec.path:
                raise ProtocolError(f"{name}[{i}].{sec.key}: {key!r} {tag_problem(key)}: "
                                    "not an InfluxDB tag value", "tag")
            if not path_tag(key):
                raise ProtocolError(f"{name}[{i}].{sec.key}: {key!r} has no tag value "
                                    "(empty or only backslashes)", "tag")
        checked.append(out)
    return checked


def _check_object(obj: Mapping[str, Any], spec: Mapping[str, F], where: str) -> dict[str, Any]:
    # Unknown keys are skipped, not rejected: a newer agent may add fields
    # without breaking older collectors (see docs/protocol.md, versioning).
    out = {}
    for name, f in spec.items():
        value = obj.get(name)
        if value is None:
            if f.required:
                raise ProtocolError(f"{where}{name}: required")
            continue
        out[name] = _fast(value, f)
        if out[name] is _SLOW:
            out[name] = _check(where + name, value, f)
    return out


_SLOW = object()
_INFS = (math.inf, -math.inf)


def _fast(value: Any, f: F) -> Any:
    """The common, valid case in few operations (the collector's hot path);
    _SLOW when _check must decide and word the error."""
    t = type(value)  # exact types: bool is not an int here
    want = f.type
    if t is int:
        # One chained comparison for the field's bounds and int64 (every
        # KINDS bound lies within int64).
        lo, hi = f.min, f.max
        if ((want is int or want is float)
                and (-(2**63) if lo is None else lo) <= value <= (2**63 - 1 if hi is None else hi)):
            return value if want is int else float(value)
    elif t is float:
        if (want is float and value == value  # noqa: PLR0124 - False only for NaN
                and value not in _INFS
                and (f.min is None or value >= f.min) and (f.max is None or value <= f.max)):
            return value
    elif t is want is str:
        if len(value) <= f.maxlen and (not f.choices or value in f.choices):
            return value
    elif t is want is bool:
        return value
    return _SLOW


def _check(name: str, value: Any, f: F) -> Any:
    if f.type is str:
        if not isinstance(value, str):
            raise ProtocolError(f"{name}: must be a string, got {type(value).__name__}")
        if len(value) > f.maxlen:
            raise ProtocolError(f"{name}: longer than {f.maxlen} characters")
        if f.choices and value not in f.choices:
            raise ProtocolError(f"{name}: must be one of {', '.join(f.choices)}, got {value!r}")
        return value
    if f.type is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{name}: must be true or false")
        return value
    # JSON has one number type; bool is an int in Python, so exclude it.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{name}: must be a number, got {type(value).__name__}")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        digits = str(value)
        shown = digits if len(digits) <= 24 else f"a {len(digits.lstrip('-'))}-digit integer"
        raise ProtocolError(f"{name}: {shown} is outside int64", "int64")
    if f.type is int and not (isinstance(value, int) or float(value).is_integer()):
        raise ProtocolError(f"{name}: must be an integer, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ProtocolError(f"{name}: must be finite")
    if f.type is int and not INT64_MIN <= value <= INT64_MAX:  # 1e19: integral, too big
        raise ProtocolError(f"{name}: {value!r} is outside int64", "int64")
    if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
        raise ProtocolError(f"{name}: {value!r} out of range [{f.min}, {f.max}]")
    return int(value) if f.type is int else float(value)
