"""Config of reachability checks: the top-level `probes` list and `agent.isolation`.

A probe (portal reachable?) and an isolation canary (internet reachable from
a gov PC?) are the same check, a `Check`; only what a success means differs.
Validated once at start-up; errors name the key, e.g.
``probes[0].target: must be host:port, got 'portal'``.
"""
from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from netroom import protocol
from netroom.settings import ConfigError, Section

CHECK_KINDS = ("http", "tcp", "dns")


class Check(NamedTuple):
    """One reachability check.

    ``target``: a URL (http), ``host:port`` (tcp) or a name to resolve (dns);
    ``host``/``port`` are its parts (dns: the name, port 0). ``server``: the
    DNS server to ask as (host, port); None = the system resolver.
    ``timeout_s``: the hard limit of one attempt, seconds.
    """

    name: str
    kind: str
    target: str
    host: str
    port: int
    timeout_s: float = 5.0
    server: tuple[str, int] | None = None
    verify_tls: bool = True


class ProbeConfig(NamedTuple):
    """A probe run by the agents on ``networks``, every ``interval_s`` seconds."""

    check: Check
    interval_s: float = 60.0
    networks: tuple[str, ...] = protocol.NETWORKS


class IsolationConfig(NamedTuple):
    """`agent.isolation`: the gov PCs' leak check, every ``interval_s`` seconds.

    ``bridges_violate``: a Wi-Fi, USB-network or mobile interface that is up
    counts as a violation (else it is only reported).
    """

    enabled: bool = True
    interval_s: float = 60.0
    canaries: tuple[Check, ...] = ()
    bridges_violate: bool = True


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); ValueError with the reason."""
    host, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed '['")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("expected ':' after ']'")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        raise ValueError("write an IPv6 address as [address]:port")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise ValueError("no valid host")
    if not port:
        if default_port is None:
            raise ValueError("no port")
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not 1-65535")
    return host, int(port)


def read_check(s: Section, default_timeout: float, kinds: tuple[str, ...] = CHECK_KINDS,
               name_default: str | None = None) -> Check:
    name = s.text("name", name_default)
    if not protocol.ID_RE.match(name):
        raise ConfigError(f"{s.key('name')}: must be 1-64 letters, digits, '.', '_' or '-', "
                          f"got {name!r}")
    kind = s.choice("kind", kinds)
    target = s.text("target")
    timeout = s.number("timeout", default_timeout, 0.1, 60)
    server = None
    verify = True
    try:
        if kind == "http":
            u = urlsplit(target)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError("must be an http:// or https:// URL")
            host, port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
            verify = s.flag("verify_tls", True)
        elif kind == "tcp":
            host, port = split_host_port(target)
        else:
            host, port = target.rstrip("."), 0
            if not host or len(host) > 253 or any(c in host for c in " /:@[]"):
                raise ValueError("must be a host name to resolve")
    except ValueError as exc:
        raise ConfigError(f"{s.key('target')}: {exc}, got {target!r}") from None
    if kind == "dns" and s.raw("server") is not None:
        text = s.text("server")
        try:
            server = split_host_port(text, 53)
        except ValueError as exc:
            raise ConfigError(f"{s.key('server')}: {exc}, got {text!r}") from None
    return Check(name, kind, target, host, port, timeout, server, verify)


def read_probes(data: Any) -> tuple[ProbeConfig, ...]:
    """The top-level `probes` list (shared by all agents)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError("probes: must be a list")
    out: list[ProbeConfig] = []
    for i, item in enumerate(data):
        s = Section(item, f"probes[{i}]")
        check = read_check(s, 5.0)
        if any(p.check.name == check.name for p in out):
            raise ConfigError(f"{s.key('name')}: {check.name!r} is used twice")
        networks = s.seq("networks") or list(protocol.NETWORKS)
        for n in networks:
            if n not in protocol.NETWORKS:
                raise ConfigError(f"{s.key('networks')}: must be among "
                                  f"{', '.join(protocol.NETWORKS)}, got {n!r}")
        out.append(ProbeConfig(check, s.number("interval", 60, 5, 86400), tuple(networks)))
        s.done()
    return tuple(out)


def read_isolation(s: Section) -> IsolationConfig:
    """`agent.isolation`; canaries are not ours to ship, so none by default."""
    timeout = s.number("timeout", 3, 0.1, 60)
    canaries: list[Check] = []
    for i, item in enumerate(s.seq("canaries")):
        c = Section(item, s.key(f"canaries[{i}]"))
        check = read_check(c, timeout, CHECK_KINDS, f"canary{i + 1}")
        if any(x.name == check.name for x in canaries):
            raise ConfigError(f"{c.key('name')}: {check.name!r} is used twice")
        canaries.append(check)
        c.done()
    cfg = IsolationConfig(
        enabled=s.flag("enabled", True),
        interval_s=s.number("interval", 60, 5, 86400),
        canaries=tuple(canaries),
        bridges_violate=s.flag("bridges_violate", True),
    )
    s.done()
    return cfg
