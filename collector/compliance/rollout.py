"""Agent versions against the centre's: where a self-update rollout stands.

Pure. The centre names the agent version each PC should run in its settings
(`agents: update: version:`, per unit, site or per-PC ``hosts`` section:
netroom.central.for_host), and every agent reports in its ``online``
status the version it runs (``agent_version``) and, while a version is
named, its ``update_state``, ``update_version`` and ``update_error``
(netroom.protocol). ``AgentState`` holds both for one PC; ``phase`` says
where it stands, one word per PC (PHASES), so the counts of a site add up
to its PCs. docs/updates.md, "Watching a rollout", has the table.
"""
from __future__ import annotations

from operator import attrgetter
from sys import intern
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Tuple

from netroom import central, protocol, schema

# A PC's phase: the agent's own update_state (netroom.protocol), or pending
# (its settings name a version it has not taken up) or silent (not heard of).
CURRENT, UPDATING, FAILED = protocol.UP_TO_DATE, protocol.UPDATING, protocol.UPDATE_FAILED
ROLLED_BACK, UNSUPPORTED = protocol.ROLLED_BACK, protocol.UNSUPPORTED
PENDING, SILENT = "pending", "silent"
# Worst first: the order of lists and of the counts' columns.
PHASES = (FAILED, ROLLED_BACK, UNSUPPORTED, SILENT, UPDATING, PENDING, CURRENT)
# The status fields of a PC's agent and its self-update (netroom.protocol).
STATUS_FIELDS = ("agent_version", "update_state", "update_version", "update_error")
# Need someone at the PC: `netroom versions` exits 1 while a PC is in one.
BROKEN = (FAILED, ROLLED_BACK)
# Listed with their reasons by `netroom versions --failed`.
PROBLEMS = (FAILED, ROLLED_BACK, UNSUPPORTED)
# Nothing heard of a PC (no online status, no inventory) for this long: its
# report is too old to say where it stands now (off, or its agent stopped).
# Agents send an inventory daily and a status at each start.
SILENT_MS = 2 * schema.DAY_MS


class AgentState(NamedTuple):
    """One PC's agent against the centre's settings.

    ``target``: the version the centre names for it ("" none); ``running``:
    ``agent_version`` of its latest online status ("" unknown); ``state``,
    ``version``, ``error``: that status's ``update_state`` ("" not sent),
    ``update_version``, ``update_error``; ``seen_ms``: that status's time,
    ``heard_ms``: the newest of it and the PC's last inventory (epoch ms);
    ``on_settings``: the status names its site's current settings version
    (so it has the document that names ``target``).
    """

    site: str
    host: str
    hostname: str
    target: str
    running: str
    state: str = ""
    version: str = ""
    error: str = ""
    seen_ms: int = 0
    heard_ms: int = 0
    on_settings: bool = False


def phase(a: AgentState, now_ms: int) -> str:
    """Where the PC stands at ``now_ms`` (PHASES).

    failed, rolled_back: as it last said, heard lately or not (a rolled-back
    version stays so until the centre names another; someone must look);
    silent: nothing heard for SILENT_MS; current: it runs the version named,
    or none is named; updating, unsupported: as it says; unsupported too
    when it has the settings naming the version but sends no update_state
    (an agent older than self-update); pending: not there yet and not
    started (its settings or its next check have not come yet).
    """
    if a.state in BROKEN:
        return a.state
    if now_ms - a.heard_ms > SILENT_MS:
        return SILENT
    if not a.target or a.running == a.target:
        return CURRENT
    if a.state in (UPDATING, UNSUPPORTED):
        return a.state
    if not a.state and a.on_settings:
        return UNSUPPORTED
    return PENDING


def too_old(a: AgentState) -> bool:
    """Unsupported because the agent predates self-update (it says nothing)."""
    return not a.state and a.on_settings and bool(a.target) and a.running != a.target


def target_of(site: central.Settings, host: str, hostname: str) -> str:
    """The agent version the centre names for one PC ("" none): its site's
    `update.version`, or its ``hosts`` section's (netroom.central.for_host)."""
    settings = site.settings
    if site.hosts and (host in site.hosts or hostname in site.hosts):
        settings = central.for_host(site, host, hostname, "")
    return _version(settings)


def _version(settings: Mapping[str, Any]) -> str:
    update = settings.get("update")
    version = update.get("version") if isinstance(update, Mapping) else None
    return version if isinstance(version, str) else ""


# (site, host, agent_version, settings_version, update_state, update_version,
# update_error, epoch ms) of a PC's latest online status. typing's names: a
# runtime alias, and the package supports Python 3.8.
Status = Tuple[str, str, Optional[str], Optional[str], Optional[str], Optional[str],
               Optional[str], int]


def agent_states(sites: Mapping[str, central.Settings], settings_versions: Mapping[str, str],
                 statuses: Iterable[Status],
                 inventories: Mapping[tuple[str, str], tuple[str, int]]
                 ) -> dict[str, tuple[AgentState, ...]]:
    """Pure: each PC's latest online status as (site, host, agent_version,
    settings_version, update_state, update_version, update_error, epoch ms)
    and its newest inventory by (site, host) as (hostname, epoch ms) -> the
    AgentStates of every site in ``sites`` (its Settings by id), sorted by
    host. ``settings_versions``: each site's current settings version."""
    defaults = {sid: _version(s.settings) for sid, s in sites.items()}
    by_site: dict[str, list[AgentState]] = {}
    for site, host, running, settings, state, version, error, ts in statuses:
        s = sites.get(site)
        if s is None:
            continue  # a stray: the devices loader lists those
        hostname, inv_ms = inventories.get((site, host), ("", 0))
        target = target_of(s, host, hostname) if s.hosts else defaults[site]
        by_site.setdefault(site, []).append(AgentState(
            intern(site), intern(host), hostname, target, intern(running or ""),
            intern(state or ""), intern(version or ""), error or "", ts, max(ts, inv_ms),
            settings is not None and settings == settings_versions.get(site)))
    return {site: tuple(sorted(pcs, key=attrgetter("host"))) for site, pcs in by_site.items()}
