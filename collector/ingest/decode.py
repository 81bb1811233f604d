"""The ingest's decoder: ``protocol.decode``'s results at less than half its cost.

``protocol.decode`` is the contract's reference: the agent and every other
reader use it, and it needs only the standard library (agents have no
orjson). Ingest decodes every message it receives, so ``Decoder`` applies
the same rules to orjson's parse, with each kind's checks laid out once as
plain tuples walked in one loop (no call per field). Whatever it does not
find plainly valid goes to ``protocol.decode``, which decides and words the
reason, so messages and ProtocolErrors are exactly the reference's
(tests/test_protocol.py runs both on every case). Valid messages from a
netroom agent never take that way.

Where orjson's parse and json.loads' differ, the message goes the
reference's way: orjson refuses NaN and Infinity, numbers beyond a double, a
lone surrogate and a byte order mark, and reads an integer beyond 64 bits as
a float, so a float of magnitude 2**63 or more is referred too (as an
integer it is outside int64, as a float json.loads reads the same).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Tuple

import orjson

from netroom import protocol
from netroom.protocol import KINDS, Message

# A float (or an int in a float field) must lie strictly inside this: at
# 2**63 orjson's float may have been an integer literal (see above).
_BIG = 2.0**63
TOPICS_MAX = 100_000  # topics remembered (one per PC and kind)


class _Refer(Exception):
    """Not plainly valid: protocol.decode decides."""


_INT, _FLOAT, _STR, _BOOL = range(4)
_CODES = {int: _INT, float: _FLOAT, str: _STR, bool: _BOOL}
# (name, type code, min, max, maxlen, choices, required)
_Check = Tuple[str, int, Any, Any, int, Tuple[str, ...], bool]


def _checks(spec: Mapping[str, protocol.F]) -> tuple[_Check, ...]:
    out = []
    for name, f in spec.items():
        code = _CODES[f.type]
        if code == _INT:  # the bounds and int64 in one chained comparison
            lo = protocol.INT64_MIN if f.min is None else f.min
            hi = protocol.INT64_MAX if f.max is None else f.max
        else:
            lo = -_BIG if f.min is None else f.min
            hi = _BIG if f.max is None else f.max
        out.append((name, code, lo, hi, f.maxlen, f.choices, f.required))
    return tuple(out)


def _compile(checks: tuple[_Check, ...]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``check(obj)``: ``obj``'s fields as protocol._check_object returns them,
    or _Refer. Straight-line code, the names and bounds in it as literals
    (str, int, float and tuples of str: their repr is exact): a loop over the
    tuples, deciding the type at run time, cost 1.4 times as much."""
    src = ["def check(obj):", "    get = obj.get", "    out = {}"]
    for name, code, lo, hi, maxlen, choices, required in checks:
        n, bounds = repr(name), f"{lo!r} <= v <= {hi!r}"
        src += [f"    v = get({n})", "    if v is None:",
                "        raise _Refer" if required else "        pass"]
        # type(v), exact: a bool is no int here.
        if code == _INT:
            src += [f"    elif type(v) is int and {bounds}:", f"        out[{n}] = v"]
        elif code == _FLOAT:  # NaN fails every comparison, infinities _BIG
            src += [f"    elif type(v) is float and {bounds} and -_BIG < v < _BIG:",
                    f"        out[{n}] = v",
                    f"    elif type(v) is int and {bounds} and -_BIG < v < _BIG:",
                    f"        out[{n}] = float(v)"]
        elif code == _STR:
            ok = f"type(v) is str and len(v) <= {maxlen!r}"
            src += [f"    elif {ok}{f' and v in {choices!r}' if choices else ''}:",
                    f"        out[{n}] = v"]
        else:
            src += ["    elif type(v) is bool:", f"        out[{n}] = v"]
        src += ["    else:", "        raise _Refer"]
    src.append("    return out")
    scope: dict[str, Any] = {"_Refer": _Refer, "_BIG": _BIG}
    exec("\n".join(src), scope)  # noqa: S102 - our own source, from KINDS
    check: Callable[[Mapping[str, Any]], dict[str, Any]] = scope["check"]
    return check


class _KindChecks:
    def __init__(self, kind: str) -> None:
        spec = KINDS[kind]
        self.fields = _compile(_checks(spec.fields))
        self.tags = spec.tags
        # (name, key, path, max_items, checks)
        self.sections = tuple((name, sec.key, sec.path, sec.max_items,
                               _compile(_checks(sec.fields)))
                              for name, sec in spec.sections.items())


_ENVELOPE = _compile(_checks({"ts": protocol.F(float, True, "s", protocol.TS_MIN, protocol.TS_MAX),
                     "network": protocol.F(str, True, choices=protocol.NETWORKS),
                     "role": protocol.F(str, True, choices=protocol.ROLES)}))


class Decoder:
    """``decode(topic, payload)``: what ``protocol.decode`` returns or raises."""

    def __init__(self) -> None:
        self._kinds = {kind: _KindChecks(kind) for kind in KINDS}
        self._topics: dict[str, tuple[str, str, str]] = {}

    def decode(self, topic: str, payload: bytes) -> Message:
        try:
            return self._decode(topic, payload)
        except (_Refer, orjson.JSONDecodeError):
            return protocol.decode(topic, payload)

    def _decode(self, topic: str, payload: bytes) -> Message:
        where = self._topics.get(topic)
        if where is None:
            where = protocol.parse_topic(topic)  # ProtocolError: as the reference
            if len(self._topics) >= TOPICS_MAX:
                self._topics.clear()
            self._topics[topic] = where
        site, host, kind = where
        # Too big, or maybe too deep: the reference measures (protocol._check_depth).
        if (len(payload) > protocol.MAX_PAYLOAD_BYTES
                or payload.count(b"[") + payload.count(b"{") > protocol.MAX_DEPTH):
            raise _Refer
        obj = orjson.loads(payload)
        if type(obj) is not dict:
            raise _Refer
        schema = obj.get("schema")
        if (type(schema) is not int or schema != protocol.SCHEMA
                or obj.get("site") != site or obj.get("host") != host):
            raise _Refer
        env = _ENVELOPE(obj)
        checks = self._kinds[kind]
        fields = checks.fields(obj)
        for tag in checks.tags:
            if not protocol.ID_RE.fullmatch(fields[tag]):
                raise _Refer
        sections: dict[str, list[Mapping[str, Any]]] = {}
        for name, key, path, max_items, check_item in checks.sections:
            items = obj.get(name)
            if items is None:
                continue
            if type(items) is not list or len(items) > max_items:
                raise _Refer
            checked: list[Mapping[str, Any]] = []
            for item in items:
                if type(item) is not dict:
                    raise _Refer
                out = check_item(item)
                k = out[key]
                # Not a tag value as it is; a path's tag is protocol.path_tag's.
                if (not k or k[-1] == "\\" or "\n" in k) and not (path and protocol.path_tag(k)):
                    raise _Refer
                checked.append(out)
            sections[name] = checked
        return Message(kind, site, host, env["ts"], env["network"], env["role"], fields,
                       sections)
