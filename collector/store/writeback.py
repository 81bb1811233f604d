"""Write-backs: the points the collector derives from an evaluation.

``compliance`` per site and rule, ``availability`` per room and complete day,
``room_state`` per room now, ``site_info`` per site now. Pure: returns points;
the service writes them.

Every point of a site carries its display names as tags (``site_name`` and
``<level>_name`` per org level, netroom.schema.NAME_SUFFIX): one value per
site, so they cost no series, and dashboards show names while filtering by id.
"""
from __future__ import annotations

from typing import Any

from collector.compliance.availability import required_stretch
from collector.compliance.evaluate import Evaluation, needs
from collector.compliance.facts import Snapshots
from collector.compliance.model import Org, Site
from collector.compliance.rules import room_open_all_day
from collector.compliance.rules.base import FAIL, NO_DATA, NOT_APPLICABLE, WAIVED
from collector.influx.line import Point
from netroom import schema

GRACE_MS = schema.HOUR_MS  # a day is written once it ended this long ago


def site_tags(org: Org, site: Site) -> dict[str, str]:
    """The tags of every point about ``site``: org path ids, site id, and names."""
    # The units' ids and names, and the site's name, come with tags_for, as on
    # the agents' points.
    return {**org.tags_for(site.id), schema.SITE: site.id}


def site_info_points(org: Org, now_ms: int) -> list[Point]:
    """``site_info``: one point per registered site now, for the dashboards'
    filters and tables. Tags: site_tags, and ``<level>_label`` / ``site_label``
    = ``id:name`` (the filters split them into value and text). Fields: path
    (the names from the top, " / "-joined), room_min_online, cadres, staff."""
    out = []
    for site in org.sites:
        tags = site_tags(org, site)
        for level in (*(lv for lv, _ in site.path), schema.SITE):
            key = tags[schema.SITE] if level == schema.SITE else tags[level]
            tags[schema.label_tag(level)] = f"{key}:{tags[schema.name_tag(level)]}"
        path = " / ".join([*(tags[schema.name_tag(lv)] for lv, _ in site.path),
                           tags[schema.name_tag(schema.SITE)]])
        out.append(Point(schema.SITE_INFO, tags, {
            "path": path, "room_min_online": site.room.min_online,
            "cadres": site.cadres, "staff": site.staff}, now_ms))
    return out


def compliance_points(ev: Evaluation, org: Org) -> list[Point]:
    """``compliance`` points: one per site and rule switched on, one per site
    with rule=all.

    Rule points: ``status`` (pass, fail, no_data, not_applicable, waived) and
    ``no_data`` (1/0) always; the verdict fields only where the rule applies:
    ok (1 pass or waived / 0 fail or no data, so that mean(ok) is the share
    passing and no data never counts as passing), waived (1/0), shortfall (sum
    of the rule's shortfall values) and shortfall_<key> per key; required and
    actual (the rule's unit) where known (a no-data result has no actual).
    Site points (rule=all): status (pass, fail, no_data), ok (1 if it
    passes), no_data (1 if its status is no_data), failed (failing rules),
    no_data_rules (rules without data), need_<key> (what to buy for the
    site to pass, by shortfall key, pools applied: evaluate.needs; only
    what is needed: read the newest point's own fields, not last() of each).
    """
    out = []
    for v in ev.verdicts:
        tags = site_tags(org, v.site)
        for r in v.results:
            if r.disabled:
                continue
            fields: dict[str, Any] = {"status": r.status, "no_data": int(r.status == NO_DATA)}
            if r.status != NOT_APPLICABLE:
                fields.update({
                    "ok": int(r.ok), "waived": int(r.status == WAIVED),
                    "shortfall": float(sum(r.shortfall.values())),
                    **{f"shortfall_{k}": float(n) for k, n in r.shortfall.items()},
                })
            for name, value in (("required", r.required), ("actual", r.actual)):
                if value is not None:
                    fields[name] = float(value)
            out.append(Point(schema.COMPLIANCE, {**tags, schema.RULE: r.rule}, fields, ev.now_ms))
        out.append(Point(schema.COMPLIANCE, {**tags, schema.RULE: schema.RULE_ALL}, {
            "status": v.status, "ok": int(v.ok), "no_data": int(v.status == NO_DATA),
            "failed": sum(r.status == FAIL for r in v.results),
            "no_data_rules": sum(r.status == NO_DATA for r in v.results),
            **{f"need_{k}": float(n) for k, n in needs(v.results).items()},
        }, ev.now_ms))
    return out


def availability_points(snaps: Snapshots, org: Org) -> list[Point]:
    """``availability`` points for newly computed days old enough to keep, one per
    site and day at local midnight, a ``room_state`` point per site now, and
    the ``site_info`` points (site_info_points: every pass, every site).

    availability fields: day (ISO date), required_s, open_s (s), open_share
    (0-1, absent on days off), target, ok (1/0). room_state fields: open
    (1/0), online, room_pcs, min_online, closed_since_ms (epoch ms, when closed),
    required_now (1/0: now is in the room's required opening), closed_required_s
    (s the room has been closed within that opening so far; 0 when open, not
    required now, or without room PCs), target (room_open_all_day's).
    """
    out = []
    for site in org.sites:
        snap = snaps.by_site.get(site.id)
        if snap is None:
            continue
        tags = site_tags(org, site)
        target = float(room_open_all_day.site_params(org, site)["target"])
        for d in snap.availability:
            if d.stored or snaps.now_ms < d.end_ms + GRACE_MS:
                continue
            fields: dict[str, Any] = {"day": d.day, "required_s": d.required_s,
                                      "open_s": d.open_s, "target": target,
                                      "ok": int(d.share is None or d.share >= target)}
            if d.share is not None:
                fields["open_share"] = round(d.share, 6)
            out.append(Point(schema.AVAILABILITY, tags, fields, d.start_ms))
        now = snap.room_now
        if now is not None:
            fields = {"open": int(now.open), "online": now.online, "room_pcs": now.room_pcs,
                      "min_online": site.room.min_online}
            if now.closed_since_ms is not None:
                fields["closed_since_ms"] = now.closed_since_ms
            began = required_stretch(site.room, snaps.now_ms)
            closed_s = 0.0
            if began is not None and not now.open and now.room_pcs > 0:
                since = max(began, now.closed_since_ms or began)
                closed_s = max(0.0, (snaps.now_ms - since) / schema.SECOND_MS)
            fields.update({"required_now": int(began is not None),
                           "closed_required_s": round(closed_s, 3), "target": target})
            out.append(Point(schema.ROOM_STATE, tags, fields, snaps.now_ms))
    return [*out, *site_info_points(org, snaps.now_ms)]
