"""The agent's config: the `mqtt` and `agent` sections of config.yaml."""
from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import protocol
from agent.settings import ConfigError, Section, load_yaml

__all__ = ["AgentConfig", "ConfigError", "MqttConfig", "TlsConfig", "default_host", "load"]


@dataclass(frozen=True)
class TlsConfig:
    ca: str = ""
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    client_id: str = ""
    protocol: str = "5"  # "5" or "3.1.1"
    keepalive_s: int = 60


@dataclass(frozen=True)
class AgentConfig:
    site: str
    host: str
    network: str
    role: str
    mqtt: MqttConfig
    interval_s: float = 60.0
    inventory_interval_s: float = 86400.0
    state_dir: str = ""
    outbox_max: int = 100_000


def default_host() -> str:
    """The short hostname made into a valid id (lower case, no dots)."""
    name = socket.gethostname().split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]", "-", name).strip("-_") or "host"
    return name[:64]


def default_state_dir() -> str:
    if sys.platform == "win32":
        return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "netroom")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/netroom"
    return os.path.join(os.path.expanduser("~"), ".local", "state", "netroom")


def read_mqtt(data: Any) -> MqttConfig:
    s = Section(data, "mqtt")
    tls = None
    if s.raw("tls") is not None:
        t = s.sub("tls")
        tls = TlsConfig(ca=t.text("ca", ""), cert=t.text("cert", ""), key=t.text("key", ""))
        if bool(tls.cert) != bool(tls.key):
            raise ConfigError("mqtt.tls: cert and key must be given together")
        for name in ("ca", "cert", "key"):
            path = getattr(tls, name)
            if path and not os.path.isfile(path):
                raise ConfigError(f"mqtt.tls.{name}: no such file {path!r}")
        t.done()
    cfg = MqttConfig(
        host=s.text("host", "127.0.0.1"),
        port=s.integer("port", 8883 if tls else 1883, 1, 65535),
        username=s.env("username"),
        password=s.env("password"),
        tls=tls,
        client_id=s.text("client_id", ""),
        protocol=s.choice("protocol", ("5", "3.1.1"), "5"),
        keepalive_s=s.integer("keepalive_s", 60, 5, 3600),
    )
    s.done()
    return cfg


def read_id(s: Section, name: str, default: str | None = None) -> str:
    value = s.text(name, default)
    if not protocol.ID_RE.match(value):
        raise ConfigError(
            f"{s.key(name)}: must be 1-64 letters, digits, '.', '_' or '-', got {value!r}"
        )
    return value


def read_agent(data: Any, mqtt: MqttConfig) -> AgentConfig:
    s = Section(data, "agent")
    cfg = AgentConfig(
        site=read_id(s, "site"),
        host=read_id(s, "host", default_host()),
        network=s.choice("network", protocol.NETWORKS),
        role=s.choice("role", protocol.ROLES, "room"),
        mqtt=mqtt,
        interval_s=s.number("interval", 60, 1, 86400),
        inventory_interval_s=s.number("inventory_interval", 86400, 60, 30 * 86400),
        state_dir=s.text("state_dir", "") or default_state_dir(),
        outbox_max=s.integer("outbox_max", 100_000, 100, 10_000_000),
    )
    s.done()
    return cfg


def load(path: str | Path) -> AgentConfig:
    """Load and validate the agent's sections; raise ConfigError."""
    data = load_yaml(path)
    return read_agent(data.get("agent"), read_mqtt(data.get("mqtt")))
