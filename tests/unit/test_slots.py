"""Free-slot arithmetic: pure, no store."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mediexchange.records import Schedule, Window
from mediexchange.slots import Interval, Overlapping, free_slots, is_free_run, local_interval

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.date(2030, 3, 5)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def window(start: str, end: str, pause: tuple[str, str] | None = None) -> Window:
    return Window(hm(start), hm(end), *(hm(t) for t in pause) if pause else (None, None))


def starts(slots: list[Interval], tz: ZoneInfo = MOSCOW) -> list[str]:
    return [s.start.astimezone(tz).strftime("%H:%M%z") for s in slots]


def day_slots(
    *windows: Window, step: int, day: dt.date = DAY, tz: ZoneInfo = MOSCOW, busy=(), now=LONG_AGO
) -> list[Interval]:
    return free_slots([Schedule(1, day, 7, tuple(windows))], step, list(busy), tz, now)


def test_steps_from_the_window_start_skip_the_break() -> None:
    slots = day_slots(window("9:00", "12:00", ("10:30", "11:00")), step=30)
    assert starts(slots) == ["09:00+0300", "09:30+0300", "10:00+0300", "11:00+0300", "11:30+0300"]
    assert all(s.end - s.start == dt.timedelta(minutes=30) for s in slots)


def test_only_whole_slots_when_the_window_is_not_a_multiple_of_the_step() -> None:
    assert starts(day_slots(window("9:00", "10:10"), step=20)) == ["09:00+0300", "09:20+0300", "09:40+0300"]


def test_a_45_minute_step_keeps_its_grid_across_the_break() -> None:
    slots = day_slots(window("8:00", "12:00", ("10:00", "10:30")), step=45)
    assert starts(slots) == ["08:00+0300", "08:45+0300", "11:00+0300"]


def test_busy_time_and_the_past_take_slots_away() -> None:
    appointment = local_interval(dt.datetime(2030, 3, 5, 9, 15), 30, MOSCOW)
    now = dt.datetime(2030, 3, 5, 10, 10, tzinfo=MOSCOW)
    slots = day_slots(window("9:00", "12:00"), step=30, busy=[appointment], now=now)
    assert starts(slots) == ["10:30+0300", "11:00+0300", "11:30+0300"]


def test_a_slot_starting_exactly_now_is_still_offered() -> None:
    now = dt.datetime(2030, 3, 5, 9, 30, tzinfo=MOSCOW)
    assert starts(day_slots(window("9:00", "10:30"), step=30, now=now)) == ["09:30+0300", "10:00+0300"]


def test_several_windows_of_one_day_and_overlapping_windows_counted_once() -> None:
    slots = day_slots(window("9:00", "10:00"), window("14:00", "15:00"), window("9:00", "10:00"), step=30)
    assert starts(slots) == ["09:00+0300", "09:30+0300", "14:00+0300", "14:30+0300"]


def test_a_window_may_end_at_midnight() -> None:
    assert starts(day_slots(window("23:00", "24:00"), step=30)) == ["23:00+0300", "23:30+0300"]


def test_spring_forward_never_offers_a_time_that_does_not_exist() -> None:
    # Berlin, 31.03.2030: clocks jump from 02:00 to 03:00; the night window is an hour shorter
    slots = day_slots(window("0:00", "6:00"), step=60, day=dt.date(2030, 3, 31), tz=BERLIN)
    assert starts(slots, BERLIN) == ["00:00+0100", "01:00+0100", "03:00+0200", "04:00+0200", "05:00+0200"]


def test_fall_back_offers_the_repeated_hour_twice_with_its_offset() -> None:
    # Berlin, 27.10.2030: clocks go back from 03:00 to 02:00; the night window is an hour longer
    slots = day_slots(window("0:00", "6:00"), step=60, day=dt.date(2030, 10, 27), tz=BERLIN)
    assert starts(slots, BERLIN) == [
        "00:00+0200", "01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100", "04:00+0100", "05:00+0100",
    ]  # fmt: skip


def test_a_step_across_the_spring_gap_is_elapsed_time() -> None:
    # 90-minute steps from 01:00: 01:00-03:30 (90 minutes elapsed across the jump), 03:30-05:00
    slots = day_slots(window("1:00", "5:00"), step=90, day=dt.date(2030, 3, 31), tz=BERLIN)
    assert [
        (s.start.astimezone(BERLIN).strftime("%H:%M"), s.end.astimezone(BERLIN).strftime("%H:%M")) for s in slots
    ] == [
        ("01:00", "03:30"),
        ("03:30", "05:00"),
    ]


@pytest.mark.parametrize(
    ("tz", "offset"), [(ZoneInfo("America/New_York"), "-0400"), (ZoneInfo("Asia/Kamchatka"), "+1200")]
)
def test_other_time_zones(tz: ZoneInfo, offset: str) -> None:
    slots = day_slots(window("9:00", "10:00"), step=60, day=dt.date(2030, 6, 3), tz=tz)
    assert starts(slots, tz) == [f"09:00{offset}"]


def test_a_run_of_consecutive_free_slots() -> None:
    slots = day_slots(window("9:00", "12:00", ("10:30", "11:00")), step=30)
    at = dt.datetime(2030, 3, 5, 9, 30, tzinfo=MOSCOW).astimezone(dt.UTC)
    assert is_free_run(slots, at, 2, 30)
    assert not is_free_run(slots, at, 3, 30)  # the third step is the break
    assert not is_free_run(slots, at + dt.timedelta(minutes=10), 1, 30)  # not a slot start


def test_empty_touching_and_nested_busy_time_takes_exactly_the_slots_it_overlaps() -> None:
    # Given a morning of 10-minute slots and busy intervals of every shape: empty, touching, nested, chained
    busy = [
        local_interval(dt.datetime(2030, 3, 5, hour, minute), minutes, MOSCOW)
        for hour, minute, minutes in [
            (9, 5, 0),  # empty, inside 09:00-09:10
            (9, 20, 0),  # empty, on the border of two slots
            (9, 30, 10),  # exactly one slot
            (9, 40, 10),  # touching the one before
            (10, 3, 30),  # 10:03-10:33
            (10, 10, 5),  # nested in it
            (10, 33, 2),  # touching its end: 10:33-10:35
            (11, 0, 0),  # empty, at the window's end
        ]
    ]
    # When the free slots are computed
    slots = day_slots(window("9:00", "11:00"), step=10, busy=busy)
    # Then a slot is free exactly when no busy interval overlaps it
    every = day_slots(window("9:00", "11:00"), step=10)
    assert slots == [s for s in every if not any(s.overlaps(b) for b in busy)]
    assert starts(slots) == ["09:10+0300", "09:20+0300", "09:50+0300", "10:40+0300", "10:50+0300"]


EPOCH = dt.datetime(2030, 3, 20, tzinfo=dt.UTC)
minutes = st.integers(min_value=0, max_value=600)
spans = st.tuples(minutes, st.integers(min_value=0, max_value=240)).map(
    lambda pair: Interval(EPOCH + dt.timedelta(minutes=pair[0]), EPOCH + dt.timedelta(minutes=pair[0] + pair[1]))
)


@given(st.dictionaries(st.integers(min_value=1, max_value=10**6), spans, max_size=40), spans)
def test_the_overlapping_intervals_are_those_a_pass_over_all_of_them_finds(
    held: dict[int, Interval], busy: Interval
) -> None:
    # Given held intervals by key (any lengths, empty ones, touching and nested ones) and one busy interval
    # When the index is asked which overlap it
    found = Overlapping(held).of(busy)
    # Then they are exactly those that overlap it, by key
    assert found == [(key, interval) for key, interval in sorted(held.items()) if busy.overlaps(interval)]


def test_touching_intervals_do_not_overlap_and_a_long_one_is_found_from_far_before() -> None:
    # Given a long hold from 08:00 to 12:00, and a short one from 12:00 to 12:30
    def at(hour: float) -> dt.datetime:
        return EPOCH + dt.timedelta(hours=hour)

    held = {7: Interval(at(8), at(12)), 3: Interval(at(12), at(12.5))}
    # When 11:30-12:00 and 11:45-12:15 are looked up
    # Then the first overlaps only the long one (it touches the short one), the second both, by key
    assert Overlapping(held).of(Interval(at(11.5), at(12))) == [(7, held[7])]
    assert Overlapping(held).of(Interval(at(11.75), at(12.25))) == [(3, held[3]), (7, held[7])]
    assert Overlapping({}).of(Interval(at(1), at(2))) == []
