"""Start-up checks of the collector's servers: InfluxDB's credentials and
database, the broker's login (through ingest's first connection).

Used by netroom-collector before it starts (collector/__main__.py) and by
`netroom doctor`. A server that does not answer is not a problem at start:
the spool and the broker's queue hold the data until it does. A server that
answers "no" (wrong password, unknown database, no right to write) will say
no until someone fixes the config or the server: that is the config-like
error that stops the collector with exit code 2 (systemd's
RestartPreventExitStatus=2, so it does not restart in a loop).
"""
from __future__ import annotations

import json
from typing import NamedTuple

import requests

from collector.influx.client import InfluxSink
from collector.influx.settings import InfluxConfig
from netroom import schema

# Codes of InfluxDB findings; FATAL ones stop the collector at start.
OK = "ok"
UNREACHABLE = "unreachable"
FATAL = ("credentials", "no_database", "no_write", "no_read")


class Finding(NamedTuple):
    """What a check found: ``code`` (ok, unreachable, one of FATAL, or error)
    and ``detail``, one line (the server's own words)."""

    code: str
    detail: str = ""

    @property
    def fatal(self) -> bool:
        return self.code in FATAL


def _error(r: requests.Response) -> str:
    try:
        text = str(json.loads(r.text).get("error") or "")
    except (ValueError, AttributeError):
        text = ""
    return f"{r.status_code}: {' '.join((text or r.text).split())[:300]}"


def check_influx(cfg: InfluxConfig) -> Finding:
    """Can the collector write to (and read from) ``cfg.database``, as configured?

    An empty write answers with the right to write: 401 (credentials), 404
    (no such database), 403 (no right to write), 204 (fine); a one-row read
    the right to read. With ``create_database`` the database is created first
    (an admin may; others are told by the write that it is missing).
    """
    sink = InfluxSink(cfg)
    user = cfg.username or ("a token" if cfg.token else "no user")
    try:
        if cfg.create_database:
            r = sink.session.post(sink.base + "/query", timeout=cfg.timeout_s,
                                  params={"q": f"CREATE DATABASE {schema.ident(cfg.database)}"})
            if r.status_code == 401:
                return Finding("credentials", f"{user}: {_error(r)}")
        r = sink.session.post(sink.base + "/write", data=b"", timeout=cfg.timeout_s,
                              params={"db": cfg.database, "precision": "ms"})
        if r.status_code == 401:
            return Finding("credentials", f"{user}: {_error(r)}")
        if r.status_code == 404:
            return Finding("no_database", _error(r))
        if r.status_code == 403:
            return Finding("no_write", f"{user}: {_error(r)}")
        # 400: a server that wants a body (2.x may) got past credentials and database.
        if r.status_code // 100 != 2 and r.status_code != 400:
            return Finding("error", _error(r))
        r = sink.session.get(sink.base + "/query", timeout=cfg.timeout_s,
                             params={"db": cfg.database, "q": "SHOW MEASUREMENTS LIMIT 1"})
        if r.status_code == 403:
            return Finding("no_read", f"{user}: {_error(r)}")
        if r.status_code == 401:
            return Finding("credentials", f"{user}: {_error(r)}")
        if r.status_code != 200:
            return Finding("error", _error(r))
        return Finding(OK)
    except requests.RequestException as exc:
        return Finding(UNREACHABLE, f"{type(exc).__name__}: {sink._describe(exc)}")
    finally:
        sink.close()


def influx_line(f: Finding, cfg: InfluxConfig) -> str:
    """One English line about a finding, with the fix (logs, the collector's exit)."""
    where = f"InfluxDB {cfg.url} database {cfg.database!r}"
    fixes = {
        "credentials": "check influxdb.username/password (NETROOM_INFLUXDB_PASSWORD) or "
                       "influxdb.token",
        "no_database": "create it (CREATE DATABASE as an InfluxDB admin), or fix "
                       "influxdb.database",
        "no_write": "GRANT WRITE (or ALL) ON the database TO the collector's user",
        "no_read": "GRANT ALL ON the database TO the collector's user (it reads back "
                   "what it wrote for the compliance rules)",
        UNREACHABLE: "the collector spools until it answers; nothing is lost",
        "error": "see InfluxDB's log",
    }
    if f.code == OK:
        return f"{where}: ok"
    return f"{where}: {f.detail} ({fixes.get(f.code, '')})"
