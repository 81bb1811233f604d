"""A stand-in "internet host" for probe and isolation tests: a DNS server and TCP listeners.

Run as a process (inside a test's network namespace, or on 127.0.0.1):
``python tests/fakeinternet.py --dns 127.0.0.1:5353 --tcp 127.0.0.1:8443
--answer canary.example=198.18.0.2 --answer canary.example=2001:db8::2``.
DNS answers come from dnslib (not from the agent's own DNS code, which the
tests check against it); unknown names get NXDOMAIN. TCP listeners accept
and close. It prints "ready" once every socket is bound and runs until killed.
"""
from __future__ import annotations

import argparse
import select
import socket
import subprocess
import sys
import threading
from typing import Sequence

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord


def answer(data: bytes, table: dict[str, list[str]]) -> bytes:
    q = DNSRecord.parse(data)
    reply = q.reply()
    name = str(q.q.qname).rstrip(".").lower()
    addrs = table.get(name)
    if addrs is None:
        reply.header.rcode = RCODE.NXDOMAIN
        return bytes(reply.pack())
    for a in addrs:
        v6 = ":" in a
        if q.q.qtype == (QTYPE.AAAA if v6 else QTYPE.A):
            reply.add_answer(RR(q.q.qname, q.q.qtype, rdata=AAAA(a) if v6 else A(a), ttl=60))
    return bytes(reply.pack())


def split(hp: str) -> tuple[str, int]:
    host, _, port = hp.rpartition(":")
    return host.strip("[]"), int(port)


def serve_dns(sock: socket.socket, table: dict[str, list[str]]) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        sock.sendto(answer(data, table), peer)


def serve_tcp(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dns", action="append", default=[], help="host:port to answer DNS on")
    p.add_argument("--tcp", action="append", default=[], help="host:port to accept TCP on")
    p.add_argument("--answer", action="append", default=[], help="name=address")
    args = p.parse_args()
    table: dict[str, list[str]] = {}
    for item in args.answer:
        name, _, addr = item.partition("=")
        table.setdefault(name.lower(), []).append(addr)
    threads = []
    for hp in args.dns:
        host, port = split(hp)
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, port))
        threads.append(threading.Thread(target=serve_dns, args=(s, table), daemon=True))
    for hp in args.tcp:
        host, port = split(hp)
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(16)
        threads.append(threading.Thread(target=serve_tcp, args=(s,), daemon=True))
    for t in threads:
        t.start()
    print("ready", flush=True)
    threading.Event().wait()  # until killed


def start(args: Sequence[str], wrap: Sequence[str] = (), timeout: float = 10
          ) -> subprocess.Popen[str]:
    """Run this script (``wrap``: e.g. ``ip netns exec inet``) and wait for "ready"."""
    proc = subprocess.Popen([*wrap, sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"fake internet did not start: {err[-2000:]}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate(timeout=10)


if __name__ == "__main__":
    main()
