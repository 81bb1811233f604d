"""``influxdb.retention`` in config.yaml: how long each tier is kept (retention.py).

Durations are text: a whole number and a unit, ``m`` (minutes), ``h``,
``d`` or ``w`` (``30d``, ``52w``), or ``inf`` (kept for ever). Every error
names its key: ``influxdb.retention.raw: must be at least 35d ...``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netroom.settings import ConfigError, Section

DAY_S = 86_400
_UNITS = {"m": 60, "h": 3_600, "d": DAY_S, "w": 7 * DAY_S}
_TEXT = re.compile(r"\s*(\d{1,6})\s*([mhdw])\s*\Z")
# The rules read raw points up to 33 days back (room_open_all_day: up to 31
# days + 2; bandwidth trend: 28 days): raw must hold at least that.
RAW_MIN_S = 35 * DAY_S
BUCKET_S = 300  # the 5-minute tiers' bucket


@dataclass(frozen=True)
class RetentionConfig:
    """Seconds; 0 = infinite. Defaults: raw 35 days, rollup a year."""

    manage: bool = True  # create/alter RPs and CQs at collector start (needs admin rights)
    raw_s: int = 35 * DAY_S  # the default RP: every raw sample
    rollup_s: int = 365 * DAY_S  # 5-minute per-PC and per-site series
    resample_for_s: int = 900  # the 5-minute CQs recompute this much of the past
    switch_after_s: int = 3 * DAY_S  # dashboards read the roll-ups for longer ranges


def duration_s(value: Any, key: str, allow_inf: bool) -> int:
    """``30d`` -> seconds; ``inf`` -> 0 where allowed; ConfigError naming ``key``."""
    if isinstance(value, str) and value.strip().lower() == "inf":
        if allow_inf:
            return 0
        raise ConfigError(f"{key}: must be a finite duration like 1h or 30d, got 'inf'")
    m = _TEXT.match(value) if isinstance(value, str) else None
    if m is None:
        what = "like 30d, 52w" + (" or inf" if allow_inf else "")
        raise ConfigError(f"{key}: must be a duration {what} (units m, h, d, w), got {value!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _text(seconds: int) -> str:
    if seconds == 0:
        return "inf"
    for unit, n in (("d", DAY_S), ("h", 3_600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def read_retention(data: Any, path: str = "influxdb.retention") -> RetentionConfig:
    s = Section(data, path)
    d = RetentionConfig()
    manage = s.flag("manage", True)
    raw = duration_s(s.raw("raw", _text(d.raw_s)), s.key("raw"), True)
    rollup = duration_s(s.raw("rollup", _text(d.rollup_s)), s.key("rollup"), True)
    resample = duration_s(s.raw("resample_for", _text(d.resample_for_s)),
                          s.key("resample_for"), False)
    switch = duration_s(s.raw("switch_after", _text(d.switch_after_s)),
                        s.key("switch_after"), False)
    s.done()
    if raw and raw < RAW_MIN_S:
        raise ConfigError(f"{s.key('raw')}: must be at least {_text(RAW_MIN_S)} (the rules "
                          f"read raw points up to 33 days back), got {_text(raw)}")
    if rollup and (raw == 0 or rollup < raw):
        raise ConfigError(f"{s.key('rollup')}: must be at least raw ({_text(raw)}): the "
                          f"5-minute roll-ups outlive the raw points, got {_text(rollup)}")
    if resample % BUCKET_S or not 2 * BUCKET_S <= resample <= 7 * DAY_S:
        raise ConfigError(f"{s.key('resample_for')}: must be a multiple of 5m between 10m "
                          f"and 7d (a rate needs the bucket before), got {_text(resample)}")
    if not 3_600 <= switch <= (raw or switch):
        raise ConfigError(f"{s.key('switch_after')}: must be between 1h and raw "
                          f"({_text(raw)}): longer ranges than raw holds must read the "
                          f"roll-ups, got {_text(switch)}")
    return RetentionConfig(manage, raw, rollup, resample, switch)
