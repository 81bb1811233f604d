"""The intranet speed test's client: stdlib only (http.client + threads).

It measures against collector/speedserver.py the way speedtest-cli does
against a Speedtest server: several parallel HTTP streams for a fixed time.
Unlike speedtest-cli it discards the warm-up (TCP slow start, buffers
filling): the rate is the bytes moved between the end of the warm-up and the
end of the test, divided by that time. Mbit/s are 10^6 bit/s of HTTP payload.
"""
from __future__ import annotations

import http.client
import threading
import time
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

BLOCK = 64 * 1024  # bytes per read / send
# Asked per download request: the server caps it (max_bytes) and the stream
# asks again or is cut when the time is up.
REQUEST_BYTES = 1 << 30
# Declared per upload request: within the server's smallest max_bytes. At
# 1 Gbit/s one lasts 34 ms, so the round trip between two is negligible.
UPLOAD_BYTES = 4 << 20
LATENCY_SAMPLES = 10


class SpeedTestError(Exception):
    """The test could not measure; str() is the reason for the record."""


class Measurement(NamedTuple):
    """One direction: ``mbps`` in Mbit/s after the warm-up, ``bytes`` all moved."""

    mbps: float
    bytes: int
    seconds: float  # measured window, warm-up excluded


class Latency(NamedTuple):
    """Round trips of a tiny request on one kept-alive connection, in ms.

    ``latency_ms`` is the median; ``jitter_ms`` the mean absolute difference
    of consecutive samples (as Speedtest and RFC 3550 define it).
    """

    latency_ms: float
    jitter_ms: float


def warmup_s(duration_s: float) -> float:
    """The discarded start of a ``duration_s`` test: 20 %, 0.5 to 2 s."""
    return min(max(duration_s * 0.2, 0.5), 2.0)


def median(samples: list[float]) -> float:
    """The middle sample (mean of the two middle ones for an even count)."""
    s = sorted(samples)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def jitter(samples: list[float]) -> float:
    """Mean absolute difference of consecutive samples (same unit); 0 for < 2."""
    diffs = [abs(b - a) for a, b in zip(samples, samples[1:])]
    return sum(diffs) / len(diffs) if diffs else 0.0


class Client:
    """Tests against ``base_url`` (``http://host:port``) until ``deadline``.

    ``deadline`` is a time.monotonic() value; every socket wait is bounded by
    it (and by ``io_timeout_s``), so a dead server ends the test in time.
    """

    def __init__(self, base_url: str, deadline: float, io_timeout_s: float = 10.0) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SpeedTestError(f"bad speed-test url {base_url!r}")
        self.base_url = base_url
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path.rstrip("/")
        self._deadline = deadline
        self._io_timeout_s = io_timeout_s

    def _connect(self) -> http.client.HTTPConnection:
        timeout = min(self._io_timeout_s, self._deadline - time.monotonic())
        if timeout <= 0:
            raise SpeedTestError("hard timeout reached")
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def latency(self, samples: int = LATENCY_SAMPLES, path: str = "/latency") -> Latency:
        """``samples`` GETs of ``path`` (Speedtest servers: /latency.txt)."""
        conn = self._connect()
        rtts: list[float] = []
        try:
            for _ in range(samples + 1):
                t0 = time.perf_counter()
                conn.request("GET", self._prefix + path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise SpeedTestError(f"latency: HTTP {resp.status} from {self.base_url}")
                rtts.append((time.perf_counter() - t0) * 1000)
        except (OSError, http.client.HTTPException) as exc:
            raise SpeedTestError(f"latency: {self.base_url}: {_reason(exc)}") from None
        finally:
            conn.close()
        rtts = rtts[1:]  # the first one also paid for the TCP handshake
        return Latency(round(median(rtts), 3), round(jitter(rtts), 3))

    def download(self, streams: int, duration_s: float) -> Measurement:
        return self._parallel("download", self._download_stream, streams, duration_s)

    def upload(self, streams: int, duration_s: float) -> Measurement:
        return self._parallel("upload", self._upload_stream, streams, duration_s)

    def _parallel(self, what: str, stream: Callable[[int, list[int], threading.Event], None],
                  streams: int, duration_s: float) -> Measurement:
        if time.monotonic() + duration_s > self._deadline:
            raise SpeedTestError(f"{what}: no time left before the hard timeout")
        moved = [0] * streams  # bytes per stream; each thread writes only its own slot
        errors: list[str] = []
        stop = threading.Event()

        def run(i: int) -> None:
            try:
                stream(i, moved, stop)
            except (OSError, http.client.HTTPException, SpeedTestError) as exc:
                if not stop.is_set():
                    errors.append(_reason(exc))

        threads = [threading.Thread(target=run, args=(i,), name=f"{what}-{i}", daemon=True)
                   for i in range(streams)]
        for t in threads:
            t.start()
        warm = warmup_s(duration_s)
        stop.wait(warm)
        t0, b0 = time.perf_counter(), sum(moved)
        stop.wait(duration_s - warm)
        t1, b1 = time.perf_counter(), sum(moved)
        stop.set()
        for t in threads:
            t.join(max(0.0, self._deadline - time.monotonic()))
        if errors and b1 - b0 <= 0:
            raise SpeedTestError(f"{what}: {self.base_url}: {errors[0]}")
        if b1 - b0 <= 0:
            raise SpeedTestError(f"{what}: no data moved after the warm-up")
        return Measurement((b1 - b0) * 8 / (t1 - t0) / 1e6, sum(moved), t1 - t0)

    def _download_stream(self, i: int, moved: list[int], stop: threading.Event) -> None:
        conn = self._connect()
        try:
            conn.request("GET", f"{self._prefix}/download?bytes={REQUEST_BYTES}")
            resp = conn.getresponse()
            if resp.status != 200:
                raise SpeedTestError(f"HTTP {resp.status}")
            buf = memoryview(bytearray(BLOCK))
            while not stop.is_set():
                n = resp.readinto(buf)
                if not n:
                    # The server's cap ended the body: ask again.
                    resp = self._again(conn)
                    continue
                moved[i] += n
        finally:
            conn.close()  # cuts a body the time left unread

    def _again(self, conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
        conn.request("GET", f"{self._prefix}/download?bytes={REQUEST_BYTES}")
        resp = conn.getresponse()
        if resp.status != 200:
            raise SpeedTestError(f"HTTP {resp.status}")
        return resp

    def _upload_stream(self, i: int, moved: list[int], stop: threading.Event) -> None:
        conn = self._connect()
        block = bytes(range(256)) * (BLOCK // 256)
        try:
            while not stop.is_set():
                conn.putrequest("POST", self._prefix + "/upload")
                conn.putheader("Content-Type", "application/octet-stream")
                conn.putheader("Content-Length", str(UPLOAD_BYTES))
                conn.endheaders()
                sent = 0
                while sent < UPLOAD_BYTES and not stop.is_set():
                    conn.send(block)
                    sent += len(block)
                    moved[i] += len(block)
                if sent < UPLOAD_BYTES:
                    return  # time is up: closing cuts the body short
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise SpeedTestError(f"HTTP {resp.status}")
        finally:
            conn.close()


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, SpeedTestError) else f"{type(exc).__name__}: {text}"
