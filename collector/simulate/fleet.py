"""A simulated fleet: sites with headcounts and PCs, shaped to pass or fail rules.

Pure: no I/O, no clock. The same arguments and seed give the same fleet.

Each site has ``pcs`` PCs (at least 4): ``k = max(1, pcs // 8)`` cadres, each
with a gov and an internet PC (role ``cadre``); of the rest, one in six are
gov ``office`` PCs, one in eight gov ``class`` PCs, and the others are the
network room, gov and internet mixed. The headcounts and bandwidths are then
set so that every rule passes, except at the sites shaped to fail the rules
of ``fail`` (a share ``fail_share`` of the sites, at least one), where each of
them fails as follows (collector/compliance/rules/, docs/compliance.md):

- ``cadre_gov_pcs``: one cadre's gov PC is an office PC (role ``office``);
- ``cadre_internet_pcs``: one cadre's internet PC is an office PC;
- ``staff_gov_pcs``: staff = 2 x the gov non-cadre PCs + 1 (one PC short);
- ``room_gov_share``: the room has one gov PC fewer than half;
- ``room_video``: the internet speed test gives 1 Mbit/s per room PC (< 2.5);
- ``gov_bandwidth``: the gov speed test is below 20 Mbit/s (and, in a room of
  8 gov PCs or more, that also fails ``room_video``: see ``SimSite.fails``);
- ``room_open_all_day``: the room's PCs are switched off 00:00-06:00 local
  time (75 % of a day open < 95 %);
- ``portal_reachable``: one gov PC outside the room cannot reach the portal;
- ``gov_isolation``: one gov PC outside the room reached an internet canary.

The thresholds are the rules' defaults (``DEFAULTS``); a config that changes
them changes the verdicts.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from collector.compliance.rules import RULES, gov_bandwidth, room_video, staff_gov_pcs
from netroom.protocol import SITE_ID_RE
from netroom.settings import ConfigError

RULE_NAMES: tuple[str, ...] = tuple(r.NAME for r in RULES)
MIN_PCS = 4
TIMEZONE = "Asia/Shanghai"
# Local hours the room PCs of a site failing room_open_all_day are off.
CLOSED_HOURS = (0, 6)
SITES_PER_BATTALION = 4
BATTALIONS_PER_DETACHMENT = 5
# Thresholds the shaping works against: the rules' defaults.
PER_PC_MBPS = float(room_video.DEFAULTS["per_pc_mbps"])
GOV_MIN_MBPS = float(gov_bandwidth.DEFAULTS["min_mbps"])
STAFF_PER_PC = float(staff_gov_pcs.DEFAULTS["staff_per_pc"])

NAMES = {
    "zh": {"root": "模拟局", "detachment": "第{n}支队", "battalion": "第{n}大队",
           "site": "第{n}中队"},
    "en": {"root": "Simulated bureau", "detachment": "Detachment {n}",
           "battalion": "Battalion {n}", "site": "Squadron {n}"},
}


@dataclass(frozen=True)
class PC:
    """One simulated PC.

    ``host``: its topic id (``pc-03-4f1a2b``, as the agent makes it);
    ``hostname``: what its inventory reports; ``host_id``: machine id and
    hardware part (agent/identity.py's form); ``os``: ``linux`` (Kylin, UOS:
    the gov PCs) or ``windows``; ``phase_s``: when in each interval it sends
    (s after the interval's start); ``boot_offset_s``: where in the week it
    reboots; ``mem_bytes``, ``disk_bytes``: its hardware.
    ``tester``: it runs its network's speed tests for the site;
    ``portal_fails``/``isolation_violated``: shaped failures (see the module).
    """

    site: str
    host: str
    hostname: str
    host_id: str
    network: str
    role: str
    os: str
    phase_s: float
    boot_offset_s: float
    mem_bytes: int
    disk_bytes: int
    tester: bool = False
    portal_fails: bool = False
    isolation_violated: bool = False


@dataclass(frozen=True)
class SimSite:
    """One simulated squadron: its place in the tree, headcounts, PCs and links.

    ``fails``: the rules it is shaped to fail (those asked for, plus any the
    shaping could not avoid); every other rule passes. ``gov_mbps`` and
    ``internet_mbps``: what its speed tests measure (within 3 %).
    ``room_closed``: its room PCs are off during CLOSED_HOURS, local time.
    """

    id: str
    name: str
    number: int  # 1-based, across the fleet
    battalion: int
    detachment: int
    cadres: int
    staff: int
    classes: int
    gov_mbps: float
    internet_mbps: float
    room_closed: bool
    fails: frozenset[str]
    pcs: tuple[PC, ...] = field(default=())


@dataclass(frozen=True)
class Fleet:
    sites: tuple[SimSite, ...]
    seed: int
    interval_s: float
    prefix: str
    names: str = "zh"
    timezone: str = TIMEZONE

    @property
    def pcs(self) -> tuple[PC, ...]:
        return tuple(pc for s in self.sites for pc in s.pcs)

    def site(self, site_id: str) -> SimSite:
        return next(s for s in self.sites if s.id == site_id)

    def failing(self, rule: str) -> list[str]:
        """Ids of the sites shaped to fail ``rule``."""
        return [s.id for s in self.sites if rule in s.fails]


def parse_rules(text: str) -> tuple[str, ...]:
    """``"room_gov_share,room_video"`` -> the names; ConfigError naming an unknown one."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in RULE_NAMES]
    if bad:
        raise ConfigError(f"--fail: unknown rule {bad[0]!r}; rules are {', '.join(RULE_NAMES)}")
    return tuple(dict.fromkeys(names))


def build(sites: int, pcs: int, fail: tuple[str, ...] = (), fail_share: float = 0.2,
          seed: int = 0, interval_s: float = 60.0, prefix: str = "sim",
          names: str = "zh") -> Fleet:
    """The fleet; ConfigError (one line, naming the option) on bad arguments."""
    if sites < 1:
        raise ConfigError(f"--sites: must be at least 1, got {sites}")
    if pcs < MIN_PCS:
        raise ConfigError(f"--pcs: must be at least {MIN_PCS} (a cadre's two PCs and a room "
                          f"of two), got {pcs}")
    if not 0 <= fail_share <= 1:
        raise ConfigError(f"--fail-share: must be between 0 and 1, got {fail_share}")
    if not 1 <= interval_s <= 1200:
        # The collector reads heartbeats an hour around a window: 20 min x 3 at most.
        raise ConfigError(f"--interval: must be 1 to 1200 s, got {interval_s:g}")
    if names not in NAMES:
        raise ConfigError(f"--names: must be one of {', '.join(NAMES)}, got {names!r}")
    for rule in fail:
        if rule not in RULE_NAMES:
            raise ConfigError(f"--fail: unknown rule {rule!r}; rules are {', '.join(RULE_NAMES)}")
    width = max(3, len(str(sites)))
    longest = site_id(prefix, sites, width)
    if not SITE_ID_RE.match(prefix) or not SITE_ID_RE.match(longest):
        raise ConfigError(f"--prefix: {prefix!r} does not make valid site ids (like "
                          f"{longest!r}: a-z, 0-9 and '-', 64 characters at most)")
    rng = random.Random(f"netroom-simulate:{seed}")  # noqa: S311 - repeatable, not secret
    n_fail = 0 if not fail or fail_share == 0 else max(1, round(sites * fail_share))
    failing = set(rng.sample(range(sites), min(n_fail, sites)))
    out = []
    for i in range(sites):
        number = i + 1
        battalion = i // SITES_PER_BATTALION + 1
        detachment = (battalion - 1) // BATTALIONS_PER_DETACHMENT + 1
        sid = site_id(prefix, number, width)
        srng = random.Random(f"netroom-simulate:{seed}:{sid}")  # noqa: S311
        out.append(_site(sid, NAMES[names]["site"].format(n=number), number, battalion,
                         detachment, pcs, frozenset(fail) if i in failing else frozenset(),
                         interval_s, srng))
    return Fleet(tuple(out), seed, float(interval_s), prefix, names)


def site_id(prefix: str, number: int, width: int = 3) -> str:
    return f"{prefix}-sq{number:0{width}d}"


def _site(sid: str, name: str, number: int, battalion: int, detachment: int, n: int,
          fail: frozenset[str], interval_s: float, rng: random.Random) -> SimSite:
    k = max(1, n // 8)
    rest = n - 2 * k
    office = rest // 6
    classes = rest // 8
    room = rest - office - classes
    half = math.ceil(room / 2)
    room_gov = half - 1 if "room_gov_share" in fail else rng.randint(half, room - 1)
    # (network, role), in host order: cadres' PCs, offices, classes, the room.
    layout = ([("gov", "cadre")] * k + [("internet", "cadre")] * k
              + [("gov", "office")] * office + [("gov", "class")] * classes
              + [("gov", "room")] * room_gov + [("internet", "room")] * (room - room_gov))
    if "cadre_gov_pcs" in fail:
        layout[0] = ("gov", "office")
    if "cadre_internet_pcs" in fail:
        layout[k] = ("internet", "office")
    gov_others = sum(1 for net, role in layout if net == "gov" and role != "cadre")
    staff = int(STAFF_PER_PC * gov_others)
    if "staff_gov_pcs" in fail:
        staff += 1
    elif staff and rng.random() < 0.5:
        staff -= 1  # an odd number of staff needs as many PCs
    fails = set(fail)
    gov_mbps, internet_mbps = _links(room_gov, room - room_gov, fail, fails, rng)
    pcs = []
    for j, (net, role) in enumerate(layout):
        pcs.append(_pc(sid, j + 1, net, role, interval_s, rng))
    # Testers: a room PC of each network if there is one, else any PC of it.
    for net in ("gov", "internet"):
        mine = [i for i, p in enumerate(pcs) if p.network == net]
        if mine:
            in_room = [i for i in mine if pcs[i].role == "room"]
            t = (in_room or mine)[0]
            pcs[t] = replace(pcs[t], tester=True)
    # Shaped failures of gov PCs outside the room (a room PC's failed portal
    # probe would fail room_video's browsing check too).
    outside = [i for i, p in enumerate(pcs) if p.network == "gov" and p.role != "room"]
    if "portal_reachable" in fail:
        t = rng.choice(outside)
        pcs[t] = replace(pcs[t], portal_fails=True)
    if "gov_isolation" in fail:
        t = rng.choice(outside)
        pcs[t] = replace(pcs[t], isolation_violated=True)
    return SimSite(sid, name, number, battalion, detachment, k, staff, classes,
                   round(gov_mbps, 1), round(internet_mbps, 1),
                   "room_open_all_day" in fail, frozenset(fails), tuple(pcs))


def _links(gov_room: int, net_room: int, fail: frozenset[str], fails: set[str],
           rng: random.Random) -> tuple[float, float]:
    """(gov, internet) download Mbit/s for a room of ``gov_room`` + ``net_room``
    PCs; adds to ``fails`` a rule the shaping cannot keep passing."""
    need_gov = PER_PC_MBPS * gov_room
    if "gov_bandwidth" in fail:
        lo = max(need_gov * 1.05, 5.0)
        hi = GOV_MIN_MBPS * 0.97
        if lo < hi:
            gov_mbps = rng.uniform(lo, hi)
        else:  # a room this big cannot play video on a link below min_mbps
            gov_mbps = GOV_MIN_MBPS * 0.6
            fails.add("room_video")
    else:
        gov_mbps = max(GOV_MIN_MBPS, need_gov) * rng.uniform(1.3, 3.0)
    need_net = PER_PC_MBPS * net_room
    if "room_video" in fail:
        internet_mbps = max(need_net * 0.4, 0.5)
    else:
        internet_mbps = max(need_net, 10.0) * rng.uniform(1.3, 3.0)
    return gov_mbps, internet_mbps


def _pc(site: str, j: int, network: str, role: str, interval_s: float,
        rng: random.Random) -> PC:
    machine = hashlib.sha256(f"{site}/{j}/{rng.random()}".encode()).hexdigest()
    host_id = f"{machine[:32]}.{machine[32:48]}"
    hostname = f"pc-{j:02d}"
    windows = network == "internet"
    return PC(
        site=site, host=f"{hostname}-{machine[:6]}",
        hostname=hostname.upper() if windows else hostname, host_id=host_id,
        network=network, role=role, os="windows" if windows else "linux",
        phase_s=round(rng.uniform(0, interval_s), 3),
        boot_offset_s=round(rng.uniform(0, 7 * 86400), 3),
        mem_bytes=rng.choice((4, 8, 8, 16)) * 2**30,
        disk_bytes=rng.choice((128, 256, 256, 512)) * 10**9,
    )


def sites_tree(fleet: Fleet) -> list[dict[str, Any]]:
    """The ``sites:`` tree of config.yaml for ``fleet``: bureau -> detachments ->
    battalions (SITES_PER_BATTALION squadrons each) -> the sites."""
    words = NAMES[fleet.names]
    p = fleet.prefix
    detachments: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for s in fleet.sites:
        detachments.setdefault(s.detachment, {}).setdefault(s.battalion, []).append(_node(s))
    return [{
        "id": p, "name": words["root"],
        "children": [{
            "id": f"{p}-d{d}", "name": words["detachment"].format(n=d),
            "children": [{"id": f"{p}-d{d}-b{b}", "name": words["battalion"].format(n=b),
                          "children": sites}
                         for b, sites in battalions.items()],
        } for d, battalions in detachments.items()],
    }]


def _node(s: SimSite) -> dict[str, Any]:
    node: dict[str, Any] = {"id": s.id, "name": s.name, "cadres": s.cadres, "staff": s.staff}
    if s.classes:
        node["classes"] = s.classes
    node["room"] = {"open": ["00:00-24:00"], "days": [1, 2, 3, 4, 5, 6, 7],
                    "timezone": TIMEZONE}
    return node


def describe(fleet: Fleet) -> Iterator[str]:
    """Lines for people: the shape of the fleet and where it fails what."""
    n = len(fleet.sites)
    per = len(fleet.sites[0].pcs)
    yield (f"{n} sites x {per} PCs = {n * per} PCs (seed {fleet.seed}, "
           f"interval {fleet.interval_s:g} s)")
    for rule in RULE_NAMES:
        ids = fleet.failing(rule)
        if ids:
            shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
            yield f"  shaped to fail {rule}: {shown}"
