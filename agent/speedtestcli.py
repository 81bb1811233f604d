"""speedtest-cli's multi-threaded engine through its public Python API.

For internet PCs only (gov PCs have no internet: they run the intranet test,
agent.speedclient). Imported only when a test runs (``import speedtest``
costs ~0.6 MB of RSS). speedtest.Speedtest(secure=True) fetches its
configuration and server list from speedtest.net over HTTPS; get_servers()
and get_best_server() keep the server of lowest latency among
``speedtest_servers`` (or among the nearest); download() and upload() run
with speedtest.net's own sizes and test lengths; ``results`` holds the
rates. Nothing of the library is subclassed or edited.

Latency and jitter come from speedclient (median of ten round trips to the
server's latency.txt), the same definition as the intranet test; the
library's own figure is half the mean of three round trips.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import suppress
from typing import Any

import speedtest

from agent.config import BandwidthConfig
from agent.speedclient import Client, SpeedTestError


class _Shutdown:
    """What speedtest-cli polls (``isSet()``), without threading.Event's
    deprecated alias warning on every 10 KB read."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def isSet(self) -> bool:  # speedtest-cli's name
        return self._event.is_set()


def run(cfg: BandwidthConfig, deadline: float) -> dict[str, Any]:
    """One test; the ``bandwidth`` fields (Mbit/s, ms, bytes, s).

    ``deadline`` (time.monotonic()) stops the transfers through the
    library's shutdown event; raise SpeedTestError when it is hit or the
    test fails.
    """
    stop = threading.Event()
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop.set)
    timer.daemon = True
    timer.start()
    t0 = time.monotonic()
    io_s = min(10.0, max(1.0, deadline - t0))
    lat = None
    try:
        st = speedtest.Speedtest(secure=True, timeout=io_s, shutdown_event=_Shutdown(stop))
        st.get_servers(list(cfg.speedtest_servers) or None)
        best = st.get_best_server()
        # Before the transfers: after them, the link's queues are still draining.
        with suppress(SpeedTestError):
            lat = Client(os.path.dirname(best["url"]), deadline).latency(path="/latency.txt")
        st.download(threads=cfg.streams)
        st.upload(pre_allocate=False, threads=cfg.streams)
    except (speedtest.SpeedtestException, *speedtest.HTTP_ERRORS) as exc:
        raise SpeedTestError(f"speedtest: {type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
    if stop.is_set():
        raise SpeedTestError(f"speedtest: hard timeout after {time.monotonic() - t0:.0f} s")
    results = st.results
    if results.download <= 0:
        raise SpeedTestError(f"speedtest: no data from {best.get('url')}")
    out: dict[str, Any] = {
        "server": _describe(best),
        "download_mbps": round(results.download / 1e6, 3),
        "upload_mbps": round(results.upload / 1e6, 3),
        "bytes": int(results.bytes_received + results.bytes_sent),
        "streams": cfg.streams,
    }
    if lat is not None:
        out.update(latency_ms=lat.latency_ms, jitter_ms=lat.jitter_ms)
    else:
        out["latency_ms"] = float(results.ping)  # the library's own, better than none
    return out


def _describe(server: dict[str, Any]) -> str:
    parts = [str(server.get(k, "")) for k in ("id", "sponsor", "name")]
    host = server.get("host") or server.get("url", "")
    return " ".join(p for p in [*parts, f"({host})"] if p and p != "0")
