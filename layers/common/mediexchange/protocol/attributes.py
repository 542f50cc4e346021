"""Reading one element's attributes: names matched case-insensitively, values parsed and checked.

Messages name an attribute as the document spelled it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from lxml import etree

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 1000  # characters of one text value; keeps every stored item far below DynamoDB's 400 KB
MINUTES_PER_DAY = 1440
FIRST_YEAR, LAST_YEAR = 1900, 2199  # dates outside are typing errors (and 0001 breaks time-zone arithmetic)


@dataclass(frozen=True, slots=True)
class Form:
    """A form of value the reader accepts, as MIS software really writes it. `pattern` is both a Python
    regular expression and an XML Schema pattern (anchored, ASCII digits only), so the schema that
    /services/schema.xsd serves is made from this table and cannot drift from the reader."""

    name: str
    pattern: str
    examples: tuple[str, ...]
    documentation: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


_MIDNIGHT = r"( 0{1,2}:00(:00)?)?"
_DAY = r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})"
_CLOCK = r"([0-9]{1,2}):([0-9]{2})(:([0-9]{2}))?"

INTEGER = Form("integer", r"[+\-]?[0-9]{1,19}", ("12", "-3"), "an integer")
DATE = Form("date", _DAY + _MIDNIGHT, ("01.07.2010", "01.07.2010 0:00:00"), "a date DD.MM.YYYY")
TIME = Form("time", _CLOCK, ("9:00", "09:00", "08:00:00", "24:00"), "a time HH:MM")
DATETIME = Form(
    "datetime", _DAY + " +" + _CLOCK, ("01.07.2010 9:30", "01.07.2010 09:30:00"), "a date and time DD.MM.YYYY HH:MM:SS"
)
FORMS = (INTEGER, DATE, TIME, DATETIME)


# How messages spell attributes a document did not give (the seed's own spelling).
SPELLING = {"receptiondatetime": "ReceptionDateTime", "lastchangedon": "LastChangedOn", "syncmode": "SyncMode"}

T = TypeVar("T")
D = TypeVar("D", bound=dt.date)


QUOTED = 80  # characters of a refused value an error quotes: 1,000 errors stay a small answer


def quoted(raw: str) -> str:
    """A refused value as an error quotes it: its repr, the first QUOTED characters of a longer one."""
    return repr(raw) if len(raw) <= QUOTED else f"{raw[:QUOTED]!r}… ({len(raw)} characters)"


class RecordError(Exception):
    """One bad attribute of one record; the reader turns it into an Issue located at the record."""

    def __init__(self, message: str, line: int | None = None, attribute: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.attribute = attribute


def plain_name(name: str) -> str:
    """A tag or attribute name without its namespace, lower case (the common case skips QName)."""
    return (etree.QName(name).localname if name[:1] == "{" else name).lower()


def local_name(element: etree._Element) -> str:
    return plain_name(str(element.tag))


def line_of(element: etree._Element) -> int:
    return element.sourceline or 0


class Attributes:
    """The attributes of one element, by lower-case name, read and checked one by one.

    (A plain class with slots: the reader makes one per record, 10^5 of them for a big clinic.)
    Without an element (`detached`), values are read and checked the same way; messages name each
    attribute as the seed spells it.
    """

    __slots__ = ("aliases", "element", "values")

    def __init__(
        self, element: etree._Element | None, values: dict[str, str], aliases: dict[str, str] | None = None
    ) -> None:
        self.element = element
        self.values = values
        self.aliases = aliases

    @classmethod
    def detached(cls, name: str, value: str) -> Attributes:
        """One value on its own, checked exactly as the same attribute of an element is (the fast path of
        `protocol.bulk` reads each distinct value once this way)."""
        return cls(None, {name: value})

    def name(self, key: str) -> str:
        """An attribute as the document spelled it (an alias too), or as the seed spells one not given."""
        for raw_name in self.element.attrib if self.element is not None else ():
            given = plain_name(raw_name)
            if given == key or (self.aliases and self.aliases.get(given) == key):
                return etree.QName(raw_name).localname
        return SPELLING.get(key, key)

    def fail(self, name: str, problem: str) -> RecordError:
        spelled = self.name(name)
        return RecordError(f"attribute {spelled} {problem}", attribute=spelled)

    def given(self, name: str) -> bool:
        return bool(self.values.get(name, "").strip())

    def text(self, name: str, required: bool = True, max_length: int = MAX_TEXT) -> str:
        value = self.values.get(name, "").strip()
        if required and not value:
            raise self.fail(name, "is required")
        if len(value) > max_length:
            raise self.fail(name, f"is longer than {max_length} characters ({len(value)})")
        return value

    def optional(self, name: str, read: Callable[[str], T]) -> T | None:
        """An optional attribute: absent or empty means not given."""
        return read(name) if self.given(name) else None

    def matched(self, name: str, form: Form) -> re.Match[str]:
        raw = self.text(name)
        match = form.regex.fullmatch(raw)
        if not match:
            raise self.fail(name, f"must be {form.documentation}, got {quoted(raw)}")
        return match

    def integer(self, name: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
        value = int(self.matched(name, INTEGER).group(0))
        if not low <= value <= high:
            raise self.fail(name, f"must be from {low} to {high}, got {value}")
        return value

    def date(self, name: str) -> dt.date:
        match = self.matched(name, DATE)
        day, month, year = map(int, match.groups()[:3])
        return self.checked(name, match.group(0), lambda: dt.date(year, month, day))

    def local_datetime(self, name: str) -> dt.datetime:
        match = self.matched(name, DATETIME)
        day, month, year, hour, minute = map(int, match.groups()[:5])
        second = int(match.group(7) or 0)
        return self.checked(name, match.group(0), lambda: dt.datetime(year, month, day, hour, minute, second))

    def checked(self, name: str, raw: str, make: Callable[[], D]) -> D:
        try:
            value = make()
        except ValueError:
            raise self.fail(name, f"is not a real date or time: {quoted(raw)}") from None
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise self.fail(name, f"must lie in the years {FIRST_YEAR} to {LAST_YEAR}, got {quoted(raw)}")
        return value

    def minutes_of_day(self, name: str, allow_end_of_day: bool = False) -> int:
        """A time of day in minutes from midnight; seconds are dropped (schedules count whole minutes)."""
        match = self.matched(name, TIME)
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(4) or 0)
        if second > 59:
            raise self.fail(name, f"must be a time HH:MM from 00:00 to 23:59, got {match.group(0)!r}")
        if allow_end_of_day and (hour, minute, second) == (24, 0, 0):
            return MINUTES_PER_DAY
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise self.fail(name, f"must be a time HH:MM from 00:00 to 23:59, got {match.group(0)!r}")
        return hour * 60 + minute


class RecordContext(Protocol):
    """What a record's reader asks of the document reader around it."""

    def attributes(
        self,
        element: etree._Element,
        section: str,
        known: frozenset[str],
        aliases: dict[str, str] | None = None,
        quiet: bool = False,
    ) -> Attributes:
        """The element's known attributes; each unknown one is a warning (unless `quiet`)."""
        ...

    def warn(
        self, code: str, message: str, element: etree._Element, section: str, record_id: str | None = None
    ) -> None: ...

    def exists_locally(self, local: dt.datetime, name: str) -> None:
        """Raise RecordError if the clinic's clock never shows `local` (a daylight-saving gap)."""
        ...
