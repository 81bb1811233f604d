"""The intranet speed-test server: what gov PCs, which have no internet, test against.

Started by the collector when ``collector.speedtest.listen`` is set, or alone
with ``netroom speedserver --listen 0.0.0.0:8090``. Stdlib HTTP/1.1,
one thread per connection, at most ``max_clients`` at once (503 beyond).

Endpoints (agent.speedclient uses the first three):

- ``GET /latency``: a tiny answer, for round trips;
- ``GET /download?bytes=N``: N bytes (at most ``max_bytes``) of random data,
  streamed from one 64 KiB block, so a download allocates nothing;
- ``POST /upload``: reads and discards the body, answers ``{"bytes": N}``;
- a Speedtest Mini server for speedtest-cli (any speedtest-cli client pointed at it):
  ``/`` (names the upload extension), ``/speedtest/latency.txt``,
  ``/speedtest/random<N>x<N>.jpg`` (2 * N^2 bytes), ``/speedtest/upload.php``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from netroom.settings import ConfigError, Section

log = logging.getLogger(__name__)
BLOCK = 64 * 1024
_RANDOM_JPG = re.compile(r"^/speedtest/random(\d{1,4})x\1\.jpg$")
MINI_PAGE = (b'<html><body>Speedtest Mini (netroom)<script>upload_extension: "php"'
             b"</script></body></html>")


@dataclass(frozen=True)
class SpeedServerConfig:
    """`collector.speedtest`: ``listen`` "host:port" ("" = off); bytes; clients."""

    listen: str = ""
    max_bytes: int = 1 << 30
    max_clients: int = 64


def parse_listen(text: str) -> tuple[str, int] | None:
    """ "host:port" or "[v6]:port" -> (host, port); None if malformed."""
    m = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):(\d{1,5})$", text)
    if m is None or not 0 <= int(m.group(3)) <= 65535:
        return None
    return m.group(1) or m.group(2), int(m.group(3))


def read_config(data: Any) -> SpeedServerConfig:
    s = Section(data, "collector.speedtest")
    cfg = SpeedServerConfig(
        listen=s.text("listen", ""),
        # At least agent.speedclient.UPLOAD_BYTES (4 MiB), what a client uploads at once.
        max_bytes=s.integer("max_bytes", 1 << 30, 4 << 20, 1 << 40),
        max_clients=s.integer("max_clients", 64, 1, 10_000),
    )
    if cfg.listen and parse_listen(cfg.listen) is None:
        raise ConfigError(f"collector.speedtest.listen: must be host:port, got {cfg.listen!r}")
    s.done()
    return cfg


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: latency samples reuse one connection
    timeout = 30  # s without a byte from the client: drop it
    server: SpeedServer

    def setup(self) -> None:
        super().setup()
        # Headers and a tiny body go out in two writes; without this, Nagle
        # holds the second until the client's delayed ACK (40 ms latency).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s <- %s %s", self.server.url, self.address_string(), format % args)

    def handle_one_request(self) -> None:
        srv = self.server
        if not srv.slots.acquire(blocking=False):
            # Read the request line so the 503 is a proper answer, then close.
            self.raw_requestline = self.rfile.readline(65537)
            if self.parse_request():
                self.send_error(503, "too many speed tests at once")
            self.close_connection = True
            return
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True  # the client cut the stream: normal at a test's end
        finally:
            srv.slots.release()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == "/latency":
            self._answer(b"ok", "text/plain")
        elif path == "/download":
            try:
                n = int(parse_qs(url.query).get("bytes", ["0"])[0])
            except ValueError:
                self.send_error(400, "bytes must be an integer")
                return
            self._stream(min(max(n, 0), self.server.cfg.max_bytes))
        elif path in ("/", "/speedtest", "/speedtest/", "/speedtest/index.html"):
            self._answer(MINI_PAGE, "text/html")
        elif path == "/speedtest/latency.txt":
            self._answer(b"test=test", "text/plain")
        elif path == "/speedtest/upload.php":
            self._answer(b"size=0", "text/plain")
        elif (m := _RANDOM_JPG.match(path)) is not None:
            self._stream(min(2 * int(m.group(1)) ** 2, self.server.cfg.max_bytes), "image/jpeg")
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/upload", "/speedtest/upload.php"):
            self.send_error(404)
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411, "Content-Length required")
            return
        if not 0 <= length <= self.server.cfg.max_bytes:
            self.send_error(413, f"at most {self.server.cfg.max_bytes} bytes")
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(BLOCK, left))
            if not chunk:
                self.close_connection = True  # the client stopped sending: its time was up
                return
            left -= len(chunk)
        if path == "/upload":
            self._answer(json.dumps({"bytes": length}).encode(), "application/json")
        else:
            self._answer(f"size={length}".encode(), "text/plain")

    def _answer(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, n: int, ctype: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(n))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        block = memoryview(self.server.block)
        while n > 0:
            k = min(n, len(block))
            self.wfile.write(block[:k])
            n -= k


class SpeedServer(ThreadingHTTPServer):
    """The server; start() serves in a thread, stop() ends it. ``url`` is its base URL."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cfg: SpeedServerConfig) -> None:
        addr = parse_listen(cfg.listen)
        if addr is None:
            raise ConfigError(f"collector.speedtest.listen: must be host:port, got {cfg.listen!r}")
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.cfg = cfg
        self.slots = threading.BoundedSemaphore(cfg.max_clients)
        self.block = os.urandom(BLOCK)  # incompressible, in case a proxy compresses
        super().__init__(addr, _Handler)
        self._thread: threading.Thread | None = None
        host, port = self.socket.getsockname()[:2]  # the real port when asked for 0
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="speedserver",
                                        daemon=True)
        self._thread.start()
        log.info("speed-test server on %s", self.url)

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(10)
        self.server_close()
