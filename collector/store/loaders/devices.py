"""devices: the PCs of each site, from each host's latest inventory, and clones.

An inventory counts while it is younger than ``rules.freshness_days``. A PC
is known by its host id (inventory ``host_id``), ``<machine>.<hardware>``
(agent/identity.py): PCs of one name with different host ids are different
PCs, even in one series (clones given one `agent.host`). Earlier agents sent
the machine part alone, which clones share: such a PC is known by its host
name together with it (PCs called pc-01 at two sites are two PCs).
When one PC has inventories under several series (host, site, network,
role), only its newest series counts (it moved, was re-assigned or renamed),
unless the series overlap in time: then they are different PCs that share
a cloned id, and each counts where it is. A bare machine id is the same PC
as a ``<machine>.<hardware>`` id of its own series, or of any series that
began after it last reported (the agent was upgraded and its default host
changed).

Clones (``Snapshot.clones``): PCs of one site sharing a hostname, and PCs of
the fleet sharing a machine id. Inventories stamped more than
collector.compliance.skew.AHEAD_MS after now are not read.
"""
from __future__ import annotations

from collections import Counter
from operator import attrgetter
from sys import intern
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from collector.compliance import skew
from collector.compliance.facts import Clone, Device, Stray
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import schema
from netroom.protocol import split_host_id

SERIES = (schema.HOST, schema.SITE, schema.NETWORK, schema.ROLE)  # one per PC placement
GROUP = schema.group_by(*SERIES)
_MACHINE_SHOWN = 8  # hex of the machine id's hash shown in a clone


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Up to what a fast clock may stamp: an inventory stamped 2099 would
    # otherwise keep a PC counted (and placed) for ever.
    where = f"WHERE time > {since}ms AND time <= {skew.horizon(now_ms)}ms"
    # Only numbers we computed go into the query text. A selector with a
    # field gives that field of the selected point: the newest hostname.
    inventory = schema.ident(schema.INVENTORY)
    last = read(f'SELECT last("host_id") AS host_id, "hostname" FROM {inventory} '  # noqa: S608
                f"{where} {GROUP}")
    first = read(f'SELECT first("host_id") AS host_id FROM {inventory} {where} {GROUP}')  # noqa: S608
    ids = read(f'SELECT distinct("host_id") AS host_id FROM {inventory} {where} {GROUP}')  # noqa: S608
    return assemble(last, first, org, ids)


class Pc(NamedTuple):
    """One host id seen in one series: a PC in one placement."""

    site: str
    host: str
    network: str
    role: str
    host_id: str
    hostname: str  # lower case, without domain
    seen: int  # the series' newest inventory, epoch ms
    began: int  # the series' oldest inventory in the window, epoch ms
    machine: str  # host_id's machine part (netroom.protocol.split_host_id)
    hardware: str  # ... and its hardware part ("" for an earlier agent's bare id)

    @property
    def series(self) -> tuple[str, str, str, str]:
        return (self.host, self.site, self.network, self.role)


def pc(site: str, host: str, network: str, role: str, host_id: str, hostname: str | None,
       seen: int, began: int) -> Pc:
    """A Pc from one series' newest inventory (``hostname`` as reported)."""
    name = str(hostname or host).split(".")[0].lower()
    # Interned: a fleet's facts hold one string per site, PC, network and
    # role, not one per row read (docs/scale.md, "What a pass costs").
    return Pc(intern(site), intern(host), intern(network), intern(role), host_id, name, seen,
              began, *split_host_id(host_id))


def assemble(last: list[Row], first: list[Row], org: Org,
             ids: Sequence[Row] = ()) -> Loaded:
    """Pure: rows of the queries -> devices and clones per site, and strays.

    ``last``: each series' newest host_id (and hostname) with its time;
    ``first``: each series' oldest time; ``ids``: every host_id of each series
    (InfluxQL distinct(), without times: they take the series' times).
    """
    started = {_series(r): int(r["time"]) for r in first}
    more: dict[tuple[Any, ...], set[str]] = {}
    for r in ids:
        more.setdefault(_series(r), set()).add(str(r["host_id"]))
    pcs = []
    for r in last:
        key, seen = _series(r), int(r["time"])
        for host_id in sorted(more.get(key, set()) | {str(r["host_id"])}):
            pcs.append(pc(r[schema.SITE], r[schema.HOST], r[schema.NETWORK], r[schema.ROLE],
                          host_id, r.get("hostname"), seen, started.get(key, seen)))
    return resolve(pcs, org)


def resolve(pcs: list[Pc], org: Org) -> Loaded:
    """Pure: every (series, host id) seen -> devices and clones per site, and strays."""
    devices: dict[str, list[Device]] = {}
    counted: list[Pc] = []
    strays: list[Stray] = []
    for p in _placed(_upgraded_away(pcs)):
        if p.site in org.site_ids:
            counted.append(p)
            devices.setdefault(p.site, []).append(
                Device(p.host, p.network, p.role, p.seen, p.host_id))
        else:
            strays.append(Stray(p.site, p.host, p.network, p.role, p.seen))
    clones = clone_groups(counted)
    by_host = attrgetter("host", "host_id")
    facts = {site: {"devices": tuple(sorted(ds, key=by_host)), "clones": clones.get(site, ())}
             for site, ds in devices.items()}
    strays.sort(key=attrgetter("site", "host", "network", "role"))
    return Loaded(facts, tuple(strays))


def _upgraded_away(pcs: list[Pc]) -> list[Pc]:
    """Without bare machine ids whose PC now reports ``<machine>.<hardware>``:
    in the same series, or in one that began after the bare id's last report."""
    newer: dict[str, list[Pc]] = {}
    for p in pcs:
        if p.hardware:
            newer.setdefault(p.machine, []).append(p)
    if not newer:
        return pcs
    return [p for p in pcs
            if p.hardware or p.host_id not in newer
            or not any(q.series == p.series or q.began > p.seen for q in newer[p.host_id])]


def _placed(pcs: list[Pc]) -> Iterable[Pc]:
    """Each PC's newest placement, and older ones still reporting when it began.

    A PC is its host id, under any host name (renamed) if the id has a
    hardware part; a bare machine id is shared by clones: with its host name.
    """
    keys = [("" if p.hardware else p.host, p.host_id) for p in pcs]
    seen = Counter(keys)
    moved: dict[tuple[str, str], list[Pc]] = {}
    for key, p in zip(keys, pcs):
        if seen[key] == 1:  # the common case: one placement
            yield p
        else:
            moved.setdefault(key, []).append(p)
    for placements in moved.values():
        newest = max(placements, key=lambda p: p.seen)
        for p in placements:
            if p is newest or p.seen >= newest.began:
                yield p


def clone_groups(pcs: list[Pc]) -> dict[str, tuple[Clone, ...]]:
    """Per site: its PCs sharing a hostname; PCs of the fleet sharing a machine
    id, listed at every site that has one of them."""
    out: dict[str, list[Clone]] = {}
    # Most names and machine ids are unique: count them before grouping any.
    by_name = _shared(pcs, attrgetter("site", "hostname"))
    by_machine = _shared(pcs, attrgetter("machine"))
    for (site, name), group in by_name.items():
        out.setdefault(site, []).append(_clone("hostname", name, group, site))
    for machine, group in by_machine.items():
        for site in sorted({p.site for p in group}):
            out.setdefault(site, []).append(
                _clone("machine_id", machine[:_MACHINE_SHOWN], group, site))
    return {site: tuple(sorted(cs, key=lambda c: (c.shared, c.value, c.hosts)))
            for site, cs in out.items()}


def _shared(pcs: list[Pc], key: Callable[[Pc], Any]) -> dict[Any, list[Pc]]:
    """The PCs of each ``key`` value that more than one of them has."""
    keys = list(map(key, pcs))
    dup = {k for k, n in Counter(keys).items() if n > 1}
    groups: dict[Any, list[Pc]] = {}
    if dup:
        for k, p in zip(keys, pcs):
            if k in dup:
                groups.setdefault(k, []).append(p)
    return groups


def _clone(shared: str, value: str, group: list[Pc], site: str) -> Clone:
    members = sorted((p.host if p.site == site else f"{p.site}/{p.host}", p.host_id)
                     for p in group)
    return Clone(shared, value, tuple(h for h, _ in members), tuple(i for _, i in members))


def _series(r: Row) -> tuple[Any, ...]:
    return tuple(r[k] for k in SERIES)
