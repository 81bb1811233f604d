"""The intranet speed-test server: what gov PCs, which have no internet, test against.

Started by the collector when ``collector.speedtest.listen`` is set, or alone
with ``netroom speedserver --listen 0.0.0.0:8090``. Stdlib HTTP/1.1.

Endpoints (agent.speedclient uses the first three):

- ``GET /latency``: a tiny answer, for round trips;
- ``GET /download?bytes=N``: N bytes (at most ``max_bytes``) of random data,
  streamed from one 64 KiB block, so a download allocates nothing;
- ``POST /upload``: reads and discards the body, answers ``{"bytes": N}``;
- a Speedtest Mini server for speedtest-cli (any speedtest-cli client pointed at it):
  ``/`` (names the upload extension), ``/speedtest/latency.txt``,
  ``/speedtest/random<N>x<N>.jpg`` (2 * N^2 bytes), ``/speedtest/upload.php``;
- ``GET`` / ``HEAD /releases/<version>/<file>``: the agents' releases
  (docs/updates.md), from the directory ``releases`` ("" = none), streamed
  from disk one block at a time. Only a plain file of a version's directory,
  named as a release names them, inside that directory once symlinks are
  resolved: anything else under /releases is 404. These requests share the
  limits below with the speed tests.

Bounded, so idle or slow sockets cannot starve real tests:

- one *reactor* thread (``selectors``) accepts connections and reads request
  headers without blocking: a connection waiting for a request costs a file
  descriptor, never a thread. The whole header must arrive within
  ``header_timeout`` of the server starting to wait for it (the accept, or the
  end of the previous answer on a kept-alive connection), else it is closed;
- a request whose header is complete goes to one of at most ``max_clients``
  worker threads, which reads its body and writes its answer: every socket
  operation within ``body_timeout``, and at least MIN_RATE bytes/s over each
  ``body_timeout``; a kept-alive connection then goes back to the reactor;
  a request arriving while every worker is busy is answered ``503`` (busy);
- at most ``max_connections`` open connections: one more closes the
  connection that has waited longest for a request (an idle keep-alive or a
  slow sender: a real client sends its request within a round trip), or, if
  every connection is being served, is answered ``503`` (busy).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import re
import selectors
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from netroom import release
from netroom.ratelimit import RateLimitedLog
from netroom.settings import ConfigError, Section

log = logging.getLogger(__name__)
BLOCK = 64 * 1024
MAX_HEADER = 64 * 1024  # bytes of request line and headers; beyond: 431
MIN_RATE = 4096  # bytes/s a body or an answer must average over each body_timeout
ACCEPTS_PER_PASS = 32  # the reactor serves waiting connections between batches of accepts
_RANDOM_JPG = re.compile(r"^/speedtest/random(\d{1,4})x\1\.jpg$")
RELEASES = "/releases/"
# A file name a release may serve: netroom.release's bundle names and its two
# own files; never hidden (a leading dot), never a path.
_RELEASE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
MINI_PAGE = (b'<html><body>Speedtest Mini (netroom)<script>upload_extension: "php"'
             b"</script></body></html>")


def _plain(status: str, text: str, *headers: str) -> bytes:
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain", f"Content-Length: {len(body)}",
            *headers, "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


BUSY = _plain("503 Service Unavailable", "busy: too many speed tests at once, try later\n",
              "Retry-After: 10")
TOO_LARGE = _plain("431 Request Header Fields Too Large", "request header too large\n")


@dataclass(frozen=True)
class SpeedServerConfig:
    """`collector.speedtest`: ``listen`` "host:port" ("" = off); bytes; requests
    served at once; open connections; seconds; ``releases`` the directory of
    the agents' releases served under /releases ("" = none)."""

    listen: str = ""
    max_bytes: int = 1 << 30
    max_clients: int = 64
    max_connections: int = 512
    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0
    releases: str = ""


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
        max_connections=s.integer("max_connections", 512, 2, 100_000),
        header_timeout_s=s.number("header_timeout", 10, 0.1, 600),
        body_timeout_s=s.number("body_timeout", 15, 0.1, 600),
        releases=s.text("releases", ""),
    )
    if cfg.releases and (why := releases_error(cfg.releases)):
        raise ConfigError(f"collector.speedtest.releases: {why}")
    if cfg.listen and parse_listen(cfg.listen) is None:
        raise ConfigError(f"collector.speedtest.listen: must be host:port, got {cfg.listen!r}")
    if cfg.max_connections <= cfg.max_clients:
        raise ConfigError(f"collector.speedtest.max_connections: must be more than max_clients "
                          f"({cfg.max_clients}), got {cfg.max_connections}")
    s.done()
    return cfg


def releases_error(path: str) -> str:
    """Why ``path`` cannot be the releases directory, "" if it can be."""
    if not os.path.exists(path):
        return f"no such directory: {path!r}"
    if not os.path.isdir(path):
        return f"not a directory: {path!r}"
    return ""


def release_path(root: str, version: str, name: str) -> str | None:
    """The real path of release ``version``'s file ``name`` under ``root`` (a
    real path), None unless it may be served: a version's name, a plain
    file name, and inside ``root`` once symlinks are resolved. Whether it is
    a regular file is for the one who opens it to check (fstat)."""
    if not release.VERSION_RE.fullmatch(version) or not _RELEASE_FILE.fullmatch(name):
        return None
    real = os.path.realpath(os.path.join(root, version, name))
    return real if real.startswith(root.rstrip(os.sep) + os.sep) else None


def _open_regular(path: str) -> io.FileIO | None:
    """``path`` opened if it is a regular file, else None."""
    try:
        # O_NOFOLLOW: the path checked, not a symlink put there since;
        # O_NONBLOCK: a FIFO cannot hang the worker in open().
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO, a device
        os.close(fd)
        return None
    return io.FileIO(fd, "rb")


class TooSlow(OSError):
    """A body or an answer moved under MIN_RATE bytes/s over a body_timeout."""


class _Conn:
    """One client connection; the reactor and a worker never hold it at once."""

    __slots__ = ("addr", "buf", "deadline", "sock")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()  # received, not yet handled: a request header, maybe more
        self.deadline = 0.0  # monotonic time its (next) request header must be complete by


def _header_end(buf: bytearray) -> int:
    """Index just past the blank line ending the header, -1 if not there yet."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep)) >= 0]
    return min(ends) if ends else -1


class _Pace:
    """Bytes a request moved; raises TooSlow under MIN_RATE over a window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.start = time.monotonic()
        self.moved = 0

    def add(self, n: int) -> None:
        self.moved += n
        now = time.monotonic()
        if now - self.start >= self.window_s:
            if self.moved < MIN_RATE * (now - self.start):
                raise TooSlow(f"under {MIN_RATE} bytes/s")
            self.start, self.moved = now, 0


class _Reader(io.BufferedIOBase):
    """The request's input: the bytes the reactor read, then the socket.

    Reads never go past what they are asked for, so what is left of the
    buffer after a request (a pipelined next request) goes back to the reactor.
    """

    def __init__(self, conn: _Conn, pace: _Pace) -> None:
        super().__init__()
        self.conn = conn
        self.pace = pace

    def readable(self) -> bool:
        return True

    def _fill(self, limit: int) -> None:
        data = self.conn.sock.recv(max(1, min(limit, BLOCK)))
        self.pace.add(len(data))
        if not data:
            raise EOFError
        self.conn.buf += data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes: what is buffered, else one recv; b"" at the end."""
        buf = self.conn.buf
        if size == 0:
            return b""
        if not buf:
            try:
                self._fill(BLOCK if size is None or size < 0 else size)
            except EOFError:
                return b""
        n = len(buf) if size is None or size < 0 else size
        out = bytes(buf[:n])
        del buf[:n]
        return out

    read1 = read

    def readline(self, size: int | None = -1) -> bytes:
        limit = BLOCK if size is None or size < 0 else size
        buf = self.conn.buf
        while (i := buf.find(b"\n")) < 0 and len(buf) < limit:
            try:
                self._fill(limit - len(buf))
            except EOFError:
                break
        n = min(limit, len(buf) if i < 0 else i + 1)
        out = bytes(buf[:n])
        del buf[:n]
        return out


class _Writer(io.BufferedIOBase):
    """The answer's output: straight to the socket, paced."""

    def __init__(self, sock: socket.socket, pace: _Pace) -> None:
        super().__init__()
        self.sock = sock
        self.pace = pace

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        n = memoryview(data).nbytes
        self.pace.add(n)
        return n


class _Handler(BaseHTTPRequestHandler):
    """One request on a connection whose header the reactor has read."""

    protocol_version = "HTTP/1.1"  # keep-alive: latency samples reuse one connection

    def __init__(self, srv: SpeedServer, conn: _Conn) -> None:
        # Not BaseRequestHandler.__init__, which would serve the connection to
        # its end in this thread: the reactor waits for its next request.
        self.srv = srv
        self.connection = self.request = conn.sock
        self.client_address = conn.addr
        pace = _Pace(srv.cfg.body_timeout_s)
        self.rfile = _Reader(conn, pace)
        self.wfile = _Writer(conn.sock, pace)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s <- %s %s", self.srv.url, self.address_string(), format % args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path.startswith(RELEASES):
            self._release(path)
        elif path == "/latency":
            self._answer(b"ok", "text/plain")
        elif path == "/download":
            try:
                n = int(parse_qs(url.query).get("bytes", ["0"])[0])
            except ValueError:
                self.send_error(400, "bytes must be an integer")
                return
            self._stream(min(max(n, 0), self.srv.cfg.max_bytes))
        elif path in ("/", "/speedtest", "/speedtest/", "/speedtest/index.html"):
            self._answer(MINI_PAGE, "text/html")
        elif path == "/speedtest/latency.txt":
            self._answer(b"test=test", "text/plain")
        elif path == "/speedtest/upload.php":
            self._answer(b"size=0", "text/plain")
        elif (m := _RANDOM_JPG.match(path)) is not None:
            self._stream(min(2 * int(m.group(1)) ** 2, self.srv.cfg.max_bytes), "image/jpeg")
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(RELEASES):
            self._release(path, body=False)
        else:
            self.send_error(501, f"Unsupported method ({self.command!r})")

    def _release(self, path: str, body: bool = True) -> None:
        """A release's file, a block at a time: bundles are hundreds of MB."""
        # Split before unquoting: an encoded "/" (%2F) stays in its part, which
        # no version or file name may contain.
        parts = [unquote(p) for p in path[len(RELEASES):].split("/")]
        real = (release_path(self.srv.releases, *parts)
                if self.srv.releases and len(parts) == 2 else None)
        fh = _open_regular(real) if real is not None else None
        if fh is None:
            self.send_error(404)
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if parts[1] == release.MANIFEST
                             else "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")  # `publish --force` replaces files
            self.end_headers()
            if body:
                self._send_file(fh, size)

    def _send_file(self, fh: io.FileIO, n: int) -> None:
        buf = memoryview(bytearray(BLOCK))
        while n > 0:
            k = fh.readinto(buf[:min(n, BLOCK)])
            if not k:  # shorter than announced (replaced meanwhile): the client must see it
                self.close_connection = True
                return
            self.wfile.write(buf[:k])
            n -= k

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
        if not 0 <= length <= self.srv.cfg.max_bytes:
            self.send_error(413, f"at most {self.srv.cfg.max_bytes} bytes")
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
        block = memoryview(self.srv.block)
        while n > 0:
            k = min(n, len(block))
            self.wfile.write(block[:k])
            n -= k


class SpeedServer:
    """The server; start() serves in a thread, stop() ends it. ``url`` is its base URL.

    ``stats`` counts connections ``accepted``, requests ``served``, answered
    ``busy``, connections ``evicted`` at the cap and ``timed_out`` headers.
    """

    def __init__(self, cfg: SpeedServerConfig) -> None:
        addr = parse_listen(cfg.listen)
        if addr is None:
            raise ConfigError(f"collector.speedtest.listen: must be host:port, got {cfg.listen!r}")
        if cfg.releases and (why := releases_error(cfg.releases)):
            raise ConfigError(f"collector.speedtest.releases: {why}")
        self.cfg = cfg
        # Resolved once: what release_path compares served files' real paths with.
        self.releases = os.path.realpath(cfg.releases) if cfg.releases else ""
        self.block = os.urandom(BLOCK)  # incompressible, in case a proxy compresses
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        # Bound here, so a port in use fails at start-up (OSError).
        self.socket = socket.create_server(addr, family=family, backlog=1024)
        self.socket.setblocking(False)
        host, port = self.socket.getsockname()[:2]  # the real port when asked for 0
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self.stats = dict.fromkeys(("accepted", "served", "busy", "evicted", "timed_out"), 0)
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Connections waiting for a request, longest-waiting first (insertion order).
        self._waiting: dict[_Conn, None] = {}
        self._active: set[_Conn] = set()  # with a worker
        self._done: queue.SimpleQueue[tuple[_Conn, bool]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(cfg.max_clients, thread_name_prefix="speedserver")
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._warn = RateLimitedLog(log)
        self._failed_at = -60.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="speedserver", daemon=True)
        self._thread.start()
        log.info("speed-test server on %s", self.url)

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        while not self._done.empty():
            self._done.get()[0].sock.close()
        for s in (self.socket, self._wake_r, self._wake_w):
            s.close()
        self._sel.close()

    # --- the reactor thread ---------------------------------------------------

    def _run(self) -> None:
        self._sel.register(self.socket, selectors.EVENT_READ)
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        while not self._stopping.is_set():
            try:
                self._pass()
            except Exception:  # the reactor must survive: a dead one serves nobody
                if time.monotonic() - self._failed_at >= 60:  # one traceback a minute
                    self._failed_at = time.monotonic()
                    log.exception("speed-test server %s: unexpected error", self.url)
                time.sleep(0.1)
        for conn in list(self._waiting):
            self._close(conn)
        for conn in self._active:  # wakes its worker, which ends
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def _pass(self) -> None:
        listening = False
        for key, _ in self._sel.select(self._timeout()):
            if key.fileobj is self.socket:
                listening = True
            elif key.fileobj is self._wake_r:
                self._drain_wake()
            elif key.data in self._waiting:  # closed earlier in this pass otherwise
                self._read(key.data)
        self._take_back()
        if listening:  # after the waiting connections' reads: they are served first
            self._accept()
        self._expire()

    def _timeout(self) -> float:
        if not self._waiting:
            return 1.0
        first = next(iter(self._waiting))
        return min(1.0, max(0.0, first.deadline - time.monotonic()))

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_PASS):
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of file descriptors, or the client gave up
                self._warn.log(logging.WARNING, "accept", "speed-test server %s: cannot "
                               "accept: %s", self.url, exc)
                if not self._evict():
                    time.sleep(0.05)  # nothing to free: let workers finish
                return
            self.stats["accepted"] += 1
            sock.setblocking(False)
            if len(self._waiting) + len(self._active) >= self.cfg.max_connections \
                    and not self._evict():
                self._refuse(sock, BUSY)
                continue
            # Headers and a tiny body may go out in two writes; without this,
            # Nagle holds the second until the client's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._wait(_Conn(sock, addr))

    def _evict(self) -> bool:
        """Close the connection that has waited longest for a request; False if none."""
        if not self._waiting:
            return False
        self._warn.log(logging.WARNING, "cap", "speed-test server %s: %d connections open "
                       "(max_connections): closing the longest idle", self.url,
                       self.cfg.max_connections)
        self.stats["evicted"] += 1
        self._close(next(iter(self._waiting)))
        return True

    def _wait(self, conn: _Conn) -> None:
        """Wait for the (next) request on ``conn``, maybe already buffered."""
        conn.deadline = time.monotonic() + self.cfg.header_timeout_s
        self._waiting[conn] = None
        self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        self._dispatch(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(BLOCK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.buf += data
        self._dispatch(conn)

    def _dispatch(self, conn: _Conn) -> None:
        """A complete header: hand ``conn`` to a worker, or answer busy."""
        if _header_end(conn.buf) < 0:
            if len(conn.buf) > MAX_HEADER:
                self._unwait(conn)
                self._refuse(conn.sock, TOO_LARGE)
            return
        self._unwait(conn)
        if len(self._active) >= self.cfg.max_clients:
            self.stats["busy"] += 1
            self._warn.log(logging.WARNING, "busy", "speed-test server %s: %d requests "
                           "served at once (max_clients): answering busy", self.url,
                           self.cfg.max_clients)
            self._refuse(conn.sock, BUSY)
            return
        self._active.add(conn)
        self._pool.submit(self._serve, conn)

    def _take_back(self) -> None:
        while not self._done.empty():
            conn, keep = self._done.get()
            self._active.discard(conn)
            self.stats["served"] += 1
            if keep and not self._stopping.is_set():
                conn.sock.setblocking(False)
                self._wait(conn)
            else:
                conn.sock.close()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting:
            conn = next(iter(self._waiting))
            if conn.deadline > now:
                return
            self.stats["timed_out"] += 1
            self._close(conn)

    def _unwait(self, conn: _Conn) -> None:
        del self._waiting[conn]
        self._sel.unregister(conn.sock)

    def _close(self, conn: _Conn) -> None:
        self._unwait(conn)
        conn.sock.close()

    def _refuse(self, sock: socket.socket, answer: bytes) -> None:
        """Answer (small: fits the socket buffer) and close, reading what came
        so the close does not reset the connection before the answer is read."""
        try:
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(BLOCK)
        except OSError:
            pass
        sock.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: the reactor wakes anyway
            self._wake_w.send(b"x")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    # --- a worker thread ------------------------------------------------------

    def _serve(self, conn: _Conn) -> None:
        keep = False
        try:
            conn.sock.settimeout(self.cfg.body_timeout_s)
            handler = _Handler(self, conn)
            handler.handle_one_request()
            keep = not handler.close_connection
        except OSError:
            pass  # the client cut the stream (normal at a test's end), timed out, too slow
        except Exception:
            log.exception("speed-test server %s: request from %s failed", self.url, conn.addr)
        finally:
            self._done.put((conn, keep))
            self._wake()
