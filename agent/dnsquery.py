"""A minimal DNS client: one A or AAAA question over UDP to a chosen server.

The agent must stay small (no dnspython): building the question and reading
the answer's addresses is all a probe needs. ``build_query`` and
``parse_response`` are pure and tested on literal packets; ``query`` does the I/O.
"""
from __future__ import annotations

import os
import socket
import struct
import time

A, AAAA = 1, 28
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsError(Exception):
    """No usable answer; str() is the reason (NXDOMAIN, timeout...)."""


def build_query(name: str, qtype: int, qid: int) -> bytes:
    """A standard query with recursion desired, for ``name`` (no trailing dot needed)."""
    labels = [p for p in name.rstrip(".").split(".") if p]
    qname = b""
    for label in labels:
        raw = label.encode("idna")
        if not 0 < len(raw) < 64:
            raise DnsError(f"label {label!r} is not 1-63 bytes")
        qname += bytes([len(raw)]) + raw
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\0" + struct.pack(
        "!HH", qtype, 1)


def _skip_name(data: bytes, pos: int) -> int:
    """Offset after the (possibly compressed) name starting at ``pos``."""
    while True:
        if pos >= len(data):
            raise DnsError("truncated name")
        n = data[pos]
        if n & 0xC0 == 0xC0:  # a pointer ends the name
            return pos + 2
        if n == 0:
            return pos + 1
        pos += 1 + n


def parse_response(data: bytes, qid: int) -> list[str]:
    """The A/AAAA addresses of the answer section; DnsError if there are none."""
    if len(data) < 12:
        raise DnsError("short answer")
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != qid or not flags & 0x8000:
        raise DnsError("answer does not match the question")
    rcode = flags & 0x000F
    if rcode:
        raise DnsError(_RCODES.get(rcode, f"rcode {rcode}"))
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    out = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        if pos + 10 > len(data):
            raise DnsError("truncated answer")
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        rdata = data[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        if rtype == A and rdlen == 4:
            out.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == AAAA and rdlen == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, rdata))
    if not out:
        raise DnsError("no address in the answer")
    return out


def query(name: str, server: tuple[str, int], timeout_s: float, qtype: int = A) -> list[str]:
    """Ask ``server`` (an IP address and port) once; raise DnsError or OSError."""
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    qid = int.from_bytes(os.urandom(2), "big")
    deadline = time.monotonic() + timeout_s
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect(server)
        s.send(build_query(name, qtype, qid))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DnsError(f"no answer from {server[0]}:{server[1]} in {timeout_s:g} s")
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            try:
                return parse_response(data, qid)
            except DnsError:
                if len(data) >= 2 and int.from_bytes(data[:2], "big") != qid:
                    continue  # a stray packet: keep waiting for ours
                raise
