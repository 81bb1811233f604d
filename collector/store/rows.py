"""What loaders exchange: InfluxQL rows, the read function, a loader's findings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Sequence

from collector.compliance.facts import Stray
from collector.compliance.model import Org

if TYPE_CHECKING:  # the HTTP client (requests) is for the InfluxDB path only
    from collector.influx.client import InfluxSink

Row = Dict[str, Any]  # one InfluxQL result row: columns and the series' tags
Read = Callable[[str], List[Row]]


@dataclass(frozen=True)
class Loaded:
    """One loader's findings: Snapshot field values by site id, and strays."""

    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    unregistered: tuple[Stray, ...] = ()


Loader = Callable[[Read, Org, int], Loaded]


def reader(sink: InfluxSink) -> Read:
    """``read(q)`` over ``sink``: rows with tags merged in, times in epoch ms.

    Raises collector.influx.client.SinkError when InfluxDB cannot answer.
    """
    def read(q: str) -> list[Row]:
        return sink.query(q)  # already rows: columns with the series' tags merged in

    return read


def latest_known(known: list[Row], ahead_bad: list[Row], key: Sequence[str]) -> list[Row]:
    """Pure: each series' latest row as a rule should see it.

    ``known``: the newest row per series stamped at or before now; ``ahead_bad``:
    the newest bad news (violation, failure) per series stamped after now,
    within collector.compliance.skew.AHEAD_MS. Bad news from a fast clock counts
    at once; good news from one waits for its time (docs/compliance.md, "Clocks").
    """
    out = {tuple(r[k] for k in key): r for r in known}
    out.update((tuple(r[k] for k in key), r) for r in ahead_bad)
    return list(out.values())
