"""settings: what settings each PC runs, against its site's (docs/settings.md).

Each PC's latest ``online`` status within ``rules.freshness_days`` (up to
collector.compliance.skew.horizon: a fast clock's status counts) says the
version it runs, why it refused the latest document and which keys its own
file sets; netroom.central.settings_states compares it with the version the
site's config gives (``Org.settings_versions``). One query for the fleet.
``state`` is selected too: InfluxDB leaves out a point whose selected fields
are all absent, so without it an agent's newest status that carries no
version (it has none any more) would give way to an older one that did.
The report lists the PCs not on their site's settings; no rule reads them.
"""
from __future__ import annotations

from typing import Iterable

from collector.compliance import skew
from collector.compliance.model import Org
from collector.store.rows import Loaded, Read, Row
from netroom import central, protocol, schema

FIELDS = (central.VERSION_FIELD, central.ERROR_FIELD, central.LOCAL_FIELD)


def query(org: Org, now_ms: int) -> str:
    """The newest online status of every (site, host), with its settings fields."""
    since = now_ms - round(org.freshness_days * schema.DAY_MS)
    # Only numbers we computed and constants go into the query text.
    return (f"SELECT {schema.tags(protocol.STATE, *FIELDS)} "  # noqa: S608
            f"FROM {schema.ident(schema.STATUS)} "
            f"WHERE {schema.tag_is(protocol.STATE, protocol.ONLINE)} "
            f"AND time > {since}ms AND time <= {skew.horizon(now_ms)}ms "
            f"{schema.BY_SITE_HOST} ORDER BY time DESC LIMIT 1")


def load(read: Read, org: Org, now_ms: int) -> Loaded:
    return assemble([(r[schema.SITE], r[schema.HOST], _text(r, central.VERSION_FIELD),
                      _text(r, central.ERROR_FIELD), _text(r, central.LOCAL_FIELD),
                      int(r["time"])) for r in read(query(org, now_ms))], org)


def assemble(statuses: Iterable[tuple[str, str, str | None, str | None, str | None, int]],
             org: Org) -> Loaded:
    """Pure: each PC's latest online status as (site, host, settings version,
    error, local keys, epoch ms) -> ``{"settings": (SettingsState, ...)}`` per
    site in ``org``, sorted by host (strays are the devices loader's)."""
    versions = org.settings_versions()
    by_site: dict[str, list[central.SettingsState]] = {}
    for s in central.settings_states(versions, (x for x in statuses if x[0] in versions)):
        by_site.setdefault(s.site, []).append(s)
    return Loaded({site: {"settings": tuple(ss)} for site, ss in by_site.items()})


def _text(row: Row, name: str) -> str | None:
    value = row.get(name)
    return None if value is None else str(value)
