"""What an agent runs beyond its identity and broker, and its one reader.

Intervals, probes, the isolation check and its canaries, speed tests and the
clock reference: set in the agent's own file (`agent:` and top-level
`probes:`) or in the collector's `sites` tree (`agents:` blocks, delivered
by netroom.central). Both are read by ``read_settings`` here, so the
collector refuses at start-up what an agent would refuse on receipt.
Errors name the key, e.g. ``probes[0].target: must be host:port, got 'portal'``.

A probe (portal reachable?) and an isolation canary (internet reachable from
a gov PC?) are the same check, a `Check`; only what a success means differs.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from netroom import protocol, release, schema
from netroom.settings import ConfigError, Section

CHECK_KINDS = ("http", "tcp", "dns")
# The keys of an `agents:` block (and of the agent's `agent:` section that the
# centre may set): everything but identity, broker and local storage.
SETTING_KEYS = ("interval", "inventory_interval", "probes", "isolation", "bandwidth", "clock",
                "update")


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


class BandwidthConfig(NamedTuple):
    """`agent.bandwidth`: speed tests, run only by PCs marked ``tester``.

    ``method`` is resolved (never "auto"); ``quiet_hours`` is a local-time
    window as (start, end) minutes of the day, end may be <= start (wraps
    midnight). Seconds and Mbit/s throughout; see docs/bandwidth.md.
    """

    tester: bool = False
    method: str = "intranet"  # intranet | speedtest
    url: str = ""  # the intranet speed-test server, http://host:port
    speedtest_servers: tuple[int, ...] = ()  # speedtest.net ids; empty: lowest latency
    interval_s: float = 21600.0
    jitter_s: float = 1800.0
    quiet_hours: tuple[int, int] | None = None
    timeout_s: float = 120.0
    streams: int = 4
    duration_s: float = 10.0


class ClockConfig(NamedTuple):
    """`agent.clock`: how far this PC's clock is from a reference (docs/collectors.md).

    ``url``: an HTTP(S) server whose ``Date`` header is the reference, best the
    collector's speed-test server (the collector's own clock); "" = not measured.
    Every ``interval_s`` seconds the agent measures and sends an ``online``
    status with the offset; one measurement takes at most ``timeout_s``.
    """

    url: str = ""
    interval_s: float = 3600.0
    timeout_s: float = 10.0


class UpdateConfig(NamedTuple):
    """`agent.update`: the agent version this PC should run (docs/updates.md).

    ``version`` "" = leave the agent as it is. ``url``: where the releases
    are served, ``http(s)://host[:port]/path`` holding ``<version>/manifest.json``
    (the collector's speed-test server serves them under ``/releases``).
    ``check_interval_s``: how often the agent compares, plus up to
    ``jitter_s`` at random, so a fleet does not download at one instant.
    ``deadline_s``: a new version that has not reported within this long
    after its start is rolled back.
    """

    version: str = ""
    url: str = ""
    check_interval_s: float = 900.0
    jitter_s: float = 600.0
    deadline_s: float = 600.0


class AgentSettings(NamedTuple):
    """Everything ``read_settings`` reads; seconds throughout."""

    interval_s: float = 60.0
    inventory_interval_s: float = 86400.0
    probes: tuple[ProbeConfig, ...] = ()
    isolation: IsolationConfig = IsolationConfig()
    bandwidth: BandwidthConfig = BandwidthConfig()
    clock: ClockConfig = ClockConfig()
    update: UpdateConfig = UpdateConfig()


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


def read_probes(data: Any, key: str = "probes") -> tuple[ProbeConfig, ...]:
    """A `probes` list (the agent file's top level, or an `agents:` block's)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{key}: must be a list")
    out: list[ProbeConfig] = []
    for i, item in enumerate(data):
        s = Section(item, f"{key}[{i}]")
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
    """`isolation`; canaries are not ours to ship, so none by default."""
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


def parse_window(text: str) -> tuple[int, int] | None:
    """Quiet hours "HH:MM-HH:MM" -> (start, end) minutes of the day, may wrap
    midnight; None if malformed or empty."""
    window = schema.parse_window(text)
    if window is None:
        return None
    start, end = window
    return (start, end) if start != end and max(start, end) <= schema.DAY_MINUTES else None


def read_bandwidth(s: Section, network: str) -> BandwidthConfig:
    """`bandwidth`; ``network`` resolves method "auto"."""
    method = s.choice("method", ("auto", "intranet", "speedtest"), "auto")
    if method == "auto":
        method = "intranet" if network == "gov" else "speedtest"
    ids = s.seq("speedtest_servers")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ConfigError(f"{s.key('speedtest_servers')}: must be a list of server ids")
    quiet = s.text("quiet_hours", "")
    window = parse_window(quiet) if quiet else None
    if quiet and window is None:
        raise ConfigError(f"{s.key('quiet_hours')}: must be HH:MM-HH:MM, got {quiet!r}")
    if window is not None and (window[1] - window[0]) % 1440 == 0:
        raise ConfigError(f"{s.key('quiet_hours')}: {quiet!r} leaves no time for tests")
    cfg = BandwidthConfig(
        tester=s.flag("tester", False),
        method=method,
        url=s.text("url", "").rstrip("/"),
        speedtest_servers=tuple(ids),
        interval_s=s.number("interval", 21600, 60, 7 * 86400),
        jitter_s=s.number("jitter", 1800, 0, 86400),
        quiet_hours=window,
        timeout_s=s.number("timeout", 120, 5, 3600),
        streams=s.integer("streams", 4, 1, 32),
        duration_s=s.number("duration", 10, 1, 60),
    )
    if cfg.url and not re.match(r"^https?://[^/\s]+", cfg.url):
        raise ConfigError(f"{s.key('url')}: must be http(s)://host[:port], got {cfg.url!r}")
    if cfg.tester and cfg.method == "intranet" and not cfg.url:
        raise ConfigError(f"{s.key('url')}: required for the intranet speed test "
                          "(the collector's speed-test server, http://host:8090)")
    if cfg.method == "speedtest" and network == "gov":
        raise ConfigError(f"{s.key('method')}: gov PCs have no internet: use method intranet")
    # Download and upload each run for duration; latency and set-up need the rest.
    if cfg.timeout_s < 2 * cfg.duration_s + 5:
        raise ConfigError(f"{s.key('timeout')}: must be at least 2 x duration + 5 s "
                          f"({2 * cfg.duration_s + 5:g}), got {cfg.timeout_s:g}")
    s.done()
    return cfg


def read_clock(s: Section) -> ClockConfig:
    """`clock`."""
    cfg = ClockConfig(
        url=s.text("url", "").rstrip("/"),
        interval_s=s.number("interval", 3600, 60, 86400),
        timeout_s=s.number("timeout", 10, 2, 60),
    )
    if cfg.url and not re.match(r"^https?://[^/\s]+", cfg.url):
        raise ConfigError(f"{s.key('url')}: must be http(s)://host[:port][/path], "
                          f"got {cfg.url!r}")
    s.done()
    return cfg


def read_update(s: Section) -> UpdateConfig:
    """`update`."""
    if s.raw("version") is not None and not isinstance(s.raw("version"), str):
        # YAML makes 1.10 the number 1.1: a version is only ever taken as written.
        raise ConfigError(f"{s.key('version')}: write it in quotes, such as '1.5.0', "
                          f"got the number {s.raw('version')!r}")
    cfg = UpdateConfig(
        version=s.text("version", ""),
        url=s.text("url", "").rstrip("/"),
        check_interval_s=s.number("check_interval", 900, 60, 7 * 86400),
        jitter_s=s.number("jitter", 600, 0, 86400),
        deadline_s=s.number("deadline", 600, 60, 86400),
    )
    if cfg.version and not release.VERSION_RE.fullmatch(cfg.version):
        raise ConfigError(f"{s.key('version')}: must be a release version such as 1.5.0, "
                          f"got {cfg.version!r}")
    if cfg.url and not re.match(r"^https?://[^/\s]+", cfg.url):
        raise ConfigError(f"{s.key('url')}: must be http(s)://host[:port][/path], "
                          f"got {cfg.url!r}")
    if cfg.version and not cfg.url:
        raise ConfigError(f"{s.key('url')}: required with {s.key('version')} (where the "
                          "releases are served, e.g. http://collector:8090/releases)")
    s.done()
    return cfg


def read_settings(s: Section, network: str, probes: Any = None,
                  probes_key: str = "probes") -> AgentSettings:
    """The settings keys of ``s`` (all but `probes`, which come as ``probes``
    and are named ``probes_key`` in errors) for a PC on ``network``.

    Only SETTING_KEYS are read: the caller says whether other keys may stand
    beside them (the agent's identity) by calling ``s.done()`` or not.
    """
    return AgentSettings(
        interval_s=s.number("interval", 60, 1, 86400),
        inventory_interval_s=s.number("inventory_interval", 86400, 60, 30 * 86400),
        probes=read_probes(probes, probes_key),
        isolation=read_isolation(s.sub("isolation")),
        bandwidth=read_bandwidth(s.sub("bandwidth"), network),
        clock=read_clock(s.sub("clock")),
        update=read_update(s.sub("update")),
    )
