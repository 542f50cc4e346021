"""Reading one element's attributes: names matched case-insensitively, values parsed and checked.

Messages name an attribute as the document spelled it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Protocol, TypeVar

from lxml import etree

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT = 1000  # characters of one text value; keeps every stored item far below DynamoDB's 400 KB
MINUTES_PER_DAY = 1440

_INT = re.compile(r"[+-]?\d{1,19}")
_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATETIME = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}) +(\d{1,2}):(\d{2})(?::(\d{2}))?")

# How messages spell attributes a document did not give (the seed's own spelling).
SPELLING = {"receptiondatetime": "ReceptionDateTime", "lastchangedon": "LastChangedOn", "syncmode": "SyncMode"}

T = TypeVar("T")


class RecordError(Exception):
    """One bad attribute of one record; the reader turns it into an Issue located at the record."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


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


class RecordContext(Protocol):
    """What a record's reader asks of the document reader around it."""

    def attributes(
        self, element: etree._Element, section: str, known: frozenset[str], aliases: dict[str, str] | None = None
    ) -> Attributes:
        """The element's known attributes; each unknown one is a warning."""
        ...

    def warn(
        self, code: str, message: str, element: etree._Element, section: str, record_id: str | None = None
    ) -> None: ...

    def exists_locally(self, local: dt.datetime, name: str) -> None:
        """Raise RecordError if the clinic's clock never shows `local` (a daylight-saving gap)."""
        ...
