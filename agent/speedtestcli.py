"""speedtest-cli's multi-threaded engine through its Python API.

Imported only when a test runs (``import speedtest`` costs ~0.6 MB of RSS).
Two ways in:

- speedtest.net (internet PCs): the library fetches its configuration and
  server list from speedtest.net and keeps the server of lowest latency
  among ``speedtest_servers`` (or among the five nearest).
- a Speedtest Mini server (``speedtest_mini``), such as the collector's
  speed-test server: ``MiniSpeedtest`` supplies the configuration itself,
  so nothing ever asks speedtest.net. The library is subclassed, not patched.

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

# speedtest-cli's download image sizes (px; a file is about 2 * px^2 bytes).
DOWNLOAD_SIZES = [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
# Upload bodies are built in memory and kept until the upload ends, so the
# largest (7 MB) is dropped: the upload then holds at most
# sum(UPLOAD_SIZES) * UPLOAD_COUNT = 22 MB, and stops there if faster.
UPLOAD_SIZES = [262144, 524288, 1048576]
UPLOAD_COUNT = 12


class _Shutdown:
    """What speedtest-cli polls (``isSet()``), without threading.Event's
    deprecated alias warning on every 10 KB read."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def isSet(self) -> bool:  # speedtest-cli's name
        return self._event.is_set()


def mini_config(streams: int, duration_s: float) -> dict[str, Any]:
    """A configuration like speedtest.net's, for a Mini server."""
    return {
        "client": {}, "ignore_servers": [],
        "sizes": {"upload": list(UPLOAD_SIZES), "download": list(DOWNLOAD_SIZES)},
        "counts": {"upload": UPLOAD_COUNT, "download": 4},
        "threads": {"upload": streams, "download": streams},
        "length": {"upload": duration_s, "download": duration_s},
        "upload_max": UPLOAD_COUNT * len(UPLOAD_SIZES),
    }


class MiniSpeedtest(speedtest.Speedtest):  # type: ignore[misc]
    """speedtest.Speedtest whose constructor does not contact speedtest.net."""

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        self._local = config
        super().__init__(**kwargs)

    def get_config(self) -> dict[str, Any]:
        self.config.update(self._local)
        self.lat_lon = (0.0, 0.0)
        config: dict[str, Any] = self.config
        return config


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
        st, best = _connect(cfg, io_s, _Shutdown(stop))
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


def _connect(cfg: BandwidthConfig, io_s: float,
             shutdown: _Shutdown) -> tuple[Any, dict[str, Any]]:
    """A ready Speedtest and its chosen server."""
    if cfg.speedtest_mini:
        st = MiniSpeedtest(mini_config(cfg.streams, cfg.duration_s), timeout=io_s,
                           shutdown_event=shutdown)
        return st, st.get_best_server(st.set_mini_server(cfg.speedtest_mini))
    st = speedtest.Speedtest(timeout=io_s, shutdown_event=shutdown)
    # Same bounds as a Mini test: our duration, and upload bodies <= 1 MB
    # (upload_max must match the request list, or the library waits forever).
    sizes = [s for s in st.config["sizes"]["upload"] if s <= max(UPLOAD_SIZES)] or UPLOAD_SIZES
    st.config["sizes"]["upload"] = sizes
    st.config["upload_max"] = len(sizes) * st.config["counts"]["upload"]
    st.config["length"] = {"upload": cfg.duration_s, "download": cfg.duration_s}
    st.get_servers(servers=list(cfg.speedtest_servers))
    return st, st.get_best_server()


def _describe(server: dict[str, Any]) -> str:
    parts = [str(server.get(k, "")) for k in ("id", "sponsor", "name")]
    host = server.get("host") or server.get("url", "")
    return " ".join(p for p in [*parts, f"({host})"] if p and p != "0")[:512]
