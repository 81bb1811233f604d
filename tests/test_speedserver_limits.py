"""The speed-test server under hostile load (issue 9): slow senders and idle
keep-alive sockets cannot starve a real speed test, threads stay bounded, a
client beyond the limits is told "busy", and the limits are configured in
collector.speedtest.

Before: 64 clients sending a header byte every 10 s, or 64 idle keep-alive
connections, made the server answer 503 to everyone; every connection was a
thread. Real sockets on loopback, bounded loops, no timing asserts.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from harness import REPO, run_cli
from servers import wait_until

from agent.speedclient import Client
from collector.speedtest.server import SpeedServer, SpeedServerConfig, read_config
from netroom.settings import ConfigError

SLOW_HEADER = b"GET /latency HTTP/1.1\r\nHost: speed\r\nX-Slow: "


def start(**limits: Any) -> SpeedServer:
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0", **limits))
    srv.start()
    return srv


@pytest.fixture
def servers() -> Iterator[list[SpeedServer]]:
    """Servers a test starts (append them); stopped at the end."""
    started: list[SpeedServer] = []
    yield started
    for srv in started:
        srv.stop()


def port_of(srv: SpeedServer) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (EOF or reset); never blocks."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


class Slowloris:
    """``n`` connections sending a request header one byte per round, never
    finishing it; a connection the server closes is opened again, so the
    pressure lasts as long as the rounds do."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.socks: list[socket.socket] = [self._open() for _ in range(n)]
        self.sent = [0] * n
        self.reopened = 0

    def _open(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setblocking(False)
        return s

    def round(self) -> None:
        for i, s in enumerate(self.socks):
            if closed_by_server(s):
                s.close()
                self.socks[i], self.sent[i] = self._open(), 0
                self.reopened += 1
            k = self.sent[i]
            byte = SLOW_HEADER[k:k + 1] or b"a"
            try:
                s.send(byte)
                self.sent[i] += 1
            except OSError:
                pass  # closed meanwhile: reopened next round

    def close(self) -> None:
        for s in self.socks:
            s.close()


def agent_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {
        "site": "sq-1", "network": "gov", "state_dir": str(tmp_path / "state"),
        "bandwidth": {"tester": True, "method": "intranet", "url": url, "duration": 1,
                      "streams": 2, "timeout": 30}}}), encoding="utf-8")
    return path


def test_200_slow_clients_do_not_starve_a_real_test(tmp_path: Path,
                                                    servers: list[SpeedServer]) -> None:
    """200 slowloris connections against a cap of 64 and 8 workers, reopened as
    soon as the server closes them, while the real agent (`netroom-agent --once`,
    another process) runs its intranet test: the test measures both ways, the
    server never uses more than its reactor and max_clients workers."""
    before = threading.active_count()
    srv = start(max_clients=8, max_connections=64, header_timeout_s=1.0)
    servers.append(srv)
    slow = Slowloris(port_of(srv), 200)  # 136 over the cap already
    try:
        for _ in range(3):
            slow.round()
        # Slow senders hold no worker: the reactor is the one thread added.
        assert threading.active_count() == before + 1
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(agent_config(tmp_path, srv.url)),
             "--once", "--print"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        peak = 0
        for _ in range(3000):  # bounded: the agent's own timeout (30 s) ends it first
            slow.round()
            peak = max(peak, threading.active_count())
            try:
                out, err = agent.communicate(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            agent.kill()
            out, err = agent.communicate()
    finally:
        slow.close()
    assert agent.returncode == 0, err
    [record] = [json.loads(line)["payload"] for line in out.splitlines()
                if json.loads(line)["topic"].endswith("/bandwidth")]
    assert "error" not in record, record
    assert record["download_mbps"] > 0 and record["upload_mbps"] > 0
    assert record["latency_ms"] > 0
    assert peak <= before + 1 + 8  # the reactor and at most max_clients workers
    # The slow senders were cut, at the cap or by the header timeout, again and again.
    assert slow.reopened >= 136
    assert srv.stats["evicted"] + srv.stats["timed_out"] >= slow.reopened
    srv.stop()
    servers.remove(srv)
    assert threading.active_count() == before  # stop() ends every thread it started


def keepalive(port: int) -> socket.socket:
    """A connection that made one request, read its answer and stays open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /latency HTTP/1.1\r\nHost: speed\r\n\r\n")
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200 ")
    return s


def test_idle_keepalive_connections_are_closed_when_others_wait(
        servers: list[SpeedServer]) -> None:
    """100 idle keep-alive connections against a cap of 32 and 4 workers (the
    header timeout is long, so only the cap frees them): the oldest are closed
    as others arrive, and a real test still runs."""
    srv = start(max_clients=4, max_connections=32, header_timeout_s=300)
    servers.append(srv)
    idle = [keepalive(port_of(srv)) for _ in range(100)]
    try:
        closed = [closed_by_server(s) for s in idle]
        assert all(closed[:68]) and not any(closed[68:])  # the longest idle went first
        assert srv.stats["evicted"] == 68
        client = Client(srv.url, deadline=time.monotonic() + 60)
        assert client.latency().latency_ms > 0
        assert client.download(2, 1).mbps > 0
        assert client.upload(2, 1).mbps > 0
    finally:
        for s in idle:
            s.close()
    assert srv.stats["busy"] == 0


def test_a_slow_header_sender_is_cut_after_header_timeout(servers: list[SpeedServer]) -> None:
    srv = start(header_timeout_s=0.5)
    servers.append(srv)
    s = socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10)
    try:
        cut = False
        for k in range(200):  # one byte every 0.05 s: 10 s of header at most
            if closed_by_server(s):
                cut = True
                break
            s.setblocking(True)
            s.send(SLOW_HEADER[k:k + 1] or b"a")
            time.sleep(0.05)
    finally:
        s.close()
    assert cut and srv.stats["timed_out"] == 1 and srv.stats["served"] == 0


def test_a_trickled_body_is_cut_and_frees_its_worker(servers: list[SpeedServer]) -> None:
    """An upload trickling under MIN_RATE holds the only worker (max_clients 1):
    meanwhile others are told busy; it is cut after a body_timeout, then
    requests are served again."""
    srv = start(max_clients=1, body_timeout_s=0.5)
    servers.append(srv)
    s = socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: speed\r\nContent-Length: 1000000\r\n\r\n")
        assert wait_until(lambda: fetch(srv, "/latency")[0] == 503, 10)
        status, headers, body = fetch(srv, "/latency")
        assert status == 503 and headers["Retry-After"] == "10" and body.startswith(b"busy")
        cut = False
        for _ in range(400):  # 1 byte every 0.025 s: 40 bytes/s, far under MIN_RATE
            if closed_by_server(s):
                cut = True
                break
            s.setblocking(True)
            try:
                s.send(b"x")
            except ConnectionError:
                cut = True
                break
            time.sleep(0.025)
        assert cut
    finally:
        s.close()
    assert wait_until(lambda: fetch(srv, "/latency")[0] == 200, 10)


def fetch(srv: SpeedServer, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_beyond_the_cap_with_every_connection_served_is_busy(
        servers: list[SpeedServer]) -> None:
    """Nothing to close (both connections are downloads being served): the new
    connection is answered 503 busy at once."""
    srv = start(max_clients=2, max_connections=2)
    servers.append(srv)
    holds = []
    for _ in range(2):
        hold = http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=10)
        hold.request("GET", "/download?bytes=1000000000")
        assert hold.getresponse().status == 200  # body left unread: served until closed
        holds.append(hold)
    try:
        status, headers, body = fetch(srv, "/latency")
        assert (status, headers["Connection"], body) == (
            503, "close", b"busy: too many speed tests at once, try later\n")
    finally:
        for hold in holds:
            hold.close()
    assert wait_until(lambda: fetch(srv, "/latency")[0] == 200, 10)


def test_an_oversized_header_is_refused(servers: list[SpeedServer]) -> None:
    srv = start()
    servers.append(srv)
    with socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10) as s:
        with contextlib.suppress(ConnectionError):  # refused before all of it was sent
            s.sendall(b"GET /latency HTTP/1.1\r\nX-Big: " + b"a" * (80 * 1024))
        assert s.recv(100).startswith(b"HTTP/1.1 431 ")


def test_config_limits_and_errors() -> None:
    assert read_config({}) == SpeedServerConfig()
    assert (SpeedServerConfig().max_connections, SpeedServerConfig().header_timeout_s,
            SpeedServerConfig().body_timeout_s) == (512, 10.0, 15.0)
    cfg = read_config({"listen": "0.0.0.0:8090", "max_clients": 16, "max_connections": 100,
                       "header_timeout": 5, "body_timeout": 20.5})
    assert (cfg.max_clients, cfg.max_connections, cfg.header_timeout_s, cfg.body_timeout_s) \
        == (16, 100, 5.0, 20.5)
    for data, message in [
        ({"max_connections": 64}, "collector.speedtest.max_connections: must be more than "
                                  "max_clients (64), got 64"),
        ({"header_timeout": 0}, "collector.speedtest.header_timeout: must be between 0.1"),
        ({"body_timeout": "15s"}, "collector.speedtest.body_timeout: must be a number"),
        ({"max_connection": 100}, "collector.speedtest.max_connection: unknown key"),
    ]:
        with pytest.raises(ConfigError) as err:
            read_config(data)
        assert str(err.value).startswith(message)


def test_speedserver_command_checks_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"collector": {"speedtest": {
        "listen": "127.0.0.1:0", "max_clients": 100, "max_connections": 50}}}),
        encoding="utf-8")
    r = run_cli("collector.cli.main", "speedserver", "--config", str(path))
    assert r.returncode == 2
    assert r.stderr.strip() == ("netroom speedserver: error: collector.speedtest."
                                "max_connections: must be more than max_clients (100), got 50")
