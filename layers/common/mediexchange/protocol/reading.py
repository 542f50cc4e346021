"""Reading a parsed MediExchange document into typed records, collecting every problem found.

Names of elements and attributes are matched case-insensitively (the seed's table says `id`, its
sample sends `ID`). Every record is checked: one with an error is left out and its error kept, the
rest stand (SPEC r2, record by record); only a problem with the document as a whole refuses it.
What each section holds and how its records are read is declared in `protocol.sections`.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from mediexchange.errors import BadRequest, DocumentRefused, MissingClientKey
from mediexchange.protocol.attributes import Attributes, RecordError, local_name, plain_name, quoted
from mediexchange.protocol.sections import APPOINTMENTS, BY_NAME, MAX_KEY_BYTES, SECTIONS, Section
from mediexchange.records import Document, Issue, Rejected, SyncMode
from mediexchange.timeutil import NonexistentLocalTime, localize

MAX_REPORTED = 1000  # errors, and warnings, listed in one answer
ROOT = "mediexchange"


def by_line(issue: Issue) -> float:
    """Order of issues in an answer: by line, those without one (summaries) last."""
    return issue.line if issue.line is not None else math.inf


def client_key_of(root: etree._Element) -> str:
    """The ClientKey of a document; checks the root first, as nothing else can be read without it. `root` may
    be the parsed document's root or only its start tag (`xmlparse.root_start`): name and attributes suffice."""
    if not isinstance(root.tag, str) or local_name(root) != ROOT:
        raise BadRequest(f"the root element must be MediExchange, not {etree.QName(root).localname}")
    key = next((v.strip() for k, v in root.attrib.items() if plain_name(k) == "clientkey"), "")
    if not key:
        raise MissingClientKey("the MediExchange element has no ClientKey attribute")
    return key


def written_id(element: etree._Element) -> str | None:
    """A record's id attribute as the document wrote it (trimmed), whatever it holds."""
    return next((v.strip() for k, v in element.attrib.items() if plain_name(k) == "id"), None)


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
        self,
        element: etree._Element,
        section: str,
        known: frozenset[str],
        aliases: dict[str, str] | None = None,
        quiet: bool = False,
    ) -> Attributes:
        values: dict[str, str] = {}
        for raw_name, value in element.attrib.items():
            given = plain_name(raw_name)
            name = aliases.get(given, given) if aliases else given
            if name in values:
                spelled = etree.QName(raw_name).localname
                raise RecordError(f"attribute {name} is given more than once", attribute=spelled)
            if name not in known:
                if not quiet:
                    spelled = etree.QName(raw_name).localname
                    message = f"unknown attribute {spelled} ignored"
                    record_id = self.record_id(section, element)
                    self.warnings.add(
                        Issue("unknown_attribute", message, element.sourceline, section, record_id, spelled)
                    )
                continue
            values[name] = value
        return Attributes(element, values, aliases)

    def warn(
        self, code: str, message: str, element: etree._Element, section: str, record_id: str | None = None
    ) -> None:
        self.warnings.add(Issue(code, message, element.sourceline, section, record_id))

    def record_id(self, section_name: str, element: etree._Element) -> str | None:
        """How answers name the record an element belongs to: its key (a time_rules element belongs to
        its schedule), else its id as written."""
        owner = element.getparent() if local_name(element) == "time_rules" else element
        if owner is None:
            return None
        section = BY_NAME.get(section_name.lower())
        key = section.key_of(self, owner) if section is not None else None
        return key or written_id(owner)

    def exists_locally(self, local: dt.datetime, name: str) -> None:
        if not has_clock_change(local.date(), self.tz):  # nearly every day: nothing to check
            return
        try:
            localize(local, self.tz)
        except NonexistentLocalTime as exc:
            raise RecordError(f"attribute {name}: {exc}", attribute=name) from None

    # -- sections and records --------------------------------------------------------------------

    def records(self, section: Section[Any], element: etree._Element) -> tuple[tuple[Any, ...], Rejected]:
        """The section's valid records, each key once (a later record of a key wins, with a warning),
        and what was rejected: every bad record is an error of its own, the rest stand."""
        valid: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        rejected_keys: set[str] = set()
        received, count, unkeyed = 0, 0, False
        # The common case at once (protocol.bulk): every child a record, each read the same as below.
        fast = section.read_fast(self, element) if section.read_fast is not None else None
        if fast is not None and fast.clean:
            return tuple(fast.records), Rejected(len(fast.records))
        for index, child in enumerate(element):
            if not isinstance(child.tag, str):
                continue
            if local_name(child) != section.tag:
                message = f"unknown element {etree.QName(child).localname} ignored"
                self.warn("unknown_element", message, child, section.name)
                continue
            line = child.sourceline or 0
            received += 1
            try:
                read_fast = fast.records[index] if fast is not None else None
                record = section.read(self, child) if read_fast is None else read_fast
                read_key: str = section.key(record)
                # At most 4 bytes a character: only a long key needs measuring.
                if len(read_key) > MAX_KEY_BYTES // 4 and len(read_key.encode()) > MAX_KEY_BYTES:
                    raise RecordError(f"the record's key is longer than {MAX_KEY_BYTES} bytes")
                key: str | None = read_key
            except RecordError as exc:
                record, key = None, section.key_of(self, child)
                record_id = key or written_id(child)
                issue = Issue("invalid_record", str(exc), exc.line or line, section.name, record_id, exc.attribute)
                self.errors.add(issue)
                count += 1
                unkeyed |= key is None
            if key is None:
                continue
            if key in first_line:
                message = f"duplicate id {key}: the record at line {line} replaces the one at line {first_line[key]}"
                self.warn("duplicate_id", message, child, section.name, key)
            first_line[key] = line
            if record is None:
                rejected_keys.add(key)
                valid.pop(key, None)  # the later record wins, even a rejected one: the stored version stays
            else:
                rejected_keys.discard(key)
                valid[key] = record
        return tuple(valid.values()), Rejected(received, count, frozenset(rejected_keys), unkeyed)

    def sections(self, root: etree._Element) -> dict[Section[Any], etree._Element]:
        """The root's section elements; unknown ones are warnings, a section given twice an error."""
        for name in root.attrib:
            if plain_name(name) != "clientkey":
                spelled = etree.QName(name).localname
                message = f"unknown attribute {spelled} ignored"
                self.warnings.add(Issue("unknown_attribute", message, root.sourceline, "MediExchange", None, spelled))
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
                self.errors.add(Issue(DocumentRefused.code, message, element.sourceline, section.name))
            else:
                found[section] = element
        return found

    def sync_mode(self, element: etree._Element) -> SyncMode:
        """The Appointments section's SyncMode (absent: diff); one that cannot be read refuses the document."""
        try:
            a = self.attributes(element, "Appointments", frozenset({"syncmode"}))
            raw = a.text("syncmode", required=False)
            if raw.lower() not in ("", *SyncMode):
                raise a.fail("syncmode", f"must be full or diff, got {quoted(raw)}")
            return SyncMode(raw.lower() or SyncMode.DIFF.value)
        except RecordError as exc:
            issue = Issue(DocumentRefused.code, str(exc), element.sourceline, "Appointments", None, exc.attribute)
            self.errors.add(issue)
        return SyncMode.DIFF

    def read(self, root: etree._Element) -> Document:
        """Every section's records; raises DocumentRefused only for problems with the document as a whole."""
        client_key = client_key_of(root)
        found = self.sections(root)
        sync_mode = self.sync_mode(found[APPOINTMENTS]) if APPOINTMENTS in found else SyncMode.DIFF
        if self.errors:  # a section twice, an unreadable SyncMode: nothing can be applied safely
            raise DocumentRefused("the document cannot be applied; nothing was imported", self.errors.reported())
        records, rejected = {}, {}
        # In the table's order, whatever the document's: answers list sections the same way every time.
        for section in sorted(found, key=SECTIONS.index):
            records[section.name], rejected[section.name] = self.records(section, found[section])
        for name, what in rejected.items():
            if what.unkeyed and BY_NAME[name.lower()].replaces(sync_mode):
                message = f"a rejected record of {name} has no readable key, so {name} deletes nothing this time"
                self.warnings.add(Issue("deletions_suspended", message, found[BY_NAME[name.lower()]].sourceline, name))
        return Document(client_key, records, sync_mode, self.warnings.reported(), self.errors.reported(), rejected)


def read_document(root: etree._Element, tz: ZoneInfo) -> Document:
    """The whole document, record by record: bad records are listed in `errors` and left out; raises
    DocumentRefused only when the document as a whole cannot be applied."""
    return DocumentReader(tz).read(root)
