"""Reading a parsed MediExchange document into typed records, collecting every problem found.

Names of elements and attributes are matched case-insensitively (the seed's table says `id`, its
sample sends `ID`). Every record is checked; one with an error is left out and the error kept,
so a rejected import reports everything wrong with it at once.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from lxml import etree

from mediexchange.errors import BadRequest, InvalidRecords, MissingClientKey
from mediexchange.records import (
    Appointment,
    Document,
    Group,
    Issue,
    OrderChange,
    OrderStatus,
    Resource,
    Schedule,
    SyncMode,
    Window,
)
from mediexchange.timeutil import NonexistentLocalTime, localize

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 1000  # characters of one text value; keeps every stored item far below DynamoDB's 400 KB
MINUTES_PER_DAY = 1440
MAX_REPORTED = 1000  # errors, and warnings, listed in one answer

ROOT = "mediexchange"
# section element (lower case) -> (name used in answers, record element)
SECTIONS = {
    "resourcegroups": ("ResourceGroups", "rg"),
    "resources": ("Resources", "r"),
    "schedules": ("Schedules", "s"),
    "appointments": ("Appointments", "a"),
    "orders": ("Orders", "o"),
}
# Attributes of `o` that the portal exports and an MIS may send back as they were: known, ignored.
ORDER_ECHOED = frozenset(
    [
        "user_id",
        "user_name",
        "order_date",
        "resource_name",
        "resource_id",
        "type",
        "name1",
        "name2",
        "name3",
        "aim",
        "phone",
        "city",
        "address",
        "email",
        "comment",
    ]
)
TIME_RULE_ALIASES = {
    "w_starttime": "w_start",
    "w_endtime": "w_end",
    "b_starttime": "b_start",
    "b_endtime": "b_end",
}

_INT = re.compile(r"[+-]?\d{1,19}")
_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATETIME = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}) +(\d{1,2}):(\d{2})(?::(\d{2}))?")

T = TypeVar("T")


class Located(Protocol):
    @property
    def line(self) -> int: ...


L = TypeVar("L", bound=Located)


def by_line(issue: Issue) -> float:
    """Order of issues in an answer: by line, those without one (summaries) last."""
    return issue.line if issue.line is not None else math.inf


def line_of(element: etree._Element) -> int:
    return element.sourceline or 0


def plain_name(name: str) -> str:
    """A tag or attribute name without its namespace, lower case (the common case skips QName)."""
    return (etree.QName(name).localname if name[:1] == "{" else name).lower()


def local_name(element: etree._Element) -> str:
    return plain_name(str(element.tag))


def client_key_of(root: etree._Element) -> str:
    """The ClientKey of a document; checks the root first, as nothing else can be read without it."""
    if not isinstance(root.tag, str) or local_name(root) != ROOT:
        raise BadRequest(f"the root element must be MediExchange, not {etree.QName(root).localname}")
    key = next((v.strip() for k, v in root.attrib.items() if plain_name(k) == "clientkey"), "")
    if not key:
        raise MissingClientKey("the MediExchange element has no ClientKey attribute")
    return key


class RecordError(Exception):
    """One bad attribute of one record; the reader turns it into an Issue located at the record."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# How messages spell attributes a document did not give (the seed's own spelling).
SPELLING = {"receptiondatetime": "ReceptionDateTime", "lastchangedon": "LastChangedOn", "syncmode": "SyncMode"}


class Attributes:
    """The attributes of one element, by lower-case name, read and checked one by one.

    Messages name an attribute as the document spelled it. (A plain class with slots: the reader
    makes one per record, 10^5 of them for a big clinic.)
    """

    __slots__ = ("element", "values")

    def __init__(self, element: etree._Element, values: dict[str, str]) -> None:
        self.element = element
        self.values = values

    def name(self, key: str) -> str:
        for raw_name in self.element.attrib:
            if plain_name(raw_name) == key:
                return etree.QName(raw_name).localname
        return SPELLING.get(key, key)

    def text(self, name: str, required: bool = True, max_length: int = MAX_TEXT) -> str:
        value = self.values.get(name, "").strip()
        if required and not value:
            raise RecordError(f"attribute {self.name(name)} is required")
        if len(value) > max_length:
            raise RecordError(f"attribute {self.name(name)} is longer than {max_length} characters")
        return value

    def optional(self, name: str, read: Callable[[str], T]) -> T | None:
        """An optional attribute: absent or empty means not given."""
        return read(name) if self.values.get(name, "").strip() else None

    def integer(self, name: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
        raw = self.text(name)
        if not _INT.fullmatch(raw):
            raise RecordError(f"attribute {self.name(name)} must be an integer, got {raw!r}")
        value = int(raw)
        if not low <= value <= high:
            raise RecordError(f"attribute {self.name(name)} must be from {low} to {high}, got {value}")
        return value

    def date(self, name: str) -> dt.date:
        raw = self.text(name)
        match = _DATE.fullmatch(raw)
        if not match:
            raise RecordError(f"attribute {self.name(name)} must be a date DD.MM.YYYY, got {raw!r}")
        day, month, year = map(int, match.groups())
        return self.checked(name, raw, lambda: dt.date(year, month, day))

    def local_datetime(self, name: str) -> dt.datetime:
        raw = self.text(name)
        match = _DATETIME.fullmatch(raw)
        if not match:
            raise RecordError(f"attribute {self.name(name)} must be a date and time DD.MM.YYYY HH:MM:SS, got {raw!r}")
        day, month, year, hour, minute = map(int, match.groups()[:5])
        second = int(match.group(6) or 0)
        return self.checked(name, raw, lambda: dt.datetime(year, month, day, hour, minute, second))

    def checked(self, name: str, raw: str, make: Callable[[], T]) -> T:
        try:
            return make()
        except ValueError:
            raise RecordError(f"attribute {self.name(name)} is not a real date or time: {raw!r}") from None

    def minutes_of_day(self, name: str, allow_end_of_day: bool = False) -> int:
        raw = self.text(name)
        match = _TIME.fullmatch(raw)
        hour, minute = map(int, match.groups()) if match else (-1, -1)
        if raw == "24:00" and allow_end_of_day:
            return MINUTES_PER_DAY
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise RecordError(f"attribute {self.name(name)} must be a time HH:MM from 00:00 to 23:59, got {raw!r}")
        return hour * 60 + minute


@lru_cache(maxsize=4096)
def has_clock_change(day: dt.date, tz: ZoneInfo) -> bool:
    """Whether the zone's offset changes during the day (only such a day has times that do not exist)."""
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=tz)
    end = start.replace(hour=23, minute=59, second=59)
    return start.utcoffset() != end.utcoffset()


@dataclass
class DocumentReader:
    tz: ZoneInfo
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    untold: dict[int, int] = field(default_factory=dict)

    # -- element plumbing ----------------------------------------------------------------------

    def attributes(
        self, element: etree._Element, section: str, known: frozenset[str], aliases: dict[str, str] | None = None
    ) -> Attributes:
        values: dict[str, str] = {}
        for raw_name, value in element.attrib.items():
            given = plain_name(raw_name)
            name = aliases.get(given, given) if aliases else given
            if name in values:
                raise RecordError(f"attribute {name} is given more than once")
            if name not in known:
                self.warn("unknown_attribute", f"unknown attribute {given} ignored", element, section)
                continue
            values[name] = value
        return Attributes(element, values)

    def warn(
        self, code: str, message: str, element: etree._Element, section: str, record_id: str | None = None
    ) -> None:
        self.note(self.warnings, Issue(code, message, element.sourceline, section, record_id))

    def error(self, issue: Issue) -> None:
        self.note(self.errors, issue)

    def note(self, issues: list[Issue], issue: Issue) -> None:
        """Keep the first MAX_REPORTED issues of a kind and count the rest: a hostile document
        with a million bad records must not make a million-line answer."""
        if len(issues) < MAX_REPORTED:
            issues.append(issue)
        else:
            self.untold[id(issues)] = self.untold.get(id(issues), 0) + 1

    def told(self, issues: list[Issue], code: str) -> tuple[Issue, ...]:
        more = self.untold.get(id(issues), 0)
        return (*issues, Issue(code, f"and {more} more not listed")) if more else tuple(issues)

    def records(
        self, section_element: etree._Element, section: str, tag: str, read: Callable[[etree._Element], T]
    ) -> Iterator[T]:
        """Every well-formed record of a section; the rest become errors."""
        for element in section_element:
            if not isinstance(element.tag, str):
                continue
            if local_name(element) != tag:
                self.warn(
                    "unknown_element", f"unknown element {etree.QName(element).localname} ignored", element, section
                )
                continue
            try:
                yield read(element)
            except RecordError as exc:
                record_id = next((v.strip() for k, v in element.attrib.items() if k.lower() == "id"), None)
                line = exc.line or element.sourceline
                self.error(Issue("invalid_record", str(exc), line, section, record_id))

    def unique(self, records: list[L], section: str, key: Callable[[L], str]) -> tuple[L, ...]:
        first_line: dict[str, int] = {}
        for record in records:
            record_key = key(record)
            line = record.line
            if record_key in first_line:
                message = f"duplicate id {record_key} (first at line {first_line[record_key]})"
                self.error(Issue("invalid_record", message, line, section, record_key))
            else:
                first_line[record_key] = line
        return tuple(records)

    # -- records -------------------------------------------------------------------------------

    def group(self, element: etree._Element) -> Group:
        a = self.attributes(element, "ResourceGroups", frozenset({"id", "name", "pos"}))
        return Group(a.integer("id"), a.text("name"), a.optional("pos", a.integer) or 0, line_of(element))

    def resource(self, element: etree._Element) -> Resource:
        a = self.attributes(element, "Resources", frozenset({"id", "name", "time_step", "group_id", "pos"}))
        return Resource(
            id=a.integer("id"),
            name=a.text("name"),
            time_step=a.integer("time_step", 1, MINUTES_PER_DAY),
            group_id=a.optional("group_id", a.integer),
            pos=a.optional("pos", a.integer) or 0,
            line=line_of(element),
        )

    def schedule(self, element: etree._Element) -> Schedule:
        a = self.attributes(element, "Schedules", frozenset({"id", "date", "resource_id"}))
        schedule_id, date, resource_id = a.integer("id"), a.date("date"), a.integer("resource_id")
        windows = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if local_name(child) != "time_rules":
                self.warn(
                    "unknown_element", f"unknown element {etree.QName(child).localname} ignored", child, "Schedules"
                )
                continue
            try:
                windows.append(self.window(child))
            except RecordError as exc:
                raise RecordError(f"time_rules: {exc}", line_of(child)) from None
        if not windows:
            raise RecordError("a schedule needs at least one time_rules element")
        return Schedule(schedule_id, date, resource_id, tuple(windows), line_of(element))

    def window(self, element: etree._Element) -> Window:
        a = self.attributes(
            element, "Schedules", frozenset({"w_start", "w_end", "b_start", "b_end"}), TIME_RULE_ALIASES
        )
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

    def appointment(self, element: etree._Element) -> Appointment:
        known = frozenset({"tablename", "id", "resource_id", "receptiondatetime", "duration", "title"})
        a = self.attributes(element, "Appointments", known)
        start = a.local_datetime("receptiondatetime")
        self.exists_locally(start, "ReceptionDateTime")
        return Appointment(
            tablename=a.text("tablename"),
            id=a.integer("id"),
            resource_id=a.integer("resource_id"),
            start=start,
            duration=a.integer("duration", 1, MINUTES_PER_DAY),
            title=a.text("title", required=False),
            line=line_of(element),
        )

    def order(self, element: etree._Element) -> OrderChange:
        known = frozenset({"id", "status", "lastchangedon", "reception_datetime", "duration", "mw_resource_id"})
        a = self.attributes(element, "Orders", known | ORDER_ECHOED)
        status = a.integer("status")
        if status not in {s.value for s in OrderStatus}:
            raise RecordError(f"attribute status must be 0 (received), 1 (accepted) or 3 (rejected), got {status}")
        last_changed = a.local_datetime("lastchangedon")
        self.exists_locally(last_changed, "LastChangedOn")
        reception = a.optional("reception_datetime", a.local_datetime)
        if reception is not None:
            self.exists_locally(reception, "reception_datetime")
        return OrderChange(
            id=a.integer("id"),
            status=OrderStatus(status),
            last_changed=last_changed,
            reception=reception,
            duration=a.optional("duration", lambda n: a.integer(n, 1, MINUTES_PER_DAY)),
            mw_resource_id=a.optional("mw_resource_id", a.integer),
            line=line_of(element),
        )

    def exists_locally(self, local: dt.datetime, name: str) -> None:
        if not has_clock_change(local.date(), self.tz):  # nearly every day: nothing to check
            return
        try:
            localize(local, self.tz)
        except NonexistentLocalTime as exc:
            raise RecordError(f"attribute {name}: {exc}") from None

    # -- the document --------------------------------------------------------------------------

    def read(self, root: etree._Element) -> Document:
        client_key = client_key_of(root)
        for name in root.attrib:
            if etree.QName(name).localname.lower() != "clientkey":
                self.warn("unknown_attribute", f"unknown attribute {name} ignored", root, "MediExchange")
        found: dict[str, etree._Element] = {}
        for element in root:
            if not isinstance(element.tag, str):
                continue
            name = local_name(element)
            if name not in SECTIONS:
                self.warn(
                    "unknown_element",
                    f"unknown section {etree.QName(element).localname} ignored",
                    element,
                    "MediExchange",
                )
            elif name in found:
                section = SECTIONS[name][0]
                message = f"section {section} appears more than once (first at line {found[name].sourceline})"
                self.error(Issue("invalid_record", message, element.sourceline, section))
            else:
                found[name] = element

        def read_section(
            name: str, read: Callable[[etree._Element], L], key: Callable[[L], str]
        ) -> tuple[L, ...] | None:
            if name not in found:
                return None
            title, tag = SECTIONS[name]
            return self.unique(list(self.records(found[name], title, tag, read)), title, key)

        sync_mode = self.sync_mode(found["appointments"]) if "appointments" in found else SyncMode.DIFF
        groups = read_section("resourcegroups", self.group, lambda r: str(r.id))
        resources = read_section("resources", self.resource, lambda r: str(r.id))
        schedules = read_section("schedules", self.schedule, lambda r: str(r.id))
        appointments = read_section("appointments", self.appointment, lambda r: r.key)
        orders = read_section("orders", self.order, lambda r: str(r.id))
        self.warnings.sort(key=by_line)
        document = Document(
            client_key,
            groups,
            resources,
            schedules,
            appointments,
            sync_mode,
            orders,
            self.told(self.warnings, "more_warnings"),
        )
        if self.errors:
            raise InvalidRecords("invalid records; nothing was imported", self.told(self.errors, "invalid_record"))
        return document

    def sync_mode(self, element: etree._Element) -> SyncMode:
        try:
            raw = self.attributes(element, "Appointments", frozenset({"syncmode"})).text("syncmode", required=False)
        except RecordError as exc:
            self.error(Issue("invalid_record", str(exc), element.sourceline, "Appointments"))
            return SyncMode.DIFF
        try:
            return SyncMode(raw.lower() or SyncMode.DIFF.value)
        except ValueError:
            message = f"SyncMode must be full or diff, got {raw!r}"
            self.error(Issue("invalid_record", message, element.sourceline, "Appointments"))
            return SyncMode.DIFF


def read_document(root: etree._Element, tz: ZoneInfo) -> Document:
    """The whole document, validated; raises InvalidRecords with every error found."""
    return DocumentReader(tz).read(root)
