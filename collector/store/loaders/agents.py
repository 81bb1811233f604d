"""agents: what agent version each PC runs, against the one the centre names.

Each PC's latest ``online`` status within ``rules.freshness_days`` (up to
collector.compliance.skew.horizon, as the settings loader reads them) says
the version it runs, the settings version it has and its self-update's
state; its newest inventory in the same window gives its hostname (a
``hosts`` section may be keyed by it) and when it was last heard of.
collector.compliance.rollout turns them into AgentStates. Two queries for
the fleet. ``state`` is selected so that a status carrying none of the
other fields still comes back (InfluxDB leaves out a point whose selected
fields are all absent). The report and ``netroom versions`` read them; no
rule does.
"""
from __future__ import annotations

from typing import Iterable

from collector.compliance import rollout, skew
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import central, protocol, schema


def _where(org: Org, now_ms: int) -> str:
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    return f"time > {since}ms AND time <= {skew.horizon(now_ms)}ms"


def status_query(org: Org, now_ms: int) -> str:
    """The newest online status of every (site, host), with its agent's fields."""
    fields = schema.tags(protocol.STATE, central.VERSION_FIELD, *rollout.STATUS_FIELDS)
    # Only numbers we computed and constants go into the query texts.
    return (f"SELECT {fields} FROM {schema.ident(schema.STATUS)} "  # noqa: S608
            f"WHERE {schema.tag_is(protocol.STATE, protocol.ONLINE)} AND {_where(org, now_ms)} "
            f"{schema.BY_SITE_HOST} ORDER BY time DESC LIMIT 1")


def inventory_query(org: Org, now_ms: int) -> str:
    """The newest hostname of every (site, host), at its inventory's time."""
    return (f'SELECT last("hostname") AS "hostname" '  # noqa: S608
            f"FROM {schema.ident(schema.INVENTORY)} WHERE {_where(org, now_ms)} "
            f"{schema.BY_SITE_HOST}")


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    statuses = [(r[schema.SITE], r[schema.HOST], _text(r, "agent_version"),
                 _text(r, central.VERSION_FIELD), _text(r, "update_state"),
                 _text(r, "update_version"), _text(r, "update_error"), int(r["time"]))
                for r in read(status_query(org, now_ms))]
    inventories = {(r[schema.SITE], r[schema.HOST]): (str(r.get("hostname") or ""),
                                                      int(r["time"]))
                   for r in read(inventory_query(org, now_ms))}
    return assemble(statuses, inventories, org)


def assemble(statuses: Iterable[rollout.Status],
             inventories: dict[tuple[str, str], tuple[str, int]], org: Org) -> Loaded:
    """Pure: the latest online statuses (rollout.Status) and each PC's newest
    inventory ((site, host) -> (hostname, epoch ms)) -> ``{"agents": (...)}``
    per site in ``org`` (strays are the devices loader's)."""
    found = rollout.agent_states({s.id: s.settings for s in org.sites},
                                 org.settings_versions(), statuses, inventories)
    return Loaded({site: {"agents": pcs} for site, pcs in found.items()})


def _text(row: Row, name: str) -> str | None:
    value = row.get(name)
    return None if value is None else str(value)
