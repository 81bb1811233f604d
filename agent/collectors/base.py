"""The collector interface: what a collector is and how it is scheduled."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol


class Collector(Protocol):
    kind: str

    def collect(self) -> dict[str, Any]:
        """Fields and sections of the payload, without the envelope.

        Raise only when nothing at all could be gathered; a part that failed
        (permission, missing file) goes into the ``errors`` field instead, so
        the rest still publishes.
        """
        ...


class Job(NamedTuple):
    """A collector and its schedule (seconds).

    ``timeout_s`` set: the job runs in its own thread with that hard limit,
    off the main tick (speed tests, probes); ``None``: inline on the tick.
    ``name`` tells jobs of one kind apart (``probe:portal``); default: the kind.
    ``on_error(reason)``: the body to send when collect() raised or timed out
    (a failed speed test is data too); None: the failure is only logged and
    reported in the next metrics ``errors``.
    ``hold_s()``: seconds to hold back a due run (quiet hours); None: never.
    """

    collector: Collector
    interval_s: float
    jitter_s: float = 0.0
    timeout_s: float | None = None
    name: str = ""
    on_error: Callable[[str], dict[str, Any]] | None = None
    hold_s: Callable[[], float] | None = None

    @property
    def key(self) -> str:
        return self.name or self.collector.kind
