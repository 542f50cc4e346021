"""Free slots: pure arithmetic over schedules, busy time and the clock.

A slot is a step of `time_step` minutes counted in elapsed time from the start of a working
window, wholly inside the window, outside its break, not yet begun, and overlapping no busy
interval. Instants are aware datetimes in UTC, so a daylight-saving change simply makes a day
shorter or longer: a local time that does not exist is never offered, and a repeated hour is
offered twice, each with its own offset.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from mediexchange.records import Schedule, Window

K = TypeVar("K")


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


class Overlapping(Generic[K]):
    """Intervals by key, indexed by their starts to find those that overlap a given one: such an interval
    starts before its end, and after its start less the longest interval's length. A resource's hundreds
    of imported appointments against its held orders cost a bisection each, not a pass over all of them."""

    def __init__(self, intervals: Mapping[K, Interval]) -> None:
        self.by_start = sorted(intervals.items(), key=lambda pair: pair[1].start)
        self.starts = [interval.start for _, interval in self.by_start]
        self.longest = max((i.end - i.start for i in intervals.values()), default=dt.timedelta(0))

    def of(self, wanted: Interval) -> list[tuple[K, Interval]]:
        """(key, interval) of each interval that overlaps `wanted`, by key."""
        if not self.starts:
            return []
        first = bisect.bisect_right(self.starts, wanted.start - self.longest)
        last = bisect.bisect_left(self.starts, wanted.end)
        return sorted(pair for pair in self.by_start[first:last] if wanted.overlaps(pair[1]))


def instant(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    """The instant a local day's minute falls on; a time skipped by a clock change lands after the gap."""
    local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    return local.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


def local_interval(start: dt.datetime, minutes: int, tz: ZoneInfo) -> Interval:
    """A local start (naive; its `fold` picks the occurrence of a repeated time) and a duration, as elapsed time."""
    begin = start.replace(tzinfo=tz).astimezone(dt.UTC)
    return Interval(begin, begin + dt.timedelta(minutes=minutes))


def window_slots(day: dt.date, window: Window, step: int, tz: ZoneInfo) -> Iterator[Interval]:
    start, end = instant(day, window.start, tz), instant(day, window.end, tz)
    pause = None
    if window.break_start is not None and window.break_end is not None:
        pause = Interval(instant(day, window.break_start, tz), instant(day, window.break_end, tz))
    length = dt.timedelta(minutes=step)
    slot = Interval(start, start + length)
    while slot.end <= end:
        if pause is None or not slot.overlaps(pause):
            yield slot
        slot = Interval(slot.end, slot.end + length)


def free_slots(
    schedules: Iterable[Schedule],
    step: int,
    busy: Iterable[Interval],
    tz: ZoneInfo,
    now: dt.datetime,
) -> list[Interval]:
    """Every free slot of the given schedules, in time order, each once (windows may overlap)."""
    taken = merged(busy)
    starts = [interval.start for interval in taken]

    def is_free(slot: Interval) -> bool:
        # Of the taken intervals starting before the slot ends, the last reaches furthest (they are disjoint).
        before = bisect.bisect_left(starts, slot.end)
        return before == 0 or taken[before - 1].end <= slot.start

    candidates = {
        slot
        for schedule in schedules
        for window in schedule.windows
        for slot in window_slots(schedule.date, window, step, tz)
    }
    return sorted(s for s in candidates if s.start >= now and is_free(s))


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of the intervals, each taken with its ends (so an empty one at 09:15 still takes a slot
    09:00-09:30, as `Interval.overlaps` has it), as disjoint intervals in time order."""
    union: list[Interval] = []
    for interval in sorted(intervals):
        if union and interval.start <= union[-1].end:
            union[-1] = Interval(union[-1].start, max(union[-1].end, interval.end))
        else:
            union.append(interval)
    return union


def is_free_run(free: Iterable[Interval], start: dt.datetime, steps: int, step: int) -> bool:
    """Whether `steps` consecutive free slots begin at `start`."""
    starts = {slot.start for slot in free}
    return all(start + dt.timedelta(minutes=step * k) in starts for k in range(steps))
