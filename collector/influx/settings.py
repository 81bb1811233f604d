"""The `influxdb` section of config.yaml: where and how to reach InfluxDB.

Secrets (`password`, `token`) come from their own keys or, better, from
NETROOM_INFLUXDB_PASSWORD / NETROOM_INFLUXDB_TOKEN, never from the URL: a
URL is printed in logs and error messages, and the client sends credentials
only as headers. A URL with user info is refused at load, and the error
message masks its password.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collector.influx.retention_settings import RetentionConfig, read_retention
from netroom.settings import ConfigError, Section


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "netroom"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # InfluxDB 2.x/3.x: sent as "Authorization: Token ..."
    token: str | None = field(default=None, repr=False)
    create_database: bool = True
    timeout_s: float = 10.0
    verify_tls: bool = True
    # Retention policies and continuous queries (collector/influx/retention.py)
    retention: RetentionConfig = field(default_factory=RetentionConfig)


def read_influx(data: Any) -> InfluxConfig:
    s = Section(data, "influxdb")
    url = s.text("url", "http://127.0.0.1:8086")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"influxdb.url: must be http(s)://host:port, got "
                          f"{masked_url(url)!r}") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"influxdb.url: must not hold a user name or password, got {masked_url(url)!r}: "
            "put the user in influxdb.username and the password in NETROOM_INFLUXDB_PASSWORD "
            "(or influxdb.password)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"influxdb.url: must be http(s)://host:port, got {masked_url(url)!r}")
    cfg = InfluxConfig(
        url=url,
        database=s.text("database", "netroom"),
        username=s.env("username"),
        password=s.env("password"),
        token=s.env("token"),
        create_database=s.flag("create_database", True),
        timeout_s=s.number("timeout_s", 10, 0.1, 300),
        verify_tls=s.flag("verify_tls", True),
        retention=read_retention(s.raw("retention"), s.key("retention")),
    )
    if cfg.token and cfg.username:
        raise ConfigError("influxdb.token: give either a token or username/password, not both")
    s.done()
    return cfg


def masked_url(url: str) -> str:
    """``url`` with the user info's password (everything between ':' and '@')
    replaced by '***', for messages; unchanged when it has none."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{hostport}{slash}{path}"
