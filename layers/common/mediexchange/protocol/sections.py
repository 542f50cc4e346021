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
from functools import cache
from operator import attrgetter
from typing import Any, Generic, TypeVar

from lxml import etree

from mediexchange.protocol.attributes import (
    INT64_MAX,
    INT64_MIN,
    MAX_TEXT,
    MINUTES_PER_DAY,
    Attributes,
    RecordContext,
    RecordError,
    line_of,
    local_name,
)
from mediexchange.protocol.bulk import (
    Columns,
    Distinct,
    FastRead,
    Integers,
    Texts,
    Values,
    finished,
    no_cycle_collection,
    plain_known,
    read_columns,
)
from mediexchange.records import (
    EXPORTED_ORDER_FIELDS,
    Appointment,
    Document,
    Group,
    OrderChange,
    OrderStatus,
    Resource,
    Schedule,
    SyncMode,
    Window,
)

R = TypeVar("R")

MAX_TABLENAME = 255  # characters (SPEC section 3)
MAX_KEY_BYTES = 1024  # DynamoDB's limit for a sort key, which a record's key becomes
MAX_WINDOWS = 1440  # time_rules of one schedule: keeps its item far below DynamoDB's 400 KB


@dataclass(frozen=True, slots=True)
class Attr:
    """An attribute a record element reads (name in lower case) and the form of its value: a name of
    `protocol.attributes.FORMS`, or text, status, syncmode. /services/schema.xsd is made from these."""

    name: str
    form: str = "text"
    required: bool = False
    low: int | None = None
    high: int | None = None
    max_length: int = MAX_TEXT


@cache  # asked once per record, answered once per table
def names(attributes: tuple[Attr, ...]) -> frozenset[str]:
    return frozenset(a.name for a in attributes)


_ID = Attr("id", "integer", required=True)
_NAME = Attr("name", required=True)
_POS = Attr("pos", "integer")
_RESOURCE_ID = Attr("resource_id", "integer", required=True)
GROUP_ATTRIBUTES = (_ID, _NAME, _POS)
RESOURCE_ATTRIBUTES = (
    _ID,
    _NAME,
    Attr("time_step", "integer", True, 1, MINUTES_PER_DAY),
    Attr("group_id", "integer"),
    _POS,
)
SCHEDULE_ATTRIBUTES = (_ID, Attr("date", "date", required=True), _RESOURCE_ID)
TIME_RULE_ATTRIBUTES = (Attr("w_start", "time"), Attr("w_end", "time"), Attr("b_start", "time"), Attr("b_end", "time"))
APPOINTMENT_ATTRIBUTES = (
    Attr("tablename", required=True, max_length=MAX_TABLENAME),
    _ID,
    _RESOURCE_ID,
    Attr("receptiondatetime", "datetime", required=True),
    Attr("duration", "integer", True, 0, MINUTES_PER_DAY),
    Attr("title"),
)
ORDER_CHANGE_ATTRIBUTES = (
    _ID,
    Attr("status", "status", required=True),
    Attr("lastchangedon", "datetime"),
    Attr("reception_datetime", "datetime"),
    Attr("duration", "integer", False, 1, MINUTES_PER_DAY),
    Attr("mw_resource_id", "integer"),
)

TIME_RULE_ALIASES = {
    "w_starttime": "w_start",
    "w_endtime": "w_end",
    "b_starttime": "b_start",
    "b_endtime": "b_end",
}
# Every other attribute of the export an MIS may echo back in an order change: read as text, ignored.
ORDER_ECHOED = frozenset(f.xml.lower() for _, f in EXPORTED_ORDER_FIELDS) - names(ORDER_CHANGE_ATTRIBUTES)


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
    key_attributes: tuple[str, ...]  # what the key is read from, for a record rejected for another reason
    attributes: tuple[Attr, ...]
    applies: Applies
    code: str = ""  # the store's short name for the kind (part of every stored key: never change it)
    storage: Storage = Storage.FEW
    when: Callable[[R], dt.date] | None = None  # BY_RESOURCE: the local date or start time a record is found by
    # The whole section at once when its records are written alike (protocol.bulk); None: record by record.
    read_fast: Callable[[RecordContext, etree._Element], FastRead[R] | None] | None = None

    def replaces(self, sync_mode: SyncMode) -> bool:
        """Whether sending this section replaces the stored set (records not sent are deleted)."""
        return self.applies is Applies.REPLACE or (self.applies is Applies.SYNC_MODE and sync_mode is SyncMode.FULL)

    def key_of(self, context: RecordContext, element: etree._Element) -> str | None:
        """The key of a record as far as it can be read (None if not): a rejected record keeps its stored
        version only if its key is known. Keys are stored as DynamoDB sort keys: at most 1,024 bytes."""
        try:
            a = context.attributes(element, self.name, frozenset(self.key_attributes), quiet=True)
            parts = [
                str(a.integer(n)) if n == "id" else a.text(n, max_length=MAX_TABLENAME) for n in self.key_attributes
            ]
        except RecordError:
            return None
        key = "#".join(parts)
        return key if len(key.encode()) <= MAX_KEY_BYTES else None

    def of(self, document: Document) -> tuple[R, ...] | None:
        """The section's records in a document; None if it was not sent."""
        records: tuple[R, ...] | None = document.sections.get(self.name)
        return records


# -- the readers -----------------------------------------------------------------------------------


def read_group(context: RecordContext, element: etree._Element) -> Group:
    a = context.attributes(element, "ResourceGroups", names(GROUP_ATTRIBUTES))
    return Group(a.integer("id"), a.text("name"), a.optional("pos", a.integer) or 0, line_of(element))


def read_resource(context: RecordContext, element: etree._Element) -> Resource:
    a = context.attributes(element, "Resources", names(RESOURCE_ATTRIBUTES))
    return Resource(
        id=a.integer("id"),
        name=a.text("name"),
        time_step=a.integer("time_step", 1, MINUTES_PER_DAY),
        group_id=a.optional("group_id", a.integer),
        pos=a.optional("pos", a.integer) or 0,
        line=line_of(element),
    )


def read_schedule(context: RecordContext, element: etree._Element) -> Schedule:
    """A resource's working windows of one day. No time_rules, or only empty or zero-length ones: a day off."""
    a = context.attributes(element, "Schedules", names(SCHEDULE_ATTRIBUTES))
    schedule_id, date, resource_id = a.integer("id"), a.date("date"), a.integer("resource_id")
    windows = []
    rules = 0
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if local_name(child) != "time_rules":
            message = f"unknown element {etree.QName(child).localname} ignored"
            context.warn("unknown_element", message, child, "Schedules", str(schedule_id))
            continue
        rules += 1
        if rules > MAX_WINDOWS:
            raise RecordError(f"a schedule takes at most {MAX_WINDOWS} time_rules", line_of(child))
        try:
            window = read_window(context, child)
        except RecordError as exc:
            raise RecordError(f"time_rules: {exc}", line_of(child), exc.attribute) from None
        if window is not None:
            windows.append(window)
    return Schedule(schedule_id, date, resource_id, tuple(windows), line_of(element))


def read_window(context: RecordContext, element: etree._Element) -> Window | None:
    """A working window in minutes from the day's midnight; an end before the start ends the next day
    (an overnight window). None when the window is empty: a day off."""
    a = context.attributes(element, "Schedules", names(TIME_RULE_ATTRIBUTES), TIME_RULE_ALIASES)
    if not a.given("w_start") and not a.given("w_end"):
        return None
    start, end = a.minutes_of_day("w_start"), a.minutes_of_day("w_end", allow_end_of_day=True)
    if end == start:
        return None
    overnight = end < start
    end += MINUTES_PER_DAY if overnight else 0
    break_start = a.optional("b_start", a.minutes_of_day)
    break_end = a.optional("b_end", lambda n: a.minutes_of_day(n, allow_end_of_day=True))
    if (break_start is None and break_end is None) or break_start == break_end:
        return Window(start, end)  # no break
    if break_start is None or break_end is None:
        raise RecordError("b_start and b_end go together: give both or neither")
    if overnight:  # the part of the break after midnight belongs to the next day
        break_start += MINUTES_PER_DAY if break_start < start else 0
        break_end += MINUTES_PER_DAY if break_end <= start else 0
    if not start <= break_start < break_end <= end:
        raise RecordError("the break must end after it starts and lie inside the working hours")
    return Window(start, end, break_start, break_end)


def read_appointment(context: RecordContext, element: etree._Element) -> Appointment:
    a = context.attributes(element, "Appointments", names(APPOINTMENT_ATTRIBUTES))
    start = a.local_datetime("receptiondatetime")
    context.exists_locally(start, a.name("receptiondatetime"))
    return Appointment(
        tablename=a.text("tablename", max_length=MAX_TABLENAME),
        id=a.integer("id"),
        resource_id=a.integer("resource_id"),
        start=start,
        duration=a.integer("duration", 0, MINUTES_PER_DAY),
        title=a.text("title", required=False),
        line=line_of(element),
    )


def read_order_change(context: RecordContext, element: etree._Element) -> OrderChange:
    a = context.attributes(element, "Orders", names(ORDER_CHANGE_ATTRIBUTES) | ORDER_ECHOED)
    order_id = a.integer("id")
    status = a.integer("status")
    if status not in {s.value for s in OrderStatus}:
        raise a.fail("status", f"must be 0 (received), 1 (accepted) or 3 (rejected), got {status}")
    last_changed = a.optional("lastchangedon", a.local_datetime)
    if last_changed is None:
        message = "no LastChangedOn: the change applies whatever the portal changed since the MIS read the order"
        context.warn("no_last_changed", message, element, "Orders", str(order_id))
    else:
        context.exists_locally(last_changed, a.name("lastchangedon"))
    reception = a.optional("reception_datetime", a.local_datetime)
    if reception is not None:
        context.exists_locally(reception, a.name("reception_datetime"))
    return OrderChange(
        id=order_id,
        status=OrderStatus(status),
        last_changed=last_changed,
        reception=reception,
        duration=a.optional("duration", lambda n: a.integer(n, 1, MINUTES_PER_DAY)),
        mw_resource_id=a.optional("mw_resource_id", a.integer),
        line=line_of(element),
        echoed=tuple((a.name(name), value.strip()) for name, value in a.values.items() if name in ORDER_ECHOED),
    )


# -- the same, section by section (protocol.bulk): for the sections that hold 10^4-10^5 records -----------

_UNREAD_DATE = dt.date(1, 1, 1)  # in a column where a value could not be read (that record goes the full way)
_UNREAD_TIME = dt.datetime(1, 1, 1)
_SHORT_KEY = MAX_KEY_BYTES // 4  # characters: a key this short is within the limit whatever it holds
_LONGEST_ID = len(str(INT64_MIN))
_ID_OF, _TABLENAME_OF = attrgetter("id"), attrgetter("tablename")
# The content of an `s` record the fast path reads: time_rules elements, nothing else (libxml2 writes an
# attribute value's `<` and `>` as &lt; and &gt;, so `/>` ends the element).
_TIME_RULES = "(?:<time_rules(?: [^<]*)?/>)*"


@no_cycle_collection()
def read_appointments(context: RecordContext, element: etree._Element) -> FastRead[Appointment] | None:
    """The Appointments section as read_appointment reads each record, column by column; None unless every
    child is an `a` element and the first one's attributes are all known."""

    def start(raw: str) -> dt.datetime:
        value = Attributes.detached("receptiondatetime", raw).local_datetime("receptiondatetime")
        context.exists_locally(value, "receptiondatetime")
        return value

    tablenames, titles = Texts("tablename", True, MAX_TABLENAME), Texts("title")
    ids, resource_ids = Integers("id", INT64_MIN, INT64_MAX), Integers("resource_id", INT64_MIN, INT64_MAX)
    starts, durations = Values("receptiondatetime", start, _UNREAD_TIME), Integers("duration", 0, MINUTES_PER_DAY)

    def make(found: Columns) -> list[Appointment]:
        return list(
            map(
                Appointment,
                tablenames.column(found),
                ids.column(found),
                resource_ids.column(found),
                starts.column(found),
                durations.column(found),
                titles.column(found),
                found.lines(),
            )
        )

    read = read_columns(element, "a", names(APPOINTMENT_ATTRIBUTES), make)
    if read is None:
        return None
    records, failed = read

    def keys_clean() -> bool:
        tables = set(map(_TABLENAME_OF, records))
        if len(tables) == 1:  # one table, as an MIS writes: the ids alone tell the keys apart
            (table,) = tables
            return len(set(map(_ID_OF, records))) == len(records) and len(table) + 1 + _LONGEST_ID <= _SHORT_KEY
        keys = [record.key for record in records]
        return len(set(keys)) == len(keys) and max(map(len, keys)) <= _SHORT_KEY

    return finished(records, failed, keys_clean)


@no_cycle_collection()
def read_schedules(context: RecordContext, element: etree._Element) -> FastRead[Schedule] | None:
    """The Schedules section as read_schedule reads each record, column by column; None unless every
    child is an `s` element and the first one's attributes are all known. The time_rules of a record are
    read by read_window once for each distinct way they are written (most days of a clinic are alike)."""
    ids, resource_ids = Integers("id", INT64_MIN, INT64_MAX), Integers("resource_id", INT64_MIN, INT64_MAX)
    dates = Values("date", lambda raw: Attributes.detached("date", raw).date("date"), _UNREAD_DATE)
    days = Distinct[tuple[Window, ...]](())

    def windows(schedule: etree._Element) -> tuple[Window, ...]:
        rules = list(schedule)
        if len(rules) > MAX_WINDOWS:
            raise RecordError(f"a schedule takes at most {MAX_WINDOWS} time_rules")
        made = []
        for rule in rules:
            if rule.tag != "time_rules" or not plain_known(rule.keys(), names(TIME_RULE_ATTRIBUTES), TIME_RULE_ALIASES):
                raise RecordError("time_rules the full reader reads")
            window = read_window(context, rule)
            if window is not None:
                made.append(window)
        return tuple(made)

    def make(found: Columns) -> list[Schedule]:
        first: dict[str, etree._Element] = {}  # the first record of each distinct content
        for inner, child in zip(found.inner, found.children, strict=True):
            first.setdefault(inner, child)
        contents = days.column(found.inner, found.failed, lambda inner: windows(first[inner]) if inner else ())
        return list(
            map(Schedule, ids.column(found), dates.column(found), resource_ids.column(found), contents, found.lines())
        )

    read = read_columns(element, "s", names(SCHEDULE_ATTRIBUTES), make, _TIME_RULES)
    if read is None:
        return None
    records, failed = read
    return finished(records, failed, lambda: len(set(map(_ID_OF, records))) == len(records))


def _by_id(record: Group | Resource | Schedule | OrderChange) -> str:
    return str(record.id)


def _appointment_key(record: Appointment) -> str:
    return record.key


# -- the table -------------------------------------------------------------------------------------

ID = ("id",)
GROUPS = Section("ResourceGroups", "rg", Group, read_group, _by_id, ID, GROUP_ATTRIBUTES, Applies.REPLACE, "G")
RESOURCES = Section("Resources", "r", Resource, read_resource, _by_id, ID, RESOURCE_ATTRIBUTES, Applies.REPLACE, "R")
SCHEDULES = Section(
    "Schedules",
    "s",
    Schedule,
    read_schedule,
    _by_id,
    ID,
    SCHEDULE_ATTRIBUTES,
    Applies.REPLACE,
    "S",
    Storage.BY_RESOURCE,
    lambda s: s.date,
    read_schedules,
)
APPOINTMENTS = Section(
    "Appointments",
    "a",
    Appointment,
    read_appointment,
    _appointment_key,
    ("tablename", "id"),
    APPOINTMENT_ATTRIBUTES,
    Applies.SYNC_MODE,
    "A",
    Storage.BY_RESOURCE,
    lambda a: a.start,
    read_appointments,
)
ORDERS = Section(
    "Orders",
    "o",
    OrderChange,
    read_order_change,
    _by_id,
    ID,
    ORDER_CHANGE_ATTRIBUTES + tuple(Attr(name) for name in sorted(ORDER_ECHOED)),
    Applies.CHANGES,
)

# In the order an import applies them and an answer lists them.
SECTIONS: tuple[Section[Any], ...] = (GROUPS, RESOURCES, SCHEDULES, APPOINTMENTS, ORDERS)
SYNCED: tuple[Section[Any], ...] = tuple(s for s in SECTIONS if s.applies is not Applies.CHANGES)
BY_NAME: dict[str, Section[Any]] = {s.name.lower(): s for s in SECTIONS}
