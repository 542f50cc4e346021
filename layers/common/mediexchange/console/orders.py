"""Orders in the console: search by id, resource and day; an order with its history.

The order page shows the patient's data: the operator and the clinic's own integrator need it to
match an order with the MIS's record. It is never logged.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response

from mediexchange import portal
from mediexchange.console.board import today_in
from mediexchange.console.pages import Page
from mediexchange.errors import InvalidRequest, NotFound
from mediexchange.portal import STATUS_NAMES, parse_day
from mediexchange.records import Clinic, Order
from mediexchange.store import OrderEvent, Store
from mediexchange.timeutil import NonexistentLocalTime, from_epoch, localize, zone

_ID = re.compile(r"[0-9]{1,18}")


def local_minute(local: dt.datetime, tz: ZoneInfo, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A stored local time as the clinic's wall clock shows it (the page names the zone once); the
    offset is added only to a time the autumn clock change repeats, whose two occurrences it tells apart."""
    shown = local.strftime(fmt)
    if local.replace(fold=0, tzinfo=tz).utcoffset() == local.replace(fold=1, tzinfo=tz).utcoffset():
        return shown
    try:
        offset = localize(local, tz).strftime("%z")
    except NonexistentLocalTime:  # in the spring gap: not a time anything is booked at
        return shown
    return f"{shown} ({offset[:3]}:{offset[3:]})"


def local_instant(seconds: float, tz: ZoneInfo) -> str:
    """An instant (unix seconds) in the clinic's zone, to the second."""
    return local_minute(from_epoch(int(seconds), tz), tz, "%d.%m.%Y %H:%M:%S")


# -- search ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    order_id: int
    status: str
    reception: str
    duration: int
    resource_id: int
    resource_name: str


@dataclass(frozen=True, slots=True)
class Search:
    clinic: Clinic
    order_id: str  # as typed
    resource_id: int | None
    day: dt.date
    resources: tuple[tuple[int, str], ...]  # (portal id, name) for the form
    hits: tuple[Hit, ...]
    by_id: bool  # searched by id (day and resource ignored)


def _hit(order: Order, tz: ZoneInfo) -> Hit:
    reception = local_minute(order.reception, tz)
    return Hit(order.id, STATUS_NAMES[order.status], reception, order.duration, order.resource_id, order.resource_name)


def search(store: Store, clinic: Clinic, query: Mapping[str, str]) -> Search:
    """By `id` (exact), else the orders whose visit is on `day` (default today), of `resource_id` if given."""
    tz = zone(clinic.timezone)
    typed = (query.get("id") or "").strip()
    raw_resource = (query.get("resource_id") or "").strip()
    if raw_resource and not _ID.fullmatch(raw_resource):
        raise InvalidRequest("resource_id must be a resource's number")
    resource_id = int(raw_resource) if raw_resource else None
    day = parse_day((query.get("day") or "").strip(), "day", today_in(clinic))
    resources = tuple((portal_id, r.name) for portal_id, r in portal.resources(store, clinic.clinic_id))
    if typed:
        if not _ID.fullmatch(typed):
            raise InvalidRequest("an order id is a number")
        order = store.orders.get(clinic.clinic_id, int(typed))
        one = (_hit(order, tz),) if order is not None else ()
        return Search(clinic, typed, resource_id, day, resources, one, True)
    found = store.orders.on_days(clinic.clinic_id, day, day)
    if resource_id is not None:
        found = [o for o in found if o.resource_id == resource_id]
    found.sort(key=lambda o: (o.reception.replace(tzinfo=tz).astimezone(dt.UTC), o.id))
    hits = tuple(_hit(o, tz) for o in found)
    return Search(clinic, typed, resource_id, day, resources, hits, False)


# -- one order -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    en: str
    ru: str
    value: str
    patient: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    at: str  # clinic time
    kind: str  # booked | exported | accepted | rejected | received | moved
    by: str  # portal | mis
    status: str
    reception: str
    duration: int
    resource_name: str
    mw_resource_id: int
    import_id: str | None
    moved: bool  # the MIS changed its time, length or resource


@dataclass(frozen=True, slots=True)
class OrderPage:
    clinic: Clinic
    order: Order
    status: str
    fields: tuple[Field, ...]
    events: tuple[Event, ...]


def _fields(order: Order, tz: ZoneInfo) -> tuple[Field, ...]:
    changed = local_instant(order.last_changed, tz)
    return (
        Field("Status", "Статус", STATUS_NAMES[order.status]),
        Field("Visit", "Приём", local_minute(order.reception, tz)),
        Field("Duration, min", "Длительность, мин", str(order.duration)),
        Field("Resource", "Ресурс", f"{order.resource_name} (portal {order.resource_id}, MIS {order.mw_resource_id})"),
        Field("Ordered on", "Дата заказа", order.order_date.strftime("%d.%m.%Y")),
        Field("Last changed (LastChangedOn)", "Изменён (LastChangedOn)", changed),
        Field("Surname", "Фамилия", order.name1, True),
        Field("Name", "Имя", order.name2, True),
        Field("Patronymic", "Отчество", order.name3, True),
        Field("Phone", "Телефон", order.phone, True),
        Field("E-mail", "E-mail", order.email, True),
        Field("City", "Город", order.city, True),
        Field("Address", "Адрес", order.address, True),
        Field("Aim", "Цель визита", order.aim, True),
        Field("Comment", "Комментарий", order.comment, True),
        Field("Portal user id", "Пользователь портала", order.user_id, True),
        Field("Portal user name", "Имя пользователя портала", order.user_name, True),
    )


def _events(history: Sequence[OrderEvent], tz: ZoneInfo) -> tuple[Event, ...]:
    events: list[Event] = []
    before: tuple[object, ...] | None = None
    for e in history:
        where = (e.reception, e.duration, e.mw_resource_id)
        moved = e.kind == "changed" and before is not None and where != before
        # An MIS change is named by what it did: moved the visit, else the status it set.
        kind = e.kind if e.kind != "changed" else "moved" if moved else STATUS_NAMES[e.status]
        if e.kind != "exported":
            before = where
        reception = local_minute(e.reception, tz)
        events.append(
            Event(
                local_instant(e.at, tz),
                kind,
                e.by,
                STATUS_NAMES[e.status],
                reception,
                e.duration,
                e.resource_name,
                e.mw_resource_id,
                e.import_id,
                moved,
            )
        )
    return tuple(events)


def order_page(store: Store, clinic: Clinic, order_id: str) -> OrderPage:
    if not _ID.fullmatch(order_id):
        raise NotFound(f"no order {order_id}")
    order = store.orders.get(clinic.clinic_id, int(order_id))
    if order is None:
        raise NotFound(f"no order {order_id}")
    tz = zone(clinic.timezone)
    history = store.history.of_order(clinic.clinic_id, order.id)
    return OrderPage(clinic, order, STATUS_NAMES[order.status], _fields(order, tz), _events(history, tz))


# -- the pages -------------------------------------------------------------------------------------


def search_page(page: Page, store: Store, clinic_id: str) -> Response[str]:
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    found = search(store, page.clinic, page.event.query_string_parameters or {})
    return page.render("orders.html", search=found, ONE_DAY=dt.timedelta(days=1))


def order_page_of(page: Page, store: Store, clinic_id: str, order_id: str) -> Response[str]:
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    return page.render("order.html", order=order_page(store, page.clinic, order_id))
