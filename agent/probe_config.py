"""Config of reachability checks: probes and the isolation canaries.

They may come from the collector (the `sites` tree's `agents:` blocks) as
well as from the agent's own file, and both are read by the same code, so
the readers live in the shared package (netroom.agentsettings); this module
keeps the agent's names for them.
"""
from __future__ import annotations

from netroom.agentsettings import (
    CHECK_KINDS,
    Check,
    IsolationConfig,
    ProbeConfig,
    read_check,
    read_isolation,
    read_probes,
    split_host_port,
)

__all__ = ["CHECK_KINDS", "Check", "IsolationConfig", "ProbeConfig", "read_check",
           "read_isolation", "read_probes", "split_host_port"]
