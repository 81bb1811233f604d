"""Room availability on hand-made timelines, with answers worked out by hand.

Local times are turned into epoch ms with a fixed UTC+8 offset (Asia/Shanghai
has had no DST since 1991), not with the code under test.
"""
from __future__ import annotations

import datetime as dt
import random

from zoneinfo import ZoneInfo

from collector.compliance import skew
from collector.compliance.availability import (
    DayOpen,
    RoomNow,
    Timeline,
    complete_days,
    day_open,
    online_spans,
    period_share,
    required_spans,
    room_now,
    room_open_spans,
)
from collector.compliance.model import Room

SH = ZoneInfo("Asia/Shanghai")
PLUS8 = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2025, 3, 10)  # a Monday
H = 3600.0


def at(hh: int, mm: int = 0, ss: int = 0, day: dt.date = DAY) -> int:
    """Epoch ms of a local (UTC+8) wall-clock time."""
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=PLUS8)
               .timestamp() * 1000)


def every_minute(start: int, end: int) -> tuple[int, ...]:
    return tuple(range(start, end + 1, 60_000))


NEXT_MORNING = at(8, day=DAY + dt.timedelta(days=1))
# Host A: ticks 08:00-12:00, then a clean shutdown at 12:00:30.
A = Timeline(every_minute(at(8), at(12)), ((at(12, 0, 30), False),))
# Host B: online 11:00, ticks until 19:00, then a power cut (no will, no more ticks).
B = Timeline(every_minute(at(11), at(19)))


def test_clean_shutdown_and_power_cut() -> None:
    assert online_spans(A, NEXT_MORNING) == [(at(8), at(12, 0, 30))]
    # Silent for more than 3 x 60 s: offline from the last heartbeat, 19:00.
    assert online_spans(B, NEXT_MORNING) == [(at(11), at(19))]


def test_a_silence_longer_than_missing_intervals_splits_the_span() -> None:
    beats = every_minute(at(9), at(10)) + every_minute(at(10, 5), at(10, 30))
    assert online_spans(Timeline(beats), NEXT_MORNING) == [(at(9), at(10)),
                                                           (at(10, 5), at(10, 30))]
    # 5 min is within 6 intervals of 60 s: one span.
    assert online_spans(Timeline(beats), NEXT_MORNING, missing_intervals=6) == [
        (at(9), at(10, 30))]
    # Exactly 3 intervals of silence is still online.
    three = every_minute(at(9), at(10)) + every_minute(at(10, 3), at(10, 30))
    assert online_spans(Timeline(three), NEXT_MORNING) == [(at(9), at(10, 30))]


def test_last_will_counts_from_the_last_heartbeat_unless_ticks_follow() -> None:
    # Died at some point after 14:00; the broker's will came at 14:01:30.
    died = Timeline(every_minute(at(13), at(14)), ((at(14, 1, 30), True),))
    assert online_spans(died, NEXT_MORNING) == [(at(13), at(14))]
    # Contact lost at 15:30 but the PC worked on: its outbox delivered the ticks.
    lost = Timeline(every_minute(at(15), at(16)), ((at(15, 30, 10), True),))
    assert online_spans(lost, NEXT_MORNING) == [(at(15), at(16))]
    # Right after a will with no tick after it, the host is offline now.
    assert online_spans(died, at(14, 1, 40)) == [(at(13), at(14))]


def test_a_host_still_ticking_is_online_until_now() -> None:
    assert online_spans(B, at(15, 0, 30)) == [(at(11), at(15, 0, 30))]
    # Nothing after "now" is known.
    assert online_spans(B, at(10)) == []


def test_room_open_with_one_and_with_two_pcs_required() -> None:
    spans = [online_spans(A, NEXT_MORNING), online_spans(B, NEXT_MORNING)]
    assert room_open_spans(spans, 1) == [(at(8), at(19))]
    assert room_open_spans(spans, 2) == [(at(11), at(12, 0, 30))]
    assert room_open_spans(spans, 3) == []
    # A hand-over at one instant leaves no gap.
    assert room_open_spans([[(at(8), at(9))], [(at(9), at(10))]], 1) == [(at(8), at(10))]


def test_day_share_against_the_required_window() -> None:
    room = Room(open=("08:00-20:00",))
    open_spans = room_open_spans([online_spans(A, NEXT_MORNING),
                                  online_spans(B, NEXT_MORNING)], 1)
    d = day_open(room, DAY, SH, open_spans, NEXT_MORNING)
    # Open 08:00-19:00 of the required 08:00-20:00: 11 h of 12 h.
    assert (d.day, d.required_s, d.open_s) == ("2025-03-10", 12 * H, 11 * H)
    assert d.share is not None and abs(d.share - 11 / 12) < 1e-9
    assert (d.start_ms, d.end_ms) == (at(0), at(0, day=DAY + dt.timedelta(days=1)))
    # Two PCs required: only 11:00-12:00:30 counts, 3630 s of 43200.
    two = room_open_spans([online_spans(A, NEXT_MORNING), online_spans(B, NEXT_MORNING)], 2)
    assert day_open(room, DAY, SH, two, NEXT_MORNING).open_s == 3630


def test_two_windows_weekdays_and_holidays() -> None:
    room = Room(open=("08:00-12:00", "14:00-20:00"), days=(1, 2, 3, 4, 5))
    open_spans = [(at(8), at(19))]
    d = day_open(room, DAY, SH, open_spans, NEXT_MORNING)
    # Required 4 h + 6 h; open 08:00-12:00 and 14:00-19:00 within them.
    assert (d.required_s, d.open_s) == (10 * H, 9 * H)
    saturday = DAY + dt.timedelta(days=5)
    off = day_open(room, saturday, SH, [], at(8, day=saturday + dt.timedelta(days=1)))
    assert (off.required_s, off.share) == (0, None)
    holiday = day_open(room, DAY, SH, open_spans, NEXT_MORNING, holidays=["2025-03-10"])
    assert holiday.share is None


def test_today_counts_only_up_to_now() -> None:
    room = Room(open=("08:00-20:00",))
    now = at(10)
    d = day_open(room, DAY, SH, room_open_spans([online_spans(A, now)]), now)
    assert (d.required_s, d.open_s, d.share) == (2 * H, 2 * H, 1.0)


def test_a_dst_day_has_23_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = dt.date(2025, 3, 30)  # clocks go from 02:00 to 03:00
    spans = required_spans(Room(), spring, berlin)
    assert [(e - s) / 1000 for s, e in spans] == [23 * H]
    # Shanghai: 24 h, starting at 16:00 UTC the day before.
    [(s, e)] = required_spans(Room(), DAY, SH)
    assert (s, e - s) == (int(dt.datetime(2025, 3, 9, 16, tzinfo=dt.timezone.utc)
                              .timestamp() * 1000), 86_400_000)


def test_complete_days_follow_the_sites_time_zone() -> None:
    # 00:30 in Shanghai is still the previous day in UTC.
    now = at(0, 30, day=DAY + dt.timedelta(days=1))
    assert complete_days(now, SH, 2) == [dt.date(2025, 3, 9), DAY]
    assert complete_days(now, dt.timezone.utc, 1) == [dt.date(2025, 3, 9)]


def test_rolling_period_share() -> None:
    days = [DayOpen("2025-03-08", 0, 1, 0, 0),  # a day off counts for nothing
            DayOpen("2025-03-09", 0, 1, 12 * H, 12 * H),
            DayOpen("2025-03-10", 0, 1, 12 * H, 6 * H)]
    assert period_share(days) == (0.75, 24 * H, 18 * H)
    assert period_share(days[:1]) == (None, 0, 0)


def test_open_now_and_closed_since() -> None:
    hosts = {"a": A, "b": B}
    # 19:02: B's last tick (19:00) is within 3 min: open, 1 of 2 online.
    assert room_now(hosts, at(19, 2)) == room_now_expected(True, 1, None)
    # 19:30: B silent for 30 min: closed since its last tick at 19:00.
    assert room_now(hosts, at(19, 30)) == room_now_expected(False, 0, at(19))
    # With a will from B at 19:01, it is closed at 19:02 already.
    willed = {"a": A, "b": Timeline(B.beats, ((at(19, 1), True),))}
    assert room_now(willed, at(19, 2)) == room_now_expected(False, 0, at(19))
    # Two PCs required: open at 11:30; closed at 13:00, since A left at 12:00:30.
    assert room_now(hosts, at(11, 30), min_online=2) == room_now_expected(True, 2, None)
    assert room_now(hosts, at(13), min_online=2) == room_now_expected(False, 1, at(12, 0, 30))
    # Only the last heartbeats known (as the live loader reads them): the same answer.
    last = {"a": Timeline((at(12),), A.offline), "b": Timeline((at(19),))}
    assert room_now(last, at(19, 30)) == room_now_expected(False, 0, at(19))
    # No history: closed, since unknown.
    assert room_now({"a": Timeline()}, at(9)) == room_now_expected(False, 0, None, 1)


def room_now_expected(is_open: bool, online: int, since: int | None, pcs: int = 2) -> RoomNow:
    return RoomNow(is_open, online, pcs, since)


def test_room_now_of_last_ticks_only_equals_the_full_walk() -> None:
    """room_now reads a timeline of one tick and nothing after it (most room
    PCs in a pass) without the walk; a second copy of that tick makes it walk
    the events: both must tell the same, around every edge (silent, ticking,
    stamped a little or far ahead by a fast clock, a room of several)."""
    rnd = random.Random(5)
    now = at(12)
    for _ in range(500):
        hosts = {}
        for h in range(rnd.randint(1, 4)):
            tick = now + rnd.choice([-1, 1]) * rnd.randint(0, 3_000_000)
            if rnd.random() < 0.1:
                tick = now + rnd.randint(0, 2 * skew.AHEAD_MS)
            hosts[f"h{h}"] = (tick, rnd.choice([30.0, 60.0, 300.0]))
        missing = rnd.choice([1, 3, 5])
        least = rnd.randint(1, 3)
        fast = room_now({h: Timeline((t,), (), iv) for h, (t, iv) in hosts.items()},
                        now, least, missing)
        walked = room_now({h: Timeline((t, t), (), iv) for h, (t, iv) in hosts.items()},
                          now, least, missing)
        assert fast == walked, hosts
