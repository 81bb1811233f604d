"""Status: the agent's state, and how far this PC's clock is from a reference.

The agent sends an ``online`` status (retained) at every connection, an
``offline`` one when it stops, and the broker sends its Last Will when it
vanishes. With ``agent.clock.url`` set, this collector also measures the
PC's clock against that server every ``agent.clock.interval`` seconds and
sends an ``online`` status carrying the result, which later statuses repeat.

Gov PCs have no internet, so no public time source; what matters to the
collector is the PC's clock against its own (the collector bounds message
times against its receive time), so the reference is best the collector's
speed-test server. Any HTTP server that stamps its answers with a ``Date``
header (RFC 9110 section 6.6.1: when the answer was made, whole seconds)
works. A request sent at local time ``sent`` and answered at ``received``,
stamped ``date``, bounds the offset (this clock minus the server's):
``sent - date - 1 < offset <= received - date``. Several requests a quarter
of a second apart cross a second boundary of the server's clock, and the
intersection of their bounds is a fraction of a second wide:
``clock_offset_s`` is its middle, ``clock_error_s`` its half-width.
"""
from __future__ import annotations

import email.utils
import http.client
import ssl
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence
from urllib.parse import urlsplit

import netroom
from agent.collectors.base import Job
from agent.config import AgentConfig, ClockConfig
from netroom import protocol

SAMPLES = 5  # requests per measurement
SPACING_S = 0.25  # between requests: SAMPLES of them span a second boundary
MARGIN_S = 1.0  # collect() gives up this long before the runner's hard limit


class ClockError(Exception):
    """The offset could not be measured; str() says why."""


class Offset(NamedTuple):
    """This PC's clock minus the reference's, and the uncertainty, both in s."""

    offset_s: float  # positive: this clock is ahead
    error_s: float  # the true offset lies within offset_s +- error_s


class Sample(NamedTuple):
    """One request: local epoch s when it was sent and when the answer came,
    and the answer's Date header as epoch s (a whole second)."""

    sent: float
    received: float
    date: float


def parse_date(text: str) -> float:
    """An HTTP ``Date`` header (IMF-fixdate, GMT) -> epoch seconds; ValueError."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError(f"not an HTTP date: {text!r}")
    return when.timestamp()


def estimate(samples: Sequence[Sample]) -> Offset:
    """Pure: the offset from samples (see the module docstring); ValueError if none.

    When the bounds do not overlap (the server's clock was stepped between
    two requests), the sample with the shortest round trip decides alone.
    """
    if not samples:
        raise ValueError("no samples")
    lo = max(s.sent - s.date - 1 for s in samples)
    hi = min(s.received - s.date for s in samples)
    if lo > hi:
        best = min(samples, key=lambda s: s.received - s.sent)
        lo, hi = best.sent - best.date - 1, best.received - best.date
    return Offset(round((lo + hi) / 2, 3), round((hi - lo) / 2 + 0.0005, 3))


def sample(url: str, deadline: float, n: int = SAMPLES, spacing_s: float = SPACING_S,
           clock: Callable[[], float] = time.time) -> list[Sample]:
    """Up to ``n`` requests to ``url``, ``spacing_s`` apart, until ``deadline``
    (time.monotonic()); raise ClockError when none got a dated answer."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ClockError(f"bad clock reference url {url!r}")
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    out: list[Sample] = []
    problem = ""
    for i in range(n):
        if i:
            time.sleep(max(0.0, min(spacing_s, deadline - time.monotonic())))
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn: http.client.HTTPConnection
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=left,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=left)
        try:
            conn.connect()  # the round trip timed below is the request's alone
            sent = clock()
            conn.request("GET", path, headers={"Cache-Control": "no-cache"})
            answer = conn.getresponse()
            received = clock()
            date = answer.getheader("Date")
            answer.read(65536)
            if date is None:
                problem = f"{url} answered without a Date header"
                continue
            out.append(Sample(sent, received, parse_date(date)))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            problem = f"{url}: {type(exc).__name__}: {exc}"
        finally:
            conn.close()
    if not out:
        raise ClockError(problem or f"{url}: no time left to ask")
    return out


class Status:
    """Collector of the ``status`` kind: state, version, interval, clock offset.

    ``body()`` is what the agent sends at (dis)connection; ``collect()``
    measures the clock (``agent.clock``) and returns an ``online`` status.
    """

    kind = "status"

    def __init__(self, cfg: AgentConfig, clock: Callable[[], float] = time.time) -> None:
        self.interval_s = cfg.interval_s
        self.clock_cfg: ClockConfig = cfg.clock
        self._clock = clock
        self._lock = threading.Lock()
        self._offset: Offset | None = None

    @property
    def offset(self) -> Offset | None:
        """The last measurement, None before the first or after a failed one."""
        with self._lock:
            return self._offset

    def body(self, state: str, will: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {protocol.STATE: state, "agent_version": netroom.__version__,
                                "interval_s": self.interval_s}
        if will:
            body["will"] = True
        off = self.offset
        if state == protocol.ONLINE and off is not None:
            body.update(clock_offset_s=off.offset_s, clock_error_s=off.error_s)
        return body

    def measure(self) -> Offset:
        """Measure now; keep and return the result (forget the old one on failure)."""
        deadline = time.monotonic() + max(1.0, self.clock_cfg.timeout_s - MARGIN_S)
        try:
            got = estimate(sample(self.clock_cfg.url, deadline, clock=self._clock))
        except ClockError:
            with self._lock:
                self._offset = None
            raise
        with self._lock:
            self._offset = got
        return got

    def collect(self) -> dict[str, Any]:
        self.measure()
        return self.body(protocol.ONLINE)


def jobs(cfg: AgentConfig, status: Status) -> list[Job]:
    """The clock job when ``agent.clock.url`` is set, else none."""
    c = cfg.clock
    if not c.url:
        return []
    return [Job(status, c.interval_s, min(c.interval_s / 10, 60.0), c.timeout_s, name="clock")]
