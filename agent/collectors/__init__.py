"""Collectors: one module each, behind one tiny interface (agent.collectors.base).

A collector gathers the body of one message kind (see netroom.protocol.KINDS)
and never knows where it goes. Adding one: a module here, one line in
``jobs()``, a config key if it needs one, a test file, a docs row
(docs/extending.md walks through an example).
"""
from __future__ import annotations

from agent.collectors import bandwidth, inventory, isolation, metrics, probes, status
from agent.collectors.base import Collector, Job
from agent.config import AgentConfig

__all__ = ["Collector", "Job", "jobs"]


def jobs(cfg: AgentConfig, state: status.Status | None = None) -> list[Job]:
    """The registry: every collector the agent runs, one line each.

    ``state``: the agent's status source, shared with its (dis)connection
    statuses so that they repeat the last clock offset measured.
    Called again whenever new settings arrive from the centre (agent.settings):
    the runner swaps the jobs in without a restart, keeping each key's schedule.
    """
    return [
        *status.jobs(cfg, state or status.Status(cfg)),  # with agent.clock.url only
        Job(inventory.Inventory(cfg.state_dir, host_id=cfg.host_id), cfg.inventory_interval_s),
        Job(metrics.Metrics(), cfg.interval_s),
        *probes.jobs(cfg),  # one per probe run on this PC's network
        *isolation.jobs(cfg),  # gov PCs only
        *bandwidth.jobs(cfg),  # tester PCs only
    ]
