"""One compliance pass over the state, as the service runs it each period.

Apart from the service so that a benchmark can time exactly this in a new
process, as a restarted collector's first pass (bench/state_scale.py).
"""
from __future__ import annotations

from typing import NamedTuple

from collector import gcpause
from collector.compliance import evaluate as compliance
from collector.compliance import skew
from collector.compliance.facts import Snapshots
from collector.compliance.model import Org
from collector.influx.line import LineEncoder
from collector.store import writeback
from collector.store.state import rebuild
from collector.store.state import records as state_records
from collector.store.state import snapshot as state_snapshot
from collector.store.state.db import StateDB
from netroom import schema


class Outcome(NamedTuple):
    """A pass's verdicts and what it writes back (through the writer)."""

    evaluation: compliance.Evaluation
    # compliance, unit_compliance, availability, room_state, site_info,
    # agent_versions, agent_failures
    lines: list[str]
    days: list[state_records.Day]  # the availability days among them


def snapshots(db: StateDB, org: Org, now_ms: int) -> Snapshots:
    """Prune ``db`` as of ``now_ms`` (epoch ms) and read the facts the rules need."""
    db.prune(rebuild.keep(org, now_ms), now_ms - skew.AHEAD_MS)
    with gcpause.paused():  # most of a pass's objects live until its end
        return state_snapshot.build(db, org, now_ms)


def outcome(org: Org, snaps: Snapshots) -> Outcome:
    """Every site's verdicts and the lines that store them."""
    with gcpause.paused():  # as in snapshots(): the verdicts and points live till the end
        ev = compliance.evaluate_all(org, snaps)
        # Each kind's points encoded as soon as made and let go: at 40,000
        # PCs they are 15,000 points of some twenty tags each, and holding
        # them all at once raised the pass's peak by 8 MB.
        enc = LineEncoder()
        lines = enc.lines(writeback.compliance_points(ev, org))
        lines += enc.lines(writeback.unit_compliance_points(ev, org))
        points = writeback.availability_points(snaps, org)
        lines += enc.lines(points)
        lines += enc.lines(writeback.site_info_points(org, snaps.now_ms))
        lines += enc.lines(writeback.agent_points(snaps, org))
    days = [state_records.Day(p.tags[schema.SITE], p.fields["day"], p.time_ms,
                              p.fields["required_s"], p.fields["open_s"])
            for p in points if p.measurement == schema.AVAILABILITY]
    return Outcome(ev, lines, days)
