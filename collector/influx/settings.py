"""The `influxdb` section of config.yaml: where and how to reach InfluxDB."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from netroom.settings import ConfigError, Section


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
