"""The collector's config: `mqtt`, `influxdb`, `collector`, `sites` and `rules`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.config import MqttConfig, read_mqtt
from agent.settings import ConfigError, Section, load_yaml
from collector.sites import Org, read_org
from collector.speedserver import SpeedServerConfig
from collector.speedserver import read_config as read_speedserver

__all__ = ["CollectorConfig", "ConfigError", "InfluxConfig", "load", "read_influx"]


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "netroom"
    username: str | None = None
    password: str | None = None
    token: str | None = None  # InfluxDB 2.x/3.x: sent as "Authorization: Token ..."
    create_database: bool = True
    timeout_s: float = 10.0
    verify_tls: bool = True


@dataclass(frozen=True)
class CollectorConfig:
    mqtt: MqttConfig
    influxdb: InfluxConfig
    client_id: str = "netroom-collector"
    batch_size: int = 5000  # messages per InfluxDB write
    flush_interval_s: float = 1.0
    spool_dir: str = "/var/lib/netroom/spool"
    stats_interval_s: float = 10.0
    receive_maximum: int = 65535
    workers: int = 1  # ingest processes sharing the subscription (collector/workers.py)
    subscription: str = "netroom/v1/#"
    primary: bool = True  # runs the site evaluation; False in extra worker processes
    org: Org = field(default_factory=Org)  # the `sites` tree and `rules`
    speedtest: SpeedServerConfig = field(default_factory=SpeedServerConfig)
    raw: Any = None  # the whole parsed file, for sections other modules own


def read_influx(data: Any) -> InfluxConfig:
    s = Section(data, "influxdb")
    url = s.text("url", "http://127.0.0.1:8086")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"influxdb.url: must be http(s)://host:port, got {url!r}")
    cfg = InfluxConfig(
        url=url,
        database=s.text("database", "netroom"),
        username=s.env("username"),
        password=s.env("password"),
        token=s.env("token"),
        create_database=s.flag("create_database", True),
        timeout_s=s.number("timeout_s", 10, 0.1, 300),
        verify_tls=s.flag("verify_tls", True),
    )
    if cfg.token and cfg.username:
        raise ConfigError("influxdb.token: give either a token or username/password, not both")
    s.done()
    return cfg


def default_spool_dir() -> str:
    # systemd's StateDirectory= sets this (deploy/systemd/netroom-collector.service).
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/netroom/spool"
    return os.path.join(os.path.expanduser("~"), ".local", "state", "netroom", "spool")


def load(path: str | Path) -> CollectorConfig:
    """Load and validate the collector's sections; raise ConfigError."""
    data = load_yaml(path)
    mqtt = read_mqtt(data.get("mqtt"))
    influx = read_influx(data.get("influxdb"))
    s = Section(data.get("collector"), "collector")
    cfg = CollectorConfig(
        mqtt=mqtt,
        influxdb=influx,
        client_id=s.text("client_id", "netroom-collector"),
        batch_size=s.integer("batch_size", 5000, 1, 100_000),
        flush_interval_s=s.number("flush_interval", 1.0, 0.01, 60),
        spool_dir=s.text("spool_dir", "") or default_spool_dir(),
        stats_interval_s=s.number("stats_interval", 10, 1, 3600),
        receive_maximum=s.integer("receive_maximum", 65535, 1, 65535),
        workers=s.integer("workers", 1, 1, 64),
        org=read_org(data.get("sites"), data.get("rules")),
        speedtest=read_speedserver(s.raw("speedtest")),
        raw=data,
    )
    s.done()
    return cfg
