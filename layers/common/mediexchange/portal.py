"""The portal's use cases: a clinic and its resources, free slots, booking, reading an order.

Answers are plain JSON-ready dicts; times are the clinic's local time, ISO 8601 with offset.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from mediexchange.errors import InvalidRequest, NotFound, SlotUnavailable, SyncStale
from mediexchange.protocol.sections import APPOINTMENTS, GROUPS, SCHEDULES
from mediexchange.records import (
    EXPORTED_ORDER_FIELDS,
    PATIENT_FIELDS,
    Clinic,
    Codec,
    Order,
    OrderStatus,
    Resource,
    Schedule,
)
from mediexchange.slots import Interval, free_slots, is_free_run, local_interval
from mediexchange.store import Store
from mediexchange.timeutil import NonexistentLocalTime, localize, zone

logger = Logger(service="mediexchange")

MAX_DAYS = 31
ONE_DAY = dt.timedelta(days=1)
NUMBER_OR_STRING = frozenset({"user_id"})
BOOKING_FIELDS = frozenset({"resource_id", "reception_datetime", "duration", *PATIENT_FIELDS})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(r"\+?[0-9 ()\-]{5,32}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Local time, to the minute; an offset (+01:00) picks the occurrence of a time the autumn clock change repeats.
_LOCAL_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:00)?([+-][0-9]{2}:[0-9]{2})?")
# What the answers call an order's status (status_name), and the console shows.
STATUS_NAMES = {OrderStatus.RECEIVED: "received", OrderStatus.ACCEPTED: "accepted", OrderStatus.REJECTED: "rejected"}
# The reads an answer makes at once (the clinic beside its resource; a resource's schedules, busy time and
# holds): one pool for the process, not one per call. Its tasks are single store calls that wait on nothing
# in it, so callers running on pools of their own (the console's board: 8 resources, 3 reads each) can wait
# on them; its threads start as needed.
READS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="portal-read")


def _clinic(store: Store, clinic_id: str) -> Clinic:
    clinic = store.clinics.get(clinic_id)
    if clinic is None or not clinic.enabled:
        raise NotFound(f"no clinic {clinic_id}")
    return clinic


def resources(store: Store, clinic_id: str) -> list[tuple[int, Resource]]:
    """The clinic's current resources with their portal ids, in display order."""
    listed = store.records.resources_with_ids(clinic_id)
    return sorted(listed, key=lambda pair: (pair[1].pos, pair[1].name, pair[0]))


def _clinic_and_resource(store: Store, clinic_id: str, portal_id: int | None) -> tuple[Clinic, Resource | None]:
    """The clinic (NotFound unless enabled) and its resource of a portal id (none asked: None), read at
    once: one wait, not two. The resource alone is read, by its portal id, never the clinic's every one."""
    if portal_id is None:
        return _clinic(store, clinic_id), None
    found = READS.submit(store.records.resource, clinic_id, portal_id)
    return _clinic(store, clinic_id), found.result()


def _resource(found: Resource | None, clinic_id: str, portal_id: int) -> Resource:
    if found is None:
        raise NotFound(f"no resource {portal_id} in clinic {clinic_id}")
    return found


def _iso(instant: dt.datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).isoformat()


def clinic_view(store: Store, clinic_id: str) -> dict[str, Any]:
    clinic = _clinic(store, clinic_id)
    groups = sorted(store.records.all(clinic_id, GROUPS), key=lambda g: (g.pos, g.name))
    return {
        "clinic_id": clinic.clinic_id,
        "name": clinic.name,
        "timezone": clinic.timezone,
        "groups": [{"group_id": g.id, "name": g.name, "pos": g.pos} for g in groups],
        "resources": [
            {
                "resource_id": portal_id,
                "mw_resource_id": r.id,
                "name": r.name,
                "group_id": r.group_id,
                "time_step": r.time_step,
                "pos": r.pos,
            }
            for portal_id, r in resources(store, clinic_id)
        ],
    }


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value)
    raise InvalidRequest(f"{name} must be an integer")


def _integer_or_none(value: Any) -> int | None:
    """What `_integer` makes of a value, or None where it refuses it."""
    try:
        return None if value is None else _integer(value, "")
    except InvalidRequest:
        return None


def parse_day(value: str | None, name: str, default: dt.date | None = None) -> dt.date:
    """A day written YYYY-MM-DD (the request parameter `name`); none given is `default`, if there is one."""
    if not value and default is not None:
        return default
    if not value or not _DATE.fullmatch(value):
        raise InvalidRequest(f"{name} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} is not a real date: {value}") from None


@dataclass(frozen=True, slots=True)
class Busy:
    """Time the MIS says is taken: one appointment, as elapsed time."""

    interval: Interval
    tablename: str
    appointment_id: int
    title: str


@dataclass(frozen=True, slots=True)
class ResourceDays:
    """What decides a resource's free slots on the local days `first` to `last`, and those slots.

    `schedules` and `busy` reach from the day before (an overnight window or a late appointment
    reaches into `first`); `holds` are {order id: interval} of the orders that hold time around the
    days; `free` are the slots starting on the days, not yet begun.
    """

    portal_id: int
    resource: Resource
    first: dt.date
    last: dt.date
    schedules: tuple[Schedule, ...]
    busy: tuple[Busy, ...]
    holds: Mapping[int, Interval]
    free: tuple[Interval, ...]


def resource_days(
    store: Store,
    clinic: Clinic,
    resource: Resource,
    first: dt.date,
    last: dt.date,
    portal_id: int = 0,
    now: dt.datetime | None = None,
) -> ResourceDays:
    """The one computation of free slots: the portal's slots answer, booking and the console's board."""
    tz = zone(clinic.timezone)
    clinic_id, records = clinic.clinic_id, store.records
    since = (first - ONE_DAY).isoformat()
    # Three independent reads at once: the answer waits for the slowest, not for their sum.
    schedules_read = READS.submit(records.of_resource, clinic_id, SCHEDULES, resource.id, since, last.isoformat())
    appointments_read = READS.submit(records.of_resource, clinic_id, APPOINTMENTS, resource.id, since, f"{last}T99")
    holds_read = READS.submit(store.orders.held, clinic_id, resource.id, first, last)
    schedules, appointments, holds = schedules_read.result(), appointments_read.result(), holds_read.result()
    busy = [Busy(local_interval(a.start, a.duration, tz), a.tablename, a.id, a.title) for a in appointments]
    taken = [b.interval for b in busy] + list(holds.values())
    slots = free_slots(schedules, resource.time_step, taken, tz, now or dt.datetime.now(dt.UTC))
    free = tuple(slot for slot in slots if first <= slot.start.astimezone(tz).date() <= last)
    return ResourceDays(portal_id, resource, first, last, tuple(schedules), tuple(busy), holds, free)


def stale_since(clinic: Clinic, tz: ZoneInfo) -> str | None:
    """When the clinic's MIS last sent its busy time, in the clinic's time, if that is too long ago."""
    since = clinic.stale_since(time.time())
    return None if since is None else _iso(dt.datetime.fromtimestamp(since, dt.UTC), tz)


def slots_view(store: Store, clinic_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    # The resource asked for is read beside the clinic; the clinic's 404 still comes first.
    clinic, found = _clinic_and_resource(store, clinic_id, _integer_or_none(params.get("resource_id")))
    if "resource_id" not in params:
        raise InvalidRequest("resource_id is required")
    portal_id = _integer(params["resource_id"], "resource_id")
    resource = _resource(found, clinic_id, portal_id)
    first, last = parse_day(params.get("from"), "from"), parse_day(params.get("to"), "to")
    if last < first:
        raise InvalidRequest("to is before from")
    if (last - first).days >= MAX_DAYS:
        raise InvalidRequest(f"at most {MAX_DAYS} days at once")
    tz = zone(clinic.timezone)
    last_sync = stale_since(clinic, tz)
    if last_sync is not None:
        logger.warning("stale busy time: no slots offered", extra={"clinic_id": clinic_id, "synced_at": last_sync})
        return {"slots": [], "stale": True, "last_sync": last_sync}
    slots = resource_days(store, clinic, resource, first, last).free
    return {"slots": [{"start": _iso(s.start, tz), "end": _iso(s.end, tz)} for s in slots]}


def _text(body: Mapping[str, Any], name: str) -> str:
    rule = PATIENT_FIELDS[name]
    value = body.get(name, "")
    if value is None:
        value = ""
    if name in NUMBER_OR_STRING and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a portal naturally sends its own ids as numbers
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    refused = rule.refused_character(value)  # before trimming: a control character is refused, never trimmed away
    if refused is not None:
        where = value.index(refused) + 1
        raise InvalidRequest(f"{name} holds a control or invalid character (U+{ord(refused):04X} at character {where})")
    value = value.strip()
    if rule.required and not value:
        raise InvalidRequest(f"{name} is required")
    if len(value) > rule.longest:
        raise InvalidRequest(f"{name} is longer than {rule.longest} characters")
    return value


def _patient(body: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: _text(body, name) for name in PATIENT_FIELDS}
    if not _PHONE.fullmatch(fields["phone"]) or sum(c.isdigit() for c in fields["phone"]) < 5:
        raise InvalidRequest("phone must be a phone number: digits, spaces, +, -, ( and )")
    if fields["email"] and not _EMAIL.fullmatch(fields["email"]):
        raise InvalidRequest("email is not an e-mail address")
    return fields


def _local(written: dt.datetime, tz: ZoneInfo, raw: str) -> dt.datetime:
    """The clinic's local time (naive, its `fold` naming the occurrence) of a booking's start as written."""
    if written.tzinfo is None:
        return written
    local = written.astimezone(tz)
    if local.utcoffset() != written.utcoffset():
        raise InvalidRequest(f"reception_datetime {raw} has an offset the clinic's zone ({tz.key}) does not have then")
    return local.replace(tzinfo=None)


def book(store: Store, clinic_id: str, body: Any) -> dict[str, Any]:
    """Create an order on free slots; of concurrent requests for one slot exactly one wins.

    What the body alone decides is checked before anything is read: a bad body is refused (400) without a
    read, even for a clinic or resource that does not exist (404); then the clinic, the resource, and what
    depends on them (the duration's step, the clinic's zone, its busy time)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(body) - BOOKING_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]}")
    if "resource_id" not in body:
        raise InvalidRequest("resource_id is required")
    portal_id = _integer(body["resource_id"], "resource_id")
    raw_start = body.get("reception_datetime")
    if not isinstance(raw_start, str) or not _LOCAL_MINUTE.fullmatch(raw_start):
        raise InvalidRequest("reception_datetime must be local time YYYY-MM-DDTHH:MM, optionally with its offset")
    try:
        written = dt.datetime.fromisoformat(raw_start)
    except ValueError:
        raise InvalidRequest(f"reception_datetime is not a real time: {raw_start}") from None
    asked = _integer(body["duration"], "duration") if "duration" in body else None
    patient = _patient(body)
    clinic, found = _clinic_and_resource(store, clinic_id, portal_id)
    resource = _resource(found, clinic_id, portal_id)
    step = resource.time_step
    duration = step if asked is None else asked
    if duration <= 0 or duration % step or duration > 1440:
        raise InvalidRequest(f"duration must be a multiple of the resource's time_step ({step} minutes)")
    tz = zone(clinic.timezone)
    start = _local(written, tz, raw_start)
    last_sync = stale_since(clinic, tz)
    if last_sync is not None:
        raise SyncStale(f"the clinic's busy time was last synced at {last_sync}; nothing can be booked until it is")
    try:
        begins = localize(start, tz).astimezone(dt.UTC)
    except NonexistentLocalTime:
        raise SlotUnavailable(f"{raw_start} does not exist in {clinic.timezone}") from None
    # Every step must be free: a booking in an overnight window may run past midnight.
    ends = (start + dt.timedelta(minutes=duration - 1)).date()
    free = resource_days(store, clinic, resource, start.date(), ends).free
    if not is_free_run(free, begins, duration // step, step):
        raise SlotUnavailable("that time is not free")

    now = int(time.time())
    [order_id] = store.clinics.reserve_order_ids(clinic_id)
    order = Order(
        id=order_id,
        status=OrderStatus.RECEIVED,
        order_date=dt.datetime.fromtimestamp(now, tz).date(),
        resource_id=portal_id,
        mw_resource_id=resource.id,
        resource_name=resource.name,
        reception=start,
        duration=duration,
        last_changed=now,
        portal_changed=now,
        **patient,
    )
    wanted = local_interval(start, duration, tz)

    def nobody_holds_it(around: dict[int, Interval]) -> None:
        if any(wanted.overlaps(interval) for interval in around.values()):
            raise SlotUnavailable("that time was just taken")

    store.orders.book(clinic_id, order, tz, nobody_holds_it)
    return order_json(order, tz)


def _json_value(codec: Codec, value: Any, tz: ZoneInfo) -> Any:
    if codec is Codec.DATE:
        return value.isoformat()
    if codec is Codec.LOCAL_TIME:
        return localize(value, tz).isoformat()
    if codec is Codec.INSTANT:
        return _iso(dt.datetime.fromtimestamp(value, dt.UTC), tz)
    if codec is Codec.STATUS:
        return value.value
    return value


def order_json(order: Order, tz: ZoneInfo) -> dict[str, Any]:
    """The order as the patient sees it: every field of `records.Order`, times in the clinic's zone."""
    answer = {f.json: _json_value(f.codec, getattr(order, name), tz) for name, f in EXPORTED_ORDER_FIELDS}
    return {**answer, "status_name": STATUS_NAMES[order.status]}


def order_view(store: Store, clinic_id: str, order_id: str) -> dict[str, Any]:
    clinic = _clinic(store, clinic_id)
    order = store.orders.get(clinic_id, _integer(order_id, "order id"))
    if order is None:
        raise NotFound(f"no order {order_id} in clinic {clinic_id}")
    return order_json(order, zone(clinic.timezone))
