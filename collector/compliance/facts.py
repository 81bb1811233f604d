"""What the rules see of a site: its Snapshot, built by collector.store.

Pure data. Times are epoch milliseconds, bandwidth Mbit/s. What there is one
of per PC is a NamedTuple (a bureau has 40,000 PCs; a frozen dataclass costs
several times as much to build and to keep).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, NamedTuple

from collector.compliance.availability import DayOpen, RoomNow
from collector.compliance.model import Site
from collector.compliance.rollout import AgentState
from netroom.central import SettingsState


class Device(NamedTuple):
    """A PC as its latest inventory (within the freshness window) shows it."""

    host: str
    network: str  # gov | internet
    role: str  # cadre | room | class | office
    last_seen_ms: int  # time of that inventory, epoch ms
    host_id: str = ""  # the inventory's host_id: "<machine>.<hardware>" (agent/identity.py)


class Clone(NamedTuple):
    """PCs that share what must be unique to each: copies of one disk image
    whose hostname or OS machine id was not changed (docs/collectors.md,
    "Identity", says how to fix them). Each still counts as a PC.

    ``shared``: "hostname" (PCs of this site with one hostname) or
    "machine_id" (PCs anywhere in the fleet with one OS machine id);
    ``value``: that hostname, in lower case, or the first 8 hex of the machine
    id's hash (never the id itself); ``hosts``: each PC's host id (the topic's
    <host>; ``<site>/<host>`` for a PC of another site), sorted, repeated when
    PCs also share it; ``host_ids``: their inventory host ids, in that order.
    """

    shared: str  # hostname | machine_id
    value: str
    hosts: tuple[str, ...]
    host_ids: tuple[str, ...]


@dataclass(frozen=True)
class Bandwidth:
    """A site's speed tests on one network (collector/store/loaders/bandwidth.py).

    ``ts_ms``: time of the newest successful download measurement (epoch
    ms; 0 = none in the loader's lookback), by ``host``, in Mbit/s and ms.
    ``error``/``error_ms``: the newest test, if it failed after that one.
    ``testers``: hosts that tested in the lookback (one is expected).
    ``daily_mbps``: (UTC day start ms, mean download Mbit/s), oldest first.
    """

    network: str
    host: str = ""
    ts_ms: int = 0
    download_mbps: float = 0.0
    upload_mbps: float | None = None
    latency_ms: float | None = None
    error: str = ""
    error_ms: int = 0
    testers: tuple[str, ...] = ()
    daily_mbps: tuple[tuple[int, float], ...] = ()


class ProbeResult(NamedTuple):
    """A host's latest result of the probe named ``probe``, at ``time_ms`` (epoch ms)."""

    host: str
    network: str
    probe: str
    ok: bool
    time_ms: int


class IsolationReport(NamedTuple):
    """A gov PC's latest isolation report, at ``time_ms`` (epoch ms).

    ``canaries``: how many internet canaries the PC has configured (and
    checked; the payload's ``canaries_checked``); None when the report does
    not say. Without canaries a clean report proves nothing about reaching
    the internet.
    """

    host: str
    violated: bool
    reasons: str
    time_ms: int
    canaries: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """What is known of one site at ``now_ms``; rules read nothing else.

    Later facts (bandwidth, availability, probes, isolation) are typed
    fields with empty defaults, each filled by its own loader.
    """

    site: Site
    devices: tuple[Device, ...]
    now_ms: int
    bandwidth: tuple[Bandwidth, ...] = ()  # one per network tested
    availability: tuple[DayOpen, ...] = ()  # the room's last complete days, oldest first
    room_now: RoomNow | None = None  # open now, or closed since
    # The room PCs' first report ever known (a tick or a status), epoch ms; days
    # that ended before it say nothing of the room. None: none known.
    room_first_ms: int | None = None
    probes: tuple[ProbeResult, ...] = ()  # each host's latest result per probe
    isolation: tuple[IsolationReport, ...] = ()  # each gov PC's latest isolation report
    clones: tuple[Clone, ...] = ()  # PCs sharing a hostname or machine id, to be fixed
    # Each PC's settings against its site's (its latest online status); no rule reads it.
    settings: tuple[SettingsState, ...] = ()
    # Each PC's agent version and self-update against the version the centre
    # names for it (its latest online status); no rule reads it.
    agents: tuple[AgentState, ...] = ()

    def bandwidth_on(self, network: str) -> Bandwidth | None:
        return next((b for b in self.bandwidth if b.network == network), None)

    def count(self, network: str | None = None, role: str | None = None,
              not_role: str | None = None) -> int:
        """Devices matching network / role (or any role but ``not_role``)."""
        return sum(
            n for (net, kind), n in self._kinds.items()
            if (network is None or net == network)
            and (role is None or kind == role)
            and (not_role is None or kind != not_role)
        )

    @cached_property
    def _kinds(self) -> Counter[tuple[str, str]]:
        """Devices per (network, role): the rules count them many times a pass."""
        return Counter((d.network, d.role) for d in self.devices)


@dataclass(frozen=True)
class Stray:
    """A host whose latest report names a site missing from the tree.

    ``last_seen_ms``: time of that report, epoch ms.
    """

    site: str
    host: str
    network: str
    role: str
    last_seen_ms: int


@dataclass(frozen=True)
class Snapshots:
    """Every site's Snapshot at ``now_ms`` (epoch ms), and the strays."""

    now_ms: int
    by_site: Mapping[str, Snapshot]
    unregistered: tuple[Stray, ...]
