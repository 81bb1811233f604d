"""The InfluxDB sink: v1 HTTP API (/write, /query), so 1.x, 2.x and 3.x all work.

Plain ``requests``: POST {url}/write?db=..&precision=ms with line protocol,
GET (reads) or POST (everything else) {url}/query?db=..&epoch=ms&q=.. .
A path in ``url`` (a reverse proxy's prefix, http://host/influx) is kept.

Credentials: username/password as HTTP basic auth (InfluxDB 1.x also takes
u/p parameters, which would put the password in URLs and logs); 2.x and 3.x
accept v1 calls with a token (``Authorization: Token ...``) and map the
database name to a bucket through their DBRP mapping.
"""
from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import requests

from collector.influx.errors import SinkError
from collector.influx.settings import InfluxConfig
from netroom import schema

log = logging.getLogger(__name__)

# InfluxQL statements that only read: GET (like influxdb-python); others POST,
# as InfluxDB 1.x requires for CREATE, DROP, SELECT ... INTO and the like.
_READ_ONLY = re.compile(r"\s*(SELECT\b(?!.*\bINTO\b)|SHOW\b)", re.IGNORECASE | re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_SSL = re.compile(r"\[SSL[^\]]*\] [^'\"()]+")
MAX_REASON = 300  # characters of a server's error message kept in SinkError


__all__ = ["InfluxSink", "Rejected", "SinkError", "TooLarge"]

class Rejected(Exception):
    """A write InfluxDB will never accept (400, 2.x's 422: bad points): do not retry it
    as it is; split it to find the refused lines (InfluxDB 1.x wrote the others,
    2.x and 3.x refuse the whole request)."""


class TooLarge(Exception):
    """413: the request body is over the server's max-body-size: split it."""


class InfluxSink:
    """One HTTP session to InfluxDB; not shared between threads."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        u = urlsplit(cfg.url)
        # No user info in the base URL (credentials go in headers), and
        # InfluxDB's own port when none is given.
        netloc = u.netloc.rpartition("@")[2]
        if u.port is None:
            netloc += ":443" if u.scheme == "https" else ":8086"
        self.base = f"{u.scheme}://{netloc}{u.path.rstrip('/')}"
        self.session = requests.Session()
        self.session.verify = cfg.verify_tls
        if cfg.token:
            self.session.headers["Authorization"] = f"Token {cfg.token}"
        elif cfg.username:
            self.session.auth = (cfg.username, cfg.password or "")

    def ensure_database(self) -> None:
        """Create the database if it is missing and config allows it."""
        if not self.cfg.create_database:
            return
        try:
            self._query(f"CREATE DATABASE {schema.ident(self.cfg.database)}")  # idempotent
        except SinkError as exc:
            raise SinkError(f"cannot create database {self.cfg.database!r}: {exc}") from exc

    def write(self, lines: list[str]) -> None:
        """Write line-protocol lines (ms precision) in one request."""
        if not lines:
            return
        body = "\n".join(lines).encode("utf-8")
        r = self._send("POST", "/write", {"db": self.cfg.database, "precision": "ms"},
                       data=body, headers={"Content-Type": "text/plain; charset=utf-8"})
        if r.status_code // 100 == 2:
            return
        reason = _error_text(r)
        if r.status_code in (400, 422):  # 422: 2.x, e.g. a field type conflict
            raise Rejected(f"{self.base}: {r.status_code}: {reason}")
        if r.status_code == 413:
            raise TooLarge(f"{self.base}: 413: {len(body)} bytes: {reason}")
        if (r.status_code == 404 and self.cfg.create_database
                and "database not found" in reason):
            self.ensure_database()  # dropped under our feet: recreate, retry later
        raise SinkError(f"{self.base}: {r.status_code}: {reason}")

    def query(self, q: str) -> list[dict[str, Any]]:
        """Run InfluxQL; one dict per row of every series: its columns and its
        series' tags (tags win), times in epoch ms.

        Raises SinkError when InfluxDB cannot be reached or answers an error.
        """
        rows: list[dict[str, Any]] = []
        for result in self._query(q).get("results") or []:
            for series in result.get("series") or []:
                columns = series.get("columns") or []
                tags = series.get("tags") or {}
                rows.extend({**dict(zip(columns, values)), **tags}
                            for values in series.get("values") or [])
        return rows

    def close(self) -> None:
        self.session.close()

    def _query(self, q: str) -> dict[str, Any]:
        """The JSON answer to ``q``; SinkError for any error, in any statement."""
        method = "GET" if _READ_ONLY.match(q) else "POST"
        r = self._send(method, "/query", {"db": self.cfg.database, "epoch": "ms", "q": q})
        if r.status_code != 200:
            raise SinkError(f"{self.base}: {r.status_code}: {_error_text(r)}")
        try:
            answer = r.json()
        except ValueError:
            raise SinkError(f"{self.base}: 200 but not JSON: {_one_line(r.text)}") from None
        if not isinstance(answer, dict):
            raise SinkError(f"{self.base}: unexpected answer: {_one_line(r.text)}")
        if answer.get("error"):
            raise SinkError(f"{self.base}: {_one_line(str(answer['error']))}")
        for result in answer.get("results") or []:
            if result.get("error"):
                raise SinkError(f"{self.base}: {_one_line(str(result['error']))}")
            # A server with [http] max-row-limit cuts a long answer and drops the
            # series after the cut, saying only "partial": fewer PCs would look
            # like a shortfall. Unknown is not pass: refuse it.
            if result.get("partial") or any(s.get("partial")
                                             for s in result.get("series") or ()):
                raise SinkError(f"{self.base}: InfluxDB cut its answer short ([http] "
                                "max-row-limit): set max-row-limit = 0 (docs/operations.md)")
        return answer

    def _send(self, method: str, path: str, params: dict[str, str],
              **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, params=params,
                                        timeout=self.cfg.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise SinkError(f"{self.base}: {type(exc).__name__}: "
                            f"{self._describe(exc)}") from exc

    def _describe(self, exc: requests.RequestException) -> str:
        """One line about a failed request, without URLs (they carry queries)."""
        if isinstance(exc, requests.Timeout):
            return f"timed out after {self.cfg.timeout_s:g} s"
        text = str(exc)
        m = _ERRNO.search(text) or _SSL.search(text)
        return m.group(0).strip() if m else "request failed"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[:MAX_REASON] + "..."


def _error_text(r: requests.Response) -> str:
    """InfluxDB's {"error": "..."} message, else the body's text, on one line."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return _one_line(str(body["error"]))
    return _one_line(r.text) or r.reason or "no reason given"
