"""Schedules collectors and hands their results on; times each one.

One collector failing never stops the others: its error is logged
(rate-limited) and reported in the next metrics message's ``errors``.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable

from agent.collectors import Job
from agent.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

Emit = Callable[[str, "dict[str, Any]", float], None]  # kind, body, ts (epoch s)


class Runner:
    def __init__(self, jobs: list[Job], emit: Emit,
                 clock: Callable[[], float] = time.time) -> None:
        self.jobs = jobs
        self.emit = emit
        self.clock = clock
        self.last_ms: dict[str, float] = {}  # kind -> duration of last run, ms
        self.failures: dict[str, str] = {}  # kind -> last error, until it succeeds
        self._errors = RateLimitedLog(log, 300)
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def run_once(self) -> None:
        """Run every job once, waiting for threaded ones (up to their timeout)."""
        started = [(job, self._start(job)) for job in self.jobs]
        for job, t in started:
            if t is None:
                continue
            t.join(job.timeout_s)
            if t.is_alive():
                # A thread cannot be killed; its late result is still emitted
                # if it ever comes, but this round does not wait for it.
                self.failures[job.collector.kind] = f"timed out after {job.timeout_s:g} s"
                log.error("collector %s timed out after %g s", job.collector.kind, job.timeout_s)

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs on their schedules until ``stop`` is set."""
        now = time.monotonic()
        due = [now + random.uniform(0, j.jitter_s) for j in self.jobs]  # noqa: S311
        while not stop.is_set():
            now = time.monotonic()
            for i, job in enumerate(self.jobs):
                if due[i] <= now:
                    # Schedule from the planned time, not the finish, so
                    # ticks do not drift by the collection time.
                    due[i] = max(due[i] + job.interval_s, now) + random.uniform(0, job.jitter_s)  # noqa: S311
                    self._start(job)
            stop.wait(max(0.0, min(due) - time.monotonic()))

    def _start(self, job: Job) -> threading.Thread | None:
        if job.timeout_s is None:
            self._run(job)
            return None
        kind = job.collector.kind
        with self._lock:
            if kind in self._busy:
                return None  # the previous run is still going: skip, never stack
            self._busy.add(kind)
        t = threading.Thread(target=self._run_bounded, args=(job,), name=kind, daemon=True)
        t.start()
        return t

    def _run_bounded(self, job: Job) -> None:
        try:
            self._run(job)
        finally:
            with self._lock:
                self._busy.discard(job.collector.kind)

    def _run(self, job: Job) -> None:
        kind = job.collector.kind
        ts = self.clock()
        t0 = time.perf_counter()
        try:
            body = job.collector.collect()
        except Exception as exc:  # noqa: BLE001 - the loop that must survive
            self.failures[kind] = f"{type(exc).__name__}: {exc}"
            self._errors.log(logging.ERROR, kind, "collector %s failed: %s", kind,
                             self.failures[kind])
            return
        finally:
            self.last_ms[kind] = (time.perf_counter() - t0) * 1000
        self.failures.pop(kind, None)
        if kind == "metrics":
            body["collect_ms"] = round(self.last_ms[kind], 3)
            others = "; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
            if others:
                body["errors"] = "; ".join(filter(None, [body.get("errors", ""), others]))[:2048]
        self.emit(kind, body, ts)
