"""The typed values the service works with: what a MediExchange document carries and what is stored.

Pure data, no I/O. Dates and times are the clinic's local wall-clock time (naive datetimes);
`timeutil` turns them into instants with the clinic's time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum, StrEnum


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem (error or warning) found in a document, located as precisely as possible."""

    code: str
    message: str
    line: int | None = None
    section: str | None = None
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    pos: int = 0
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Resource:
    id: int
    name: str
    time_step: int
    group_id: int | None = None
    pos: int = 0
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Window:
    """A working window of one day in minutes from midnight, with an optional break inside it."""

    start: int
    end: int
    break_start: int | None = None
    break_end: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    date: dt.date
    resource_id: int
    windows: tuple[Window, ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Appointment:
    """Busy time of a resource made inside the MIS; identified by (tablename, id)."""

    tablename: str
    id: int
    resource_id: int
    start: dt.datetime
    duration: int
    title: str = ""
    line: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        return f"{self.tablename}#{self.id}"


class SyncMode(StrEnum):
    FULL = "full"
    DIFF = "diff"


class OrderStatus(int, Enum):
    RECEIVED = 0
    ACCEPTED = 1
    REJECTED = 3


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What an MIS asks to change in an order the portal created."""

    id: int
    status: OrderStatus
    last_changed: dt.datetime
    reception: dt.datetime | None = None
    duration: int | None = None
    mw_resource_id: int | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Order:
    """A patient's booking request as stored; `last_changed` is unix seconds, `reception` local."""

    id: int
    status: OrderStatus
    order_date: dt.date
    resource_id: int
    mw_resource_id: int
    resource_name: str
    reception: dt.datetime
    duration: int
    last_changed: int
    user_id: str = ""
    user_name: str = ""
    name1: str = ""
    name2: str = ""
    name3: str = ""
    aim: str = ""
    phone: str = ""
    city: str = ""
    address: str = ""
    email: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Clinic:
    clinic_id: str
    name: str
    timezone: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Document:
    """A validated MediExchange document. A section that was absent is None."""

    client_key: str
    groups: tuple[Group, ...] | None = None
    resources: tuple[Resource, ...] | None = None
    schedules: tuple[Schedule, ...] | None = None
    appointments: tuple[Appointment, ...] | None = None
    sync_mode: SyncMode = SyncMode.DIFF
    orders: tuple[OrderChange, ...] | None = None
    warnings: tuple[Issue, ...] = ()


@dataclass(frozen=True, slots=True)
class SectionReport:
    """What one replaced or synced section did: records received, items written, items deleted."""

    received: int
    written: int
    deleted: int


@dataclass(frozen=True, slots=True)
class OrdersReport:
    received: int
    updated: tuple[int, ...] = ()
    unchanged: tuple[int, ...] = ()
    conflicts: tuple[int, ...] = ()
    unknown: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The answer to one import; a section that was not sent is None."""

    import_id: str
    groups: SectionReport | None = None
    resources: SectionReport | None = None
    schedules: SectionReport | None = None
    appointments: SectionReport | None = None
    sync_mode: SyncMode = SyncMode.DIFF
    orders: OrdersReport | None = None
    warnings: tuple[Issue, ...] = ()
