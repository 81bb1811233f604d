"""Schedules collectors and hands their results on; times each one.

One collector failing never stops the others: its error is logged
(rate-limited) and reported in the next metrics message's ``errors``, and
sent as the job's own record when it has ``on_error`` (speed tests).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable

from agent.collectors.base import Job
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

Emit = Callable[[str, "dict[str, Any]", float], None]  # kind, body, ts (epoch s)


class Runner:
    def __init__(self, jobs: list[Job], emit: Emit,
                 clock: Callable[[], float] = time.time) -> None:
        self.jobs = jobs
        self.emit = emit
        self.clock = clock
        self.last_ms: dict[str, float] = {}  # job key -> duration of last run, ms
        self.failures: dict[str, str] = {}  # job key -> last error, until it succeeds
        self._errors = RateLimitedLog(log, 300)
        self._busy: set[str] = set()
        # Threaded runs in progress: key -> deadline (time.monotonic() s);
        # keys whose run already timed out (reported once; with on_error, its
        # late result is dropped: that run already sent its error record).
        self._deadline: dict[str, float] = {}
        self._late: set[str] = set()
        self._lock = threading.Lock()

    def run_once(self) -> None:
        """Run every job once, waiting for threaded ones (up to their timeout)."""
        started = [(job, self._start(job)) for job in self.jobs]
        for job, t in started:
            if t is None:
                continue
            t.join(job.timeout_s)
            if t.is_alive():
                self._time_out(job)

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs on their schedules until ``stop`` is set."""
        now = time.monotonic()
        due = [now + random.uniform(0, j.jitter_s) for j in self.jobs]  # noqa: S311
        while not stop.is_set():
            now = time.monotonic()
            for i, job in enumerate(self.jobs):
                hold = job.hold_s() if job.hold_s is not None and due[i] <= now else 0.0
                if hold > 0:
                    due[i] = now + hold + random.uniform(0, job.jitter_s)  # noqa: S311
                elif due[i] <= now:
                    # Schedule from the planned time, not the finish, so
                    # ticks do not drift by the collection time.
                    due[i] = max(due[i] + job.interval_s, now) + random.uniform(0, job.jitter_s)  # noqa: S311
                    self._start(job)
            with self._lock:
                deadlines = dict(self._deadline)
            for job in self.jobs:
                if deadlines.get(job.key, now + 1) <= now:
                    self._time_out(job)
                    deadlines.pop(job.key)
            stop.wait(max(0.0, min([*due, *deadlines.values()]) - time.monotonic()))

    def _time_out(self, job: Job) -> None:
        """A threaded run passed its timeout: report it once.

        A thread cannot be killed; the job stays busy (never stacked) until
        the thread ends by itself. Its late result is still emitted, unless
        the job has ``on_error``: then the error record stands for that run.
        """
        key = job.key
        with self._lock:
            self._deadline.pop(key, None)
            if key not in self._busy or key in self._late:
                return
            self._late.add(key)
        self.failures[key] = reason = f"timed out after {job.timeout_s:g} s"
        log.error("collector %s timed out after %g s", key, job.timeout_s)
        if job.on_error is not None:
            self.emit(job.collector.kind, job.on_error(reason), self.clock())

    def _start(self, job: Job) -> threading.Thread | None:
        if job.timeout_s is None:
            self._run(job)
            return None
        key = job.key
        with self._lock:
            if key in self._busy:
                return None  # the previous run is still going: skip, never stack
            self._busy.add(key)
            self._late.discard(key)
            self._deadline[key] = time.monotonic() + job.timeout_s
        t = threading.Thread(target=self._run_bounded, args=(job,), name=key, daemon=True)
        t.start()
        return t

    def _run_bounded(self, job: Job) -> None:
        try:
            self._run(job)
        finally:
            with self._lock:
                self._busy.discard(job.key)
                self._deadline.pop(job.key, None)

    def _run(self, job: Job) -> None:
        kind, key = job.collector.kind, job.key
        ts = self.clock()
        t0 = time.perf_counter()
        try:
            body = job.collector.collect()
        except Exception as exc:  # noqa: BLE001 - the loop that must survive
            self.failures[key] = f"{type(exc).__name__}: {exc}"
            self._errors.log(logging.ERROR, key, "collector %s failed: %s", key,
                             self.failures[key])
            if job.on_error is not None and not self._is_late(key):
                self.emit(kind, job.on_error(self.failures[key]), ts)
            return
        finally:
            self.last_ms[key] = (time.perf_counter() - t0) * 1000
        if job.on_error is not None and self._is_late(key):
            log.warning("collector %s: dropped the result that came after its timeout", key)
            return
        self.failures.pop(key, None)
        if kind == "metrics":
            body["collect_ms"] = round(self.last_ms[key], 3)
            others = "; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
            if others:
                body["errors"] = "; ".join(filter(None, [body.get("errors", ""), others]))
        self.emit(kind, body, ts)

    def _is_late(self, key: str) -> bool:
        with self._lock:
            return key in self._late
