"""Collectors: one module each, behind one tiny interface.

A collector gathers the body of one message kind (see agent.protocol.KINDS)
and never knows where it goes. Adding one: a module here, one line in
``jobs()``, a config key if it needs one, a test file, a docs row.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

from agent.config import AgentConfig


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


def jobs(cfg: AgentConfig) -> list[Job]:
    """The registry: every collector the agent runs, one line each."""
    from agent.collectors import bandwidth, inventory, isolation, metrics, probes

    return [
        Job(inventory.Inventory(cfg.state_dir), cfg.inventory_interval_s),
        Job(metrics.Metrics(), cfg.interval_s),
        *probes.jobs(cfg),  # one per probe run on this PC's network
        *isolation.jobs(cfg),  # gov PCs only
        *bandwidth.jobs(cfg),  # tester PCs only
    ]
