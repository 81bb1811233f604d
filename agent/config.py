"""The agent's config: the `mqtt` and `agent` sections of config.yaml."""
from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any, NamedTuple

from agent.probe_config import IsolationConfig, ProbeConfig, read_isolation, read_probes
from netroom import protocol, schema
from netroom.mqtt import MqttConfig, TlsConfig, read_mqtt
from netroom.settings import ConfigError, Section, load_yaml

__all__ = ["AgentConfig", "BandwidthConfig", "ConfigError", "MqttConfig", "TlsConfig",
           "default_host", "load"]


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


class AgentConfig(NamedTuple):
    site: str
    host: str
    network: str
    role: str
    mqtt: MqttConfig
    interval_s: float = 60.0
    inventory_interval_s: float = 86400.0
    state_dir: str = ""
    outbox_max: int = 100_000
    bandwidth: BandwidthConfig = BandwidthConfig()
    probes: tuple[ProbeConfig, ...] = ()  # the top-level `probes` list
    isolation: IsolationConfig = IsolationConfig()


def default_host() -> str:
    """The short hostname made into a valid id (lower case, no dots)."""
    name = socket.gethostname().split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]", "-", name).strip("-_") or "host"
    return name[:64]


def default_state_dir() -> str:
    # systemd's StateDirectory= sets this (the first entry if several).
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    if sys.platform == "win32":
        return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "netroom")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/netroom"
    return os.path.join(os.path.expanduser("~"), ".local", "state", "netroom")


def read_id(s: Section, name: str, default: str | None = None) -> str:
    """A host id (protocol.ID_RE: one topic level, one tag value)."""
    value = s.text(name, default)
    if not protocol.ID_RE.match(value):
        raise ConfigError(
            f"{s.key(name)}: must be 1-64 letters, digits, '.', '_' or '-', got {value!r}"
        )
    return value


def read_site(s: Section, name: str) -> str:
    """A site id: the same pattern as the collector's `sites` tree (schema.SITE_ID_RE)."""
    value = s.text(name)
    if not schema.SITE_ID_RE.match(value):
        raise ConfigError(f"{s.key(name)}: must be 1-64 letters a-z, digits or '-' "
                          f"(lower case, as in the collector's sites), got {value!r}")
    return value


def parse_window(text: str) -> tuple[int, int] | None:
    """Quiet hours "HH:MM-HH:MM" -> (start, end) minutes of the day, may wrap
    midnight; None if malformed or empty."""
    window = schema.parse_window(text)
    if window is None:
        return None
    start, end = window
    return (start, end) if start != end and max(start, end) <= schema.DAY_MINUTES else None


def read_bandwidth(s: Section, network: str) -> BandwidthConfig:
    """`agent.bandwidth`; ``network`` resolves method "auto"."""
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


def read_agent(data: Any, mqtt: MqttConfig) -> AgentConfig:
    s = Section(data, "agent")
    cfg = AgentConfig(
        site=read_site(s, "site"),
        host=read_id(s, "host", default_host()),
        network=s.choice("network", protocol.NETWORKS),
        role=s.choice("role", protocol.ROLES, "room"),
        mqtt=mqtt,
        interval_s=s.number("interval", 60, 1, 86400),
        inventory_interval_s=s.number("inventory_interval", 86400, 60, 30 * 86400),
        state_dir=s.text("state_dir", "") or default_state_dir(),
        outbox_max=s.integer("outbox_max", 100_000, 100, 10_000_000),
    )
    cfg = cfg._replace(bandwidth=read_bandwidth(s.sub("bandwidth"), cfg.network))
    cfg = cfg._replace(isolation=read_isolation(s.sub("isolation")))
    s.done()
    return cfg


def load(path: str | Path) -> AgentConfig:
    """Load and validate the agent's sections; raise ConfigError."""
    data = load_yaml(path)
    cfg = read_agent(data.get("agent"), read_mqtt(data.get("mqtt")))
    return cfg._replace(probes=read_probes(data.get("probes")))
