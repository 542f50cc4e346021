"""The schedule board: a clinic's resources × days (the week) and resources × hours (a day).

Everything on it comes from `portal.resource_days`, the computation the portal's slots answer and
booking use: working windows and breaks, the MIS's busy time, the orders holding time (received or
accepted; a rejected order frees its time) and the free slots the portal offers. A day is laid out
in elapsed minutes from its local midnight, so a clock-change day is 1,380 or 1,500 minutes long and
every block sits where the clock on the wall says it does.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response

from mediexchange import portal
from mediexchange.console.pages import Page
from mediexchange.errors import InvalidRequest
from mediexchange.records import Clinic, OrderStatus, Resource
from mediexchange.slots import Interval, instant
from mediexchange.store import Store
from mediexchange.timeutil import zone

PER_PAGE = 25
MAX_DAYS = 14
DEFAULT_DAYS = 7
ONE_DAY = dt.timedelta(days=1)
_NUMBER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of one day: `start`/`end` in elapsed minutes from the day's local midnight (clipped to
    the day), `text` its local times as the wall clock shows them (unclipped: "22:00–02:00")."""

    start: int
    end: int
    text: str

    @property
    def minutes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class WindowBlock:
    span: Span
    breaks: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class BusyBlock:
    span: Span
    title: str
    appointment: str  # "tablename#id" as the MIS sent it


@dataclass(frozen=True, slots=True)
class OrderBlock:
    span: Span
    order_id: int
    status: str  # received | accepted


@dataclass(frozen=True, slots=True)
class FreeSlot:
    span: Span
    hhmm: str  # local start, the board's `data-slot`
    start: str  # ISO 8601 with offset, exactly as the portal's slots answer writes it


@dataclass(frozen=True, slots=True)
class Cell:
    day: dt.date
    length: int  # minutes of the day: 1440, or 1380 / 1500 on a clock-change day
    windows: tuple[WindowBlock, ...]
    busy: tuple[BusyBlock, ...]
    orders: tuple[OrderBlock, ...]
    free: tuple[FreeSlot, ...]

    @property
    def busy_minutes(self) -> int:
        return sum(b.span.minutes for b in self.busy)

    @property
    def orders_by_status(self) -> list[tuple[str, int]]:
        counts = Counter(o.status for o in self.orders)
        return [(name, counts[name]) for name in ("received", "accepted") if counts[name]]


@dataclass(frozen=True, slots=True)
class Row:
    resource_id: int  # the portal's id
    mw_resource_id: int
    name: str
    time_step: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Board:
    clinic: Clinic
    days: tuple[dt.date, ...]
    rows: tuple[Row, ...]
    page: int
    pages: int
    resources: int  # of the clinic, on every page
    stale_since: int | None  # the portal offers nothing: the MIS last sent its busy time then (unix seconds)
    today: dt.date

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def last(self) -> dt.date:
        return self.days[-1]


# -- request parameters ----------------------------------------------------------------------------


def parse_number(value: str | None, name: str, default: int, lowest: int, highest: int) -> int:
    if value is None or value == "":
        return default
    if not _NUMBER.fullmatch(value) or not lowest <= int(value) <= highest:
        raise InvalidRequest(f"{name} must be a whole number from {lowest} to {highest}")
    return int(value)


def today_in(clinic: Clinic) -> dt.date:
    return dt.datetime.now(zone(clinic.timezone)).date()


# -- laying out one day ----------------------------------------------------------------------------


def _hhmm(moment: dt.datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class Day:
    """A local day as the board lays it out: the instant of its midnight and its length in elapsed minutes
    (1440, or 1380 / 1500 on a clock-change day). Worked out once per day, not once per resource."""

    date: dt.date
    midnight: dt.datetime
    length: int

    @classmethod
    def of(cls, date: dt.date, tz: ZoneInfo) -> Day:
        midnight = instant(date, 0, tz)
        return cls(date, midnight, round((instant(date + ONE_DAY, 0, tz) - midnight).total_seconds() / 60))


def _span(interval: Interval, day: Day, tz: ZoneInfo) -> Span | None:
    """The part of an interval inside the day, or None."""
    start = math.floor((interval.start - day.midnight).total_seconds() / 60)
    end = math.ceil((interval.end - day.midnight).total_seconds() / 60)
    start, end = max(start, 0), min(end, day.length)
    if end <= start:
        return None
    return Span(start, end, f"{_hhmm(interval.start, tz)}–{_hhmm(interval.end, tz)}")


def _cell(
    found: portal.ResourceDays, day: Day, statuses: Mapping[int, OrderStatus], offered: bool, tz: ZoneInfo
) -> Cell:
    def span(interval: Interval) -> Span | None:
        return _span(interval, day, tz)

    windows: list[WindowBlock] = []
    for schedule in found.schedules:
        for window in schedule.windows:
            whole = span(Interval(instant(schedule.date, window.start, tz), instant(schedule.date, window.end, tz)))
            if whole is None:
                continue
            breaks: tuple[Span, ...] = ()
            if window.break_start is not None and window.break_end is not None:
                pause = Interval(
                    instant(schedule.date, window.break_start, tz), instant(schedule.date, window.break_end, tz)
                )
                breaks = tuple(s for s in (span(pause),) if s is not None)
            windows.append(WindowBlock(whole, breaks))
    windows.sort(key=lambda w: (w.span.start, w.span.end))
    busy = sorted(
        (BusyBlock(s, b.title, f"{b.tablename}#{b.appointment_id}") for b in found.busy if (s := span(b.interval))),
        key=lambda b: (b.span.start, b.appointment),
    )
    held: list[OrderBlock] = []
    for order_id, interval in found.holds.items():
        placed = span(interval)
        status = statuses.get(order_id)
        if placed is not None and status is not None:
            held.append(OrderBlock(placed, order_id, portal.STATUS_NAMES[status]))
    held.sort(key=lambda o: (o.span.start, o.order_id))
    free: list[FreeSlot] = []
    if offered:
        for slot in found.free:
            placed = span(slot)
            if placed is not None and slot.start.astimezone(tz).date() == day.date:
                free.append(FreeSlot(placed, _hhmm(slot.start, tz), slot.start.astimezone(tz).isoformat()))
    return Cell(day.date, day.length, tuple(windows), tuple(busy), tuple(held), tuple(free))


# -- the board -------------------------------------------------------------------------------------


def board(store: Store, clinic: Clinic, first: dt.date, days: int, page: int) -> Board:
    """Resources × `days` days from `first`, the `page`-th 25 resources (a page past the last shows the last)."""
    tz = zone(clinic.timezone)
    listed = portal.resources(store, clinic.clinic_id)
    pages = max(1, math.ceil(len(listed) / PER_PAGE))
    page = min(max(page, 1), pages)
    shown = listed[(page - 1) * PER_PAGE : page * PER_PAGE]
    last = first + dt.timedelta(days=days - 1)
    now = dt.datetime.now(dt.UTC)

    def read(pair: tuple[int, Resource]) -> tuple[portal.ResourceDays, dict[int, OrderStatus]]:
        """One resource's days as the portal computes them, and the status of each order holding its time."""
        found = portal.resource_days(store, clinic, pair[1], first, last, pair[0], now)
        return found, store.orders.statuses(clinic.clinic_id, found.holds) if found.holds else {}

    # The resources are read in parallel, each with its orders as soon as its holds are known.
    with ThreadPoolExecutor(max_workers=max(1, min(len(shown), store.settings.store_parallelism))) as pool:
        read_all = list(pool.map(read, shown))
    found = [f for f, _ in read_all]
    statuses = {order_id: status for _, some in read_all for order_id, status in some.items()}
    stale = clinic.stale_since(time.time())  # as the portal's slots answer decides it
    day_list = tuple(Day.of(first + dt.timedelta(days=n), tz) for n in range(days))
    rows = tuple(
        Row(
            f.portal_id,
            f.resource.id,
            f.resource.name,
            f.resource.time_step,
            tuple(_cell(f, day, statuses, stale is None, tz) for day in day_list),
        )
        for f in found
    )
    return Board(clinic, tuple(day.date for day in day_list), rows, page, pages, len(listed), stale, today_in(clinic))


def week_board(store: Store, clinic: Clinic, query: Mapping[str, str]) -> Board:
    first = portal.parse_day(query.get("from"), "from", today_in(clinic))
    days = parse_number(query.get("days"), "days", DEFAULT_DAYS, 1, MAX_DAYS)
    page = parse_number(query.get("page"), "page", 1, 1, 999_999)
    return board(store, clinic, first, days, page)


def day_board(store: Store, clinic: Clinic, day: str, query: Mapping[str, str]) -> Board:
    page = parse_number(query.get("page"), "page", 1, 1, 999_999)
    return board(store, clinic, portal.parse_day(day, "day", today_in(clinic)), 1, page)


# -- the day view's geometry (an inline SVG: attributes place the blocks, classes colour them) ------------


@dataclass(frozen=True, slots=True)
class Tick:
    x: int  # minutes from midnight
    label: str  # local HH:MM


def hour_ticks(day: dt.date, zone_name: str) -> list[Tick]:
    """A tick every elapsed hour of the day, labelled with the local time: 01:00 comes twice when the
    clocks go back, 02:00 never when they go forward."""
    tz = zone(zone_name)
    laid = Day.of(day, tz)
    return [Tick(m, _hhmm(laid.midnight + dt.timedelta(minutes=m), tz)) for m in range(0, laid.length, 60)]


@dataclass(frozen=True, slots=True)
class Frame:
    """The stretch of a day the day view draws: whole hours around everything on it (08:00-20:00 when
    nothing is), in elapsed minutes from midnight."""

    start: int
    end: int
    ticks: tuple[Tick, ...]

    @property
    def width(self) -> int:
        return self.end - self.start

    @property
    def pixels(self) -> int:
        """How wide the day is drawn: 1.5 px a minute, 12 hours in 1,080 px."""
        return self.width * 3 // 2


def frame(found: Board) -> Frame:
    day = found.first
    cells = [row.cells[0] for row in found.rows]
    length = cells[0].length if cells else 1440
    spans = [
        span
        for cell in cells
        for span in (
            *(w.span for w in cell.windows),
            *(b.span for b in cell.busy),
            *(o.span for o in cell.orders),
            *(f.span for f in cell.free),
        )
    ]
    start = min((s.start for s in spans), default=8 * 60) // 60 * 60
    end = min(length, -(-max((s.end for s in spans), default=20 * 60) // 60) * 60)
    ticks = tuple(tick for tick in hour_ticks(day, found.clinic.timezone) if start <= tick.x <= end)
    return Frame(start, max(end, start + 60), ticks)


def page_numbers(current: int, pages: int) -> Sequence[int]:
    """Page links to show: the first, the last and a few around the current one."""
    near = range(max(1, current - 2), min(pages, current + 2) + 1)
    return sorted({1, pages, *near})


# -- the pages -------------------------------------------------------------------------------------


def _query(page: Page) -> Mapping[str, str]:
    return page.event.query_string_parameters or {}


def week_page(page: Page, store: Store, clinic_id: str) -> Response[str]:
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    found = week_board(store, page.clinic, _query(page))
    return page.render("board.html", board=found, pages=page_numbers(found.page, found.pages), ONE_DAY=ONE_DAY)


def day_page(page: Page, store: Store, clinic_id: str, day: str) -> Response[str]:
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    found = day_board(store, page.clinic, day, _query(page))
    return page.render(
        "board_day.html", board=found, frame=frame(found), pages=page_numbers(found.page, found.pages), ONE_DAY=ONE_DAY
    )
