"""One step of a pipeline on a thread of its own: the writer's acknowledgements.

The writer makes a batch durable (an InfluxDB write: the thread waits on
influxd), then applies it to the state and acknowledges it (CPU, SQLite).
Done in turn, each waits for the other; here the second half of batch k
runs while batch k+1 is being written, and the writer keeps its order.
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Stage(Generic[T]):
    """Runs ``work(item)`` for each item put, in order, on its own thread.

    One item in work at most: ``put`` waits while the previous one is still
    in work, so a ``work`` that hangs stops its feeder too (the writer's
    watchdog beat stops, as if it hung there itself). An exception from
    ``work`` ends the stage; the next ``put``, ``check`` or ``close`` raises
    it, so it ends the feeder's thread as it would have had it run ``work``
    itself.
    """

    def __init__(self, work: Callable[[T], None], name: str) -> None:
        self._work = work
        self._cond = threading.Condition()
        self._item: T | None = None  # put, not yet done
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        with self._cond:
            while self._item is not None and self._error is None:
                self._cond.wait()
            self._raise()
            self._item = item
            self._cond.notify_all()

    def check(self) -> None:
        """Raise ``work``'s exception, if it raised (the feeder calls this between items)."""
        with self._cond:
            self._raise()

    def close(self) -> None:
        """Wait until the item put is done, end the thread; raise ``work``'s exception."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._item is None and not self._closing:
                    self._cond.wait()
                item = self._item
                if item is None:
                    return
            try:
                self._work(item)
            except BaseException as exc:  # noqa: BLE001 - raised in the feeder's thread
                with self._cond:
                    self._error = exc
                    self._item = None
                    self._cond.notify_all()
                return
            with self._cond:
                self._item = None
                self._cond.notify_all()
