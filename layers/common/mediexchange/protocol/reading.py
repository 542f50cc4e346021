"""Reading a parsed MediExchange document into typed records, collecting every problem found.

Names of elements and attributes are matched case-insensitively (the seed's table says `id`, its
sample sends `ID`). Every record is checked; one with an error is left out and the error kept,
so a rejected import reports everything wrong with it at once. What each section holds and how
its records are read is declared in `protocol.sections`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from mediexchange.errors import BadRequest, InvalidRecords, MissingClientKey
from mediexchange.protocol.attributes import Attributes, RecordError, local_name, plain_name
from mediexchange.protocol.sections import APPOINTMENTS, BY_NAME, SECTIONS, Section
from mediexchange.records import Document, Issue, SyncMode
from mediexchange.timeutil import NonexistentLocalTime, localize

MAX_REPORTED = 1000  # errors, and warnings, listed in one answer
ROOT = "mediexchange"


def by_line(issue: Issue) -> float:
    """Order of issues in an answer: by line, those without one (summaries) last."""
    return issue.line if issue.line is not None else math.inf


def client_key_of(root: etree._Element) -> str:
    """The ClientKey of a document; checks the root first, as nothing else can be read without it."""
    if not isinstance(root.tag, str) or local_name(root) != ROOT:
        raise BadRequest(f"the root element must be MediExchange, not {etree.QName(root).localname}")
    key = next((v.strip() for k, v in root.attrib.items() if plain_name(k) == "clientkey"), "")
    if not key:
        raise MissingClientKey("the MediExchange element has no ClientKey attribute")
    return key


@lru_cache(maxsize=4096)
def has_clock_change(day: dt.date, tz: ZoneInfo) -> bool:
    """Whether the zone's offset changes during the day (only such a day has times that do not exist)."""
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=tz)
    end = start.replace(hour=23, minute=59, second=59)
    return start.utcoffset() != end.utcoffset()


class Issues:
    """The first MAX_REPORTED issues of one kind, and a count of the rest: a hostile document with a
    million bad records must not make a million-line answer."""

    def __init__(self, overflow_code: str, in_line_order: bool) -> None:
        self.listed: list[Issue] = []
        self.unlisted = 0
        self.overflow_code = overflow_code
        self.in_line_order = in_line_order

    def add(self, issue: Issue) -> None:
        if len(self.listed) < MAX_REPORTED:
            self.listed.append(issue)
        else:
            self.unlisted += 1

    def __bool__(self) -> bool:
        return bool(self.listed)

    def reported(self) -> tuple[Issue, ...]:
        """As found (or in line order), with a closing count of those not listed."""
        listed = sorted(self.listed, key=by_line) if self.in_line_order else self.listed
        more = (Issue(self.overflow_code, f"and {self.unlisted} more not listed"),) if self.unlisted else ()
        return (*listed, *more)


class DocumentReader:
    """Reads one document for one clinic (its time zone decides which local times exist)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.errors = Issues("invalid_record", in_line_order=False)  # section by section, as read
        self.warnings = Issues("more_warnings", in_line_order=True)

    # -- what record readers ask for (protocol.attributes.RecordContext) -------------------------

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
        self.warnings.add(Issue(code, message, element.sourceline, section, record_id))

    def exists_locally(self, local: dt.datetime, name: str) -> None:
        if not has_clock_change(local.date(), self.tz):  # nearly every day: nothing to check
            return
        try:
            localize(local, self.tz)
        except NonexistentLocalTime as exc:
            raise RecordError(f"attribute {name}: {exc}") from None

    # -- sections and records --------------------------------------------------------------------

    def records(self, section: Section[Any], element: etree._Element) -> Iterator[Any]:
        """Every well-formed record of a section; the rest become errors."""
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if local_name(child) != section.tag:
                message = f"unknown element {etree.QName(child).localname} ignored"
                self.warn("unknown_element", message, child, section.name)
                continue
            try:
                yield section.read(self, child)
            except RecordError as exc:
                record_id = next((v.strip() for k, v in child.attrib.items() if k.lower() == "id"), None)
                line = exc.line or child.sourceline
                self.errors.add(Issue("invalid_record", str(exc), line, section.name, record_id))

    def first_of_each_key(self, section: Section[Any], records: Iterator[Any]) -> tuple[Any, ...]:
        """The records of a section, each key once; a key seen again is an error."""
        first: dict[str, Any] = {}
        for record in records:
            key = section.key(record)
            if key in first:
                message = f"duplicate id {key} (first at line {first[key].line})"
                self.errors.add(Issue("invalid_record", message, record.line, section.name, key))
            else:
                first[key] = record
        return tuple(first.values())

    def sections(self, root: etree._Element) -> dict[Section[Any], etree._Element]:
        """The root's section elements; unknown ones are warnings, a section given twice an error."""
        for name in root.attrib:
            if plain_name(name) != "clientkey":
                self.warn("unknown_attribute", f"unknown attribute {name} ignored", root, "MediExchange")
        found: dict[Section[Any], etree._Element] = {}
        for element in root:
            if not isinstance(element.tag, str):
                continue
            section = BY_NAME.get(local_name(element))
            if section is None:
                message = f"unknown section {etree.QName(element).localname} ignored"
                self.warn("unknown_element", message, element, "MediExchange")
            elif section in found:
                message = f"section {section.name} appears more than once (first at line {found[section].sourceline})"
                self.errors.add(Issue("invalid_record", message, element.sourceline, section.name))
            else:
                found[section] = element
        return found

    def sync_mode(self, element: etree._Element) -> SyncMode:
        try:
            raw = self.attributes(element, "Appointments", frozenset({"syncmode"})).text("syncmode", required=False)
            return SyncMode(raw.lower() or SyncMode.DIFF.value)
        except RecordError as exc:
            self.errors.add(Issue("invalid_record", str(exc), element.sourceline, "Appointments"))
        except ValueError:
            message = f"SyncMode must be full or diff, got {raw!r}"
            self.errors.add(Issue("invalid_record", message, element.sourceline, "Appointments"))
        return SyncMode.DIFF

    def read(self, root: etree._Element) -> Document:
        client_key = client_key_of(root)
        found = self.sections(root)
        sync_mode = self.sync_mode(found[APPOINTMENTS]) if APPOINTMENTS in found else SyncMode.DIFF
        # In the table's order, whatever the document's: answers list sections the same way every time.
        records = {
            section.name: self.first_of_each_key(section, self.records(section, element))
            for section, element in sorted(found.items(), key=lambda pair: SECTIONS.index(pair[0]))
        }
        if self.errors:
            raise InvalidRecords("invalid records; nothing was imported", self.errors.reported())
        return Document(client_key, records, sync_mode, self.warnings.reported())


def read_document(root: etree._Element, tz: ZoneInfo) -> Document:
    """The whole document, validated; raises InvalidRecords with every error found."""
    return DocumentReader(tz).read(root)
