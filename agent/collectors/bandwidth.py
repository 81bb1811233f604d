"""Bandwidth: one speed test per run, by the site's tester PC only.

Speed tests saturate the site's link, so they run only where
``agent.bandwidth.tester`` is true, on their own schedule (default every
6 h plus up to 30 min of random jitter), outside the quiet hours, in their
own thread with a hard timeout, never on the metrics tick. One tester per
site and network keeps two tests from running at once on one link; the
report flags a second one (docs/bandwidth.md).

Methods: ``intranet`` (gov PCs) tests against the collector's speed-test
server with agent.speedclient (stdlib only); ``speedtest`` (internet PCs)
runs speedtest-cli's engine through its Python API (agent.speedtestcli,
imported only then). A failed test is a record with ``error``.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from agent.collectors.base import Job
from agent.config import AgentConfig, BandwidthConfig
from agent.speedclient import Client, SpeedTestError

log = logging.getLogger(__name__)
# collect() gives up this long before the runner's hard timeout, so a slow
# test ends as its own error record rather than as "timed out".
MARGIN_S = 2.0


def jobs(cfg: AgentConfig) -> list[Job]:
    """The speed-test job if this PC is a tester, else none."""
    b = cfg.bandwidth
    if not b.tester:
        return []
    bw = Bandwidth(b)
    return [Job(bw, b.interval_s, b.jitter_s, b.timeout_s, on_error=bw.failed, hold_s=bw.hold_s)]


def quiet_wait_s(window: tuple[int, int] | None, minute_of_day: float) -> float:
    """Seconds until the quiet ``window`` (start, end minutes) ends; 0 outside it.

    ``minute_of_day`` is local time in minutes since midnight (fractional);
    a window with end <= start wraps midnight ("22:00-06:00").
    """
    if window is None:
        return 0.0
    start, end = window
    m = minute_of_day
    inside = start <= m < end if start < end else (m >= start or m < end)
    return ((end - m) % 1440) * 60.0 if inside else 0.0


def intranet(cfg: BandwidthConfig, deadline: float) -> dict[str, Any]:
    """Latency, then download, then upload against ``cfg.url``.

    A step that fails ends the test; what was measured before it is kept,
    with ``error`` naming the step.
    """
    client = Client(cfg.url, deadline)
    out: dict[str, Any] = {"streams": cfg.streams}
    moved = 0
    try:
        lat = client.latency()
        out.update(latency_ms=lat.latency_ms, jitter_ms=lat.jitter_ms)
        down = client.download(cfg.streams, cfg.duration_s)
        moved += down.bytes
        out["download_mbps"] = round(down.mbps, 3)
        up = client.upload(cfg.streams, cfg.duration_s)
        moved += up.bytes
        out["upload_mbps"] = round(up.mbps, 3)
    except SpeedTestError as exc:
        out["error"] = str(exc)
    out["bytes"] = moved
    return out


def speedtest(cfg: BandwidthConfig, deadline: float) -> dict[str, Any]:
    """speedtest-cli's test; its module is imported here, when a test runs (~0.6 MB)."""
    try:
        from agent import speedtestcli
    except (ImportError, AttributeError, OSError) as exc:
        # AttributeError: speedtest-cli wraps sys.stdout at import, which is
        # None under a Windows service without a console.
        raise SpeedTestError(f"speedtest-cli is not usable: {type(exc).__name__}: {exc}"
                             ) from None
    return speedtestcli.run(cfg, deadline)


class Bandwidth:
    """Collector of the ``bandwidth`` kind; see docs/bandwidth.md for fields and units."""

    kind = "bandwidth"

    def __init__(self, cfg: BandwidthConfig,
                 localtime: Callable[[], time.struct_time] = time.localtime) -> None:
        self.cfg = cfg
        self._localtime = localtime

    @property
    def server(self) -> str:
        return self.cfg.url if self.cfg.method == "intranet" else "speedtest.net"

    def collect(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.monotonic()
        deadline = t0 + cfg.timeout_s - MARGIN_S
        body: dict[str, Any] = {"method": cfg.method, "server": self.server}
        try:
            if cfg.method == "intranet":
                body.update(intranet(cfg, deadline))
            else:
                body.update(speedtest(cfg, deadline))
        except SpeedTestError as exc:
            body["error"] = str(exc)
        body["duration_s"] = round(time.monotonic() - t0, 3)
        if "error" in body:
            log.warning("speed test against %s failed: %s", body["server"], body["error"])
        return body

    def failed(self, reason: str) -> dict[str, Any]:
        """The record of a run that raised or passed the hard timeout."""
        return {"method": self.cfg.method, "server": self.server, "error": reason}

    def hold_s(self) -> float:
        """Seconds until the quiet hours end (0 outside them), by local time."""
        t = self._localtime()
        return quiet_wait_s(self.cfg.quiet_hours, t.tm_hour * 60 + t.tm_min + t.tm_sec / 60)
