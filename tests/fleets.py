"""Known fleets for the compliance tests: an org tree, the PCs each site
reports, and every verdict worked out by hand (the comments show the sums).

Tree: bureau bj -> detachments d1, d2 -> battalions d1-b1, d1-b2, d2-b1 ->
seven squadrons, each built to pass or fail specific rules.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import Publisher, message, wait_count, write_config
from servers import Influxd, Mosquitto

MINE = ("cadre_gov_pcs", "cadre_internet_pcs", "staff_gov_pcs", "room_gov_share")
HOUR = 3600.0


def _sq(sid: str, name: str, cadres: int, staff: int, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "name": name, "cadres": cadres, "staff": staff, **extra}


TREE = [{
    "id": "bj", "name": "北京局", "children": [
        {"id": "d1", "name": "一支队", "children": [
            {"id": "d1-b1", "name": "一大队", "children": [
                _sq("sq-pass", "达标中队", 2, 4),
                _sq("sq-nocadre", "无干部中队", 0, 3),
            ]},
            {"id": "d1-b2", "name": "二大队", "children": [
                _sq("sq-empty", "空机房中队", 1, 2),
                _sq("sq-short", "缺口中队", 3, 10),
            ]},
        ]},
        {"id": "d2", "name": "二支队", "children": [
            {"id": "d2-b1", "name": "三大队", "children": [
                _sq("sq-from", "迁出中队", 1, 2),
                _sq("sq-to", "迁入中队", 0, 2),
                _sq("sq-waiver", "豁免中队", 1, 2, rules={
                    "room_gov_share": {"waived": "机房改造中"},
                    "staff_gov_pcs": {"staff_per_pc": 1},
                }),
            ]},
        ]},
    ],
}]

# (site, host, host_id, network, role, age in hours of its inventory)
PCS = [
    ("sq-pass", "c1", "h-p1", "gov", "cadre", 1),
    ("sq-pass", "c2", "h-p2", "gov", "cadre", 1),
    ("sq-pass", "c3", "h-p3", "internet", "cadre", 1),
    ("sq-pass", "c4", "h-p4", "internet", "cadre", 1),
    ("sq-pass", "r1", "h-p5", "gov", "room", 1),
    ("sq-pass", "r2", "h-p6", "gov", "room", 1),
    ("sq-pass", "r3", "h-p7", "internet", "room", 1),
    # Same host names as sq-pass (other machines): must not be merged.
    ("sq-nocadre", "r1", "h-n1", "gov", "room", 2),
    ("sq-nocadre", "r2", "h-n2", "internet", "room", 2),
    ("sq-empty", "c1", "h-e1", "gov", "cadre", 1),
    ("sq-empty", "c2", "h-e2", "internet", "cadre", 1),
    ("sq-empty", "old", "h-e3", "gov", "room", 8 * 24),  # stale: 8 days > 7
    ("sq-short", "c1", "h-s1", "gov", "cadre", 1),
    ("sq-short", "r1", "h-s2", "gov", "room", 1),
    ("sq-short", "r2", "h-s3", "gov", "room", 1),
    ("sq-short", "r3", "h-s4", "internet", "room", 1),
    ("sq-short", "r4", "h-s5", "internet", "room", 1),
    ("sq-short", "r5", "h-s6", "internet", "room", 1),
    ("sq-short", "r6", "h-s7", "internet", "room", 1),
    ("sq-from", "m1", "h-f1", "gov", "cadre", 1),
    ("sq-from", "m2", "h-f2", "internet", "cadre", 1),
    ("sq-from", "g1", "h-f3", "gov", "room", 1),
    ("sq-from", "i1", "h-f4", "internet", "room", 1),
    ("sq-from", "i2", "h-f5", "internet", "room", 1),
    ("sq-from", "mover", "h-mv", "gov", "room", 3),  # moved away 2 h later:
    ("sq-to", "mover", "h-mv", "gov", "room", 1),  # only this one counts
    ("sq-to", "j1", "h-t1", "internet", "room", 1),
    ("sq-waiver", "w1", "h-w1", "gov", "cadre", 1),
    ("sq-waiver", "w2", "h-w2", "internet", "cadre", 1),
    ("sq-waiver", "i1", "h-w3", "internet", "room", 1),
    ("sq-waiver", "i2", "h-w4", "internet", "room", 1),
    ("sq-waiver", "o1", "h-w5", "gov", "office", 1),
    ("sq-unknown", "ghost", "h-x1", "gov", "room", 1),  # site not in the tree
]

# site -> rule -> (required, actual, ok, shortfall)
EXPECTED: dict[str, dict[str, tuple[float, float, bool, dict[str, float]]]] = {
    # cadres 2: gov c1 c2, internet c3 c4; staff 4 -> ceil(4/2) = 2, shared gov r1 r2;
    # room 2 gov of 3 = 0.6667 >= 0.5.
    "sq-pass": {"cadre_gov_pcs": (2, 2, True, {}), "cadre_internet_pcs": (2, 2, True, {}),
                "staff_gov_pcs": (2, 2, True, {}), "room_gov_share": (0.5, 0.6667, True, {})},
    # no cadres: 0 needed; staff 3 -> ceil(1.5) = 2 but only r1 is gov; room 1 of 2 = 0.5.
    "sq-nocadre": {"cadre_gov_pcs": (0, 0, True, {}), "cadre_internet_pcs": (0, 0, True, {}),
                   "staff_gov_pcs": (2, 1, False, {"gov_pcs": 1}),
                   "room_gov_share": (0.5, 0.5, True, {})},
    # the room's only PC is stale: staff 2 -> 1 needed, 0 counted; empty room fails, 1 to add.
    "sq-empty": {"cadre_gov_pcs": (1, 1, True, {}), "cadre_internet_pcs": (1, 1, True, {}),
                 "staff_gov_pcs": (1, 0, False, {"gov_pcs": 1}),
                 "room_gov_share": (0.5, 0, False, {"gov_pcs": 1})},
    # cadres 3: 1 gov, 0 internet; staff 10 -> 5, gov r1 r2 = 2; room 2 of 6 = 0.3333,
    # (2 + g) / (6 + g) >= 0.5 -> g >= 2.
    "sq-short": {"cadre_gov_pcs": (3, 1, False, {"gov_pcs": 2}),
                 "cadre_internet_pcs": (3, 0, False, {"internet_pcs": 3}),
                 "staff_gov_pcs": (5, 2, False, {"gov_pcs": 3}),
                 "room_gov_share": (0.5, 0.3333, False, {"gov_pcs": 2})},
    # mover left: staff 2 -> 1, g1 = 1; room g1 of g1 i1 i2 = 0.3333, (1 + g) / (3 + g) -> 1.
    # (Counting mover here too would make it 2 of 4 = 0.5: a pass.)
    "sq-from": {"cadre_gov_pcs": (1, 1, True, {}), "cadre_internet_pcs": (1, 1, True, {}),
                "staff_gov_pcs": (1, 1, True, {}),
                "room_gov_share": (0.5, 0.3333, False, {"gov_pcs": 1})},
    # mover + j1: staff 2 -> 1, mover = 1; room 1 of 2.
    "sq-to": {"cadre_gov_pcs": (0, 0, True, {}), "cadre_internet_pcs": (0, 0, True, {}),
              "staff_gov_pcs": (1, 1, True, {}), "room_gov_share": (0.5, 0.5, True, {})},
    # stricter staff_per_pc 1: staff 2 -> 2, o1 = 1; room 0 of 2 but waived.
    "sq-waiver": {"cadre_gov_pcs": (1, 1, True, {}), "cadre_internet_pcs": (1, 1, True, {}),
                  "staff_gov_pcs": (2, 1, False, {"gov_pcs": 1}),
                  "room_gov_share": (0.5, 0, True, {})},
}
SITE_OK = {"sq-pass": True, "sq-nocadre": False, "sq-empty": False, "sq-short": False,
           "sq-from": False, "sq-to": True, "sq-waiver": False}
# What to buy: cadre gov + the larger of staff / room gov (the same PCs serve both).
NEEDS = {
    "sq-nocadre": {"gov_pcs": 1},  # max(1, 0)
    "sq-empty": {"gov_pcs": 1},  # max(1, 1)
    "sq-short": {"gov_pcs": 5, "internet_pcs": 3},  # 2 + max(3, 2); 3
    "sq-from": {"gov_pcs": 1},  # max(0, 1)
    "sq-waiver": {"gov_pcs": 1},  # max(1, waived)
}
# unit -> (sites, all passing, {rule: (passing, checked)})
ROLLUPS = {
    "bj": (7, 2, {"cadre_gov_pcs": (6, 7), "cadre_internet_pcs": (6, 7),
                  "staff_gov_pcs": (3, 7), "room_gov_share": (4, 7)}),
    "d1": (4, 1, {"cadre_gov_pcs": (3, 4), "cadre_internet_pcs": (3, 4),
                  "staff_gov_pcs": (1, 4), "room_gov_share": (2, 4)}),
    "d1-b1": (2, 1, {"cadre_gov_pcs": (2, 2), "cadre_internet_pcs": (2, 2),
                     "staff_gov_pcs": (1, 2), "room_gov_share": (2, 2)}),
    "d1-b2": (2, 0, {"cadre_gov_pcs": (1, 2), "cadre_internet_pcs": (1, 2),
                     "staff_gov_pcs": (0, 2), "room_gov_share": (0, 2)}),
    "d2": (3, 1, {"cadre_gov_pcs": (3, 3), "cadre_internet_pcs": (3, 3),
                  "staff_gov_pcs": (2, 3), "room_gov_share": (2, 3)}),
    "d2-b1": (3, 1, {"cadre_gov_pcs": (3, 3), "cadre_internet_pcs": (3, 3),
                     "staff_gov_pcs": (2, 3), "room_gov_share": (2, 3)}),
}


def rules_section(**extra: Any) -> dict[str, Any]:
    """Global rules for the tests: only this issue's rules, so that rules added
    later (bandwidth, availability...) do not change these verdicts."""
    from collector.compliance.rules import registry

    off = {r.NAME: {"enabled": False} for r in registry() if r.NAME not in MINE}
    return {"evaluate_interval": 1, **off, **extra}


def seed(pub: Publisher, now: float | None = None) -> int:
    """Publish every PC's inventory as its agent would; returns how many."""
    now = time.time() if now is None else now
    msgs = [message("inventory", {"hostname": host, "host_id": hid}, site=site, host=host,
                    network=net, role=role, ts=now - age * HOUR)
            for site, host, hid, net, role, age in PCS]
    pub.publish_many(msgs)
    return len(msgs)


DB = "comply"


@pytest.fixture(name="seeded")
def seeded_fixture(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
           run_collector: Callable[[Path], Any]) -> tuple[Path, float]:
    """A collector with this tree, every inventory landed: (config path, when landed).

    Import it into a test module to use it (``from fleets import seeded_fixture``).
    """
    cfg = write_config(tmp_path, mosquitto, influxd, db=DB, sites=TREE, rules=rules_section())
    run_collector(cfg)
    pub = Publisher(mosquitto)
    n = seed(pub)
    pub.close()
    assert wait_count(influxd, DB, "inventory", "host_id", n) == n
    return cfg, time.time()
