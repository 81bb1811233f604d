"""Probes: can this PC reach a target (the portal over HTTP, a TCP port, a DNS name)?

One job per configured probe, each on its own interval in its own thread
(``Job.timeout_s``), so a slow target never delays the metrics tick. Only
the standard library (socket, http.client, ssl): the agent stays small.
Every step has a hard limit, name lookups through the system resolver too
(they run in a helper thread that is abandoned when late). ``run_check`` is
shared with the isolation collector's canaries.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from typing import Any, List, Tuple, Union
from urllib.parse import urlsplit

from agent import dnsquery
from agent.collectors.base import Job
from agent.config import AgentConfig
from agent.probe_config import Check

Addr = Tuple[int, Tuple[Any, ...]]  # (address family, sockaddr)
CHECK_ERRORS = (OSError, dnsquery.DnsError, http.client.HTTPException, ValueError)


def _literal(host: str) -> int:
    """The address family of an IP literal, 0 for a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return family
        except OSError:
            continue
    return 0


def resolve(host: str, port: int, timeout_s: float) -> list[Addr]:
    """Addresses of ``host`` via the system resolver, within ``timeout_s`` seconds."""
    family = _literal(host)
    if family:
        return [(family, (host, port))]
    box: List[Union[List[Any], OSError]] = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except OSError as exc:
            box.append(exc)

    # getaddrinfo() has no timeout of its own: a dead resolver would hold the
    # thread for resolv.conf's timeout x attempts; we stop waiting instead.
    t = threading.Thread(target=work, name="resolve", daemon=True)
    t.start()
    t.join(timeout_s)
    if not box:
        raise socket.timeout(f"name lookup of {host} took over {timeout_s:g} s")
    if isinstance(box[0], OSError):
        raise box[0]
    return [(fam, sa) for fam, _, _, _, sa in box[0]]


def connect(host: str, port: int, deadline: float) -> tuple[socket.socket, str]:
    """A TCP connection to the first address of ``host`` that answers before ``deadline``."""
    addrs = resolve(host, port, max(deadline - time.monotonic(), 0.001))
    last: OSError = OSError(f"no address for {host}")
    for family, sa in addrs:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(left)
        try:
            s.connect(sa)
            return s, str(sa[0])
        except OSError as exc:
            s.close()
            last = exc
    raise last


def http_get(check: Check, deadline: float) -> tuple[int, str]:
    """GET the URL; (HTTP status, peer address). Redirects are not followed."""
    u = urlsplit(check.target)
    sock, address = connect(check.host, check.port, deadline)
    conn: http.client.HTTPConnection
    try:
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            if not check.verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname=check.host)
            conn = http.client.HTTPSConnection(check.host, check.port, context=ctx)
        else:
            conn = http.client.HTTPConnection(check.host, check.port)
        conn.sock = sock  # connected within our deadline; http.client keeps it
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn.request("GET", path, headers={"User-Agent": "netroom-agent", "Connection": "close"})
        return conn.getresponse().status, address
    finally:
        sock.close()


def run_check(check: Check) -> dict[str, Any]:
    """Try ``check`` once: ok, latency_ms (ms, when answered), status, address or error."""
    deadline = time.monotonic() + check.timeout_s
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    try:
        if check.kind == "http":
            out["status"], out["address"] = http_get(check, deadline)
            out["ok"] = 200 <= out["status"] < 400
        elif check.kind == "tcp":
            sock, out["address"] = connect(check.host, check.port, deadline)
            sock.close()
            out["ok"] = True
        elif check.server is not None:
            out["address"] = dnsquery.query(check.host, check.server, check.timeout_s)[0]
            out["ok"] = True
        else:
            out["address"] = resolve(check.host, 0, check.timeout_s)[0][1][0]
            out["ok"] = True
    except socket.timeout:
        return {"ok": False, "error": f"timed out after {check.timeout_s:g} s"}
    except CHECK_ERRORS as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out["latency_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    out["address"] = str(out["address"])
    return out


class Probe:
    """Collector of the ``probe`` kind for one configured probe (docs/availability.md)."""

    kind = "probe"

    def __init__(self, check: Check) -> None:
        self.check = check

    def collect(self) -> dict[str, Any]:
        c = self.check
        return {"probe": c.name, "method": c.kind, "target": c.target, **run_check(c)}


def jobs(cfg: AgentConfig) -> list[Job]:
    """One job per probe that runs on this PC's network, each on its own interval.

    Jitter spreads hundreds of PCs' probes of one portal over a tenth of the
    interval (at most 30 s); the hard limit is the probe's timeout plus 2 s.
    """
    return [Job(Probe(p.check), p.interval_s, min(p.interval_s * 0.1, 30.0),
                p.check.timeout_s + 2, f"probe:{p.check.name}")
            for p in cfg.probes if cfg.network in p.networks]
