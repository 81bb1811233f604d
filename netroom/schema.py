"""The one home of every stored name: measurements, tags, time constants, ids, windows.

The collector writes these measurements and tags; its reads, the dashboards
and the reports use the same constants, so a rename is one edit here.
docs/protocol.md lists what each measurement holds.
"""
from __future__ import annotations

import re

from netroom import protocol

# --- time constants (milliseconds, the unit of every stored time) ---
SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# How far a message's own time may be from its arrival before the collector
# stores it at arrival (collector.clock_ahead / clock_behind defaults), and
# so how far ahead of now a stored time can be real (collector/compliance/skew.py).
CLOCK_AHEAD_MS = 10 * MINUTE_MS
CLOCK_BEHIND_MS = 30 * DAY_MS
# A room's day is stored in `availability` once it ended this long ago; ticks
# that arrive later (an outbox after a link came back) amend it.
DAY_STORED_AFTER_MS = HOUR_MS
# A day in a room's time zone is at most this long (a DST change).
LONGEST_DAY_MS = 25 * HOUR_MS

# --- measurements ---
# One per message kind, with the kind's scalar fields ...
STATUS = "status"
INVENTORY = "inventory"
METRICS = "metrics"
BANDWIDTH = "bandwidth"
PROBE = "probe"
ISOLATION = "isolation"
# ... and one per section of a kind: <kind>_<section>, keyed by a tag.
METRICS_DISKS = "metrics_disks"
METRICS_DISKIO = "metrics_diskio"
METRICS_NICS = "metrics_nics"
INVENTORY_DISKS = "inventory_disks"
INVENTORY_NICS = "inventory_nics"
# Written by the collector itself.
COMPLIANCE = "compliance"  # one point per site and rule per evaluation
# One point per lowest org unit (a site's full unit path: a site hung higher up
# is counted under its own path) and rule per evaluation, RULE_ALL included:
# its sites' verdicts counted (collector/store/writeback.py). The compliance
# board's pass rates read it: one series per unit and rule instead of one per
# site (2 s and more at 1,000 sites; docs/benchmarks.md).
UNIT_COMPLIANCE = "unit_compliance"
AVAILABILITY = "availability"  # one point per room and complete day
ROOM_STATE = "room_state"  # one point per room per evaluation: open now or not
SELF = "collector"  # the collector's own counters (ingest, writes, spool)
SITE_INFO = "site_info"  # one point per registered site per evaluation: names, path
# One point per hardware change of a PC (docs/inventory.md), at the time of the
# inventory that showed it; tagged like the inventory plus CHANGE and ITEM.
INVENTORY_CHANGE = "inventory_change"
# Agent self-update, per evaluation (docs/updates.md, "Watching a rollout"):
# one point per site and (TARGET_TAG, VERSION_TAG, STATE_TAG) with PCS, the
# PCs whose latest online status runs that version where the centre names
# that target, at that stage (collector.compliance.rollout.PHASES); and one
# per PC whose update failed or was rolled back, tagged HOST and STATE_TAG.
# Both carry EVALUATED_MS: series an evaluation no longer writes keep their last
# point, so readers take the newest evaluation's points only.
AGENT_VERSIONS = "agent_versions"
AGENT_FAILURES = "agent_failures"

# --- tags ---
SITE = "site"
HOST = "host"
NETWORK = "network"
ROLE = "role"
RULE = "rule"  # compliance: the rule's NAME, or RULE_ALL for the site as a whole
RULE_ALL = "all"
SELF_TAG = "collector"  # SELF: the collector's client id
PROBE_TAG = "probe"  # PROBE: the probe's name (protocol.KINDS["probe"].tags)
MESSAGE_TAGS = (SITE, HOST, NETWORK, ROLE)  # on every point of a message
# Display names on the collector's own points (compliance, availability,
# room_state, site_info): <level>_name for "site" and each org level; and on
# site_info, <level>_label = "<id>:<name>" for the dashboards' filters.
NAME_SUFFIX, LABEL_SUFFIX = "_name", "_label"

# INVENTORY_CHANGE: what changed (memory, disk, nic, cpu, serial, os, hostname,
# site) and, for a disk or a NIC, which one (the mount's path_tag, the NIC's name).
CHANGE_TAG = "change"
ITEM_TAG = "item"

# AGENT_VERSIONS: the agent version the PCs run and the one the centre names
# for them (NO_VERSION: none known, none named); both: the PCs' rollout stage.
VERSION_TAG = "version"
TARGET_TAG = "target"
STATE_TAG = "state"
NO_VERSION = "none"  # never a release version (netroom.release.VERSION_RE starts with a digit)

# --- fields the collector adds ---
# On every point of a message whose ts was out of the collector's clock bounds
# (stored at receive time instead): the message's ts minus receive time, s.
CLOCK_SKEW = "clock_skew_s"
# On every <kind>_disks point: the exact mount (C:\ ), as its tag cannot end
# in a backslash (netroom.protocol.path_tag).
PATH = "path"
# On AGENT_VERSIONS and AGENT_FAILURES: the evaluation's time (epoch ms, the
# points' own time), so that one last("evaluated_ms") names the newest evaluation.
EVALUATED_MS = "evaluated_ms"
# On UNIT_COMPLIANCE: sites where the rule applies (every verdict but
# not_applicable), of them passing (ok = 1: pass or waived), failing, without
# data (never passing) and waived (passing by a waiver); passing + failing +
# no_data = sites. For RULE_ALL: every site, passing every rule, failing one,
# no data, and passing with a waived rule. The daily tier holds each field's
# mean over the day's evaluations and PASSES, how many there were.
SITES_APPLYING, PASSING, FAILING, NO_DATA_SITES, WAIVED_SITES = (
    "sites", "passing", "failing", "no_data", "waived")
UNIT_COMPLIANCE_FIELDS = (SITES_APPLYING, PASSING, FAILING, NO_DATA_SITES, WAIVED_SITES)
PASSES = "passes"

# --- ids ---
# Hosts and probes: one MQTT topic level and one tag value; no wildcards,
# separators or spaces (Windows host names are upper case).
ID_RE = protocol.ID_RE
# Sites and units, in config.yaml's `sites` tree and every agent's `site`.
SITE_ID_RE = protocol.SITE_ID_RE
SITE_ID_TEXT = protocol.SITE_ID_TEXT

# --- windows ---
_WINDOW_RE = re.compile(r"\s*(\d{1,2}):([0-5]\d)\s*-\s*(\d{1,2}):([0-5]\d)\s*\Z")
DAY_MINUTES = 1440


def parse_window(text: str) -> tuple[int, int] | None:
    """ "HH:MM-HH:MM" -> (start, end) in minutes after midnight; None if malformed.

    Only the form is checked here: callers decide what they accept (a room's
    window must end after it starts, by 24:00; quiet hours may wrap midnight).
    """
    m = _WINDOW_RE.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def format_window(start: int, end: int) -> str:
    """(start, end) minutes after midnight -> "HH:MM-HH:MM", the canonical form."""
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def section_measurement(kind: str, section: str) -> str:
    """The measurement an item of ``section`` goes to (``metrics_nics``)."""
    return f"{kind}_{section}"


def section_tag(kind: str, section: str) -> str:
    """The tag name an item of ``section`` is keyed by (e.g. nic, disk, mount)."""
    key = protocol.KINDS[kind].sections[section].key
    if key != "name":
        return key
    return {"nics": "nic", "diskio": "disk"}.get(section, section.rstrip("s"))


def reserved_tags() -> frozenset[str]:
    """Tag keys points already carry: an org level must not shadow one."""
    tags = {*MESSAGE_TAGS, RULE, SELF_TAG, CHANGE_TAG, ITEM_TAG, VERSION_TAG, TARGET_TAG,
            STATE_TAG}
    for kind, spec in protocol.KINDS.items():
        tags.update(spec.tags)
        tags.update(section_tag(kind, sec) for sec in spec.sections)
    return frozenset(tags)


# --- InfluxQL fragments, built from the names above ---
def ident(name: str) -> str:
    """``name`` quoted as an InfluxQL identifier: ``"site"`` (quotes, backslashes
    and newlines escaped, so a configured name such as a database is safe too)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def tags(*names: str) -> str:
    """Quoted names, comma-separated: ``"site", "host"``."""
    return ", ".join(ident(n) for n in names)


def group_by(*names: str) -> str:
    """``GROUP BY "site", "host"`` for ``group_by(SITE, HOST)``."""
    return f"GROUP BY {tags(*names)}"


def tag_is(name: str, value: str) -> str:
    """``"role" = 'room'``: a tag, or a string field (InfluxQL compares both
    alike), equal to a validated id or a constant (nothing else goes in)."""
    return f"{ident(name)} = '{value}'"


def name_tag(level: str) -> str:
    """``site_name``, ``battalion_name``: the tag holding a site's or unit's name."""
    return f"{level}{NAME_SUFFIX}"


def tag_text(name: str, fallback: str) -> str:
    """A display name as a tag value: line feeds as spaces, no trailing backslash
    (line protocol cannot carry either); ``fallback`` (the id) when nothing is left."""
    text = " ".join(name.split()).rstrip("\\")
    return text or fallback


def label_tag(level: str) -> str:
    """``site_label``: ``<id>:<name>`` on site_info (a filter's value and text)."""
    return f"{level}{LABEL_SUFFIX}"


BY_SITE_HOST = group_by(SITE, HOST)  # the latest per PC, heartbeats per PC
NIC_TAG = section_tag("metrics", "nics")  # METRICS_NICS, INVENTORY_NICS: the NIC
MOUNT_TAG = section_tag("metrics", "disks")  # METRICS_DISKS, INVENTORY_DISKS: the mount point

# --- the default storage layout (docs/protocol.md, "Storage") ---
# At default settings a PC makes at most six series: status, inventory,
# metrics, isolation, one probe per probe name, and bandwidth on a tester.
# `inventory`: one point per message; its sections are string fields holding
# the validated items as compact JSON arrays (keys sorted), with counts.
INVENTORY_DISKS_JSON = "disks"
INVENTORY_NICS_JSON = "nics"
DISK_COUNT = "disk_count"
NIC_COUNT = "nic_count"
# `inventory` and `metrics`: sum of the disks' total_bytes.
DISK_TOTAL_BYTES = "disk_total_bytes"
# `metrics`: the PC's totals over its sections, each written only when at
# least one item carried the field it comes from. Disks (bytes; percent of
# the fullest mount):
DISK_USED_BYTES = "disk_used_bytes"
DISK_FREE_BYTES = "disk_free_bytes"
DISK_USED_PERCENT = "disk_used_percent"
# Disk I/O, cumulative since boot (bytes, operations):
DISK_READ_BYTES = "disk_read_bytes"
DISK_WRITE_BYTES = "disk_write_bytes"
DISK_READ_COUNT = "disk_read_count"
DISK_WRITE_COUNT = "disk_write_count"
# NICs other than loopback, cumulative since boot (bytes, packets):
NET_BYTES_SENT = "net_bytes_sent"
NET_BYTES_RECV = "net_bytes_recv"
NET_PACKETS_SENT = "net_packets_sent"
NET_PACKETS_RECV = "net_packets_recv"
NET_ERRIN = "net_errin"
NET_ERROUT = "net_errout"
NET_DROPIN = "net_dropin"
NET_DROPOUT = "net_dropout"
# Link speed of the NICs that are up (Mbit/s), and how many are up.
NET_SPEED_MBPS = "net_speed_mbps"
NICS_UP = "nics_up"
# `metrics` sections that collector.item_series may also store one point per
# item (METRICS_DISKS, METRICS_DISKIO, METRICS_NICS); none by default.
ITEM_SERIES_SECTIONS = ("disks", "diskio", "nics")


# --- retention tiers (collector/influx/retention.py; docs/operations.md) ---
RP_ROLLUP = "rollup"  # 5-minute series: `metrics` per PC, SITE_METRICS per site
RP_FOREVER = "forever"  # daily compliance, bandwidth, availability; RP_CHOICE
SITE_METRICS = "site_metrics"  # per site, network and 5 minutes (rollup RP)
RP_CHOICE = "rp_choice"  # which RP a dashboard reads for a time range (forever RP)
REPORTS = "reports"  # rollup `metrics`: the PC's metrics messages in the 5 minutes
NET_RECV_PER_S = "net_bytes_recv_per_s"  # rollup: bytes/s over the 5 minutes
NET_SENT_PER_S = "net_bytes_sent_per_s"
PCS = "pcs"  # SITE_METRICS: PCs that reported in the 5 minutes
ROOM_PCS = "room_pcs"  # SITE_METRICS: of them, role=room
UNIT_METRICS = "unit_metrics"  # per lowest org level, network and 5 minutes, from SITE_METRICS
UNIT_SITES, UNIT_ROOMS = "sites", "rooms"  # UNIT_METRICS: sites, and rooms, with PCs reporting
