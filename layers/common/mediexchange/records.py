"""The typed values the service works with: what a MediExchange document carries and what is stored.

Pure data, no I/O. Dates and times are the clinic's local wall-clock time (naive datetimes);
`timeutil` turns them into instants with the clinic's time zone.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem (error or warning) found in a document, located as precisely as possible."""

    code: str
    message: str
    line: int | None = None
    section: str | None = None
    record_id: str | None = None
    attribute: str | None = None  # as the document spelled it


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


# The records a document holds 10^4-10^5 of are not frozen: a frozen dataclass sets each field through
# object.__setattr__, which made making the big clinic's 100,000 appointments three times as slow. They
# compare and hash as the frozen ones did (unsafe_hash: by the compared fields); nothing changes one.


@dataclass(slots=True, unsafe_hash=True)
class Schedule:
    id: int
    date: dt.date
    resource_id: int
    windows: tuple[Window, ...]
    line: int = field(default=0, compare=False)


@dataclass(slots=True, unsafe_hash=True)
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


class Lane(StrEnum):
    """Imports of one clinic apply one at a time per lane, in the order received. A document with only
    Orders touches orders and holds alone, so it has a lane of its own and never waits behind a schedule."""

    SYNC = "sync"
    ORDERS = "orders"


class OrderStatus(int, Enum):
    RECEIVED = 0
    ACCEPTED = 1
    REJECTED = 3


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What an MIS asks to change in an order the portal created."""

    id: int
    status: OrderStatus
    last_changed: dt.datetime | None  # the LastChangedOn the MIS read; None if it sent none
    reception: dt.datetime | None = None
    duration: int | None = None
    mw_resource_id: int | None = None
    line: int = field(default=0, compare=False)
    # Attributes of the export the MIS sent back, which it cannot change: (name as spelled, value).
    echoed: tuple[tuple[str, str], ...] = field(default=(), compare=False)


class Codec(Enum):
    """How an order field's value is kept and written: the model, the export and the portal's JSON follow it."""

    INT = "int"
    TEXT = "text"
    STATUS = "status"  # OrderStatus
    DATE = "date"  # local date
    LOCAL_TIME = "local_time"  # naive local date-time
    INSTANT = "instant"  # unix seconds, shown in the clinic's time zone


# Code points XML 1.0 cannot carry (its Char production), so no export can write them: the C0 controls
# but tab, LF and CR; the surrogates (in a str only ever alone, and not even UTF-8 encodes those); U+FFFE
# and U+FFFF. Everything else is writable in both export encodings (windows-1251 as character references).
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What no text a patient types may hold (SPEC section 5, "control characters"): the above and every other
# control character (Unicode's Cc: tab, LF, CR, DEL and the C1 controls U+0080-U+009F) ...
NOT_TYPED = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# ... except that free text (a comment typed in a text box) may break lines and hold tabs.
NOT_TYPED_IN_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class PatientText:
    """The rule of an order field the patient types (SPEC section 5): at most `longest` characters, maybe
    required, and no control character, so whatever a patient sends the export can write."""

    longest: int
    required: bool = False
    lines: bool = False  # free text: tab, LF and CR allowed too (the export writes them as &#9; &#10; &#13;)

    def refused_character(self, value: str) -> str | None:
        """The first character of `value` this field refuses, or None."""
        found = (NOT_TYPED_IN_LINES if self.lines else NOT_TYPED).search(value)
        return found.group() if found else None


@dataclass(frozen=True, slots=True)
class OrderField:
    """What the service knows of one field of an order, besides its name and type."""

    codec: Codec
    xml: str  # the attribute of the export in the seed's table spelling (ExportNames.TABLE)
    json: str  # the key in the portal's JSON
    sample: str  # the attribute of the export in the seed sample's spelling (ExportNames.SAMPLE, the default)
    patient: PatientText | None = None  # typed by the patient, and the rule it follows
    mis_changed: bool = False  # written when an MIS change applies (SPEC section 3, Orders)
    stored: bool = True
    exported: bool = True  # in the export and the portal's JSON (else the service's own bookkeeping)


def _described(codec: Codec, xml: str, sample: str, json: str = "", **options: Any) -> dict[str, OrderField]:
    return {"order": OrderField(codec, xml, json or xml, sample, **options)}


def _patient(xml: str, sample: str, longest: int, required: bool = False, lines: bool = False) -> dict[str, OrderField]:
    return _described(Codec.TEXT, xml, sample, patient=PatientText(longest, required, lines))


ORDER_TYPE_BOOKING = 3  # the seed: bookings are type 3, no other type is exported


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A patient's booking request as stored; `last_changed` is unix seconds, `reception` local.

    The one declaration of an order's fields, in the export's attribute order (the seed's list):
    the store's model, the export, the MIS's echo and the portal's JSON are all made from it.
    """

    id: int = field(metadata=_described(Codec.INT, "id", "ID"))
    status: OrderStatus = field(metadata=_described(Codec.STATUS, "status", "Status", mis_changed=True))
    user_id: str = field(default="", metadata=_patient("user_id", "user_id", 64))
    user_name: str = field(default="", metadata=_patient("user_name", "user_name", 200))
    order_date: dt.date = field(metadata=_described(Codec.DATE, "order_date", "order_date"))
    mw_resource_id: int = field(metadata=_described(Codec.INT, "mw_resource_id", "MW_Resource_ID", mis_changed=True))
    # The portal's id and name of mw_resource_id: an MIS moving the order moves them too.
    resource_name: str = field(metadata=_described(Codec.TEXT, "resource_name", "Resource_Name", mis_changed=True))
    resource_id: int = field(metadata=_described(Codec.INT, "resource_id", "Resource_ID", mis_changed=True))
    reception: dt.datetime = field(
        metadata=_described(Codec.LOCAL_TIME, "reception_datetime", "Reception_Datetime", mis_changed=True)
    )
    duration: int = field(metadata=_described(Codec.INT, "duration", "Duration", mis_changed=True))
    type: int = field(default=ORDER_TYPE_BOOKING, metadata=_described(Codec.INT, "type", "Type", stored=False))
    name1: str = field(default="", metadata=_patient("name1", "Name1", 100, required=True))
    name2: str = field(default="", metadata=_patient("name2", "Name2", 100))
    name3: str = field(default="", metadata=_patient("name3", "Name3", 100))
    aim: str = field(default="", metadata=_patient("aim", "Aim", 500, lines=True))
    phone: str = field(default="", metadata=_patient("phone", "Phone", 32, required=True))
    city: str = field(default="", metadata=_patient("city", "City", 100))
    address: str = field(default="", metadata=_patient("address", "Address", 300))
    email: str = field(default="", metadata=_patient("email", "Email", 254))
    comment: str = field(default="", metadata=_patient("comment", "Comment", 1000, lines=True))
    last_changed: int = field(
        metadata=_described(Codec.INSTANT, "LastChangedOn", "LastChangedOn", "last_changed", mis_changed=True)
    )
    # When the portal side last changed the order (booking it, a patient's edit): an MIS change quoting
    # an older LastChangedOn decided on stale facts (a conflict); its own earlier changes never are.
    portal_changed: int = field(default=0, metadata=_described(Codec.INSTANT, "", "", exported=False))


ORDER_FIELDS: tuple[tuple[str, OrderField], ...] = tuple((f.name, f.metadata["order"]) for f in fields(Order))
EXPORTED_ORDER_FIELDS = tuple((name, f) for name, f in ORDER_FIELDS if f.exported)
PATIENT_FIELDS: dict[str, PatientText] = {name: f.patient for name, f in ORDER_FIELDS if f.patient}


class ExportNames(StrEnum):
    """Which spelling of the order attributes a clinic's export writes (SPEC section 4)."""

    SAMPLE = "sample"  # the seed sample's, as MIS software reads them: ID Status … MW_Resource_ID … LastChangedOn
    TABLE = "table"  # the seed table's lower case: id status … mw_resource_id … LastChangedOn

    def of(self, order_field: OrderField) -> str:
        """The attribute name of one order field in this spelling."""
        return order_field.sample if self is ExportNames.SAMPLE else order_field.xml


DEFAULT_STALE_AFTER_HOURS = 3.0  # SPEC section 5: no Appointments for longer than this and a clinic offers no slots


def hours_from_text(raw: str) -> float | None:
    """A clinic's `stale_after` as an administrator types it (a decimal comma too): a positive, finite number
    of hours, or None."""
    try:
        hours = float(raw.strip().replace(",", "."))
    except ValueError:
        return None
    return hours if math.isfinite(hours) and hours > 0 else None


def hours_text(hours: float) -> str:
    """Hours as an administrator would type them: 3, not 3.0."""
    return str(int(hours)) if hours.is_integer() else str(hours)


@dataclass(frozen=True, slots=True)
class Clinic:
    clinic_id: str
    name: str
    timezone: str
    enabled: bool = True
    export_names: ExportNames = ExportNames.SAMPLE
    stale_after_hours: float = DEFAULT_STALE_AFTER_HOURS
    appointments_synced_at: int | None = None  # unix seconds of the last import carrying Appointments

    def stale_since(self, now: float) -> int | None:
        """When the MIS last sent its busy time, if that is longer ago than the clinic allows (SPEC 5):
        the portal then offers nothing, rather than slots on busy time it cannot see. None: not stale
        (or the MIS never sends Appointments)."""
        synced = self.appointments_synced_at
        return synced if synced is not None and now - synced > self.stale_after_hours * 3600 else None


SyncedRecord = Group | Resource | Schedule | Appointment


@dataclass(frozen=True, slots=True)
class Rejected:
    """The records of one section that were rejected: not written, their stored versions kept."""

    received: int = 0  # record elements of the section, good and bad, duplicates too
    count: int = 0
    keys: frozenset[str] = frozenset()  # of those whose key could be read
    unkeyed: bool = False  # one had no readable key: a replaced section deletes nothing this time


@dataclass(frozen=True, slots=True)
class Document:
    """A read MediExchange document: the valid records of each section sent, by section name
    (`protocol.sections` says which; a section that was absent is missing), and what was rejected."""

    client_key: str
    sections: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    sync_mode: SyncMode = SyncMode.DIFF
    warnings: tuple[Issue, ...] = ()
    errors: tuple[Issue, ...] = ()  # one per rejected record (at most 1,000 listed, then a count)
    rejected: Mapping[str, Rejected] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SectionReport:
    """What one replaced or synced section did: records received, items written, items deleted."""

    received: int
    written: int
    deleted: int
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class OrdersReport:
    received: int
    updated: tuple[int, ...] = ()
    unchanged: tuple[int, ...] = ()
    conflicts: tuple[int, ...] = ()
    unknown: tuple[int, ...] = ()
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The answer to one import: a report per synced section sent (by section name), and the orders'."""

    import_id: str
    sections: Mapping[str, SectionReport] = field(default_factory=dict)
    sync_mode: SyncMode = SyncMode.DIFF
    orders: OrdersReport | None = None
    warnings: tuple[Issue, ...] = ()
    errors: tuple[Issue, ...] = ()  # the rejected records
    dry_run: bool = False

    @property
    def written(self) -> int:
        return sum(s.written for s in self.sections.values())

    @property
    def deleted(self) -> int:
        return sum(s.deleted for s in self.sections.values())
