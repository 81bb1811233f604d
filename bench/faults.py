"""Fault and fuzz campaign: every acknowledged message lands or is set aside.

Real processes on 127.0.0.1 only: mosquitto and influxd (tests/servers.py,
free ports, temp dirs), the real collector (``python3 -m collector``) as a
subprocess, restarted like a service manager would when it exits on its own.
The collector's spool (and its dead-letter store) lives on a small tmpfs
(mounted here, as root) so that the disk can be filled for real.

It publishes, QoS 1, waiting for each PUBACK (so every message counts as
acknowledged by the broker):

- valid messages of every kind (metrics with NICs and disks, Windows mounts
  such as ``C:\\``, inventories up to ~200 KB, status, probe, isolation,
  bandwidth), each carrying ``fzid=<id>;`` in a string field and a unique
  time, so the landed ones are counted exactly in InfluxDB, point by point;
- ~1,200 hostile inputs from a seeded generator (lone surrogates, integers
  past int64, ``"schema": true``, ids with a trailing newline, 130,000-deep
  JSON, random bytes, truncated JSON, wrong types, oversize strings, control
  characters, tag-breaking characters, future and ancient timestamps...);
- messages of one host that InfluxDB refuses (a field type conflict written
  beforehand): the refused batch.

and meanwhile injects faults: influxd stopped and restarted, influxd frozen
(SIGSTOP) longer than ``influxdb.timeout_s``, the collector SIGKILLed (also
while spooling, while InfluxDB is frozen and while its disk is full), the
spool's disk filled while InfluxDB is down, then freed. Broker restarts only
with ``--broker-restart``.

At the end it waits (bounded) for the collector to settle and counts, per
message id: sent (acknowledged by the broker) = landed (found in InfluxDB by
its id) + set aside (found byte for byte in the dead-letter store). Anything
else is lost and listed by id. Each message's fate is also checked against
what ``netroom.protocol.decode`` predicts (landed or which reason).

    python3 bench/faults.py             # full: ~27,000 messages, 9 faults, ~5 minutes
    python3 bench/faults.py --quick     # small: < 1 minute
    python3 bench/faults.py --json      # the summary as JSON on stdout

Exit status: 0 when nothing was lost and the collector settled; 1 otherwise.
See docs/reliability.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
from harness import series, write_config  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from servers import Influxd, Mosquitto, wait_until  # noqa: E402

from collector.influx.line import LineEncoder  # noqa: E402
from collector.ingest.deadletter import FILENAME as DL_FILE  # noqa: E402
from collector.ingest.deadletter import DeadLetters  # noqa: E402
from collector.ingest.points import to_points  # noqa: E402
from collector.ingest.subscriber import SubscriberConfig, encode_message  # noqa: E402
from netroom import protocol, schema  # noqa: E402
from netroom.mqtt import MqttConfig  # noqa: E402

PATH_FIELD = schema.PATH  # the exact mount of a disk point (its tag drops trailing "\\")

DB = "faults"
CLIENT_ID = "fz-collector"
# The string field of each kind that carries a message's id token.
ID_FIELD = {"metrics": "errors", "inventory": "serial", "status": "agent_version",
            "probe": "error", "isolation": "errors", "bandwidth": "server"}
TOKEN_RE = re.compile(r"fzid=(\d+);")
# Only the refused host sends it: written as a string beforehand, so InfluxDB
# refuses every later float of it (field type conflict, 400 partial write).
CONFLICT_FIELD = "load15"
REFUSED_HOST = "fzrefused"
# The field read back to find each section's points (always sent by the
# valid generator), besides the section's tag.
SECTION_FIELD = {"metrics_nics": "bytes_sent", "metrics_disks": PATH_FIELD,
                 "metrics_diskio": "read_bytes", "inventory_nics": "mac",
                 "inventory_disks": PATH_FIELD}
RESTART_S = 2.0  # like systemd's Restart=on-failure, RestartSec (5 s in deploy/)
CLOCK_AHEAD_S, CLOCK_BEHIND_S = 600.0, 30 * 86400.0  # the collector's defaults


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

@dataclass
class Msg:
    id: int
    group: str  # "valid", "refused" or a hostile category
    variant: str  # what the generator did
    topic: str
    payload: bytes
    expect: str  # land, land-skewed, invalid:<code>, unencodable:<name>, rejected, crash:<name>
    kind: str = ""  # the kind it lands as (for expect land*)
    id_value: str = ""  # the id field's exact text as decoded
    points: list[tuple[str, int, str, str]] = field(default_factory=list)  # expected points
    paths: dict[tuple[str, int, str, str], str] = field(default_factory=dict)  # disk -> path


class Gen:
    """Deterministic messages: seeded, unique (topic, payload), unique times."""

    def __init__(self, seed: int, t0_ms: int) -> None:
        self.rng = random.Random(seed)
        self.t0_ms = t0_ms
        self.next_id = 0
        self.seen: set[tuple[str, bytes]] = set()
        self.now_ms = int(time.time() * 1000)
        self.enc = LineEncoder()
        self.bounds = SubscriberConfig(MqttConfig(), CLIENT_ID, "netroom/v1/#", 65535,
                                       CLOCK_AHEAD_S, CLOCK_BEHIND_S)

    # -- valid bodies ------------------------------------------------------

    def envelope(self, i: int, kind: str, host: str | None = None,
                 ts: float | None = None) -> tuple[str, dict[str, Any]]:
        r = self.rng
        host = host or f"fz{r.randrange(48):02d}"
        site = r.choice(("sq-1", "sq-2"))
        obj = {"schema": 1, "ts": (self.t0_ms + i) / 1000 if ts is None else ts,
               "site": site, "host": host, "network": r.choice(protocol.NETWORKS),
               "role": r.choice(protocol.ROLES)}
        return protocol.topic(site, host, kind), obj

    def body(self, i: int, kind: str, windows: bool, big: bool = False) -> dict[str, Any]:
        r = self.rng
        token = f"fzid={i};"
        if kind == "metrics":
            mounts = (["C:\\", "D:\\data\\"] if windows
                      else ["/", "/home", "/mnt/usb disk,1=a"])
            return {
                "cpu_percent": round(r.uniform(0, 100), 2), "load1": round(r.uniform(0, 8), 2),
                "load5": round(r.uniform(0, 8), 2), "mem_total_bytes": 8 * 2**30,
                "mem_available_bytes": r.randrange(2**33), "mem_used_percent": r.uniform(0, 100),
                "swap_total_bytes": 0, "users": r.randrange(4), "uptime_s": r.uniform(0, 1e6),
                "collect_ms": r.uniform(0, 50), "errors": token,
                "nics": [{"name": f"eth{n}", "bytes_sent": r.randrange(2**40),
                          "bytes_recv": r.randrange(2**40), "packets_sent": r.randrange(2**30),
                          "packets_recv": r.randrange(2**30), "errin": 0, "errout": 0,
                          "dropin": r.randrange(9), "dropout": 0, "speed_mbps": 1000,
                          "is_up": True} for n in range(r.choice((1, 2, 3, 4, 16)))],
                "disks": [{"mount": m, "total_bytes": 2**40, "used_bytes": r.randrange(2**40),
                           "free_bytes": r.randrange(2**40),
                           "used_percent": round(r.uniform(0, 100), 2)} for m in mounts],
                "diskio": [{"name": d, "read_bytes": r.randrange(2**40),
                            "write_bytes": r.randrange(2**40), "read_count": r.randrange(2**30),
                            "write_count": r.randrange(2**30), "read_time_ms": r.randrange(2**20),
                            "write_time_ms": r.randrange(2**20)}
                           for d in (("PhysicalDrive0",) if windows else ("sda", "nvme0n1"))],
            }
        if kind == "inventory":
            n = 128 if big else r.randint(1, 4)
            v6 = r.randint(400, 1024) if big else 40
            v4 = r.randint(100, 512) if big else 15
            return {
                "hostname": f"PC-{i}" if windows else f"pc-{i}", "host_id": f"{i:032x}",
                "os_name": "Windows" if windows else "Kylin", "os_version": "10",
                "kernel": "10.0.19045" if windows else "4.19.90", "arch": "x86_64",
                "cpu_model": "Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz", "cpu_cores": 6,
                "cpu_threads": 6, "cpu_mhz": 3000.0, "mem_total_bytes": 8 * 2**30,
                "vendor": "Lenovo", "model": "ThinkCentre", "serial": token,
                "bios_version": "M1AKT", "boot_time_s": 1.7e9, "agent_version": "0.9",
                "disks": [{"mount": m, "device": "/dev/sda1", "fstype": "ntfs" if windows
                           else "ext4", "total_bytes": 2**40}
                          for m in (["C:\\", "D:\\"] if windows else ["/", "/boot/efi"])],
                "nics": [{"name": f"nic{k}", "mac": f"00:16:3e:{k // 256:02x}:{k % 256:02x}:01",
                          "ipv4": (f"10.0.{k % 256}.{i % 256}," * 40)[:v4],
                          "ipv6": (f"fe80::216:3eff:fe{k % 256:02x}:{i % 65536:04x},"
                                   * 40)[:v6],
                          "speed_mbps": 1000, "mtu": 1500, "is_up": True} for k in range(n)],
            }
        if kind == "status":
            return {"state": r.choice(("online", "offline")), "agent_version": token,
                    "interval_s": 60.0}
        if kind == "probe":
            return {"probe": r.choice(("portal", "web", "dns-1")),
                    "method": r.choice(("http", "tcp", "dns")), "target": "http://127.0.0.1/",
                    "ok": r.random() < 0.9, "latency_ms": r.uniform(0, 300), "status": 200,
                    "address": "127.0.0.1", "error": token}
        if kind == "isolation":
            return {"violated": r.random() < 0.1, "reasons": "", "canaries_checked": 2,
                    "canaries_reached": 0, "bridges_up": 0, "default_routes": 1,
                    "collect_ms": r.uniform(0, 3000), "errors": token}
        return {"method": "intranet", "server": f"http://127.0.0.1:8090/{token}",
                "download_mbps": r.uniform(1, 900), "upload_mbps": r.uniform(1, 900),
                "latency_ms": r.uniform(0, 30), "jitter_ms": r.uniform(0, 5),
                "bytes": r.randrange(2**33), "duration_s": 10.0, "streams": 4}

    def base(self, i: int, kind: str | None = None, host: str | None = None,
             ts: float | None = None, big: bool = False) -> tuple[str, str, dict[str, Any]]:
        kind = kind or self.rng.choice(tuple(protocol.KINDS))
        topic, obj = self.envelope(i, kind, host, ts)
        obj.update(self.body(i, kind, windows=int(obj["host"][-2:] if obj["host"][-2:]
                                                  .isdigit() else 1) % 3 == 0, big=big))
        return kind, topic, obj

    # -- prediction --------------------------------------------------------

    def predict(self, m: Msg) -> None:
        """What the collector should do with it, by the project's own contract."""
        try:
            msg = protocol.decode(m.topic, m.payload)
        except protocol.ProtocolError as exc:
            m.expect = f"invalid:{exc.code}"
            return
        except Exception as exc:
            m.expect = f"crash:{type(exc).__name__}"
            return
        try:
            _, skew = encode_message(msg, self.enc, {}, self.now_ms, self.bounds)
        except Exception as exc:
            m.expect = f"unencodable:{type(exc).__name__}"
            return
        m.kind = msg.kind
        m.id_value = str(msg.fields.get(ID_FIELD[msg.kind], ""))
        will = msg.kind == "status" and bool(msg.fields.get("will"))
        m.expect = "land-skewed" if skew is not None or will else "land"
        if msg.site == "sq-1" and msg.host == REFUSED_HOST and CONFLICT_FIELD in msg.fields:
            m.expect = "rejected"
        if m.expect == "land":
            keys, checked = [], []
            for p in to_points(msg):
                tag = next((v for k, v in p.tags.items() if k not in schema.MESSAGE_TAGS), "")
                key = (p.measurement, p.time_ms, msg.host, tag)
                keys.append(key)
                # Found again by the field read back (SECTION_FIELD), if it has it.
                if SECTION_FIELD.get(p.measurement, ID_FIELD.get(p.measurement)) in p.fields:
                    checked.append(key)
                    if PATH_FIELD in p.fields:
                        m.paths[key] = p.fields[PATH_FIELD]
            if len(set(keys)) == len(keys):  # else two items share a series: main point only
                m.points = checked
            else:
                m.paths = {}

    def add(self, group: str, variant: str, topic: str, payload: bytes) -> Msg | None:
        """A message with the next id, or None if (topic, payload) was sent already
        or it would land without its id token."""
        if (topic, payload) in self.seen:
            return None
        m = Msg(self.next_id, group, variant, topic, payload, "")
        self.predict(m)
        if m.expect.startswith("land") and f"fzid={m.id};" not in m.id_value:
            return None
        self.seen.add((topic, payload))
        self.next_id += 1
        return m

    # -- valid and refused ---------------------------------------------------

    def valid(self, n: int) -> list[Msg]:
        kinds = ["metrics"] * 50 + ["probe"] * 15 + ["isolation"] * 12 + ["status"] * 10 + \
                ["inventory"] * 8 + ["bandwidth"] * 5
        out: list[Msg] = []
        while len(out) < n:
            i = self.next_id
            kind = self.rng.choice(kinds)
            big = kind == "inventory" and self.rng.random() < 0.06
            _, topic, obj = self.base(i, kind, big=big)
            m = self.add("valid", f"{kind}{' 50-200 KB' if big else ''}", topic, dump(obj))
            if m is not None:
                out.append(m)
        return out

    def refused(self, n: int) -> list[Msg]:
        out: list[Msg] = []
        while len(out) < n:
            i = self.next_id
            _, topic, obj = self.base(i, "metrics", host=REFUSED_HOST)
            topic = protocol.topic("sq-1", REFUSED_HOST, "metrics")
            obj["site"] = "sq-1"
            obj[CONFLICT_FIELD] = 0.5
            m = self.add("refused", "field type conflict", topic, dump(obj))
            if m is not None:
                out.append(m)
        return out

    # -- hostile -------------------------------------------------------------

    def hostile(self, scale: float) -> list[Msg]:
        out: list[Msg] = []
        for name, fn, n in HOSTILE:
            want = max(2, round(n * scale))
            got = tries = 0
            while got < want and tries < want * 30:
                tries += 1
                i = self.next_id
                variant, topic, payload = fn(self, i)
                m = self.add(name, variant, topic, payload)
                if m is not None:
                    out.append(m)
                    got += 1
        return out


def dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def dump_with(obj: Any, marks: dict[str, str]) -> bytes:
    """JSON text with placeholders replaced by raw JSON text (escapes, literals)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for k, v in marks.items():
        text = text.replace(k, v)
    return text.encode("utf-8", "surrogatepass")


def string_paths(kind: str, obj: dict[str, Any], with_id: bool = False
                 ) -> list[tuple[Any, ...]]:
    spec = protocol.KINDS[kind]
    paths: list[tuple[Any, ...]] = [(n,) for n, f in spec.fields.items()
                                    if f.type is str and not f.choices
                                    and (with_id or n != ID_FIELD[kind])]
    for name, sec in spec.sections.items():
        for k in range(len(obj.get(name) or [])):
            paths += [(name, k, n) for n, f in sec.fields.items() if f.type is str]
    return paths or [(ID_FIELD[kind],)]  # status: its only free text is the id field


def all_paths(kind: str, obj: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, F) of every field of the kind, envelope included."""
    spec = protocol.KINDS[kind]
    out: list[tuple[tuple[Any, ...], Any]] = [((n,), None) for n in
                                              ("ts", "site", "host", "network", "role", "schema")]
    out += [((n,), f) for n, f in spec.fields.items() if n != CONFLICT_FIELD]
    for name, sec in spec.sections.items():
        out.append(((name,), None))
        for k, _ in enumerate(obj.get(name) or []):
            out += [((name, k, n), f) for n, f in sec.fields.items()]
    return out


def set_path(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = obj
    for p in path[:-1]:
        target = target[p]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


_DELETE = object()
SUR = "\u00a7S\u00a7"  # placeholder, replaced in the JSON text


def h_surrogate(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    kind, topic, obj = g.base(i, r.choice(("metrics", "inventory", "probe", "status")))
    variant = r.choice(("high", "low", "in-id-field", "in-section", "in-key", "cesu-bytes",
                        "valid-pair", "escaped-backslash"))
    esc = {"high": "\\ud800", "low": "\\udfff", "in-id-field": "\\udbff", "in-section": "\\ud800",
           "in-key": "\\udc00", "valid-pair": "\\ud83d\\ude00",
           "escaped-backslash": "\\\\ud800"}.get(variant, "")
    if variant == "in-key":
        obj[f"k{SUR}"] = 1
    elif variant in ("in-id-field", "valid-pair", "escaped-backslash"):
        f = ID_FIELD[kind]
        obj[f] = obj[f] + SUR
    elif variant == "in-section" and kind in ("metrics", "inventory"):
        obj["nics"][0]["name"] = "eth" + SUR
    else:
        path = r.choice(string_paths(kind, obj))
        set_path(obj, path, "x" + SUR + "y")
    if variant == "cesu-bytes":
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return variant, topic, text.replace(SUR.encode(), b"\xed\xa0\x80")
    return variant, topic, dump_with(obj, {SUR: esc or "\\ud800"})


INT_VALUES = (2**63, 2**63 - 1, 2**64, -(2**63) - 1, 10**30, 10**19, -1, 2**53 + 1, 0)
FLOAT_VALUES = (1e19, 9.3e18, 1.8446744073709552e19, 1e300, -0.0, 5e-324)


def h_int64(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    kind, topic, obj = g.base(i, r.choice(("metrics", "inventory", "isolation", "bandwidth",
                                           "probe")))
    paths = [(p, f) for p, f in all_paths(kind, obj)
             if f is not None and f.type in (int, float)]
    path, _ = r.choice(paths)
    value: Any = r.choice(INT_VALUES + FLOAT_VALUES)
    set_path(obj, path, value)
    return f"{'.'.join(map(str, path))}={value!r}", topic, dump(obj)


def h_schema(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    _, topic, obj = g.base(i)
    value = r.choice((True, False, 1.0, "1", 2, 0, None, [1], {"v": 1}, -1, _DELETE, "1e0"))
    if value == "1e0":
        obj["schema"] = SUR
        return "schema=1e0", topic, dump_with(obj, {f'"{SUR}"': "1e0"})
    set_path(obj, ("schema",), value)
    return f"schema={'missing' if value is _DELETE else repr(value)}", topic, dump(obj)


def h_newline_id(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    end = r.choice(("\n", "\r\n", "\u2028", "\r"))
    variant = r.choice(("payload-host", "payload-site", "probe-name", "nic-name", "diskio-name",
                        "mount", "network", "host_id", "hostname"))
    kind = {"probe-name": "probe", "host_id": "inventory", "hostname": "inventory"}.get(
        variant, "metrics")
    _, topic, obj = g.base(i, kind)
    if variant == "payload-host":
        obj["host"] += end
    elif variant == "payload-site":
        obj["site"] += end
    elif variant == "probe-name":
        obj["probe"] += end
    elif variant == "nic-name":
        obj["nics"][0]["name"] += end
    elif variant == "diskio-name":
        obj["diskio"][0]["name"] += end
    elif variant == "mount":
        obj["disks"][0]["mount"] = "/mnt/fz" + end
    elif variant == "network":
        obj["network"] += end
    else:
        obj[variant] += end
    return f"{variant}+{end!r}", topic, dump(obj)


def h_deep(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    variant = r.choice(("list-130000", "object-130000", "inside-100000", "inside-33",
                        "inside-32-ok", "brackets-in-string-ok", "unbalanced", "escaped-quotes-ok"))
    _, topic, obj = g.base(i, "metrics")
    if variant == "list-130000":
        return variant, topic, b"[" * 130_000 + b"]" * 130_000
    if variant == "object-130000":
        return variant, topic, b'{"a":' * 130_000 + b"1" + b"}" * 130_000
    if variant == "unbalanced":
        return variant, topic, dump(obj)[:-1] + b"]" * 50_000
    if variant == "brackets-in-string-ok":
        obj["note"] = "[" * 100_000 + "{" * 50_000
        return variant, topic, dump(obj)
    if variant == "escaped-quotes-ok":
        obj["note"] = '\\"[' * 20_000
        return variant, topic, dump(obj)
    depth = {"inside-100000": 100_000, "inside-33": 32, "inside-32-ok": 31}[variant]
    obj["x"] = SUR
    return variant, topic, dump_with(obj, {f'"{SUR}"': "[" * depth + "]" * depth})


def h_random(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    _, topic, _ = g.base(i)
    variant = r.choice(("bytes", "bytes-brace", "printable", "tokens", "utf8-text"))
    n = r.choice((0, 1, 2, 7, 64, 512, 4096, r.randrange(20_000)))
    if variant == "bytes":
        data = r.randbytes(n)
    elif variant == "bytes-brace":
        data = b"{" + r.randbytes(n)
    elif variant == "printable":
        data = bytes(r.randrange(32, 127) for _ in range(n))
    elif variant == "utf8-text":
        data = "".join(chr(r.choice((r.randrange(32, 0x7f), r.randrange(0xa0, 0xd7ff),
                                     r.randrange(0xe000, 0x10ffff)))) for _ in range(n)
                       ).encode("utf-8", "replace")
    else:
        toks = ["{", "}", "[", "]", ":", ",", '"schema"', "1", '"ts"', "1764000000", "null",
                "true", '"site"', '"sq-1"', '"x"', "-", "1e999", '"\\u0000"', " ", '"\\ud800"']
        data = "".join(r.choice(toks) for _ in range(max(1, n // 4))).encode()
    return f"{variant}-{n}", topic, data


def h_truncated(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    _, topic, obj = g.base(i, big=r.random() < 0.05)
    data = dump(obj)
    cut = r.randrange(1, len(data))
    return f"cut-at-{cut}-of-{len(data)}", topic, data[:cut]


WRONG: tuple[Any, ...] = ("x", "", 7, -5, 1.5, True, False, None, [1], {"a": 1}, [], "1764000000")


def h_wrong_type(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    kind, topic, obj = g.base(i)
    path, _ = r.choice(all_paths(kind, obj))
    value = r.choice(WRONG)
    if path == (ID_FIELD[kind],) and value is None:
        value = 7
    set_path(obj, path, value)
    return f"{'.'.join(map(str, path))}={value!r}", topic, dump(obj)


def h_oversize(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    variant = r.choice(("string-max-ok", "string-max+1", "string-10x", "items+1",
                        "payload-max-ok", "payload-max+1", "payload-600k"))
    kind, topic, obj = g.base(i, r.choice(("metrics", "inventory", "probe", "isolation")))
    if variant.startswith("string"):
        spec = protocol.KINDS[kind]
        path = r.choice(string_paths(kind, obj))
        f = (spec.fields[path[0]] if len(path) == 1
             else spec.sections[path[0]].fields[path[2]])
        n = {"string-max-ok": f.maxlen, "string-max+1": f.maxlen + 1}.get(variant, f.maxlen * 10)
        value = "A" * n
        if path == (ID_FIELD[kind],):
            value = (f"fzid={i};" + "A" * n)[:n]
        set_path(obj, path, value)
        return f"{variant}:{'.'.join(map(str, path))}[{n}]", topic, dump(obj)
    if variant == "items+1":
        if kind not in ("metrics", "inventory"):
            kind, topic, obj = g.base(i, "metrics")
        sec = protocol.KINDS[kind].sections["nics"]
        obj["nics"] = [dict(obj["nics"][0], name=f"n{k}") for k in range(sec.max_items + 1)]
        return variant, topic, dump(obj)
    target = {"payload-max-ok": protocol.MAX_PAYLOAD_BYTES,
              "payload-max+1": protocol.MAX_PAYLOAD_BYTES + 1, "payload-600k": 600_000}[variant]
    obj["pad"] = ""
    obj["pad"] = "p" * (target - len(dump(obj)))
    return variant, topic, dump(obj)


CONTROL = [chr(c) for c in range(32)] + ["\x7f", "\x85", "\u2028", "\u2029", "\ufeff",
                                         "\u200b", "\x1b[2J", "\x1b[31mVIOLATION\x1b[0m"]


def h_control(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    c = r.choice(CONTROL)
    variant = r.choice(("id-field", "string-field", "nic-name", "mount", "diskio-name"))
    kind, topic, obj = g.base(i, "metrics" if variant in ("nic-name", "mount", "diskio-name")
                              else None)
    if variant == "id-field":
        obj[ID_FIELD[kind]] += c + "end"
    elif variant == "string-field":
        set_path(obj, r.choice(string_paths(kind, obj)), "a" + c + "b")
    elif variant == "nic-name":
        obj["nics"][0]["name"] = "eth" + c + "0"
    elif variant == "mount":
        obj["disks"][0]["mount"] = "/mnt/" + c + "x"
    else:
        obj["diskio"][0]["name"] = "sd" + c
    return f"{variant}:{c!r}", topic, dump(obj)


TAG_TEXT = [" ", ",", "=", "\\", '"', "'", "a b", "a,b", "a=b", "a\\b", "a\\", "\\", "\\\\",
            " lead", "trail ", "a\\ b", "a\\,b", "a\\=b", "#", "a\nb", "\\=", "C:\\",
            "\\\\srv\\share\\", "D:\\data\\", '"q"', "\u4e2d\u6587 \u76d8", "a\\\\", "", "a\\\n",
            "=,\\ \"", "x" * 64, "\\ "]


def h_tag(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    text = r.choice(TAG_TEXT)
    variant = r.choice(("nic-name", "mount", "diskio-name", "inventory-mount", "inventory-nic",
                        "probe-name", "topic-host", "payload-site"))
    kind = {"probe-name": "probe", "inventory-mount": "inventory",
            "inventory-nic": "inventory"}.get(variant, "metrics")
    _, topic, obj = g.base(i, kind)
    if variant == "nic-name":
        obj["nics"][0]["name"] = text
    elif variant == "mount":
        obj["disks"][0]["mount"] = text
    elif variant == "diskio-name":
        obj["diskio"][0]["name"] = text
    elif variant == "inventory-mount":
        obj["disks"][0]["mount"] = text
    elif variant == "inventory-nic":
        obj["nics"][0]["name"] = text
    elif variant == "probe-name":
        obj["probe"] = text
    elif variant == "topic-host":
        # MQTT forbids control characters and wildcards in topic names: the
        # broker would drop the connection, so those stay in the payload.
        host = "".join(ch for ch in text if ch >= " " and ch not in "+#/") or "x y"
        obj["host"] = host
        topic = protocol.topic(obj["site"], host, kind)
    else:
        obj["site"] = text
    return f"{variant}={text!r}", topic, dump(obj)


def h_time(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    now = time.time()
    variant = r.choice(("2099", "2001", "fast-120s", "behind-31d", "1999", "2100+1", "0", "-1",
                        "NaN", "Infinity", "-Infinity", "1e400", "string", "true", "missing",
                        "int-seconds", "will-ancient", "will-2099"))
    values: dict[str, Any] = {"2099": 4070908800.0, "2001": 1e9, "fast-120s": now + 120 + i / 1e3,
                              "behind-31d": now - 31 * 86400 + i / 1e3, "1999": 946684799.0,
                              "2100+1": 4102444801.0, "0": 0, "-1": -1, "string": "1764000000",
                              "true": True, "int-seconds": int(now) - 7200 - i,
                              "will-ancient": 1e9, "will-2099": 4070908800.0}
    kind = "status" if variant.startswith("will") else None
    # Out of bounds, a message is stored at receive time: one host per message
    # so that two of them cannot meet in the same series and millisecond.
    kind, topic, obj = g.base(i, kind, host=f"fzt{i}")
    if variant.startswith("will"):
        obj["will"] = True
        obj["state"] = "offline"
    marks = {}
    if variant in ("NaN", "Infinity", "-Infinity", "1e400"):
        obj["ts"] = SUR
        marks[f'"{SUR}"'] = variant
    elif variant == "missing":
        del obj["ts"]
    else:
        obj["ts"] = values[variant]
    return variant, topic, dump_with(obj, marks)


def h_misc(g: Gen, i: int) -> tuple[str, str, bytes]:
    r = g.rng
    variant = r.choice(("unknown-kind", "extra-level", "kind-case", "empty-site", "space-site",
                        "bom-ok", "array", "null", "empty", "number", "string", "dup-keys-ok",
                        "dup-host-mismatch", "5000-digits", "utf16", "latin1", "overlong-utf8",
                        "whitespace-ok", "mismatch-site", "unknown-fields-ok", "emoji-ok",
                        "nul-byte", "section-not-list", "item-not-object"))
    kind, topic, obj = g.base(i, "metrics", host=f"fzm{i}")
    data = dump(obj)
    site, host = obj["site"], obj["host"]
    if variant == "unknown-kind":
        topic = f"netroom/v1/{site}/{host}/telemetry"
    elif variant == "extra-level":
        topic += "/extra"
    elif variant == "kind-case":
        topic = f"netroom/v1/{site}/{host}/Metrics"
    elif variant == "empty-site":
        topic = f"netroom/v1//{host}/metrics"
    elif variant == "space-site":
        topic = f"netroom/v1/sq 1/{host}/metrics"
    elif variant == "bom-ok":
        data = b"\xef\xbb\xbf" + data
    elif variant in ("array", "null", "empty", "number", "string"):
        data = {"array": b"[" + data + b"]", "null": b"null", "empty": b"", "number": b"1",
                "string": b'"metrics"'}[variant]
    elif variant == "dup-keys-ok":
        data = b'{"schema":"x",' + data[1:]
    elif variant == "dup-host-mismatch":
        data = data[:-1] + b',"host":"other"}'
    elif variant == "5000-digits":
        data = data[:-1] + b',"big":' + b"9" * 5000 + b"}"
    elif variant == "utf16":
        data = data.decode().encode("utf-16")
    elif variant == "latin1":
        obj["errors"] += "\u00e9t\u00e9"
        data = json.dumps(obj, ensure_ascii=False).encode("latin-1")
    elif variant == "overlong-utf8":
        data = data[:-1] + b',"x":"\xc0\xaf"}'
    elif variant == "whitespace-ok":
        data = b" \n\t " + json.dumps(obj, indent=3).encode() + b"\r\n "
    elif variant == "mismatch-site":
        topic = protocol.topic("sq-9", host, kind)
    elif variant == "unknown-fields-ok":
        obj.update({"future_field": {"a": [1, 2]}, "cpu_temp": 55.5})
        data = dump(obj)
    elif variant == "emoji-ok":
        obj["errors"] += "\U0001f600\u4e2d\u6587\ufffd\uffff"
        data = dump(obj)
    elif variant == "nul-byte":
        data = data[:-1] + b',"x":"\x00"}'
    elif variant == "section-not-list":
        obj["nics"] = r.choice(({"name": "eth0"}, "eth0", 5, [1, 2], [[]]))
        data = dump(obj)
    else:
        obj["disks"] = [obj["disks"][0], r.choice(("C:\\", 1, None, []))]
        data = dump(obj)
    return variant, topic, data


# (category, generator, how many in the full run)
HOSTILE: list[tuple[str, Callable[[Gen, int], tuple[str, str, bytes]], int]] = [
    ("lone surrogates", h_surrogate, 80),
    ("integers past int64", h_int64, 80),
    ("schema not 1", h_schema, 40),
    ("ids with trailing newline", h_newline_id, 60),
    ("deep JSON", h_deep, 20),
    ("random bytes", h_random, 150),
    ("truncated JSON", h_truncated, 120),
    ("wrong types", h_wrong_type, 200),
    ("oversize", h_oversize, 80),
    ("control characters", h_control, 120),
    ("tag-breaking characters", h_tag, 150),
    ("future/ancient timestamps", h_time, 80),
    ("malformed topics and payloads", h_misc, 40),
]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

# Log lines counted during each fault: what an operator would see.
FAULT_LOG = (
    ("stall", r"cannot make \d+ messages durable"),
    ("resumed", r"writing again after a stall"),
    ("spool bound", r"collector\.spool_max_bytes"),
    ("disk full", r"disk full \("),
    ("spooling", r"InfluxDB write failed, spooling"),
    ("drainer waiting", r"batches wait; InfluxDB still failing"),
    ("stats not written", r"cannot write the collector's stats"),
    ("timeout", r"timed out after"),
    ("session present", r"session present: True"),
    ("broker lost", r"lost the broker"),
    ("CRITICAL", r" CRITICAL "),
)


def clean_env() -> dict[str, str]:
    """No proxy from the environment: every connection stays on loopback."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


class CollectorProc:
    """The real collector as a subprocess, restarted when it exits on its own
    (like systemd's Restart=on-failure); SIGKILL and restart on demand."""

    def __init__(self, config: Path, logfile: Path) -> None:
        self.config = config
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.hold = False  # a fault keeps it down: no automatic restart
        self.exits: list[dict[str, Any]] = []  # exits we did not cause
        self.kills = 0
        self.starts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        with self._lock:
            fh = open(self.logfile, "ab")  # noqa: SIM115 - the child owns it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector", "--config", str(self.config)],
                stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=clean_env())
            fh.close()
            self.starts += 1
            self.hold = False
        if not self._thread.is_alive():
            self._thread.start()

    def kill(self) -> None:
        with self._lock:
            self.hold = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
                self.kills += 1

    def terminate(self, timeout: float = 60) -> int | None:
        self._stop.set()
        with self._lock:
            self.hold = True
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return None

    @property
    def pid(self) -> int | None:
        p = self.proc
        return p.pid if p is not None and p.poll() is None else None

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                p = self.proc
                if self.hold or p is None or p.poll() is None:
                    continue
                self.exits.append({"t": time.time(), "rc": p.returncode})
                self.proc = None
            log(f"collector exited on its own (status {p.returncode}); restarting in "
                f"{RESTART_S:g} s")
            if self._stop.wait(RESTART_S):
                return
            if not self.hold:
                self.start()


class LogWatch:
    """Counts lines of the collector's log matching a pattern, from an offset."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def text(self, since: int = 0) -> str:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(since)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def count(self, pattern: str, since: int = 0) -> int:
        return len(re.findall(pattern, self.text(since)))

    def wait(self, pattern: str, since: int, timeout: float) -> float | None:
        """Seconds until the pattern appears after ``since``; None on timeout."""
        t0 = time.monotonic()
        if wait_until(lambda: self.count(pattern, since) > 0, timeout, 0.2):
            return round(time.monotonic() - t0, 1)
        return None


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[str]:
    """A tmpfs at path (root only); yields '' when mounted, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True, check=False)
    try:
        yield "" if r.returncode == 0 else (r.stderr.strip() or f"mount exit {r.returncode}")
    finally:
        if r.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """A file taking all free space on folder's filesystem but ``leave`` bytes."""
    st = os.statvfs(folder)
    filler = folder / "filler"
    remaining = st.f_bavail * st.f_frsize - leave
    chunk = b"\0" * 2**20
    # Unbuffered: the collector writes to the same disk meanwhile, so the
    # space can run out first; then the disk is full, which is the point.
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while remaining > 0:
            try:
                remaining -= os.write(fd, chunk[:remaining])
            except OSError:
                break
    finally:
        os.close(fd)
    return filler


class Sampler(threading.Thread):
    """Every 0.5 s: spool batches and bytes, free space, collector RSS."""

    def __init__(self, spool_dir: Path, disk: Path, coll: CollectorProc) -> None:
        super().__init__(daemon=True)
        self.spool = spool_dir / "batches"
        self.disk = disk
        self.coll = coll
        self.samples: list[tuple[float, int, int, int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            n = size = 0
            with contextlib.suppress(OSError):
                for e in os.scandir(self.spool):
                    if e.name.endswith(".batch"):
                        n += 1
                        with contextlib.suppress(OSError):
                            size += e.stat().st_size
            free = 0
            with contextlib.suppress(OSError):
                st = os.statvfs(self.disk)
                free = st.f_bavail * st.f_frsize
            rss = 0.0
            pid = self.coll.pid
            if pid:
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(pid).memory_info().rss / 2**20
            self.samples.append((time.time(), n, size, free, rss))

    def peak(self, t0: float, t1: float) -> dict[str, Any]:
        win = [s for s in self.samples if t0 <= s[0] <= t1]
        if not win:
            return {}
        return {"spool_batches_max": max(s[1] for s in win),
                "spool_bytes_max": max(s[2] for s in win),
                "free_bytes_min": min(s[3] for s in win),
                "collector_rss_mb_max": round(max(s[4] for s in win), 1)}


class Publisher:
    """QoS 1 publisher paced at ``rate`` msg/s; a message is sent once PUBACKed."""

    def __init__(self, mosq: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fz-publisher",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.refused: list[tuple[str, bytes, str]] = []  # PUBACK with a failure code
        self.disconnects = 0
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(mosq.host, mosq.port, clean_start=False, properties=props)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []
        self.t_start = self.t_end = 0.0

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any,
                    props: Any) -> None:
        if getattr(rc, "is_failure", False):
            m = client._out_messages.get(mid)
            self.refused.append((m.topic if m else "?", bytes(m.payload) if m else b"", str(rc)))

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnects += 1

    def run(self, msgs: list[Msg], rate: float, stop: threading.Event) -> None:
        self.t_start = time.monotonic()
        k = 0
        while k < len(msgs) and not stop.is_set():
            due = min(len(msgs), int((time.monotonic() - self.t_start) * rate) + 1)
            while k < due:
                m = msgs[k]
                self.infos.append(self.client.publish(m.topic, m.payload, qos=1))
                k += 1
            time.sleep(0.05)
        self.t_end = time.monotonic()

    def wait_acks(self, timeout: float) -> tuple[list[bool], set[tuple[str, bytes]]]:
        """Which messages the broker acknowledged, and those it refused (PUBACK
        with a failure reason code)."""
        deadline = time.monotonic() + timeout
        for info in self.infos:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))
        failed = {(t, p) for t, p, _ in self.refused}
        return [info.is_published() for info in self.infos], failed

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --------------------------------------------------------------------------
# The campaign
# --------------------------------------------------------------------------

@dataclass
class Plan:
    quick: bool
    valid: int
    refused: int
    hostile_scale: float
    rate: float
    timeout_s: float
    settle_s: float


class Campaign:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        q = args.quick
        self.plan = Plan(quick=q, valid=args.valid or (1500 if q else 26_000),
                         refused=6 if q else 40, hostile_scale=0.12 if q else 1.0,
                         rate=args.rate or 110.0, timeout_s=1.0 if q else 2.0,
                         settle_s=60.0 if q else 300.0)
        self.faults: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.frozen = False
        self.filler: Path | None = None

    # -- set-up --------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        base = Path(tempfile.mkdtemp(prefix="netroom-faults-"))
        self.base = base
        started = time.time()
        log(f"work dir {base}")
        mosq = Mosquitto(base / "mosquitto", extra_config=[
            "autosave_on_changes true", "autosave_interval 1000", "max_packet_size 1048576"])
        influxd = Influxd(base / "influxd")
        self.mosq, self.influxd = mosq, influxd
        try:
            disk = (contextlib.nullcontext("--no-tmpfs") if self.args.no_tmpfs
                    else tmpfs(base / "disk", self.args.tmpfs_size))
            with disk as why:
                if why:
                    (base / "disk").mkdir(exist_ok=True)
                    self.notes.append(f"spool disk full faults skipped: no tmpfs ({why})")
                self.disk_ok = not why
                mosq.start()
                influxd.start()
                return self._campaign(base, started)
        finally:
            with contextlib.suppress(Exception):
                self._cont()
            coll = getattr(self, "coll", None)
            if coll is not None:
                coll.terminate(30)
            for s in (mosq, influxd):
                with contextlib.suppress(Exception):
                    s.kill()

    def _campaign(self, base: Path, started: float) -> dict[str, Any]:
        p = self.plan
        influxd, mosq = self.influxd, self.mosq
        disk = base / "disk"
        spool_dir = disk / "spool"
        self.spool_dir = spool_dir
        t0_ms = int(time.time() * 1000) - 3600 * 1000
        gen = Gen(self.args.seed, t0_ms)
        log("generating messages")
        msgs = gen.valid(p.valid) + gen.refused(p.refused) + gen.hostile(p.hostile_scale)
        rng = random.Random(self.args.seed + 1)
        valid = [m for m in msgs if m.group == "valid"]
        others = [m for m in msgs if m.group != "valid"]
        order = valid[:]
        for m in others:  # hostile and refused ones spread over the whole run
            order.insert(rng.randrange(len(order) + 1), m)
        self.msgs = order
        by_expect: dict[str, int] = {}
        for m in order:
            by_expect[m.expect.split(":")[0]] = by_expect.get(m.expect.split(":")[0], 0) + 1
        log(f"{len(order)} messages ({len(valid)} valid, {len(others)} hostile or refused; "
            f"predicted: {by_expect}); {sum(len(m.payload) for m in order) / 1e6:.1f} MB")

        influxd.post(f'CREATE DATABASE "{DB}"')
        # The refused batch: the conflict field already holds strings at the
        # very times (so in the very shards) of the refused host's messages.
        seeds = [f'metrics,host=fzseed,site=sq-1 {CONFLICT_FIELD}="conflict" {t0_ms}']
        for m in order:
            if m.group == "refused":
                msg = protocol.decode(m.topic, m.payload)
                seeds.append(f'metrics,host=fzseed,site=sq-1 {CONFLICT_FIELD}="conflict" '
                             f'{round(msg.ts * 1000)}')
        influxd.write("\n".join(seeds), DB)

        cfg = write_config(
            base, mosq, influxd, db=DB,
            influxdb={"url": influxd.url, "database": DB, "timeout_s": p.timeout_s},
            collector={"client_id": CLIENT_ID, "spool_dir": str(spool_dir),
                       "batch_size": 500, "flush_interval": 0.5, "stats_interval": 1,
                       "queue_max_bytes": "4MiB", "spool_max_bytes": self.args.spool_max,
                       "spool_min_free_bytes": 0, "speedtest": {"listen": ""}})
        self.cfg = cfg
        self.logw = LogWatch(base / "collector.log")
        self.coll = CollectorProc(cfg, base / "collector.log")
        self.coll.start()
        if self.logw.wait(r"connected to", 0, 30) is None:
            raise RuntimeError("collector did not connect:\n" + self.logw.text()[-3000:])
        time.sleep(1.0)  # subscribed
        sampler = Sampler(spool_dir, disk if self.disk_ok else base, self.coll)
        sampler.start()
        self.sampler = sampler

        pub = Publisher(mosq)
        stop = threading.Event()
        duration = len(order) / p.rate
        log(f"publishing at {p.rate:g} msg/s for ~{duration:.0f} s, injecting faults")
        pt = threading.Thread(target=pub.run, args=(order, p.rate, stop), daemon=True)
        t_pub = time.monotonic()
        pt.start()
        try:
            self._faults(t_pub, duration)
        finally:
            self._cont()
            if self.filler is not None:
                with contextlib.suppress(OSError):
                    self.filler.unlink()
                self.filler = None
            if not influxd.running:
                influxd.start()
        pt.join(duration * 3 + 60)
        publish_s = pub.t_end - pub.t_start
        acked, refused = pub.wait_acks(120)
        pub_disconnects = pub.disconnects
        pub.close()
        sent = [m for m, ok in zip(order, acked) if ok and (m.topic, m.payload) not in refused]
        not_acked = [m.id for m, ok in zip(order, acked) if not ok]
        log(f"published {len(order)} in {publish_s:.1f} s; acknowledged {len(sent)}")

        result = self._settle(sent)
        exit_rc = self.coll.terminate(60)
        sampler.stop.set()
        letters_cli = self._cli_list()
        return self._summary(started, sent, not_acked, pub.refused, pub_disconnects,
                             publish_s, result, exit_rc, letters_cli)

    # -- faults --------------------------------------------------------------

    def _freeze(self) -> None:
        assert self.influxd.proc is not None
        os.kill(self.influxd.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def _cont(self) -> None:
        if self.frozen and self.influxd.proc is not None:
            os.kill(self.influxd.proc.pid, signal.SIGCONT)
        self.frozen = False

    def _fill(self) -> None:
        self.filler = fill(self.base / "disk", self.args.leave_bytes)

    def _free(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None

    def _restore(self) -> None:
        """Back to normal after a fault step failed: InfluxDB up, disk free,
        collector running."""
        self._cont()
        with contextlib.suppress(OSError):
            self._free()
        if not self.influxd.running:
            self.influxd.start()
        if self.coll.pid is None:
            self.coll.start()

    def _restart_collector(self, since: int) -> float | None:
        self.coll.start()
        return self.logw.wait(r"connected to", since, 30)

    def _faults(self, t_pub: float, duration: float) -> None:
        p = self.plan
        q = p.quick
        hold = 3.0 if q else 12.0
        freeze = 4 * p.timeout_s  # longer than influxdb.timeout_s
        lw = self.logw

        def influxd_stop(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            time.sleep(hold)
            self.influxd.start()
            obs["down_s"] = hold

        def influxd_freeze(obs: dict[str, Any]) -> None:
            self._freeze()
            time.sleep(freeze)
            self._cont()
            obs["frozen_s"] = freeze

        def collector_kill(obs: dict[str, Any]) -> None:
            self.coll.kill()
            time.sleep(1.0 if q else 3.0)
            obs["reconnected_after_s"] = self._restart_collector(lw.size())

        def collector_kill_spooling(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            time.sleep(1.5 if q else 5.0)
            self.coll.kill()
            time.sleep(1.0 if q else 2.0)
            obs["reconnected_after_s"] = self._restart_collector(lw.size())
            time.sleep(1.5 if q else 4.0)
            self.influxd.start()

        def disk_full(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            mark = lw.size()
            self._fill()
            obs["stall_logged_after_s"] = lw.wait(r"cannot make \d+ messages durable", mark,
                                                  20 if q else 40)
            time.sleep(1.0 if q else 5.0)
            mark = lw.size()
            self._free()
            obs["resumed_after_free_s"] = lw.wait(r"writing again after a stall", mark, 30)
            time.sleep(1.0 if q else 3.0)
            self.influxd.start()

        def disk_full_influx_first(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            mark = lw.size()
            self._fill()
            obs["stall_logged_after_s"] = lw.wait(r"cannot make \d+ messages durable", mark, 40)
            mark = lw.size()
            self.influxd.start()
            obs["resumed_with_disk_still_full_s"] = lw.wait(r"writing again after a stall",
                                                            mark, 30)
            time.sleep(5.0)
            self._free()

        def freeze_and_kill(obs: dict[str, Any]) -> None:
            self._freeze()
            time.sleep(2.0)
            self.coll.kill()
            time.sleep(1.0)
            obs["reconnected_after_s"] = self._restart_collector(lw.size())
            time.sleep(max(0.0, 4 * p.timeout_s - 3.0))
            self._cont()

        def kill_while_disk_full(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            mark = lw.size()
            self._fill()
            obs["stall_logged_after_s"] = lw.wait(r"cannot make \d+ messages durable", mark, 40)
            exits = len(self.coll.exits)
            self.coll.kill()
            time.sleep(1.0)
            mark = lw.size()
            self.coll.start()
            time.sleep(8.0)
            obs["connected_while_full"] = lw.count(r"connected to", mark) > 0
            obs["exits_while_full"] = len(self.coll.exits) - exits
            self._free()
            mark2 = lw.size()
            obs["reconnected_after_free_s"] = (0.0 if obs["connected_while_full"] and
                                               self.coll.pid else
                                               lw.wait(r"connected to", mark2, 30))
            time.sleep(3.0)
            self.influxd.start()

        def spool_bound(obs: dict[str, Any]) -> None:
            self.influxd.stop()
            mark = lw.size()
            obs["bound_logged_after_s"] = lw.wait(r"collector\.spool_max_bytes", mark, 60)
            time.sleep(3.0)
            mark = lw.size()
            self.influxd.start()
            obs["resumed_after_influxd_back_s"] = lw.wait(r"writing again after a stall",
                                                          mark, 30)

        def broker_restart(obs: dict[str, Any]) -> None:
            self.mosq.stop()
            time.sleep(2.0)
            self.mosq.start()

        plan: list[tuple[float, str, Callable[[dict[str, Any]], None]]] = [
            (0.04, "influxd stopped, restarted", influxd_stop),
            (0.20 if q else 0.11, f"influxd frozen (SIGSTOP) {freeze:g} s > timeout_s "
             f"{p.timeout_s:g}", influxd_freeze),
            (0.38 if q else 0.19, "collector SIGKILLed, restarted", collector_kill),
        ]
        if not q:
            plan.append((0.26, "collector SIGKILLed while InfluxDB down (spooling)",
                         collector_kill_spooling))
            plan.append((0.33, "influxd frozen and collector SIGKILLed during the freeze",
                         freeze_and_kill))
            plan.append((0.41, f"influxd down until the spool reaches spool_max_bytes "
                         f"({self.args.spool_max})", spool_bound))
        if self.disk_ok:
            plan.append((0.55 if q else 0.57, "spool disk full while InfluxDB down, freed, "
                         "then InfluxDB back", disk_full))
            if not q:
                plan.append((0.69, "spool disk full while InfluxDB down, InfluxDB back "
                             "first, then freed", disk_full_influx_first))
                plan.append((0.81, "collector SIGKILLed while its disk is full and InfluxDB "
                             "down", kill_while_disk_full))
        if self.args.broker_restart:
            plan.append((0.85 if q else 0.93, "mosquitto stopped (SIGTERM), restarted",
                         broker_restart))
        batches = self.spool_dir / "batches"

        def spool_empty() -> bool:
            with contextlib.suppress(OSError):
                return not any(e.name.endswith(".batch") for e in os.scandir(batches))
            return True

        for frac, name, fn in sorted(plan, key=lambda x: x[0]):
            wait = t_pub + frac * duration - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # Each fault on its own: the previous one's spool drained first
            # (while it holds anything, new batches go to the spool, not InfluxDB).
            w0 = time.monotonic()
            wait_until(spool_empty, 10 if q else 40, 0.2)
            log(f"fault: {name}")
            obs: dict[str, Any] = {"at_s": round(time.monotonic() - t_pub, 1)}
            if time.monotonic() - w0 > 0.5:
                obs["waited_for_empty_spool_s"] = round(time.monotonic() - w0, 1)
            t0 = time.time()
            mark = lw.size()
            try:
                fn(obs)
            except Exception as exc:  # record it, restore, go on
                obs["error"] = f"{type(exc).__name__}: {exc}"
                log(f"  fault step failed: {obs['error']}; restoring")
                self._restore()
            t1 = time.time()
            seen = {name: lw.count(pat, mark) for name, pat in FAULT_LOG}
            obs["log"] = {k: v for k, v in seen.items() if v}
            self.faults.append({"fault": name, **obs, "took_s": round(t1 - t0, 1),
                                "t0": t0, "t1": t1})
        self.faults.append({"fault": "InfluxDB refuses one host's lines (field type "
                            "conflict), all run long", "refused_messages": self.plan.refused})

    # -- counting ------------------------------------------------------------

    def _landed(self) -> tuple[dict[int, list[str]], dict[str, list[dict[str, Any]]]]:
        """Message ids found in InfluxDB (with their id field's stored text), and
        the raw rows of every measurement."""
        found: dict[int, list[str]] = {}
        rows_by: dict[str, list[dict[str, Any]]] = {}
        for kind, f in ID_FIELD.items():
            extra = ', "probe"' if kind == "probe" else ""
            rows = list(series(self.influxd.query(f'SELECT "{f}", "host"{extra} FROM "{kind}"',
                                                  DB)))
            rows_by[kind] = rows
            for r in rows:
                text = r.get(f)
                if not isinstance(text, str):
                    continue
                for tok in TOKEN_RE.findall(text):
                    found.setdefault(int(tok), []).append(text)
        return found, rows_by

    def _letters(self) -> list[Any]:
        if not (self.spool_dir / DL_FILE).exists():
            return []
        dl = DeadLetters(str(self.spool_dir))
        try:
            return [dl.get(ids) for ids in chunks(dl.ids(), 500)]
        finally:
            dl.close()

    def _account(self, sent: list[Msg]) -> dict[str, Any]:
        found, rows_by = self._landed()
        letters = [x for part in self._letters() for x in part]
        index = {(m.topic, m.payload): m.id for m in self.msgs}
        aside: dict[int, list[Any]] = {}
        foreign = []
        for x in letters:
            mid = index.get((x.topic, x.payload))
            if mid is None:
                foreign.append(x)
            else:
                aside.setdefault(mid, []).append(x)
        return {"found": found, "aside": aside, "foreign": foreign, "rows": rows_by,
                "letters": letters}

    def _settle(self, sent: list[Msg]) -> dict[str, Any]:
        log(f"settling (at most {self.plan.settle_s:.0f} s)")
        t0 = time.monotonic()
        ids = {m.id for m in sent}
        acc: dict[str, Any] = {}
        last_missing = None
        while True:
            try:
                acc = self._account(sent)
            except Exception as exc:
                log(f"  count failed: {exc}")
                time.sleep(2)
                continue
            missing = ids - set(acc["found"]) - set(acc["aside"])
            waited = time.monotonic() - t0
            if missing != last_missing:
                last_missing = missing
                log(f"  {waited:5.0f} s: {len(missing)} not yet accounted for")
            if not missing or waited > self.plan.settle_s:
                break
            time.sleep(2.0)
        acc["settle_s"] = round(time.monotonic() - t0, 1)
        acc["missing"] = sorted(last_missing or ())
        # Let the collector finish what it holds (e.g. skewed duplicates) and
        # check its own counters show nothing pending.
        acc["pending"] = self._pending()
        return acc

    def _pending(self) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                rows = list(series(self.influxd.query(
                    'SELECT * FROM "collector" ORDER BY time DESC LIMIT 1', DB)))
            except Exception:
                rows = []
            if rows:
                last = rows[0]
                if (not last.get("spool_batches") and not last.get("queue_bytes")
                        and not last.get("stalled") and time.time() * 1000 - last["time"] < 5000):
                    break
            time.sleep(1.0)
        return last

    def _stats_totals(self) -> dict[str, Any]:
        """The collector's own counters, summed over its runs (each run's last
        point; a run killed loses up to its last stats_interval)."""
        rows = list(series(self.influxd.query('SELECT * FROM "collector"', DB)))
        rows.sort(key=lambda r: r["time"])
        runs: list[dict[str, Any]] = []
        prev = None
        for r in rows:
            if prev is None or (r.get("uptime_s") or 0) < (prev.get("uptime_s") or 0):
                runs.append(r)
            else:
                runs[-1] = r
            prev = r
        totals: dict[str, Any] = {"runs_seen": len(runs), "points": len(rows)}
        for r in runs:
            for k, v in r.items():
                if (k in ("received", "written", "spooled", "rejected", "deadlettered",
                          "write_errors", "clock_skew", "invalid")
                        or k.startswith(("invalid_", "deadlettered_"))) and isinstance(v, int):
                    totals[k] = totals.get(k, 0) + v
        stalled = [r for r in rows if r.get("stalled") is True]
        totals["stalled_points"] = len(stalled)
        totals["queue_bytes_max"] = max((r.get("queue_bytes") or 0 for r in rows), default=0)
        totals["spool_bytes_max"] = max((r.get("spool_bytes") or 0 for r in rows), default=0)
        totals["rss_note"] = "see faults[].collector_rss_mb_max"
        return totals

    def _cli_list(self) -> dict[str, Any]:
        r = subprocess.run([sys.executable, "-m", "collector.cli.main", "deadletter", "list",
                            "--config", str(self.cfg), "--format", "json", "--limit", "3"],
                           capture_output=True, text=True, cwd=REPO, env=clean_env(),
                           timeout=120, check=False)
        try:
            return {"rc": r.returncode, "counts": json.loads(r.stdout)["counts"]}
        except (ValueError, KeyError):
            return {"rc": r.returncode, "error": (r.stderr or r.stdout)[-500:]}

    # -- the report ----------------------------------------------------------

    def _summary(self, started: float, sent: list[Msg], not_acked: list[int],
                 puback_refused: list[Any], pub_disconnects: int, publish_s: float,
                 acc: dict[str, Any], exit_rc: int | None, cli: dict[str, Any]
                 ) -> dict[str, Any]:
        found, aside = acc["found"], acc["aside"]
        groups: dict[str, dict[str, Any]] = {}
        lost, unexpected, altered, both = [], [], [], []
        dup_rows = sum(1 for m in sent if len(found.get(m.id, ())) > 1)
        dup_letters = sum(1 for m in sent if len(aside.get(m.id, ())) > 1)
        for m in sent:
            g = groups.setdefault(m.group, {"sent": 0, "landed": 0, "set_aside": 0, "lost": 0,
                                            "unexpected": 0, "reasons": {}})
            g["sent"] += 1
            landed, letters = m.id in found, aside.get(m.id, [])
            if letters:
                g["set_aside"] += 1
                reason = letters[0].reason
                g["reasons"][reason] = g["reasons"].get(reason, 0) + 1
                observed = f"aside:{reason}"
                if landed:
                    both.append(m.id)
            elif landed:
                g["landed"] += 1
                observed = "landed"
                if m.id_value and m.id_value not in found[m.id]:
                    altered.append({"id": m.id, "group": m.group, "variant": m.variant,
                                    "sent": m.id_value[:200], "stored": found[m.id][0][:200]})
            else:
                g["lost"] += 1
                observed = "lost"
                lost.append({"id": m.id, "group": m.group, "variant": m.variant,
                             "topic": m.topic[:200], "bytes": len(m.payload),
                             "expected": m.expect})
                continue
            exp = m.expect
            ok = ((exp.startswith("land") and observed == "landed")
                  or (exp == "rejected" and observed == "aside:rejected")
                  or (exp.split(":")[0] in ("invalid", "unencodable")
                      and observed == f"aside:{exp.split(':')[0]}"))
            if not ok:
                g["unexpected"] += 1
                detail = letters[0].detail[:300] if letters else ""
                unexpected.append({"id": m.id, "group": m.group, "variant": m.variant[:120],
                                   "expected": exp, "observed": observed, "detail": detail})
        points = self._points(sent, found, aside)
        stats = {}
        with contextlib.suppress(Exception):
            stats = self._stats_totals()
        log_text = self.logw.text()
        log_counts = {name: len(re.findall(pat, log_text)) for name, pat in (
            ("stall: cannot make ... durable", r"cannot make \d+ messages durable"),
            ("writing again after a stall", r"writing again after a stall"),
            ("InfluxDB write failed, spooling", r"InfluxDB write failed, spooling"),
            ("setting aside (rate-limited)", r"setting aside"),
            ("clock off (rate-limited)", r"clock off by"),
            ("thread died", r"thread \w+ died"),
            ("CRITICAL", r" CRITICAL "),
            ("Traceback", r"Traceback"),
            ("connected to broker", r"connected to"),
            ("413 learned", r"refused \d+ bytes as too large"))}
        crit = [line[:300] for line in log_text.splitlines()
                if " CRITICAL " in line or " ERROR " in line or "Traceback" in line][:20]
        for f in self.faults:
            if "at_s" in f:
                f["under_load"] = f["at_s"] < publish_s
            if "t0" in f:
                f.update(self.sampler.peak(f.pop("t0"), f.pop("t1") + 2))
        total_sent = len(sent)
        hostile = [m for m in sent if m.group not in ("valid", "refused")]
        summary = {
            "command": "python3 bench/faults.py" + (" --quick" if self.plan.quick else "")
                       + (f" --seed {self.args.seed}" if self.args.seed != 9 else ""),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(),
                        "load_avg_start_end": [round(x, 2) for x in os.getloadavg()],
                        "mosquitto": "2.0", "influxd": influx_version()},
            "seed": self.args.seed,
            "inputs": {"valid": self.plan.valid, "refused_by_influxdb": self.plan.refused,
                       "hostile": sum(1 for m in self.msgs
                                      if m.group not in ("valid", "refused")),
                       "total": len(self.msgs),
                       "bytes": sum(len(m.payload) for m in self.msgs)},
            "acknowledged_by_broker": total_sent,
            "not_acknowledged": not_acked[:50],
            "puback_failures": [(t, r) for t, _, r in puback_refused][:20],
            "publisher_disconnects": pub_disconnects,
            "load": {"publish_s": round(publish_s, 1),
                     "msg_per_s": round(total_sent / publish_s, 1) if publish_s else 0,
                     "payload_kb_per_s": round(sum(len(m.payload) for m in sent)
                                               / publish_s / 1e3, 1) if publish_s else 0},
            "faults": self.faults,
            "groups": groups,
            "landed": sum(g["landed"] for g in groups.values()),
            "set_aside": sum(g["set_aside"] for g in groups.values()),
            "lost": len(lost),
            "lost_ids": lost[:100],
            "unexpected_outcomes": len(unexpected),
            "unexpected": unexpected[:100],
            "altered_on_read_back": altered[:50],
            "landed_and_set_aside": both[:50],
            "stored_twice_ids": dup_rows,
            "set_aside_twice_ids": dup_letters,
            "foreign_letters": [{"reason": x.reason, "detail": x.detail[:200],
                                 "bytes": len(x.payload)} for x in acc["foreign"][:20]],
            "deadletters_by_reason": _count(x.reason for x in acc["letters"]),
            "netroom_deadletter_list": cli,
            "points": points,
            "settle_s": acc["settle_s"],
            "collector": {
                "starts": self.coll.starts, "sigkills": self.coll.kills,
                "exits_on_its_own": [e["rc"] for e in self.coll.exits],
                "final_exit_status": exit_rc,
                "last_stats": {k: v for k, v in acc["pending"].items()
                               if k not in ("collector",)},
                "stats_summed_over_runs": stats,
                "log_lines": log_counts,
                "log_errors": crit,
            },
            "hostile_predicted": _count(m.expect.split(":")[0] for m in hostile),
            "invalid_codes_predicted": _count(m.expect.split(":")[1] for m in sent
                                              if m.expect.startswith("invalid")),
            "notes": self.notes,
            "wall_s": round(time.time() - started, 1),
        }
        summary["settled"] = (not acc["missing"] and not acc["pending"].get("spool_batches")
                              and not acc["pending"].get("stalled"))
        # A point missing where none of its series' points is at that time is
        # lost; one whose tag came back different is an alteration (reported).
        points_lost = points["missing_count"] - points["tag_altered"]
        summary["points_lost"] = points_lost
        # A fault that could not be injected as planned leaves the run short of
        # what it claims: not a pass either.
        summary["fault_errors"] = [f["fault"] for f in self.faults if "error" in f]
        summary["verdict"] = ("PASS" if summary["lost"] == 0 and summary["settled"]
                              and points_lost == 0 and not summary["fault_errors"]
                              else "FAIL")
        return summary

    def _points(self, sent: list[Msg], found: dict[int, list[str]],
                aside: dict[int, list[Any]]) -> dict[str, Any]:
        """Every point of every landed, non-skewed message: present, with its
        tag and (disks) its exact path read back."""
        want: dict[tuple[str, int, str, str], int] = {}
        paths: dict[tuple[str, int, str, str], str] = {}
        for m in sent:
            if m.expect == "land" and m.id in found and m.id not in aside:
                for k in m.points:
                    want[k] = m.id
                paths.update(m.paths)
        have: dict[tuple[str, int, str, str], Any] = {}
        measurements = {k[0] for k in want}
        for meas in sorted(measurements):
            kind = meas.split("_")[0]
            if meas in SECTION_FIELD:
                sec = meas.split("_", 1)[1]
                tag = schema.section_tag(kind, sec)
                f = SECTION_FIELD[meas]
            else:
                tag = "probe" if meas == "probe" else ""
                f = ID_FIELD[meas]
            cols = f'"{f}", "host"' + (f', "{tag}"' if tag else "")
            for r in series(self.influxd.query(f'SELECT {cols} FROM "{meas}"', DB)):
                have[(meas, int(r["time"]), r.get("host") or "", (r.get(tag) or "") if tag
                      else "")] = r.get(f)
        missing = [k for k in want if k not in have]
        near = {(k[0], k[1], k[2]) for k in have}
        tag_altered = [k for k in missing if (k[0], k[1], k[2]) in near]
        wrong_path = [(k, paths[k], have[k]) for k in paths if k in have and have[k] != paths[k]]
        return {"expected": len(want), "found": len(want) - len(missing),
                "missing": [{"id": want[k], "point": list(k)} for k in missing][:50],
                "missing_count": len(missing),
                "tag_altered": len(tag_altered),
                "disk_paths_checked": sum(1 for k in paths if k in have),
                "windows_paths_checked": sum(1 for k, v in paths.items()
                                             if k in have and v.endswith("\\")),
                "disk_path_mismatch": [{"point": list(k), "sent": a, "stored": b}
                                       for k, a, b in wrong_path][:20]}


def chunks(seq: list[int], n: int) -> Iterator[list[int]]:
    for k in range(0, len(seq), n):
        yield seq[k:k + n]


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def influx_version() -> str:
    r = subprocess.run(["influxd", "version"], capture_output=True, text=True, check=False)
    m = re.search(r"v([\d.]+\S*)", r.stdout)
    return m.group(1) if m else "?"


def table(s: dict[str, Any]) -> str:
    out = [f"netroom fault campaign: {s['command']}", f"{s['date']}, {s['machine']['nproc']} "
           f"cores, Python {s['machine']['python']}, seed {s['seed']}", ""]
    rows = [("inputs", "sent", "landed", "set aside", "lost", "unexpected")]
    for name, g in sorted(s["groups"].items(), key=lambda kv: (kv[0] != "valid",
                                                              kv[0] != "refused", kv[0])):
        rows.append((name, str(g["sent"]), str(g["landed"]), str(g["set_aside"]),
                     str(g["lost"]), str(g["unexpected"])))
    rows.append(("total", str(s["acknowledged_by_broker"]), str(s["landed"]),
                 str(s["set_aside"]), str(s["lost"]), str(s["unexpected_outcomes"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        out.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                             for i, c in enumerate(r)))
        if k == 0 or k == len(rows) - 2:
            out.append("  ".join("-" * w for w in widths))
    out.append("")
    out.append(f"faults injected: {sum(1 for f in s['faults'] if 'at_s' in f)} (+ the refused "
               "batch)")
    for f in s["faults"]:
        extra = ", ".join(f"{k} {v}" for k, v in f.items() if k not in ("fault",))
        out.append(f"  - {f['fault']}: {extra}")
    pt = s["points"]
    out += ["", f"load held: {s['load']['msg_per_s']} msg/s ({s['load']['payload_kb_per_s']} "
                f"kB/s) for {s['load']['publish_s']} s; settled in {s['settle_s']} s",
            f"points of landed messages: {pt['found']}/{pt['expected']} "
            f"({pt['disk_paths_checked']} disk paths read back exactly, "
            f"{pt['windows_paths_checked']} Windows ones)",
            f"dead letters by reason: {s['deadletters_by_reason']}",
            f"collector: {s['collector']['starts']} starts, {s['collector']['sigkills']} "
            f"SIGKILLs, exits on its own {s['collector']['exits_on_its_own']}, final exit "
            f"{s['collector']['final_exit_status']}",
            f"lost: {s['lost']}   verdict: {s['verdict']}"]
    for n in s["notes"]:
        out.append(f"note: {n}")
    if s["unexpected"]:
        out.append("unexpected outcomes (first 10):")
        out += [f"  {u}" for u in s["unexpected"][:10]]
    if s["lost_ids"]:
        out.append("LOST (first 20):")
        out += [f"  {x}" for x in s["lost_ids"][:20]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small numbers, under a minute")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--valid", type=int, default=0, help="valid messages (default 26000; "
                   "1500 with --quick)")
    p.add_argument("--rate", type=float, default=0.0, help="messages/s (default 110)")
    p.add_argument("--broker-restart", action="store_true",
                   help="also stop and restart mosquitto (SIGTERM) once")
    p.add_argument("--no-tmpfs", action="store_true", help="spool on the temp dir's disk; "
                   "skips the disk-full faults")
    p.add_argument("--tmpfs-size", default="128m")
    p.add_argument("--spool-max", default="10MiB", help="collector.spool_max_bytes")
    p.add_argument("--leave-bytes", type=int, default=64 * 1024,
                   help="free bytes the filler leaves on the spool's disk")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = p.parse_args(argv)
    for name in [k for k in os.environ if "proxy" in k.lower()]:
        del os.environ[name]
    os.environ["no_proxy"] = "127.0.0.1,localhost"
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    camp = Campaign(args)
    try:
        summary = camp.run()
    finally:
        base = getattr(camp, "base", None)
    keep = args.keep or summary["verdict"] != "PASS"
    summary["work_dir"] = str(base) if keep else None
    if not keep and base is not None:
        import shutil
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(table(summary), file=sys.stderr)
        json.dump(summary, sys.stdout, indent=1, default=str, ensure_ascii=False)
        print()
    else:
        print(table(summary))
        if keep:
            print(f"work dir kept: {base}")
    return 0 if summary["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
