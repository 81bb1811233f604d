"""Schedules collectors and hands their results on; times each one.

One collector failing never stops the others: its error is logged
(rate-limited) and reported in the next metrics message's ``errors``, and
sent as the job's own record when it has ``on_error`` (speed tests). The
transport's own trouble (messages the broker refuses) goes in ``errors`` too.

The jobs can be replaced while it runs (replace(): new settings from the
centre), without a restart: a job whose key stays keeps its schedule, and a
threaded run still going (a speed test) is never started twice.
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
    """``problems``: one line about something other than a collector (the
    transport's refused messages), added to each metrics message's ``errors``
    while it is not empty.

    run_forever() sleeps until the next job is due, its ``stop`` is set, or
    replace() or wake() is called (from any thread).
    """

    def __init__(self, jobs: list[Job], emit: Emit,
                 clock: Callable[[], float] = time.time,
                 problems: Callable[[], str] | None = None) -> None:
        self.jobs = jobs
        self.emit = emit
        self.clock = clock
        self.problems = problems
        self.last_ms: dict[str, float] = {}  # job key -> duration of last run, ms
        self.failures: dict[str, str] = {}  # job key -> last error, until it succeeds
        self._errors = RateLimitedLog(log, 300)
        self._busy: set[str] = set()
        # Threaded runs in progress: key -> deadline (time.monotonic() s);
        # keys whose run already timed out (reported once; with on_error, its
        # late result is dropped: that run already sent its error record).
        self._deadline: dict[str, float] = {}
        self._running: dict[str, Job] = {}  # key -> the job of the threaded run going
        self._late: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[Job] | None = None  # jobs replace() handed in

    def replace(self, jobs: list[Job]) -> None:
        """Run ``jobs`` from now on instead (any thread); run_forever() takes
        them at once, run_once() at its next call."""
        with self._lock:
            self._pending = list(jobs)
        self._wake.set()

    def wake(self) -> None:
        """Make run_forever() look at its jobs and its ``stop`` now."""
        self._wake.set()

    def _take_pending(self, due: dict[str, float], now: float) -> None:
        """Switch to the jobs replace() handed in: a key already running keeps
        its due time (sooner when its interval shrank), a new one is due
        within its jitter; the failures of keys gone are forgotten."""
        with self._lock:
            jobs, self._pending = self._pending, None
        if jobs is None:
            return
        old = dict(due)
        due.clear()
        for job in jobs:
            if job.key in old:
                due[job.key] = min(old[job.key], now + job.interval_s)
            else:
                due[job.key] = now + random.uniform(0, job.jitter_s)  # noqa: S311
        for key in set(self.failures) - set(due):
            self.failures.pop(key, None)
        self.jobs = jobs

    def run_once(self) -> None:
        """Run every job once, waiting for threaded ones (up to their timeout)."""
        self._take_pending({}, time.monotonic())
        started = [(job, self._start(job)) for job in self.jobs]
        for job, t in started:
            if t is None:
                continue
            t.join(job.timeout_s)
            if t.is_alive():
                self._time_out(job)

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs on their schedules until ``stop`` is set."""

        def watch() -> None:  # blocked until stop: no wake-ups of its own
            stop.wait()
            self._wake.set()

        threading.Thread(target=watch, name="runner-stop", daemon=True).start()
        now = time.monotonic()
        due = {j.key: now + random.uniform(0, j.jitter_s) for j in self.jobs}  # noqa: S311
        while not stop.is_set():
            now = time.monotonic()
            self._take_pending(due, now)
            for job in self.jobs:
                key = job.key
                hold = job.hold_s() if job.hold_s is not None and due[key] <= now else 0.0
                if hold > 0:
                    due[key] = now + hold + random.uniform(0, job.jitter_s)  # noqa: S311
                elif due[key] <= now:
                    # Schedule from the planned time, not the finish, so
                    # ticks do not drift by the collection time.
                    due[key] = max(due[key] + job.interval_s, now) + random.uniform(0, job.jitter_s)  # noqa: S311
                    self._start(job)
            with self._lock:
                deadlines = dict(self._deadline)
                running = dict(self._running)
            for key, deadline in list(deadlines.items()):
                # A job replaced meanwhile too: its run still ends here.
                if deadline <= now:
                    self._time_out(running[key])
                    deadlines.pop(key)
            if stop.is_set():
                break
            if self._wake.wait(max(0.0, min([*due.values(), *deadlines.values()],
                                               default=now + 60) - time.monotonic())):
                self._wake.clear()

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
            self._running[key] = job
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
                self._running.pop(job.key, None)

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
            current = {j.key for j in self.jobs}  # not a job replaced since it failed
            others = "; ".join(filter(None, [
                *(f"{k}: {v}" for k, v in sorted(self.failures.items()) if k in current),
                self.problems() if self.problems is not None else ""]))
            if others:
                body["errors"] = "; ".join(filter(None, [body.get("errors", ""), others]))
        self.emit(kind, body, ts)

    def _is_late(self, key: str) -> bool:
        with self._lock:
            return key in self._late
