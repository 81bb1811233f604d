"""The InfluxDB sink: v1 HTTP API (/write, /query), so 1.x, 2.x and 3.x all work.

2.x and 3.x accept v1 writes with a token (``Authorization: Token ...``) and
map the database name to a bucket through their DBRP mapping.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError

from collector.influx.settings import InfluxConfig

log = logging.getLogger(__name__)


class SinkError(Exception):
    """A write that may succeed later (server down, 5xx, auth): retry it."""


class Rejected(Exception):
    """A write InfluxDB will never accept (400: bad points): do not retry."""


class InfluxSink:
    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        u = urlsplit(cfg.url)
        headers = {"Authorization": f"Token {cfg.token}"} if cfg.token else None
        self.client = InfluxDBClient(
            host=u.hostname or "127.0.0.1",
            port=u.port or (443 if u.scheme == "https" else 8086),
            path=u.path.strip("/"),
            username=cfg.username or "",
            password=cfg.password or "",
            database=cfg.database,
            ssl=u.scheme == "https",
            verify_ssl=cfg.verify_tls,
            timeout=cfg.timeout_s,
            retries=1,
            headers=headers,
        )

    def ensure_database(self) -> None:
        """Create the database if it is missing and config allows it."""
        if not self.cfg.create_database:
            return
        try:
            self.client.create_database(self.cfg.database)  # idempotent in InfluxQL
        except (InfluxDBClientError, InfluxDBServerError, requests.RequestException) as exc:
            raise SinkError(f"{self.cfg.url}: cannot create database "
                            f"{self.cfg.database!r}: {exc}") from exc

    def write(self, lines: list[str]) -> None:
        """Write line-protocol lines (ms precision) in one request."""
        if not lines:
            return
        try:
            self.client.write_points(lines, time_precision="ms", protocol="line")
        except InfluxDBClientError as exc:
            if exc.code == 400:
                raise Rejected(str(exc)) from exc
            if exc.code == 404 and self.cfg.create_database:
                self.ensure_database()  # dropped under our feet: recreate, retry later
            raise SinkError(f"{self.cfg.url}: {exc.code}: {exc.content!r}") from exc
        except (InfluxDBServerError, requests.RequestException) as exc:
            raise SinkError(f"{self.cfg.url}: {type(exc).__name__}: {exc}") from exc

    def query(self, q: str) -> Any:
        """Run InfluxQL; raise SinkError when the server cannot be reached."""
        try:
            return self.client.query(q, epoch="ms")
        except (InfluxDBClientError, InfluxDBServerError, requests.RequestException) as exc:
            raise SinkError(f"{self.cfg.url}: {exc}") from exc

    def close(self) -> None:
        self.client.close()
