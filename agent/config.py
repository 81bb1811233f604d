"""The agent's config: the `mqtt`, `agent` and `probes` sections of config.yaml,
under which the settings from the centre go (netroom.central).

Identity (site, network, role, host), broker (`mqtt`) and local storage
(state_dir, outbox_max) come from the file alone. Everything else
(SETTING_KEYS: intervals, probes, isolation, bandwidth, clock) is the
centre's settings for this PC with the file's own on top: a key the file
sets wins, mappings merged key by key, lists (probes, canaries) replaced
whole. docs/settings.md.
"""
from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from agent import identity
from netroom import central, protocol, release, schema
from netroom.agentsettings import (
    SETTING_KEYS,
    AgentSettings,
    BandwidthConfig,
    ClockConfig,
    IsolationConfig,
    ProbeConfig,
    UpdateConfig,
    parse_window,
    read_bandwidth,
    read_clock,
    read_settings,
)
from netroom.mqtt import MqttConfig, TlsConfig, read_mqtt
from netroom.settings import ConfigError, Section, load_yaml

__all__ = ["AgentConfig", "BandwidthConfig", "ClockConfig", "ConfigError", "MqttConfig",
           "TlsConfig", "default_host", "load", "local_keys", "parse_window", "read",
           "read_bandwidth", "read_clock", "read_file", "with_central"]


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
    probes: tuple[ProbeConfig, ...] = ()  # the file's top-level `probes`, or the centre's
    isolation: IsolationConfig = IsolationConfig()
    clock: ClockConfig = ClockConfig()
    host_id: str = ""  # this PC's id (agent/identity.py); "" only in hand-made configs
    update: UpdateConfig = UpdateConfig()
    # `agent.update_keys`: the release keys this PC trusts (base64 Ed25519 public
    # keys, `netroom release keygen`). From the file only: whoever could set them
    # from the centre could also sign what the PC installs.
    update_keys: tuple[str, ...] = ()


def default_host() -> str:
    """The short hostname made into a valid id (lower case, no dots); the
    agent's default host is this with its short id appended (identity.suffixed)."""
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


def read_identity(s: Section, site: str, state_dir: str, mqtt: MqttConfig
                  ) -> tuple[str, str, MqttConfig]:
    """(host, host id, mqtt with its client id) of this PC.

    `agent.host` if set, else ``<hostname>-<short id>``: clones of one image
    share the hostname, and their messages must not share a topic (their
    series would overwrite each other). `mqtt.client_id` if set, else
    identity.client_id(). docs/collectors.md, "Identity".
    """
    try:
        ident = identity.read_identity(state_dir)
    except OSError as exc:
        raise ConfigError(f"{s.key('state_dir')}: cannot keep this PC's id there: {exc}"
                          ) from exc
    host = (read_id(s, "host") if s.raw("host") not in (None, "")
            else identity.suffixed(default_host(), ident.host_id))
    client = mqtt.client_id or identity.client_id(site, host, ident.host_id)
    return host, ident.host_id, mqtt._replace(client_id=client)


def read_agent(data: Any, mqtt: MqttConfig, probes: Any = None) -> AgentConfig:
    """The `agent` section (and the top-level ``probes``) of the file alone."""
    s = Section(data, "agent")
    site = read_site(s, "site")
    state_dir = s.text("state_dir", "") or default_state_dir()
    host, host_id, mqtt = read_identity(s, site, state_dir, mqtt)
    cfg = AgentConfig(
        site=site,
        host=host,
        network=s.choice("network", protocol.NETWORKS),
        role=s.choice("role", protocol.ROLES, "room"),
        mqtt=mqtt,
        state_dir=state_dir,
        outbox_max=s.integer("outbox_max", 100_000, 100, 10_000_000),
        host_id=host_id,
        update_keys=read_update_keys(s),
    )
    cfg = _settle(cfg, read_settings(s, cfg.network, probes))
    s.done()
    return cfg


def read_update_keys(s: Section) -> tuple[str, ...]:
    """`agent.update_keys`: a list of public keys, each checked to be one."""
    keys = s.seq("update_keys")
    for i, key in enumerate(keys):
        if not isinstance(key, str) or release.public_key_error(key):
            why = release.public_key_error(key) if isinstance(key, str) else "not a string"
            raise ConfigError(f"{s.key(f'update_keys[{i}]')}: {why} (the line "
                              "`netroom release keygen` printed)")
    return tuple(keys)


def _settle(cfg: AgentConfig, st: AgentSettings) -> AgentConfig:
    return cfg._replace(interval_s=st.interval_s, inventory_interval_s=st.inventory_interval_s,
                        probes=st.probes, isolation=st.isolation, bandwidth=st.bandwidth,
                        clock=st.clock, update=st.update)


def _local(data: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the file sets itself (a key with nothing after it sets nothing)."""
    agent = data.get("agent")
    out = {k: v for k, v in agent.items()
           if k in SETTING_KEYS and k != "probes" and v is not None} \
        if isinstance(agent, dict) else {}
    if data.get("probes") is not None:
        out["probes"] = data["probes"]
    return out


def local_keys(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The settings the file sets, as dotted keys down to one level
    (``interval``, ``isolation.canaries``, ``probes``): they win over the centre."""
    out = []
    for key, value in sorted(_local(data).items()):
        if isinstance(value, dict):
            out += [f"{key}.{k}" for k, v in sorted(value.items()) if v is not None]
        else:
            out.append(key)
    return tuple(out)


def with_central(cfg: AgentConfig, data: Mapping[str, Any], site: central.Settings
                 ) -> AgentConfig:
    """``cfg`` (identity and broker: the file's) running the centre's settings
    for this PC under the file's own (``data``, the parsed file); ConfigError
    when the two together are not valid."""
    mine = central.for_host(site, cfg.host, default_host(), cfg.network)
    local = _local(data)
    merged = central.merge({k: v for k, v in mine.items() if k != "probes"},
                           {k: v for k, v in local.items() if k != "probes"})
    if "probes" in local:
        probes, key = local["probes"], "probes"
    else:
        probes, key = mine.get("probes"), "settings.probes"
    s = Section(merged, "agent")
    st = read_settings(s, cfg.network, probes, key)
    s.done()
    return _settle(cfg, st)


def read_file(path: str | Path) -> dict[str, Any]:
    """The parsed file, for read() and with_central(); ConfigError."""
    return load_yaml(path)


def read(data: Mapping[str, Any]) -> AgentConfig:
    """The agent's config from the parsed file alone; raise ConfigError."""
    return read_agent(data.get("agent"), read_mqtt(data.get("mqtt")), data.get("probes"))


def load(path: str | Path) -> AgentConfig:
    """Load and validate the agent's sections (the file alone); raise ConfigError."""
    return read(read_file(path))
