"""A simulated clinic MIS that runs the whole order loop against the service over real HTTP.

It keeps its own book — its doctors' working week, its own visits, the portal orders it accepted (as
visits of their own, same resource, start and duration) — independent of the service, and drives it
on the seed's cadence with a clock of its own (injected, never slept):

* every 30 simulated minutes: an export of the window since the previous poll's end, its decisions on
  the orders it found (confirm with status 1, reject with status 3, quoting the exported
  `LastChangedOn`), later rejections of orders it confirmed and moves of visits, all as one
  `Orders` document; then changes to its own book (walk-ins, moves, cancellations) and the
  `Appointments SyncMode="diff"` of what changed;
* every hour, at the same moment as that half-hour's diff, an `Appointments SyncMode="full"` — two
  concurrent requests, as the seed's cadence fires them;
* every simulated midnight: `Resources` and `Schedules` a month ahead (and the visits of days gone by
  leave the book it syncs);
* between its ticks, patients book through the portal API: free slots the portal offers (each answer
  compared with a reference computed here from the MIS's own book), and some times the MIS's book
  has busy (the portal must refuse them).

The server keeps real time: schedule dates start tomorrow, so no slot has begun, and every
`LastChangedOn` comes from the server. Export windows are unix seconds of the real clock.

The reference of free slots is what the MIS has told the portal and what the patients hold: the
working windows of the schedules it last sent, minus the busy time it sent (its book as of its last
sync; a diff cannot delete, so a visit it dropped stays busy until the next full sync), minus the
orders held (received, or accepted and not rejected since). It never calls the service's slot code.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from lxml import etree

UTC = dt.UTC
MOSCOW = ZoneInfo("Europe/Moscow")
XML = {"Content-Type": "application/xml"}
HALF_HOUR = dt.timedelta(minutes=30)
SCHEDULE_DAYS = 31  # a month ahead, as the seed recommends
BOOKING_DAYS = 7  # patients book up to a week ahead
DATETIME = "%d.%m.%Y %H:%M:%S"
ORDER_ID_IN_MESSAGE = re.compile(r"portal order (\d+)")


class Transport(Protocol):
    """What the simulation needs of the local server (tests.integration.conftest.LocalServer)."""

    url: str
    portal_api_key: str

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]: ...


# --- the MIS's own book ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One working window of a weekday, in minutes from the day's midnight; an end past 1440 is the
    next day (an overnight window); an optional break inside it."""

    start: int
    end: int
    pause: tuple[int, int] | None = None

    def xml(self) -> str:
        def hm(minutes: int) -> str:
            return "24:00" if minutes == 1440 else f"{minutes % 1440 // 60}:{minutes % 60:02d}"

        pause = f' b_start="{hm(self.pause[0])}" b_end="{hm(self.pause[1])}"' if self.pause else ""
        return f'<time_rules w_start="{hm(self.start)}" w_end="{hm(self.end)}"{pause}/>'


@dataclass(frozen=True, slots=True)
class Doctor:
    mw_id: int
    name: str
    step: int
    week: Mapping[int, tuple[Rule, ...]]  # weekday (0 Monday) -> its windows; a missing day is a day off


@dataclass(frozen=True, slots=True, order=True)
class Visit:
    """Time taken on a resource: a local (naive) start and a duration in minutes."""

    resource: int
    start: dt.datetime
    duration: int

    def span(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        begin = self.start.replace(tzinfo=tz).astimezone(UTC)
        return begin, begin + dt.timedelta(minutes=self.duration)


def overlap(a: tuple[dt.datetime, dt.datetime], b: tuple[dt.datetime, dt.datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


WEEKDAYS = range(5)
DAILY = range(7)


def doctors(count: int) -> list[Doctor]:
    """A few doctors with different steps and weeks: a break off the step grid, two windows a day, a window
    that ends mid-step, an overnight window, days off."""
    catalogue = [
        Doctor(101, "Баева Н.А.", 30, {**{d: (Rule(540, 900, (735, 765)),) for d in WEEKDAYS}, 5: (Rule(600, 840),)}),
        Doctor(102, "Смирнов И.П.", 20, {d: (Rule(480, 730), Rule(840, 1080)) for d in range(6)}),
        Doctor(103, "Ночной приём", 15, {d: (Rule(1200, 1560),) for d in DAILY}),
        Doctor(104, "Кузнецова & Ко", 60, {d: (Rule(600, 1080),) for d in (0, 2, 4)}),
        Doctor(105, "Петров", 45, {d: (Rule(420, 1440, (780, 840)),) for d in (1, 3, 5)}),
        Doctor(106, "Сидорова", 10, {d: (Rule(540, 780),) for d in DAILY}),
    ]
    return catalogue[:count]


@dataclass
class Book:
    """The MIS's own appointments (walk-ins and the visits of the orders it accepted) and what it has
    told the portal of them."""

    visits: dict[int, Visit] = field(default_factory=dict)  # SchedEvent id -> visit
    of_order: dict[int, int] = field(default_factory=dict)  # accepted order id -> its SchedEvent id
    changed: set[int] = field(default_factory=set)  # ids changed since the last diff
    sent: dict[int, Visit] = field(default_factory=dict)  # the busy time the portal holds from the MIS
    next_id: int = 1

    def add(self, visit: Visit) -> int:
        event_id, self.next_id = self.next_id, self.next_id + 1
        self.visits[event_id] = visit
        self.changed.add(event_id)
        return event_id

    def move(self, event_id: int, visit: Visit) -> None:
        self.visits[event_id] = visit
        self.changed.add(event_id)

    def drop(self, event_id: int) -> None:
        del self.visits[event_id]
        self.changed.discard(event_id)  # a diff cannot delete: the next full sync does

    def archive(self, before: dt.datetime) -> None:
        """Visits over before `before` leave the book the MIS syncs (it syncs from today on); the next
        full sync deletes them from the portal."""
        for event_id, visit in list(self.visits.items()):
            if visit.start + dt.timedelta(minutes=visit.duration) <= before:
                self.drop(event_id)
        self.of_order = {order_id: event_id for order_id, event_id in self.of_order.items() if event_id in self.visits}


# --- what the simulation learns and counts -----------------------------------------------------------


@dataclass
class SimOrder:
    id: int
    visit: Visit  # where the order is, as the portal booked it and the MIS moved it
    status: int = 0  # as the MIS's decisions left it (0: not decided yet)
    decided: bool = False
    accepted_at_tick: int = -1
    first_export: dict[str, str] | None = None  # the order as first exported
    last_export: dict[str, str] | None = None  # the order as most recently exported
    awaiting_echo: bool = False  # an applied MIS change the export has not carried back yet
    decisions: int = 0


@dataclass
class Tally:
    """Everything the run counts; `problems` must all be zero."""

    half_hours: int = 0
    imports: int = 0
    imports_202: int = 0
    answers_409: int = 0
    answers_503: int = 0
    full_and_diff_pairs: int = 0
    exports: int = 0
    orders: int = 0
    confirmations: int = 0
    rejections: int = 0
    later_rejections: int = 0
    order_moves: int = 0
    own_visits_added: int = 0
    own_visits_moved: int = 0
    own_visits_cancelled: int = 0
    busy_attempts: int = 0
    slot_checks: int = 0
    # problems
    lost_decisions: int = 0
    changes_not_updated: int = 0  # every change the MIS sends changes something: each must be `updated`
    conflicts: int = 0
    missed_orders: int = 0
    missed_changes: int = 0
    false_overlap_warnings: int = 0
    other_warnings: int = 0
    double_bookings: int = 0
    slot_mismatches: int = 0
    free_slot_refused: int = 0
    busy_slot_booked: int = 0
    foreign_orders: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.details) < 40:
            self.details.append(text)

    def problems(self) -> dict[str, int]:
        return {
            "409 answers": self.answers_409,
            "lost decisions": self.lost_decisions,
            "conflicts": self.conflicts,
            "changes not updated": self.changes_not_updated,
            "missed orders": self.missed_orders,
            "missed changes": self.missed_changes,
            "false overlaps_order warnings": self.false_overlap_warnings,
            "other warnings": self.other_warnings,
            "double bookings": self.double_bookings,
            "slot mismatches": self.slot_mismatches,
            "free slots refused": self.free_slot_refused,
            "busy slots booked": self.busy_slot_booked,
            "orders exported that no patient made": self.foreign_orders,
        }


# --- the reference of free slots ---------------------------------------------------------------------


def local_instant(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    return (dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)).replace(tzinfo=tz).astimezone(UTC)


def window_slots(day: dt.date, rule: Rule, step: int, tz: ZoneInfo) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Steps of `step` minutes, in elapsed time from the window's start, wholly inside it and its break's
    outside."""
    end = local_instant(day, rule.end, tz)
    pause = (local_instant(day, rule.pause[0], tz), local_instant(day, rule.pause[1], tz)) if rule.pause else None
    begin, length = local_instant(day, rule.start, tz), dt.timedelta(minutes=step)
    while begin + length <= end:
        slot = (begin, begin + length)
        if pause is None or not overlap(slot, pause):
            yield slot
        begin += length


def reference_slots(
    schedule: Mapping[dt.date, tuple[Rule, ...]],
    step: int,
    busy: Iterable[tuple[dt.datetime, dt.datetime]],
    first: dt.date,
    last: dt.date,
    tz: ZoneInfo,
    now: dt.datetime,
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The free slots starting on the local days `first` to `last`: every step of every window (an
    overnight window of the day before reaches in), not begun at `now`, overlapping nothing busy."""
    taken = list(busy)
    slots = {
        slot
        for day in (first - dt.timedelta(days=1) + dt.timedelta(days=n) for n in range((last - first).days + 2))
        for rule in schedule.get(day, ())
        for slot in window_slots(day, rule, step, tz)
    }
    return sorted(
        slot
        for slot in slots
        if first <= slot[0].astimezone(tz).date() <= last
        and slot[0] >= now
        and not any(overlap(slot, b) for b in taken)
    )


# --- the MIS and its patients --------------------------------------------------------------------------


class ServiceMisbehaved(AssertionError):
    """An answer the protocol does not allow: the request and the answer, for the report."""


class SimulatedMis:
    def __init__(
        self,
        server: Transport,
        clinic: Mapping[str, str],
        staff: list[Doctor],
        *,
        seed: int,
        patients_per_half_hour: int,
        tz: ZoneInfo = MOSCOW,
    ) -> None:
        self.server, self.tz, self.staff = server, tz, {d.mw_id: d for d in staff}
        self.client_key, self.clinic_id = clinic["client_key"], clinic["clinic_id"]
        self.rng = random.Random(seed)
        self.patients_per_half_hour = patients_per_half_hour
        tomorrow = dt.datetime.now(tz).date() + dt.timedelta(days=1)
        self.now = dt.datetime.combine(tomorrow, dt.time())  # the simulation's clock: local, naive
        self.tick = 0
        self.book = Book()
        self.sent_schedules: dict[int, dict[dt.date, tuple[Rule, ...]]] = {}
        self.orders: dict[int, SimOrder] = {}
        self.portal_ids: dict[int, int] = {}  # MIS resource id -> the portal's resource id
        self.last_poll_end = int(time.time()) - 1  # the first window starts before any order exists
        self.tally = Tally()
        self.lock = threading.Lock()  # the hour's two syncs count from two threads

    # --- the clock ------------------------------------------------------------------------------

    def run(self, half_hours: int) -> Tally:
        """Run the MIS and its patients for `half_hours` simulated half-hours, then check the end state."""
        self.start_book()
        for _ in range(half_hours):
            self.mis_tick()
            self.patients()
            self.now += HALF_HOUR
            self.tick += 1
        self.tally.half_hours = half_hours
        self.finish()
        return self.tally

    def mis_tick(self) -> None:
        if self.now.time() == dt.time() and self.tick > 0:
            self.send_resources_and_schedules()
            self.book.archive(before=self.now)
        self.poll_and_decide()
        self.change_own_book()
        self.sync(full=self.now.minute == 0)
        if self.now.minute == 0:
            self.check_all_slots()

    # --- HTTP ----------------------------------------------------------------------------------

    def document(self, body: str) -> bytes:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{self.client_key}">\n{body}\n</MediExchange>'.encode()

    def post_import(self, body: str, barrier: threading.Barrier | None = None) -> etree._Element:
        """Send a document; a 202 is followed through status.php to its final ImportResult. A 409 (or
        503) is counted and the document sent again once the clinic's other import is done."""
        data = self.document(body)
        deadline = time.monotonic() + 180
        while True:
            if barrier is not None:
                barrier.wait(timeout=60)
                barrier = None
            status, _, answer = self.server.request("POST", "/services/import.php", data, XML)
            with self.lock:
                self.tally.imports += 1
                self.tally.imports_202 += status == 202
                self.tally.answers_409 += status == 409
                self.tally.answers_503 += status == 503
            if status == 200:
                return etree.fromstring(answer)
            if status == 202:
                return self.follow(etree.fromstring(answer).get("import_id"), data)
            if status in (409, 503) and time.monotonic() < deadline:
                with self.lock:
                    self.tally.note(f"import.php answered {status} at {self.now}: {answer.decode()[:300]}")
                time.sleep(0.3)
                continue
            raise ServiceMisbehaved(
                f"import.php answered {status}: {answer.decode()[:2000]}\nto: {data.decode()[:2000]}"
            )

    def follow(self, import_id: str, data: bytes) -> etree._Element:
        query = urlencode({"client_key": self.client_key, "import_id": import_id})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, _, answer = self.server.request("GET", f"/services/status.php?{query}")
            if status != 200:
                raise ServiceMisbehaved(f"status.php answered {status}: {answer.decode()[:2000]}")
            [entry] = etree.fromstring(answer)
            result = entry.find("ImportResult")
            if entry.get("state") == "done" and result is not None:
                return result
            if entry.get("state") == "failed":
                raise ServiceMisbehaved(
                    f"import {import_id} failed: {answer.decode()[:2000]}\nof: {data.decode()[:2000]}"
                )
            time.sleep(0.2)
        raise ServiceMisbehaved(f"import {import_id} did not finish in 180 s")

    def portal(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"x-api-key": self.server.portal_api_key, "Content-Type": "application/json"}
        raw = json.dumps(body).encode() if body is not None else None
        status, _, answer = self.server.request(method, f"/portal/clinics/{self.clinic_id}{path}", raw, headers)
        return status, json.loads(answer)

    # --- resources and schedules --------------------------------------------------------------------

    def start_book(self) -> None:
        """The MIS's book before the run: walk-ins on the coming week."""
        self.send_resources_and_schedules()
        for _ in range(10 * len(self.staff)):
            visit = self.free_visit(self.rng.choice(list(self.staff)), self.rng.choice((15, 20, 30, 45)))
            if visit is not None:
                self.book.add(visit)

    def send_resources_and_schedules(self) -> None:
        resources = "".join(
            f'<r id="{d.mw_id}" name="{xml_text(d.name)}" time_step="{d.step}"/>' for d in self.staff.values()
        )
        rows, sent = [], {}
        for doctor in self.staff.values():
            days = {}
            for n in range(SCHEDULE_DAYS):
                day = self.now.date() + dt.timedelta(days=n)
                rules = doctor.week.get(day.weekday(), ())
                days[day] = rules
                schedule_id = int(day.strftime("%Y%m%d")) * 1000 + doctor.mw_id
                rows.append(
                    f'<s id="{schedule_id}" date="{day:%d.%m.%Y}" resource_id="{doctor.mw_id}">'
                    + "".join(rule.xml() for rule in rules)
                    + "</s>"
                )
            sent[doctor.mw_id] = days
        result = self.post_import(
            f"<Resources>{resources}</Resources>\n<Schedules>\n" + "\n".join(rows) + "\n</Schedules>"
        )
        self.expect_clean(result, "Resources and Schedules")
        self.sent_schedules = sent
        if not self.portal_ids:
            status, view = self.portal("GET", "")
            assert status == 200, view
            self.portal_ids = {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}

    def expect_clean(self, result: etree._Element, what: str) -> None:
        if result.get("status") != "ok" or result.find("Error") is not None:
            raise ServiceMisbehaved(f"{what}: {etree.tostring(result, encoding='unicode')[:2000]}")

    # --- free time in the MIS's own eyes ----------------------------------------------------------

    def taken(
        self, resource: int, *, besides: Iterable[int] = (), orders_besides: Iterable[int] = ()
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Busy time on a resource as the MIS knows it: its book and the orders held."""
        skip, skip_orders = set(besides), set(orders_besides)
        spans = [v.span(self.tz) for i, v in self.book.visits.items() if v.resource == resource and i not in skip]
        spans += [
            o.visit.span(self.tz)
            for o in self.orders.values()
            if o.visit.resource == resource and o.status in (0, 1) and o.id not in skip_orders
        ]
        return spans

    def free_visit(
        self,
        resource: int,
        duration: int,
        *,
        on_grid: bool = False,
        besides: Iterable[int] = (),
        orders_besides: Iterable[int] = (),
    ) -> Visit | None:
        """A random time on the resource's working windows in the coming week that nothing takes."""
        doctor, busy = self.staff[resource], self.taken(resource, besides=besides, orders_besides=orders_besides)
        for _ in range(30):
            day = self.now.date() + dt.timedelta(days=self.rng.randrange(BOOKING_DAYS))
            rules = self.sent_schedules[resource].get(day, ())
            if not rules:
                continue
            rule = self.rng.choice(rules)
            grain = doctor.step if on_grid else 5
            starts = range(rule.start, rule.end - duration + 1, grain)
            if not starts:
                continue
            minute = self.rng.choice(starts)
            visit = Visit(resource, dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute), duration)
            span = visit.span(self.tz)
            if visit.start <= self.now + HALF_HOUR or (rule.pause and overlap(span, self.pause(day, rule.pause))):
                continue
            if not any(overlap(span, b) for b in busy):
                return visit
        return None

    def pause(self, day: dt.date, minutes: tuple[int, int]) -> tuple[dt.datetime, dt.datetime]:
        return local_instant(day, minutes[0], self.tz), local_instant(day, minutes[1], self.tz)

    # --- export, decisions ------------------------------------------------------------------------

    def poll(self) -> list[dict[str, str]]:
        """Export the window from the previous poll's end to now (real unix seconds): every other poll
        names its `end`, the others send none and take the time of the request as the next start."""
        end = int(time.time())
        window = {"start": self.last_poll_end, "end": end} if self.tally.exports % 2 else {"start": self.last_poll_end}
        query = urlencode({"client_key": self.client_key, **window})
        status, _, answer = self.server.request("GET", f"/services/export.php?{query}")
        self.tally.exports += 1
        if status != 200:
            raise ServiceMisbehaved(f"export.php?{query} answered {status}: {answer.decode()[:2000]}")
        self.last_poll_end = end
        exported = [dict(o.attrib) for o in etree.fromstring(answer).iter("o")]
        for attributes in exported:
            self.learn(attributes)
        return exported

    def learn(self, attributes: dict[str, str]) -> None:
        """What one exported order tells the MIS (it reads the sample's spelling, case-sensitively)."""
        order = self.orders.get(int(attributes["ID"]))
        if order is None:
            self.tally.foreign_orders += 1
            self.tally.note(f"exported an order no patient made: {attributes}")
            return
        order.first_export = order.first_export or attributes
        order.last_export = attributes
        shown = (
            int(attributes["Status"]),
            Visit(
                int(attributes["MW_Resource_ID"]),
                dt.datetime.strptime(attributes["Reception_Datetime"], DATETIME),
                int(attributes["Duration"]),
            ),
        )
        if shown == (order.status, order.visit):
            order.awaiting_echo = False
        elif not order.awaiting_echo:
            # Not what the MIS decided, and no change of its own is on the way: a decision was lost.
            self.tally.note(f"order {order.id} exported as {shown}, the MIS decided {(order.status, order.visit)}")

    def poll_and_decide(self) -> None:
        exported = self.poll()
        changes: dict[int, str] = {}
        for order_id in dict.fromkeys(int(a["ID"]) for a in exported):
            order = self.orders[order_id]
            if order.decided:
                continue
            clash = any(
                overlap(order.visit.span(self.tz), b)
                for b in self.taken(order.visit.resource, orders_besides=[order.id])
            )
            if clash:
                self.tally.double_bookings += 1
                self.tally.note(f"order {order.id} at {order.visit} was booked on time the MIS's book has busy")
            if clash or self.rng.random() < 0.25:
                changes[order.id] = self.change(order, 3, quote_first=True)
                self.tally.rejections += 1
            else:
                changes[order.id] = self.change(order, 1, quote_first=True)
                order.accepted_at_tick = self.tick
                self.book.of_order[order.id] = self.book.add(order.visit)
                self.tally.confirmations += 1
            order.decided = True
        confirmed = [
            o
            for o in self.orders.values()
            if o.status == 1
            and o.accepted_at_tick < self.tick
            and o.visit.start > self.now + HALF_HOUR
            and o.id not in changes
        ]
        self.rng.shuffle(confirmed)
        if confirmed and self.rng.random() < 0.35:
            # The patient called to cancel: the MIS rejects an order it confirmed, quoting the
            # LastChangedOn it exported first or last (both must apply).
            order = confirmed.pop()
            changes[order.id] = self.change(order, 3, quote_first=self.rng.random() < 0.5)
            self.book.drop(self.book.of_order.pop(order.id))
            self.tally.later_rejections += 1
        if confirmed and self.rng.random() < 0.3:
            order = confirmed.pop()
            # Mostly to another time of the same doctor, sometimes to another doctor.
            resource = order.visit.resource if self.rng.random() < 0.7 else self.rng.choice(list(self.staff))
            event_id = self.book.of_order[order.id]
            moved = self.free_visit(
                resource, order.visit.duration, on_grid=True, besides=[event_id], orders_besides=[order.id]
            )
            if moved is not None and moved != order.visit:
                changes[order.id] = self.change(order, 1, quote_first=self.rng.random() < 0.5, moved=moved)
                self.book.move(event_id, moved)
                self.tally.order_moves += 1
        if changes:
            self.send_order_changes(changes)

    def change(self, order: SimOrder, status: int, *, quote_first: bool, moved: Visit | None = None) -> str:
        """The `<o>` of one decision; the MIS's own idea of the order changes with it."""
        quoted = (order.first_export if quote_first else order.last_export) or {}
        stamp = quoted["LastChangedOn"]
        order.status, order.visit = status, moved or order.visit
        order.decisions += 1
        visit = order.visit
        if self.rng.random() < 0.5 and not order.awaiting_echo and order.last_export:
            # Echo the order as last exported (sample spelling), with the decision in it.
            attributes = {
                **order.last_export,
                "Status": str(status),
                "LastChangedOn": stamp,
                "MW_Resource_ID": str(visit.resource),
                "Reception_Datetime": f"{visit.start:{DATETIME}}",
                "Duration": str(visit.duration),
            }
        else:
            attributes = {"id": str(order.id), "status": str(status), "LastChangedOn": stamp}
            if moved is not None:
                attributes |= {
                    "reception_datetime": f"{visit.start:{DATETIME}}",
                    "duration": str(visit.duration),
                    "mw_resource_id": str(visit.resource),
                }
        return "<o " + " ".join(f'{name}="{xml_text(value)}"' for name, value in attributes.items()) + "/>"

    def send_order_changes(self, changes: dict[int, str]) -> None:
        result = self.post_import("<Orders>\n" + "\n".join(changes.values()) + "\n</Orders>")
        report = result.find("Orders")
        not_applied = {int(e.get("id")) for e in report if e.tag in ("conflict", "unknown")}
        not_applied |= {int(e.get("id")) for e in result.findall("Error") if e.get("section") == "Orders"}
        self.tally.conflicts += int(report.get("conflicts"))
        self.tally.changes_not_updated += len(changes) - int(report.get("updated"))
        if not_applied or report.get("updated") != str(len(changes)):
            self.tally.note(f"Orders import: {etree.tostring(result, encoding='unicode')[:600]}")
        self.count_warnings(result, real_keys=set())
        for order_id in changes:
            self.orders[order_id].awaiting_echo = order_id not in not_applied

    # --- the MIS's own book and its syncs ---------------------------------------------------------

    def change_own_book(self) -> None:
        own = [
            i
            for i, v in self.book.visits.items()
            if i not in self.book.of_order.values() and v.start > self.now + HALF_HOUR
        ]
        for _ in range(self.rng.randrange(3)):
            visit = self.free_visit(self.rng.choice(list(self.staff)), self.rng.choice((15, 20, 30, 45, 60)))
            if visit is not None:
                self.book.add(visit)
                self.tally.own_visits_added += 1
        if own and self.rng.random() < 0.3:
            event_id = self.rng.choice(own)
            visit = self.book.visits[event_id]
            moved = self.free_visit(visit.resource, visit.duration, besides=[event_id])
            if moved is not None and moved != visit:
                self.book.move(event_id, moved)
                self.tally.own_visits_moved += 1
                own.remove(event_id)
        if own and self.rng.random() < 0.15:
            self.book.drop(self.rng.choice(own))
            self.tally.own_visits_cancelled += 1

    def appointments(self, ids: Iterable[int], mode: str) -> str:
        rows = [
            f'<a tablename="SchedEvent" id="{i}" resource_id="{v.resource}" '
            f'ReceptionDateTime="{v.start:{DATETIME}}" Duration="{v.duration}" Title="Визит {i}"/>'
            for i in sorted(ids)
            for v in [self.book.visits[i]]
        ]
        return f'<Appointments SyncMode="{mode}">\n' + "\n".join(rows) + "\n</Appointments>"

    def real_overlaps(self, ids: Iterable[int]) -> set[str]:
        """The appointments (as the service names them) that truly overlap an order the portal holds and
        are not the MIS's own record of that order."""
        own_record = {event_id: order_id for order_id, event_id in self.book.of_order.items()}
        real = set()
        for event_id in ids:
            visit = self.book.visits[event_id]
            for order in self.orders.values():
                if order.status not in (0, 1) or order.visit.resource != visit.resource:
                    continue
                if own_record.get(event_id) == order.id and order.visit == visit:
                    continue
                if overlap(visit.span(self.tz), order.visit.span(self.tz)):
                    real.add(f"SchedEvent#{event_id}")
        return real

    def sync(self, full: bool) -> None:
        """The half-hour's diff; on the hour, the full sync fired at the same moment."""
        diff_ids = sorted(self.book.changed)
        documents = {"diff": self.appointments(diff_ids, "diff")}
        real = self.real_overlaps(diff_ids)
        if full:
            documents["full"] = self.appointments(self.book.visits, "full")
            real |= self.real_overlaps(self.book.visits)
            barrier = threading.Barrier(2)
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = list(pool.map(lambda body: self.post_import(body, barrier), documents.values()))
            self.tally.full_and_diff_pairs += 1
        else:
            results = [self.post_import(documents["diff"])]
        for result in results:
            self.expect_clean(result, "Appointments")
            self.count_warnings(result, real)
        self.book.sent.update({i: self.book.visits[i] for i in diff_ids})
        if full:
            self.book.sent = dict(self.book.visits)
        self.book.changed.clear()

    def count_warnings(self, result: etree._Element, real_keys: set[str]) -> None:
        for warning in result.iterfind("Warnings/w"):
            if warning.get("code") == "overlaps_order":
                if warning.get("section") == "Appointments" and warning.get("id") in real_keys:
                    continue
                self.tally.false_overlap_warnings += 1
                self.tally.note(f"false overlaps_order: {warning.get('id')}: {warning.text}")
            else:
                self.tally.other_warnings += 1
                self.tally.note(f"warning {warning.get('code')}: {warning.get('id')}: {warning.text}")

    # --- the portal side: patients -----------------------------------------------------------------

    def reference(
        self, resource: int, first: dt.date, last: dt.date, now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        busy = [v.span(self.tz) for v in self.book.sent.values() if v.resource == resource and v.duration > 0]
        busy += [
            o.visit.span(self.tz) for o in self.orders.values() if o.visit.resource == resource and o.status in (0, 1)
        ]
        return reference_slots(
            self.sent_schedules[resource], self.staff[resource].step, busy, first, last, self.tz, now
        )

    def slots(self, resource: int, first: dt.date, last: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The portal's free slots, checked against the reference."""
        query = urlencode({"resource_id": self.portal_ids[resource], "from": first.isoformat(), "to": last.isoformat()})
        before = dt.datetime.now(UTC)
        status, body = self.portal("GET", f"/slots?{query}")
        after = dt.datetime.now(UTC)
        if status != 200 or body.get("stale"):
            raise ServiceMisbehaved(f"slots?{query} answered {status}: {body}")
        offered = [(dt.datetime.fromisoformat(s["start"]), dt.datetime.fromisoformat(s["end"])) for s in body["slots"]]
        expected = self.reference(resource, first, last, before)
        # A slot beginning while the request ran may be on either side.
        offered_cmp = [s for s in offered if not before <= s[0] < after]
        expected_cmp = [s for s in expected if not before <= s[0] < after]
        self.tally.slot_checks += 1
        if offered_cmp != expected_cmp:
            self.tally.slot_mismatches += 1
            extra = [self.shown(s) for s in sorted(set(offered_cmp) - set(expected_cmp))[:4]]
            missing = [self.shown(s) for s in sorted(set(expected_cmp) - set(offered_cmp))[:4]]
            self.tally.note(
                f"slots of {resource} {first}..{last} at {self.now}: offered not free {extra}, free not offered {missing}"
            )
        return offered

    def shown(self, slot: tuple[dt.datetime, dt.datetime]) -> str:
        return f"{slot[0].astimezone(self.tz):%d.%m %H:%M}-{slot[1].astimezone(self.tz):%H:%M}"

    def check_all_slots(self) -> None:
        for resource in self.staff:
            self.slots(resource, self.now.date(), self.now.date() + dt.timedelta(days=BOOKING_DAYS))

    def patients(self) -> None:
        for n in range(self.rng.randrange(self.patients_per_half_hour + 1)):
            if self.rng.random() < 0.2:
                self.patient_tries_busy_time()
            else:
                self.patient_books(n)

    def patient_books(self, n: int) -> None:
        resource = self.rng.choice(list(self.staff))
        day = self.now.date() + dt.timedelta(days=self.rng.randrange(BOOKING_DAYS))
        step = dt.timedelta(minutes=self.staff[resource].step)
        starts = {s[0] for s in self.slots(resource, day, day)}
        future = sorted(s for s in starts if s.astimezone(self.tz).replace(tzinfo=None) > self.now + HALF_HOUR)
        if not future:
            return
        start = self.rng.choice(future)
        steps = 2 if start + step in starts and self.rng.random() < 0.3 else 1
        status, body = self.book_slot(
            resource, start.astimezone(self.tz).replace(tzinfo=None), steps * self.staff[resource].step, n
        )
        if status != 201:
            self.tally.free_slot_refused += 1
            self.tally.note(f"a free slot of {resource} at {start} for {steps} steps was refused: {status} {body}")

    def patient_tries_busy_time(self) -> None:
        """A patient asks for a slot of the grid that the MIS's book (or another order) has busy."""
        self.tally.busy_attempts += 1
        resource = self.rng.choice(list(self.staff))
        doctor, busy = self.staff[resource], self.taken(resource)
        candidates = [
            slot
            for n in range(BOOKING_DAYS)
            for day in [self.now.date() + dt.timedelta(days=n)]
            for rule in self.sent_schedules[resource].get(day, ())
            for slot in window_slots(day, rule, doctor.step, self.tz)
            if slot[0].astimezone(self.tz).replace(tzinfo=None) > self.now + HALF_HOUR
            and any(overlap(slot, b) for b in busy)
        ]
        if not candidates:
            return
        start = self.rng.choice(candidates)[0].astimezone(self.tz).replace(tzinfo=None)
        status, body = self.book_slot(resource, start, doctor.step, 0)
        if status != 409 or body.get("error", {}).get("code") != "slot_unavailable":
            self.tally.busy_slot_booked += 1
            self.tally.note(f"busy time of {resource} at {start} answered {status} {body}")

    def book_slot(self, resource: int, start: dt.datetime, duration: int, n: int) -> tuple[int, Any]:
        booking = {
            "resource_id": self.portal_ids[resource],
            "reception_datetime": f"{start:%Y-%m-%dT%H:%M}",
            "duration": duration,
            "name1": self.rng.choice(["Иванова", "Петров", "O'Brien", "Ли"]),
            "name2": "Анна",
            "phone": f"+7 912 {self.rng.randrange(1000000):07d}",
            "user_id": 1000 + self.tick * 10 + n,
        }
        status, body = self.portal("POST", "/orders", booking)
        if status == 201:
            self.orders[body["id"]] = SimOrder(body["id"], Visit(resource, start, duration))
            self.tally.orders += 1
        return status, body

    # --- the end ----------------------------------------------------------------------------------

    def finish(self) -> None:
        """A last poll; then every order as the portal shows it against the MIS's decisions, every order
        delivered, every applied change carried back, and the book free of double bookings."""
        self.poll()
        for order in self.orders.values():
            if order.first_export is None:
                self.tally.missed_orders += 1
                self.tally.note(f"order {order.id} never reached the MIS's polls")
            if order.awaiting_echo:
                self.tally.missed_changes += 1
                self.tally.note(f"order {order.id}: the MIS's change never came back in an export")
            status, seen = self.portal("GET", f"/orders/{order.id}")
            assert status == 200, seen
            shown = (
                seen["status"],
                Visit(
                    seen["mw_resource_id"],
                    dt.datetime.fromisoformat(seen["reception_datetime"]).replace(tzinfo=None),
                    seen["duration"],
                ),
            )
            if order.decided and shown != (order.status, order.visit):
                self.tally.lost_decisions += 1
                self.tally.note(
                    f"order {order.id}: the portal shows {shown}, the MIS decided {(order.status, order.visit)}"
                )
        by_resource: dict[int, list[Visit]] = {}
        for visit in self.book.visits.values():
            by_resource.setdefault(visit.resource, []).append(visit)
        for visits in by_resource.values():
            visits.sort()
            for a, b in itertools.pairwise(visits):
                if overlap(a.span(self.tz), b.span(self.tz)):
                    self.tally.double_bookings += 1
                    self.tally.note(f"the MIS's book holds {a} and {b} at once")


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
