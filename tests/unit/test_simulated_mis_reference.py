"""The simulated MIS's reference of free slots (tests/simulated_mis.py), which the simulated week compares
the portal's answers with: it must itself say what SPEC section 5 says."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.simulated_mis import Rule, Visit, reference_slots

MOSCOW = ZoneInfo("Europe/Moscow")
DAY = dt.date(2031, 3, 4)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def starts(slots: list[tuple[dt.datetime, dt.datetime]]) -> list[str]:
    return [f"{start.astimezone(MOSCOW):%d %H:%M}-{end.astimezone(MOSCOW):%H:%M}" for start, end in slots]


def test_steps_from_the_window_start_wholly_inside_it_and_outside_its_break() -> None:
    # Given 09:00-11:10 in 30-minute steps with a break 10:15-10:30 off the grid
    schedule = {DAY: (Rule(540, 670, (615, 630)),)}
    # When nothing is busy; Then 10:00 overlaps the break, 10:30 only touches its end, and 11:00-11:30
    # sticks out of the window
    assert starts(reference_slots(schedule, 30, [], DAY, DAY, MOSCOW, LONG_AGO)) == [
        "04 09:00-09:30",
        "04 09:30-10:00",
        "04 10:30-11:00",
    ]


def test_an_overnight_window_reaches_into_the_next_day() -> None:
    # Given 23:00-01:00 on DAY
    schedule = {DAY: (Rule(1380, 1500),)}
    # Then the next day's slots are the two after midnight, and DAY's the two before
    next_day = DAY + dt.timedelta(days=1)
    assert starts(reference_slots(schedule, 30, [], next_day, next_day, MOSCOW, LONG_AGO)) == [
        "05 00:00-00:30",
        "05 00:30-01:00",
    ]
    assert starts(reference_slots(schedule, 30, [], DAY, DAY, MOSCOW, LONG_AGO)) == ["04 23:00-23:30", "04 23:30-00:00"]


def test_busy_time_and_the_clock_take_slots_away() -> None:
    # Given 09:00-11:00 in 30-minute steps, a visit 09:40-09:50 and the clock at 09:00:01
    schedule = {DAY: (Rule(540, 660), Rule(540, 600))}  # two windows that overlap offer each slot once
    busy = [Visit(1, dt.datetime(2031, 3, 4, 9, 40), 10).span(MOSCOW)]
    now = dt.datetime(2031, 3, 4, 9, 0, 1, tzinfo=MOSCOW)
    # Then 09:00 has begun and 09:30 is busy
    assert starts(reference_slots(schedule, 30, busy, DAY, DAY, MOSCOW, now)) == ["04 10:00-10:30", "04 10:30-11:00"]
