"""Collectors: one module each, behind one tiny interface.

A collector gathers the body of one message kind (see agent.protocol.KINDS)
and never knows where it goes. Adding one: a module here, one line in
``jobs()``, a config key if it needs one, a test file, a docs row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

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


@dataclass(frozen=True)
class Job:
    """A collector and its schedule (seconds).

    ``timeout_s`` set: the job runs in its own thread with that hard limit,
    off the main tick (speed tests, probes); ``None``: inline on the tick.
    """

    collector: Collector
    interval_s: float
    jitter_s: float = 0.0
    timeout_s: float | None = None


def jobs(cfg: AgentConfig) -> list[Job]:
    """The registry: every collector the agent runs, one line each."""
    from agent.collectors import inventory, metrics

    return [
        Job(inventory.Inventory(cfg.state_dir), cfg.inventory_interval_s),
        Job(metrics.Metrics(), cfg.interval_s),
    ]
