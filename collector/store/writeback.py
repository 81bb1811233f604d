"""Write-backs: the points the collector derives from an evaluation.

``compliance`` per site and rule, ``unit_compliance`` per lowest org unit and
rule (its sites' verdicts counted), ``availability`` per room and complete day,
``room_state`` per room now, ``site_info`` per site now, ``agent_versions``
per site and ``agent_failures`` per PC whose update failed (agent_points).
Pure: returns points; the service writes them.

Every point of a site carries its display names as tags (``site_name`` and
``<level>_name`` per org level, netroom.schema.NAME_SUFFIX): one value per
site, so they cost no series, and dashboards show names while filtering by id.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from collector.compliance import rollout
from collector.compliance.availability import required_stretch
from collector.compliance.evaluate import Evaluation, needs
from collector.compliance.facts import Snapshots
from collector.compliance.model import Org, Site
from collector.compliance.rules import room_open_all_day
from collector.compliance.rules.base import FAIL, NO_DATA, NOT_APPLICABLE, WAIVED
from collector.influx.line import Point
from netroom import schema


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


def unit_compliance_points(ev: Evaluation, org: Org) -> list[Point]:
    """``unit_compliance`` points: per lowest org unit, one per rule switched on
    at one of its sites and one with rule=all, counting its sites' verdicts.

    A unit is a site's full unit path (its org tags and names, site_tags
    without the site): a site hung higher up than its siblings' units is
    counted under its own path, never merged into a sibling unit. Fields
    (integers, netroom.schema): ``sites`` where the rule applies (status not
    not_applicable), ``passing`` (ok = 1: pass or waived), ``failing``,
    ``no_data`` (never passing), ``waived`` (of the passing); so
    sum(passing) / sum(sites) over units is mean(ok) over their sites'
    ``compliance`` points. rule=all: every site, passing every rule (ok),
    failing, no data, and passing with a rule waived.
    """
    counts: dict[tuple[tuple[str, str], ...], dict[str, Counter[str]]] = {}
    tags: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    site_name = schema.name_tag(schema.SITE)
    for v in ev.verdicts:
        unit = v.site.path
        if unit not in tags:
            tags[unit] = {k: x for k, x in org.tags_for(v.site.id).items() if k != site_name}
        by_rule = counts.setdefault(unit, {})
        for r in v.results:
            if not r.disabled:
                _count(by_rule.setdefault(r.rule, Counter()), r.status, r.ok,
                       r.status == WAIVED)
        _count(by_rule.setdefault(schema.RULE_ALL, Counter()), v.status, v.ok,
               v.ok and any(r.status == WAIVED for r in v.results))
    return [Point(schema.UNIT_COMPLIANCE, {**tags[unit], schema.RULE: rule},
                  {f: c[f] for f in schema.UNIT_COMPLIANCE_FIELDS}, ev.now_ms)
            for unit, by_rule in counts.items() for rule, c in by_rule.items()]


def _count(c: Counter[str], status: str, ok: bool, waived: bool) -> None:
    """One site's verdict on one rule (or all) into its unit's counts."""
    if status == NOT_APPLICABLE:  # left out, as it has no ok; the point is still written
        return
    c[schema.SITES_APPLYING] += 1
    c[schema.PASSING] += ok
    c[schema.FAILING] += status == FAIL
    c[schema.NO_DATA_SITES] += status == NO_DATA
    c[schema.WAIVED_SITES] += waived


def availability_points(snaps: Snapshots, org: Org) -> list[Point]:
    """``availability`` points for newly computed days old enough to keep, one per
    site and day at local midnight, and a ``room_state`` point per site now.

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
            if d.stored or snaps.now_ms < d.end_ms + schema.DAY_STORED_AFTER_MS:
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
    return out


def agent_points(snaps: Snapshots, org: Org) -> list[Point]:
    """Where each site's agents stand (collector.compliance.rollout), now.

    ``agent_versions``: one point per site and (target, version, state),
    tags site_tags and ``target`` (the version the centre names, ``none``),
    ``version`` (the one the PCs run, ``none`` unknown), ``state`` (a
    rollout.PHASES word), fields ``pcs`` and ``evaluated_ms``.
    ``agent_failures``: one point per PC whose update failed or was rolled
    back, tags site_tags, ``host``, ``state``; fields agent_version, target,
    update_version, update_error, hostname, seen_ms (its status's time) and
    evaluated_ms. A combination gone since the last pass leaves its series'
    last point behind: readers take the points of the newest evaluated_ms.
    """
    now = snaps.now_ms
    out = []
    for site in org.sites:
        snap = snaps.by_site.get(site.id)
        if snap is None or not snap.agents:
            continue
        tags = site_tags(org, site)
        counts: Counter[tuple[str, str, str]] = Counter()
        for a in snap.agents:
            phase = rollout.phase(a, now)
            counts[(a.target, a.running, phase)] += 1
            if phase in rollout.BROKEN:
                out.append(Point(schema.AGENT_FAILURES, {
                    **tags, schema.HOST: a.host, schema.STATE_TAG: phase}, {
                    "agent_version": a.running, "target": a.target,
                    "update_version": a.version, "update_error": a.error,
                    "hostname": a.hostname, "seen_ms": a.seen_ms, schema.EVALUATED_MS: now},
                    now))
        for (target, running, phase), n in sorted(counts.items()):
            out.append(Point(schema.AGENT_VERSIONS, {
                **tags, schema.TARGET_TAG: _version_tag(target),
                schema.VERSION_TAG: _version_tag(running), schema.STATE_TAG: phase},
                {schema.PCS: n, schema.EVALUATED_MS: now}, now))
    return out


def _version_tag(version: str) -> str:
    """A version as a tag value: an agent's text may be one no tag can hold."""
    return schema.tag_text(version, schema.NO_VERSION)
