"""The sections of a MediExchange document, one declaration each: element names, record type, reader,
key, how the store keeps them, and how an import applies them.

Adding a section is a record type in `records` and an entry here; the reader, the import, the store
and the answer follow the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from lxml import etree

from mediexchange.protocol.attributes import (
    MINUTES_PER_DAY,
    RecordContext,
    RecordError,
    line_of,
    local_name,
)
from mediexchange.records import (
    ORDER_FIELDS,
    Appointment,
    Document,
    Group,
    OrderChange,
    OrderStatus,
    Resource,
    Schedule,
    SyncedRecord,
    Window,
)

R = TypeVar("R")

TIME_RULE_ALIASES = {
    "w_starttime": "w_start",
    "w_endtime": "w_end",
    "b_starttime": "b_start",
    "b_endtime": "b_end",
}
# What an MIS may send to change an order; every other attribute of the export it may echo back, ignored.
ORDER_CHANGE_ATTRIBUTES = frozenset(
    {"id", "status", "lastchangedon", "reception_datetime", "duration", "mw_resource_id"}
)
ORDER_ECHOED = frozenset(f.xml.lower() for _, f in ORDER_FIELDS) - ORDER_CHANGE_ATTRIBUTES


class Storage(Enum):
    """How the store keeps a section's records."""

    FEW = "few"  # tens to hundreds per clinic: one partition
    BY_RESOURCE = "by_resource"  # up to 10^5 per clinic: spread over partitions, found by resource and time


class Applies(Enum):
    """What a sent section does to what is stored."""

    REPLACE = "replace"  # the stored set becomes the sent set
    SYNC_MODE = "sync_mode"  # as the section's SyncMode says: full replaces, diff adds and updates
    CHANGES = "changes"  # changes to records the portal owns (orders)


@dataclass(frozen=True, eq=False)
class Section(Generic[R]):
    name: str  # the section element, as answers spell it
    tag: str  # its record element
    record: type[R]
    read: Callable[[RecordContext, etree._Element], R]
    key: Callable[[R], str]  # unique within the section
    applies: Applies
    code: str = ""  # the store's short name for the kind (part of every stored key: never change it)
    storage: Storage = Storage.FEW
    when: Callable[[R], dt.date] | None = None  # BY_RESOURCE: the local date or start time a record is found by

    def of(self, document: Document) -> tuple[R, ...] | None:
        """The section's records in a document; None if it was not sent."""
        records: tuple[R, ...] | None = document.sections.get(self.name)
        return records


# -- the readers -----------------------------------------------------------------------------------


def read_group(context: RecordContext, element: etree._Element) -> Group:
    a = context.attributes(element, "ResourceGroups", frozenset({"id", "name", "pos"}))
    return Group(a.integer("id"), a.text("name"), a.optional("pos", a.integer) or 0, line_of(element))


def read_resource(context: RecordContext, element: etree._Element) -> Resource:
    a = context.attributes(element, "Resources", frozenset({"id", "name", "time_step", "group_id", "pos"}))
    return Resource(
        id=a.integer("id"),
        name=a.text("name"),
        time_step=a.integer("time_step", 1, MINUTES_PER_DAY),
        group_id=a.optional("group_id", a.integer),
        pos=a.optional("pos", a.integer) or 0,
        line=line_of(element),
    )


def read_schedule(context: RecordContext, element: etree._Element) -> Schedule:
    a = context.attributes(element, "Schedules", frozenset({"id", "date", "resource_id"}))
    schedule_id, date, resource_id = a.integer("id"), a.date("date"), a.integer("resource_id")
    windows = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if local_name(child) != "time_rules":
            context.warn(
                "unknown_element", f"unknown element {etree.QName(child).localname} ignored", child, "Schedules"
            )
            continue
        try:
            windows.append(read_window(context, child))
        except RecordError as exc:
            raise RecordError(f"time_rules: {exc}", line_of(child)) from None
    if not windows:
        raise RecordError("a schedule needs at least one time_rules element")
    return Schedule(schedule_id, date, resource_id, tuple(windows), line_of(element))


def read_window(context: RecordContext, element: etree._Element) -> Window:
    known = frozenset({"w_start", "w_end", "b_start", "b_end"})
    a = context.attributes(element, "Schedules", known, TIME_RULE_ALIASES)
    start, end = a.minutes_of_day("w_start"), a.minutes_of_day("w_end", allow_end_of_day=True)
    if end <= start:
        raise RecordError(f"w_end must be after w_start ({a.text('w_start')}-{a.text('w_end')})")
    break_start = a.optional("b_start", a.minutes_of_day)
    break_end = a.optional("b_end", lambda n: a.minutes_of_day(n, allow_end_of_day=True))
    if (break_start is None) != (break_end is None):
        raise RecordError("b_start and b_end go together: give both or neither")
    if break_start is not None and break_end is not None and not start <= break_start < break_end <= end:
        raise RecordError("the break must end after it starts and lie inside the working hours")
    return Window(start, end, break_start, break_end)


def read_appointment(context: RecordContext, element: etree._Element) -> Appointment:
    known = frozenset({"tablename", "id", "resource_id", "receptiondatetime", "duration", "title"})
    a = context.attributes(element, "Appointments", known)
    start = a.local_datetime("receptiondatetime")
    context.exists_locally(start, "ReceptionDateTime")
    return Appointment(
        tablename=a.text("tablename"),
        id=a.integer("id"),
        resource_id=a.integer("resource_id"),
        start=start,
        duration=a.integer("duration", 1, MINUTES_PER_DAY),
        title=a.text("title", required=False),
        line=line_of(element),
    )


def read_order_change(context: RecordContext, element: etree._Element) -> OrderChange:
    a = context.attributes(element, "Orders", ORDER_CHANGE_ATTRIBUTES | ORDER_ECHOED)
    status = a.integer("status")
    if status not in {s.value for s in OrderStatus}:
        raise RecordError(f"attribute status must be 0 (received), 1 (accepted) or 3 (rejected), got {status}")
    last_changed = a.local_datetime("lastchangedon")
    context.exists_locally(last_changed, "LastChangedOn")
    reception = a.optional("reception_datetime", a.local_datetime)
    if reception is not None:
        context.exists_locally(reception, "reception_datetime")
    return OrderChange(
        id=a.integer("id"),
        status=OrderStatus(status),
        last_changed=last_changed,
        reception=reception,
        duration=a.optional("duration", lambda n: a.integer(n, 1, MINUTES_PER_DAY)),
        mw_resource_id=a.optional("mw_resource_id", a.integer),
        line=line_of(element),
    )


def _by_id(record: Group | Resource | Schedule | OrderChange) -> str:
    return str(record.id)


def _appointment_key(record: Appointment) -> str:
    return record.key


# -- the table -------------------------------------------------------------------------------------

GROUPS = Section("ResourceGroups", "rg", Group, read_group, _by_id, Applies.REPLACE, "G")
RESOURCES = Section("Resources", "r", Resource, read_resource, _by_id, Applies.REPLACE, "R")
SCHEDULES = Section(
    "Schedules", "s", Schedule, read_schedule, _by_id, Applies.REPLACE, "S", Storage.BY_RESOURCE, lambda s: s.date
)
APPOINTMENTS = Section(
    "Appointments",
    "a",
    Appointment,
    read_appointment,
    _appointment_key,
    Applies.SYNC_MODE,
    "A",
    Storage.BY_RESOURCE,
    lambda a: a.start,
)
ORDERS = Section("Orders", "o", OrderChange, read_order_change, _by_id, Applies.CHANGES)

# In the order an import applies them and an answer lists them.
SECTIONS: tuple[Section[Any], ...] = (GROUPS, RESOURCES, SCHEDULES, APPOINTMENTS, ORDERS)
SYNCED: tuple[Section[Any], ...] = tuple(s for s in SECTIONS if s.applies is not Applies.CHANGES)
BY_NAME: dict[str, Section[Any]] = {s.name.lower(): s for s in SECTIONS}
KIND_OF: dict[type[SyncedRecord], Section[Any]] = {s.record: s for s in SYNCED}
