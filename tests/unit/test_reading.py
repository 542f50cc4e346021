"""The document reader on its own: bytes -> lxml root -> typed records, and every problem found.

Pure: no store, no handler, no AWS. Each document built here starts its body on line 2, so a
record written on the body's first line is on line 2 of the document.

Record by record (SPEC section 3, r2): a bad record is an error of its own and is left out, the
rest is read; only a problem with the document as a whole (a section twice, an unreadable
SyncMode) refuses it with DocumentRefused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.errors import BadRequest, DocumentRefused, MalformedXml, MissingClientKey
from mediexchange.protocol.reading import client_key_of, read_document
from mediexchange.protocol.xmlparse import parse_document
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

from tests.conftest import SAMPLE, SAMPLE_KEY

BERLIN = ZoneInfo("Europe/Berlin")  # clocks go forward 28.03.2021 02:00 -> 03:00, back 31.10.2021 03:00 -> 02:00
MOSCOW = ZoneInfo("Europe/Moscow")  # no daylight saving since 2014
INT64_RANGE = "from -9223372036854775808 to 9223372036854775807"
TOO_BIG, TOO_SMALL, TWENTY_DIGITS = "9223372036854775808", "-9223372036854775809", "1" * 20
NOT_A_TIME = "must be a time HH:MM from 00:00 to 23:59, got"
NOT_A_TIME_FORM = "must be a time HH:MM, got"
NOT_A_DATE = "must be a date DD.MM.YYYY, got"
NOT_A_DATETIME = "must be a date and time DD.MM.YYYY HH:MM:SS, got"
YEARS = "must lie in the years 1900 to 2199, got"
BREAK_OUTSIDE = "time_rules: the break must end after it starts and lie inside the working hours"
BREAK_HALF = "time_rules: b_start and b_end go together: give both or neither"
NOT_ASCII = "only ASCII-compatible encodings (UTF-8, windows-1251) are accepted"
REFUSED = "the document cannot be applied; nothing was imported"
MASKS = "😷" * 255  # a tablename of 255 characters, 4 UTF-8 bytes each: 1,020 bytes of key before the id

# -- building documents ------------------------------------------------------------------------

RG = {"id": "1", "name": "Врач-кардиолог"}
R = {"id": "393", "name": "Баева", "time_step": "30"}
S = {"id": "1", "date": "01.07.2010", "resource_id": "393"}
TR = {"w_start": "9:00", "w_end": "18:00"}
A = {"tablename": "SchedEvent", "id": "8", "resource_id": "383", "ReceptionDateTime": "30.06.2010 12:00:00", "Duration": "60"}  # fmt: skip
ORDER = {"id": "1", "status": "1", "LastChangedOn": "01.07.2010 12:11:02"}


def tag(name: str, base: dict[str, str], changes: dict[str, str | None], inner: str | None = None) -> str:
    """One element: `base` attributes with `changes` applied (None removes one)."""
    attrs = {**base, **changes}
    text = " ".join(f"{key}={quoteattr(value)}" for key, value in attrs.items() if value is not None)
    return f"<{name} {text}/>" if inner is None else f"<{name} {text}>{inner}</{name}>"


def rg(**changes: str | None) -> str:
    return f"<ResourceGroups>{tag('rg', RG, changes)}</ResourceGroups>"


def r(**changes: str | None) -> str:
    return f"<Resources>{tag('r', R, changes)}</Resources>"


TIME_RULES = tag("time_rules", TR, {})


def s(inner: str = TIME_RULES, **changes: str | None) -> str:
    return f"<Schedules>{tag('s', S, changes, inner)}</Schedules>"


def tr(**changes: str | None) -> str:
    """A schedule with one time_rules: TR with `changes`."""
    return s(tag("time_rules", TR, changes))


def a(**changes: str | None) -> str:
    return f"<Appointments>{tag('a', A, changes)}</Appointments>"


def full(**changes: str | None) -> str:
    """One appointment in a full sync: a section that replaces what is stored."""
    return f'<Appointments SyncMode="full">{tag("a", A, changes)}</Appointments>'


def o(**changes: str | None) -> str:
    return f"<Orders>{tag('o', ORDER, changes)}</Orders>"


def xml(body: str, root_attrs: str = f'ClientKey="{SAMPLE_KEY}"') -> bytes:
    return f"<MediExchange {root_attrs}>\n{body}\n</MediExchange>".encode()


def read(body: str, tz: ZoneInfo = BERLIN) -> Document:
    return read_document(parse_document(xml(body)), tz)


def refused(body: str, tz: ZoneInfo = BERLIN) -> tuple[Issue, ...]:
    """The issues of a document refused as a whole (nothing of it can be applied)."""
    with pytest.raises(DocumentRefused) as caught:
        read(body, tz)
    assert (caught.value.code, caught.value.message) == ("bad_request", REFUSED)
    return caught.value.issues


def invalid(message: str, section: str, record_id: str | None, attribute: str | None = None, line: int = 2) -> Issue:
    return Issue("invalid_record", message, line, section, record_id, attribute)


def suspended(section: str, line: int = 2) -> Issue:
    """The warning of a replaced section that deletes nothing because a rejected record has no readable key."""
    message = f"a rejected record of {section} has no readable key, so {section} deletes nothing this time"
    return Issue("deletions_suspended", message, line, section)


def duplicate(key: str, section: str, first: int, later: int) -> Issue:
    message = f"duplicate id {key}: the record at line {later} replaces the one at line {first}"
    return Issue("duplicate_id", message, later, section, key)


def rejected(count: int, *keys: str, unkeyed: bool = False) -> tuple[int, frozenset[str], bool]:
    return count, frozenset(keys), unkeyed


def rejections(document: Document) -> dict[str, tuple[int, frozenset[str], bool]]:
    """What each section rejected (how many records it received is checked on its own)."""
    return {name: (r.count, r.keys, r.unkeyed) for name, r in document.rejected.items()}


SECTION_NAMES = ("ResourceGroups", "Resources", "Schedules", "Appointments", "Orders")


def records(document: Document, section: str) -> Any:
    """The valid records of one section, by its element name; None if the section was absent."""
    found: tuple[Any, ...] | None = document.sections.get(section)
    return found


# -- the seed sample ---------------------------------------------------------------------------


def test_seed_sample_reads_completely_without_warnings() -> None:
    # Given the seed's own sample (upper-case order attributes, time_rules aliases, a negative id)
    root = parse_document(SAMPLE.read_bytes())
    # When it is read
    document = read_document(root, MOSCOW)
    # Then every section is there in full, with no warning, no error and nothing rejected
    assert document.client_key == SAMPLE_KEY
    groups, resources, schedules = (records(document, n) for n in ("ResourceGroups", "Resources", "Schedules"))
    assert (len(groups), len(resources), len(schedules)) == (11, 70, 43)
    assert groups[-1] == Group(-99999, "Кабинеты", 1)
    assert resources[0] == Resource(393, "Баева", 30, None, 0)
    assert resources[1] == Resource(391, "Баранов", 30, 7, 0)
    assert schedules[0] == Schedule(1, dt.date(2010, 7, 1), 393, (Window(420, 1080, 780, 840),))
    assert document.sync_mode is SyncMode.FULL
    assert records(document, "Appointments") == (
        Appointment("SchedEvent", 8, 383, dt.datetime(2010, 6, 30, 12), 60, "Печеркина М.И. - повторный прием"),
    )
    assert records(document, "Orders") == (
        OrderChange(1, OrderStatus.RECEIVED, dt.datetime(2010, 7, 1, 12, 11, 2), dt.datetime(2010, 7, 1, 17), 30, 369),
        OrderChange(2, OrderStatus.ACCEPTED, dt.datetime(2010, 7, 1, 12, 11, 3), dt.datetime(2010, 7, 1, 17), 20, -90),
    )
    assert (document.warnings, document.errors) == ((), ())
    assert rejections(document) == {name: rejected(0) for name in SECTION_NAMES}


# -- attribute forms that are read -------------------------------------------------------------


def test_absent_sections_are_none_and_empty_sections_are_empty() -> None:
    # Given a document with an empty ResourceGroups and an empty Resources, and nothing else
    # When it is read
    document = read("<ResourceGroups/>\n<Resources></Resources>")
    # Then the sent sections are empty, the others absent, and SyncMode is diff
    assert [records(document, n) for n in SECTION_NAMES] == [(), (), None, None, None]
    assert (document.sync_mode, document.warnings, document.errors) == (SyncMode.DIFF, (), ())
    assert rejections(document) == {"ResourceGroups": rejected(0), "Resources": rejected(0)}


GROUP_FORMS = [
    pytest.param(rg(), Group(1, "Врач-кардиолог", 0), id="pos absent is 0"),
    pytest.param(rg(pos=""), Group(1, "Врач-кардиолог", 0), id="pos empty is 0"),
    pytest.param(rg(pos=" 7 "), Group(1, "Врач-кардиолог", 7), id="pos trimmed"),
    pytest.param(rg(id="-99999", pos="-1"), Group(-99999, "Врач-кардиолог", -1), id="negative id and pos"),
    pytest.param(rg(id="+42"), Group(42, "Врач-кардиолог", 0), id="explicit plus sign"),
    pytest.param(rg(id="9223372036854775807"), Group(2**63 - 1, "Врач-кардиолог"), id="int64 max"),
    pytest.param(rg(id="-9223372036854775808"), Group(-(2**63), "Врач-кардиолог"), id="int64 min"),
    pytest.param(rg(name=' \t Врач & <сестра> "Ж" \n '), Group(1, 'Врач & <сестра> "Ж"'), id="name trimmed, escapes round-trip"),
    pytest.param(rg(name="x" * 1000), Group(1, "x" * 1000), id="name of exactly 1000 characters"),
    pytest.param(rg(name=" " + "x" * 1000 + " "), Group(1, "x" * 1000), id="length counted after trimming"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), GROUP_FORMS)
def test_group_attribute_forms(body: str, expected: Group) -> None:
    # Given one rg record
    # When it is read
    document = read(body)
    # Then it becomes exactly this Group, with no warning and no error
    assert records(document, "ResourceGroups") == (expected,)
    assert (document.warnings, document.errors) == ((), ())


RESOURCE_FORMS = [
    pytest.param(r(), Resource(393, "Баева", 30, None, 0), id="group_id absent: ungrouped"),
    pytest.param(r(group_id=""), Resource(393, "Баева", 30, None, 0), id="group_id empty: ungrouped"),
    pytest.param(r(group_id="-99999", pos="1"), Resource(393, "Баева", 30, -99999, 1), id="group_id and pos"),
    pytest.param(r(time_step="1"), Resource(393, "Баева", 1), id="time_step 1"),
    pytest.param(r(time_step="1440"), Resource(393, "Баева", 1440), id="time_step 1440"),
    pytest.param(r(time_step="+15", pos="-3"), Resource(393, "Баева", 15, None, -3), id="signed ints"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), RESOURCE_FORMS)
def test_resource_attribute_forms(body: str, expected: Resource) -> None:
    # Given one r record
    # When it is read
    document = read(body)
    # Then it becomes exactly this Resource
    assert records(document, "Resources") == (expected,)
    assert document.errors == ()


SPELLINGS = [
    pytest.param('<RESOURCES><R ID="393" NAME="Баева" TIME_STEP="30" GROUP_ID="7" POS="2"/></RESOURCES>', id="upper case"),
    pytest.param('<resources><r Id="393" Name="Баева" Time_Step="30" Group_Id="7" Pos="2"/></resources>', id="mixed case"),
    pytest.param('<n:Resources xmlns:n="urn:mis"><n:r n:id="393" name="Баева" n:time_step="30" group_id="7" pos="2"/></n:Resources>', id="namespaced"),
    pytest.param('<Resources xmlns="urn:mis"><r id="393" name="Баева" time_step="30" group_id="7" pos="2"/></Resources>', id="default namespace"),
]  # fmt: skip


@pytest.mark.parametrize("body", SPELLINGS)
def test_names_match_case_insensitively_and_without_namespace(body: str) -> None:
    # Given a resource whose names differ from the table's only in case or namespace
    # When it is read
    document = read(body)
    # Then it reads as if spelled as in the table, with no warning
    assert records(document, "Resources") == (Resource(393, "Баева", 30, 7, 2),)
    assert (document.warnings, document.errors) == ((), ())


WINDOWS = [
    pytest.param('w_start="9:00" w_end="18:00"', Window(540, 1080), id="no break"),
    pytest.param('w_start="09:05" w_end="18:00"', Window(545, 1080), id="two-digit hour"),
    pytest.param('w_start="08:00:00" w_end="18:00:59"', Window(480, 1080), id="HH:MM:SS, seconds dropped"),
    pytest.param('w_startTime="7:00" w_endTime="18:00" b_startTime="13:00" b_endTime="14:00"', Window(420, 1080, 780, 840), id="aliases"),
    pytest.param('W_STARTTIME="7:00" w_EndTime="18:00" B_Start="13:00" b_endtime="14:00"', Window(420, 1080, 780, 840), id="any case"),
    pytest.param('w_start="0:00" w_end="24:00"', Window(0, 1440), id="24:00 as the end"),
    pytest.param('w_start="9:00" w_end="24:00:00"', Window(540, 1440), id="24:00:00 as the end"),
    pytest.param('w_start="23:59" w_end="24:00"', Window(1439, 1440), id="the last minute"),
    pytest.param('w_start="9:00" w_end="18:00" b_start="" b_end=""', Window(540, 1080), id="empty break: none"),
    pytest.param('w_start="9:00" w_end="18:00" b_start=" " b_endTime=""', Window(540, 1080), id="blank break: none"),
    pytest.param('w_start="9:00" w_end="18:00" b_start="0:00" b_end="0:00"', Window(540, 1080), id="equal break 0:00-0:00: none"),
    pytest.param('w_start="9:00" w_end="18:00" b_start="13:00" b_end="13:00"', Window(540, 1080), id="equal break inside: none"),
    pytest.param('w_start="9:00" w_end="18:00" b_start="9:00" b_end="18:00"', Window(540, 1080, 540, 1080), id="break touching both edges"),
    pytest.param('w_start="9:00" w_end="24:00" b_start="23:00" b_end="24:00"', Window(540, 1440, 1380, 1440), id="break ending at 24:00"),
    pytest.param('w_start="9:00" w_end="18:00" b_start="13:00:00" b_end="14:00:30"', Window(540, 1080, 780, 840), id="break in HH:MM:SS"),
    # Overnight: an end before the start is the next day's; so is a break's part after midnight.
    pytest.param('w_start="18:00" w_end="9:00"', Window(1080, 1980), id="overnight 18:00-9:00"),
    pytest.param('w_start="20:00" w_end="08:00"', Window(1200, 1920), id="overnight 20:00-08:00"),
    pytest.param('w_start="20:00" w_end="0:00"', Window(1200, 1440), id="ending at 0:00: midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="22:00" b_end="23:00"', Window(1200, 1920, 1320, 1380), id="overnight, break before midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="1:00" b_end="2:00"', Window(1200, 1920, 1500, 1560), id="overnight, break after midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="23:30" b_end="0:30"', Window(1200, 1920, 1410, 1470), id="overnight, break across midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="23:00" b_end="24:00"', Window(1200, 1920, 1380, 1440), id="overnight, break up to midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="0:00" b_end="1:00"', Window(1200, 1920, 1440, 1500), id="overnight, break from midnight"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="20:00" b_end="21:00"', Window(1200, 1920, 1200, 1260), id="overnight, break at the start"),
    pytest.param('w_start="20:00" w_end="08:00" b_start="7:00" b_end="8:00"', Window(1200, 1920, 1860, 1920), id="overnight, break at the end"),
]  # fmt: skip


@pytest.mark.parametrize(("attrs", "expected"), WINDOWS)
def test_time_rules_forms(attrs: str, expected: Window) -> None:
    # Given a schedule with one time_rules
    # When it is read
    document = read(s(f"<time_rules {attrs}/>"))
    # Then its window is in minutes from the day's midnight, with no warning and no error
    assert records(document, "Schedules") == (Schedule(1, dt.date(2010, 7, 1), 393, (expected,)),)
    assert (document.warnings, document.errors) == ((), ())


DAYS_OFF = [
    pytest.param(s(""), id="no time_rules"),
    pytest.param(s("\n  \n"), id="only white space"),
    pytest.param(s("<time_rules/>"), id="empty time_rules"),
    pytest.param(s("<time_rules></time_rules><TIME_RULES/>"), id="two empty time_rules"),
    pytest.param(tr(w_start="", w_end=" "), id="blank w_start and w_end"),
    pytest.param(tr(w_start="12:00", w_end="12:00"), id="w_end equal to w_start"),
    pytest.param(tr(w_start="0:00", w_end="0:00"), id="0:00-0:00"),
    pytest.param(tr(w_start="8:00", w_end="08:00:00"), id="equal in two spellings"),
    pytest.param(s('<time_rules w_startTime="9:00" w_endTime="9:00"/>'), id="equal through aliases"),
]  # fmt: skip


@pytest.mark.parametrize("body", DAYS_OFF)
def test_a_day_off_is_a_schedule_without_windows(body: str) -> None:
    # Given a schedule with no time_rules, only empty ones, or one whose end equals its start
    # When it is read
    document = read(body)
    # Then it is a schedule of its day with no windows (it replaces what was stored and offers no slots)
    assert records(document, "Schedules") == (Schedule(1, dt.date(2010, 7, 1), 393, ()),)
    assert (document.warnings, document.errors) == ((), ())
    assert rejections(document) == {"Schedules": rejected(0)}


def test_an_empty_time_rules_beside_a_window_adds_nothing() -> None:
    # Given a schedule with an empty time_rules, a window, and a zero-length one
    inner = '<time_rules/><time_rules w_start="9:00" w_end="10:00"/><time_rules w_start="11:00" w_end="11:00"/>'
    # When it is read
    document = read(s(inner))
    # Then its one window is the real one
    assert records(document, "Schedules") == (Schedule(1, dt.date(2010, 7, 1), 393, (Window(540, 600),)),)


def test_several_time_rules_of_one_schedule_are_its_windows_in_order() -> None:
    # Given a schedule with three time_rules, the second with a break
    inner = (
        '<time_rules w_start="14:00" w_end="18:00"/>'
        '<Time_Rules w_start="8:00" w_end="12:00" b_start="10:00" b_end="10:30"/>'
        '<time_rules w_start="20:00" w_end="24:00"/>'
    )
    # When it is read
    document = read(s(inner))
    # Then it has three windows in document order
    windows = (Window(840, 1080), Window(480, 720, 600, 630), Window(1200, 1440))
    assert records(document, "Schedules") == (Schedule(1, dt.date(2010, 7, 1), 393, windows),)


def test_a_schedule_takes_up_to_1440_time_rules() -> None:
    # Given a schedule with 1440 time_rules
    # When it is read
    document = read(s(TIME_RULES * 1440))
    # Then it has 1440 windows
    assert records(document, "Schedules") == (Schedule(1, dt.date(2010, 7, 1), 393, (Window(540, 1080),) * 1440),)
    assert document.errors == ()


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        pytest.param("01.07.2010", dt.date(2010, 7, 1), id="DD.MM.YYYY"),
        pytest.param("1.7.2010", dt.date(2010, 7, 1), id="single digits"),
        pytest.param(" 29.02.2012 ", dt.date(2012, 2, 29), id="leap day, trimmed"),
        pytest.param("01.07.2010 0:00:00", dt.date(2010, 7, 1), id="with a midnight time H:MM:SS"),
        pytest.param("01.07.2010 00:00", dt.date(2010, 7, 1), id="with a midnight time HH:MM"),
        pytest.param("01.01.1900", dt.date(1900, 1, 1), id="the first year"),
        pytest.param("31.12.2199", dt.date(2199, 12, 31), id="the last year"),
    ],
)
def test_schedule_dates(date: str, expected: dt.date) -> None:
    # Given a schedule with this date
    # When it is read
    document = read(s(date=date))
    # Then the date is read day first
    assert records(document, "Schedules")[0].date == expected
    assert document.errors == ()


NOON = dt.datetime(2010, 6, 30, 12)
APPOINTMENT_FORMS = [
    pytest.param({}, Appointment("SchedEvent", 8, 383, NOON, 60, ""), id="no Title"),
    pytest.param({"Title": ""}, Appointment("SchedEvent", 8, 383, NOON, 60, ""), id="empty Title"),
    pytest.param({"title": "  Печеркина М.И.  "}, Appointment("SchedEvent", 8, 383, NOON, 60, "Печеркина М.И."), id="Title trimmed"),
    pytest.param({"ReceptionDateTime": "1.7.2010  9:05"}, Appointment("SchedEvent", 8, 383, dt.datetime(2010, 7, 1, 9, 5), 60), id="short date-time"),
    pytest.param({"ReceptionDateTime": "30.06.2010 23:59:59", "Duration": "1"}, Appointment("SchedEvent", 8, 383, dt.datetime(2010, 6, 30, 23, 59, 59), 1), id="seconds, Duration 1"),
    pytest.param({"ReceptionDateTime": "01.01.1900 0:00"}, Appointment("SchedEvent", 8, 383, dt.datetime(1900, 1, 1), 60), id="the first year"),
    pytest.param({"ReceptionDateTime": "31.12.2199 23:59:59"}, Appointment("SchedEvent", 8, 383, dt.datetime(2199, 12, 31, 23, 59, 59), 60), id="the last year"),
    pytest.param({"Duration": "0"}, Appointment("SchedEvent", 8, 383, NOON, 0), id="Duration 0 blocks no time"),
    pytest.param({"Duration": "+0"}, Appointment("SchedEvent", 8, 383, NOON, 0), id="Duration +0"),
    pytest.param({"Duration": "1440"}, Appointment("SchedEvent", 8, 383, NOON, 1440), id="Duration 1440"),
    pytest.param({"tablename": "X" * 255}, Appointment("X" * 255, 8, 383, NOON, 60), id="tablename of 255 characters"),
    pytest.param({"tablename": MASKS, "id": "123"}, Appointment(MASKS, 123, 383, NOON, 60), id="key of exactly 1024 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "expected"), APPOINTMENT_FORMS)
def test_appointment_forms(changes: dict[str, str | None], expected: Appointment) -> None:
    # Given one appointment
    # When it is read
    document = read(a(**changes))
    # Then it becomes exactly this Appointment, keyed by tablename and id
    assert records(document, "Appointments") == (expected,)
    assert records(document, "Appointments")[0].key == f"{expected.tablename}#{expected.id}"
    assert (document.errors, rejections(document)) == ((), {"Appointments": rejected(0)})


SYNC_MODES = [
    pytest.param("<Appointments/>", SyncMode.DIFF, id="absent: diff"),
    pytest.param('<Appointments SyncMode=""/>', SyncMode.DIFF, id="empty: diff"),
    pytest.param('<Appointments SyncMode="full"/>', SyncMode.FULL, id="full"),
    pytest.param('<Appointments SyncMode="diff"/>', SyncMode.DIFF, id="diff"),
    pytest.param('<Appointments syncmode=" FULL "/>', SyncMode.FULL, id="any case, trimmed"),
    pytest.param('<APPOINTMENTS SYNCMODE="Diff"/>', SyncMode.DIFF, id="upper-case names"),
    pytest.param('<x:Appointments xmlns:x="urn:mis" x:SyncMode="Full"/>', SyncMode.FULL, id="namespaced"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "expected"), SYNC_MODES)
def test_sync_mode(section: str, expected: SyncMode) -> None:
    # Given an Appointments section with this SyncMode
    # When it is read
    document = read(section)
    # Then the mode is read; the section is present and empty
    assert document.sync_mode is expected
    assert records(document, "Appointments") == ()


def test_sync_mode_is_diff_without_an_appointments_section() -> None:
    # Given a document with no Appointments section
    # When it is read
    document = read(r())
    # Then the mode is diff and appointments are absent
    assert (document.sync_mode, records(document, "Appointments")) == (SyncMode.DIFF, None)


CHANGED_AT = dt.datetime(2010, 7, 1, 12, 11, 2)
SAMPLE_SPELLING = {
    "id": None, "status": None, "LastChangedOn": None, "ID": "5", "Status": "1", "LASTCHANGEDON": "1.7.2010 9:00",
    "Reception_DateTime": "01.07.2010 17:00:00", "Duration": "30", "MW_Resource_ID": "369",
}  # fmt: skip
ORDER_FORMS = [
    pytest.param({}, OrderChange(1, OrderStatus.ACCEPTED, CHANGED_AT), id="status only"),
    pytest.param(
        {"status": "0", "reception_datetime": "02.07.2010 10:30", "duration": "45", "mw_resource_id": "-90"},
        OrderChange(1, OrderStatus.RECEIVED, CHANGED_AT, dt.datetime(2010, 7, 2, 10, 30), 45, -90),
        id="a move",
    ),
    pytest.param(
        {"status": "3", "reception_datetime": "", "duration": " ", "mw_resource_id": ""},
        OrderChange(1, OrderStatus.REJECTED, CHANGED_AT),
        id="empty optionals: not given",
    ),
    pytest.param(
        SAMPLE_SPELLING,
        OrderChange(5, OrderStatus.ACCEPTED, dt.datetime(2010, 7, 1, 9), dt.datetime(2010, 7, 1, 17), 30, 369),
        id="the sample's spelling",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), ORDER_FORMS)
def test_order_forms(changes: dict[str, str | None], expected: OrderChange) -> None:
    # Given one order change
    # When it is read
    document = read(o(**changes))
    # Then it becomes exactly this OrderChange, with no warning
    assert records(document, "Orders") == (expected,)
    assert document.warnings == ()


def test_echoed_order_attributes_are_ignored_without_a_warning() -> None:
    # Given an order sent back with every attribute the export carries
    echoed = {
        "user_id": "1", "User_Name": "имя", "order_date": "01.07.2010", "Resource_Name": "Нестеров О. П.", "resource_id": "1",
        "Type": "3", "Name1": "фамилия", "name2": "имя", "NAME3": "отчество", "Aim": "цель", "Phone": "телефон",
        "City": "город", "Address": "адрес", "Email": "mlab@medwork.ru", "comment": "x" * 2000,
    }  # fmt: skip
    # When it is read
    document = read(o(**echoed))
    # Then only what an MIS may change is read, and nothing is warned (not even a comment over 1000 characters)
    assert records(document, "Orders") == (OrderChange(1, OrderStatus.ACCEPTED, CHANGED_AT),)
    assert document.warnings == ()


def test_a_local_time_that_occurs_twice_is_read_as_given() -> None:
    # Given times in the repeated hour of Berlin's autumn clock change
    body = a(ReceptionDateTime="31.10.2021 02:30:00") + o(
        LastChangedOn="31.10.2021 02:30", reception_datetime="31.10.2021 02:59"
    )
    # When it is read
    document = read(body)
    # Then they are accepted, as the naive local times they are
    [appointment], [order] = records(document, "Appointments"), records(document, "Orders")
    assert (appointment.start, order.last_changed, order.reception) == (
        dt.datetime(2021, 10, 31, 2, 30),
        dt.datetime(2021, 10, 31, 2, 30),
        dt.datetime(2021, 10, 31, 2, 59),
    )


def test_a_time_missing_in_berlin_exists_in_moscow() -> None:
    # Given 28.03.2021 02:30, skipped in Berlin but not in Moscow
    body = a(ReceptionDateTime="28.03.2021 02:30") + o(LastChangedOn="28.03.2021 02:30:00")
    # When it is read for a Moscow clinic
    document = read(body, MOSCOW)
    # Then both records are read
    [appointment], [order] = records(document, "Appointments"), records(document, "Orders")
    assert appointment.start == order.last_changed == dt.datetime(2021, 3, 28, 2, 30)


def test_the_minutes_around_the_spring_gap_exist() -> None:
    # Given 01:59 and 03:00 on the day Berlin's clocks jump from 02:00 to 03:00
    body = a(ReceptionDateTime="28.03.2021 01:59:59") + o(LastChangedOn="28.03.2021 03:00:00")
    # When it is read
    document = read(body)
    # Then both are valid times
    [appointment], [order] = records(document, "Appointments"), records(document, "Orders")
    assert (appointment.start, order.last_changed) == (dt.datetime(2021, 3, 28, 1, 59, 59), dt.datetime(2021, 3, 28, 3))


# -- warnings ----------------------------------------------------------------------------------

WARNINGS = [
    pytest.param(rg(extra="1"), Issue("unknown_attribute", "unknown attribute extra ignored", 2, "ResourceGroups", "1", "extra"), id="record attribute"),
    pytest.param(rg(EXTRA="1"), Issue("unknown_attribute", "unknown attribute EXTRA ignored", 2, "ResourceGroups", "1", "EXTRA"), id="named as spelled"),
    pytest.param('<Resources>\n<resource id="1"/>\n</Resources>', Issue("unknown_element", "unknown element resource ignored", 3, "Resources"), id="element in a section"),
    pytest.param(s('\n<time_rules w_start="9:00" w_end="18:00"/>\n<pause/>\n'), Issue("unknown_element", "unknown element pause ignored", 4, "Schedules", "1"), id="element in a schedule"),
    pytest.param(s('\n<time_rules w_start="9:00" w_end="18:00" lunch="13:00"/>'), Issue("unknown_attribute", "unknown attribute lunch ignored", 3, "Schedules", "1", "lunch"), id="time_rules attribute"),
    pytest.param('<Appointments SyncMode="full" mode="x"/>', Issue("unknown_attribute", "unknown attribute mode ignored", 2, "Appointments", None, "mode"), id="Appointments attribute"),
    pytest.param(o(foo="1"), Issue("unknown_attribute", "unknown attribute foo ignored", 2, "Orders", "1", "foo"), id="order attribute not echoed"),
    pytest.param("<Orders/>\n<Patients/>", Issue("unknown_element", "unknown section Patients ignored", 3, "MediExchange"), id="section"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "warning"), WARNINGS)
def test_unknown_names_are_warnings_and_the_rest_is_read(body: str, warning: Issue) -> None:
    # Given a valid document with one unknown name
    # When it is read
    document = read(body)
    # Then it is read, with one warning giving code, message, line, section, record id and attribute
    assert document.warnings == (warning,)
    assert document.errors == ()


def test_an_unknown_root_attribute_is_a_warning() -> None:
    # Given a root with an attribute beside ClientKey
    root = parse_document(xml("<Orders/>", f'ClientKey="{SAMPLE_KEY}" Version="2"'))
    # When it is read
    document = read_document(root, BERLIN)
    # Then it is warned about on the root's line
    assert document.warnings == (
        Issue("unknown_attribute", "unknown attribute Version ignored", 1, "MediExchange", None, "Version"),
    )


def test_the_record_with_an_unknown_attribute_is_still_read() -> None:
    # Given a resource with an unknown attribute
    # When it is read
    document = read(r(color="red"))
    # Then the resource is read as if the attribute were not there
    assert records(document, "Resources") == (Resource(393, "Баева", 30),)
    assert [w.code for w in document.warnings] == ["unknown_attribute"]


def test_warnings_are_sorted_by_line_whatever_the_order_sections_are_read_in() -> None:
    # Given warnings on lines 2 to 6, in sections the reader reads in another order
    body = "\n".join(
        [
            o(a1="x"),
            a(a2="x"),
            tr(a3="x"),
            r(a4="x"),
            rg(a5="x") + "<Unknown/>",
        ]
    )
    # When it is read
    document = read(body)
    # Then the warnings come by line, ties in the order found
    assert [(w.line, w.message) for w in document.warnings] == [
        (2, "unknown attribute a1 ignored"),
        (3, "unknown attribute a2 ignored"),
        (4, "unknown attribute a3 ignored"),
        (5, "unknown attribute a4 ignored"),
        (6, "unknown section Unknown ignored"),
        (6, "unknown attribute a5 ignored"),
    ]


def test_more_than_1000_warnings_end_with_a_count_of_the_rest() -> None:
    # Given 1003 groups, each with an unknown attribute, one to a line from line 3
    body = (
        "<ResourceGroups>\n"
        + "\n".join(f'<rg id="{i}" name="n" foo="1"/>' for i in range(1003))
        + "\n</ResourceGroups>"
    )
    # When it is read
    document = read(body)
    # Then every group is read, the first 1000 warnings are listed, and one more says how many were not
    assert len(records(document, "ResourceGroups")) == 1003
    assert len(document.warnings) == 1001
    assert [w.line for w in document.warnings[:1000]] == list(range(3, 1003))
    assert document.warnings[-1] == Issue("more_warnings", "and 3 more not listed")


# -- errors: record by record ------------------------------------------------------------------

# Each: a document whose only record has one problem, the error it gives, and the record's key as far
# as it can be read (None: no readable key, so a replaced section deletes nothing this time).
ONE_ERROR = [
    # ResourceGroups
    pytest.param(rg(id=None), invalid("attribute id is required", "ResourceGroups", None, "id"), None, id="rg without id"),
    pytest.param(rg(name="   "), invalid("attribute name is required", "ResourceGroups", "1", "name"), "1", id="blank name"),
    pytest.param(rg(id="abc"), invalid("attribute id must be an integer, got 'abc'", "ResourceGroups", "abc", "id"), None, id="non-integer id"),
    pytest.param(rg(id="1.0"), invalid("attribute id must be an integer, got '1.0'", "ResourceGroups", "1.0", "id"), None, id="decimal id"),
    pytest.param(rg(id="١٢"), invalid("attribute id must be an integer, got '١٢'", "ResourceGroups", "١٢", "id"), None, id="Arabic-Indic digits are no digits"),
    pytest.param(rg(id="１２"), invalid("attribute id must be an integer, got '１２'", "ResourceGroups", "１２", "id"), None, id="full-width digits are no digits"),
    pytest.param(rg(pos="first"), invalid("attribute pos must be an integer, got 'first'", "ResourceGroups", "1", "pos"), "1", id="non-integer pos"),
    pytest.param(rg(pos="٣"), invalid("attribute pos must be an integer, got '٣'", "ResourceGroups", "1", "pos"), "1", id="non-ASCII digit pos"),
    pytest.param(rg(id=TOO_BIG), invalid(f"attribute id must be {INT64_RANGE}, got {TOO_BIG}", "ResourceGroups", TOO_BIG, "id"), None, id="id above int64"),
    pytest.param(rg(id=TOO_SMALL), invalid(f"attribute id must be {INT64_RANGE}, got {TOO_SMALL}", "ResourceGroups", TOO_SMALL, "id"), None, id="id below int64"),
    pytest.param(rg(id=TWENTY_DIGITS), invalid(f"attribute id must be an integer, got '{TWENTY_DIGITS}'", "ResourceGroups", TWENTY_DIGITS, "id"), None, id="id of 20 digits"),
    pytest.param(rg(name="x" * 1001), invalid("attribute name is longer than 1000 characters (1001)", "ResourceGroups", "1", "name"), "1", id="name over 1000"),
    # Resources
    pytest.param(r(time_step="0"), invalid("attribute time_step must be from 1 to 1440, got 0", "Resources", "393", "time_step"), "393", id="time_step 0"),
    pytest.param(r(time_step="1441"), invalid("attribute time_step must be from 1 to 1440, got 1441", "Resources", "393", "time_step"), "393", id="time_step 1441"),
    pytest.param(r(time_step=None), invalid("attribute time_step is required", "Resources", "393", "time_step"), "393", id="no time_step"),
    pytest.param(r(time_step=None, Time_Step="0"), invalid("attribute Time_Step must be from 1 to 1440, got 0", "Resources", "393", "Time_Step"), "393", id="named as the document spells it"),
    pytest.param(r(group_id="seven"), invalid("attribute group_id must be an integer, got 'seven'", "Resources", "393", "group_id"), "393", id="non-integer group_id"),
    # Schedules
    pytest.param(s(date="2010-07-01"), invalid(f"attribute date {NOT_A_DATE} '2010-07-01'", "Schedules", "1", "date"), "1", id="ISO date"),
    pytest.param(s(date="01.07.10"), invalid(f"attribute date {NOT_A_DATE} '01.07.10'", "Schedules", "1", "date"), "1", id="two-digit year"),
    pytest.param(s(date="01.07.٢٠١٠"), invalid(f"attribute date {NOT_A_DATE} '01.07.٢٠١٠'", "Schedules", "1", "date"), "1", id="year in Arabic-Indic digits"),
    pytest.param(s(date="01.07.2010 14:00:00"), invalid(f"attribute date {NOT_A_DATE} '01.07.2010 14:00:00'", "Schedules", "1", "date"), "1", id="date with a time not midnight"),
    pytest.param(s(date="31.02.2010"), invalid("attribute date is not a real date or time: '31.02.2010'", "Schedules", "1", "date"), "1", id="31 February"),
    pytest.param(s(date="29.02.2011"), invalid("attribute date is not a real date or time: '29.02.2011'", "Schedules", "1", "date"), "1", id="29 February 2011"),
    pytest.param(s(date="01.01.0001"), invalid(f"attribute date {YEARS} '01.01.0001'", "Schedules", "1", "date"), "1", id="year 0001"),
    pytest.param(s(date="31.12.1899"), invalid(f"attribute date {YEARS} '31.12.1899'", "Schedules", "1", "date"), "1", id="year 1899"),
    pytest.param(s(date="01.01.2200"), invalid(f"attribute date {YEARS} '01.01.2200'", "Schedules", "1", "date"), "1", id="year 2200"),
    pytest.param(s(resource_id=None), invalid("attribute resource_id is required", "Schedules", "1", "resource_id"), "1", id="no resource_id"),
    pytest.param(tr(w_start="9.00"), invalid(f"time_rules: attribute w_start {NOT_A_TIME_FORM} '9.00'", "Schedules", "1", "w_start"), "1", id="time with a dot"),
    pytest.param(tr(w_start="٩:00"), invalid(f"time_rules: attribute w_start {NOT_A_TIME_FORM} '٩:00'", "Schedules", "1", "w_start"), "1", id="time in Arabic-Indic digits"),
    pytest.param(tr(w_start="24:00"), invalid(f"time_rules: attribute w_start {NOT_A_TIME} '24:00'", "Schedules", "1", "w_start"), "1", id="24:00 as a start"),
    pytest.param(tr(w_end="23:60"), invalid(f"time_rules: attribute w_end {NOT_A_TIME} '23:60'", "Schedules", "1", "w_end"), "1", id="minute 60"),
    pytest.param(tr(w_end="25:00"), invalid(f"time_rules: attribute w_end {NOT_A_TIME} '25:00'", "Schedules", "1", "w_end"), "1", id="hour 25"),
    pytest.param(tr(w_end="24:00:01"), invalid(f"time_rules: attribute w_end {NOT_A_TIME} '24:00:01'", "Schedules", "1", "w_end"), "1", id="a second after 24:00"),
    pytest.param(tr(b_start="24:00", b_end="24:00"), invalid(f"time_rules: attribute b_start {NOT_A_TIME} '24:00'", "Schedules", "1", "b_start"), "1", id="24:00 as a break start"),
    pytest.param(tr(w_end=None), invalid("time_rules: attribute w_end is required", "Schedules", "1", "w_end"), "1", id="no w_end"),
    pytest.param(tr(w_start=""), invalid("time_rules: attribute w_start is required", "Schedules", "1", "w_start"), "1", id="no w_start"),
    pytest.param(tr(b_start="13:00"), invalid(BREAK_HALF, "Schedules", "1"), "1", id="break start only"),
    pytest.param(tr(b_start="", b_endTime="14:00"), invalid(BREAK_HALF, "Schedules", "1"), "1", id="break end only"),
    pytest.param(tr(b_start="8:30", b_end="9:30"), invalid(BREAK_OUTSIDE, "Schedules", "1"), "1", id="break before the window"),
    pytest.param(tr(b_start="17:30", b_end="18:01"), invalid(BREAK_OUTSIDE, "Schedules", "1"), "1", id="break after the window"),
    pytest.param(tr(b_start="14:00", b_end="13:00"), invalid(BREAK_OUTSIDE, "Schedules", "1"), "1", id="break ending before it starts"),
    pytest.param(tr(w_start="20:00", w_end="08:00", b_start="9:00", b_end="10:00"), invalid(BREAK_OUTSIDE, "Schedules", "1"), "1", id="break outside an overnight window"),
    pytest.param(tr(w_start="20:00", w_end="08:00", b_start="19:00", b_end="21:00"), invalid(BREAK_OUTSIDE, "Schedules", "1"), "1", id="break starting before an overnight window"),
    pytest.param(tr(w_startTime="10:00"), invalid("time_rules: attribute w_start is given more than once", "Schedules", "1", "w_startTime"), "1", id="w_start given twice via alias"),
    # Appointments (those without a readable key in a full sync, a section that replaces)
    pytest.param(a(Duration="-1"), invalid("attribute Duration must be from 0 to 1440, got -1", "Appointments", "SchedEvent#8", "Duration"), "SchedEvent#8", id="Duration -1"),
    pytest.param(a(Duration="1441"), invalid("attribute Duration must be from 0 to 1440, got 1441", "Appointments", "SchedEvent#8", "Duration"), "SchedEvent#8", id="Duration 1441"),
    pytest.param(a(Duration="٦٠"), invalid("attribute Duration must be an integer, got '٦٠'", "Appointments", "SchedEvent#8", "Duration"), "SchedEvent#8", id="Duration in Arabic-Indic digits"),
    pytest.param(a(ReceptionDateTime=None), invalid("attribute ReceptionDateTime is required", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="no ReceptionDateTime"),
    pytest.param(a(ReceptionDateTime="30.06.2010"), invalid(f"attribute ReceptionDateTime {NOT_A_DATETIME} '30.06.2010'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="date without time"),
    pytest.param(a(ReceptionDateTime="2010-06-30T12:00:00"), invalid(f"attribute ReceptionDateTime {NOT_A_DATETIME} '2010-06-30T12:00:00'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="ISO date-time"),
    pytest.param(a(ReceptionDateTime="31.04.2010 12:00"), invalid("attribute ReceptionDateTime is not a real date or time: '31.04.2010 12:00'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="31 April"),
    pytest.param(a(ReceptionDateTime="30.06.2010 24:00"), invalid("attribute ReceptionDateTime is not a real date or time: '30.06.2010 24:00'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="24:00 in a date-time"),
    pytest.param(a(ReceptionDateTime="30.06.2010 12:00:60"), invalid("attribute ReceptionDateTime is not a real date or time: '30.06.2010 12:00:60'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="second 60"),
    pytest.param(a(ReceptionDateTime="01.01.0001 10:00"), invalid(f"attribute ReceptionDateTime {YEARS} '01.01.0001 10:00'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="appointment in year 0001"),
    pytest.param(a(ReceptionDateTime="01.01.2200 10:00"), invalid(f"attribute ReceptionDateTime {YEARS} '01.01.2200 10:00'", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="appointment in year 2200"),
    pytest.param(full(tablename=None), invalid("attribute tablename is required", "Appointments", "8", "tablename"), None, id="no tablename"),
    pytest.param(full(tablename="X" * 256), invalid("attribute tablename is longer than 255 characters (256)", "Appointments", "8", "tablename"), None, id="tablename of 256 characters"),
    pytest.param(full(tablename=MASKS, id="12345"), invalid("the record's key is longer than 1024 bytes", "Appointments", "12345"), None, id="key over 1024 bytes"),
    pytest.param(a(Title="x" * 1001), invalid("attribute Title is longer than 1000 characters (1001)", "Appointments", "SchedEvent#8", "Title"), "SchedEvent#8", id="Title over 1000"),
    pytest.param(a(ReceptionDateTime="28.03.2021 02:30"), invalid("attribute ReceptionDateTime: 28.03.2021 02:30:00 does not exist in Europe/Berlin (daylight-saving change)", "Appointments", "SchedEvent#8", "ReceptionDateTime"), "SchedEvent#8", id="appointment in the spring gap"),
    # Orders (no deletions to suspend: they change records the portal owns)
    pytest.param(o(status="2"), invalid("attribute status must be 0 (received), 1 (accepted) or 3 (rejected), got 2", "Orders", "1", "status"), "1", id="status 2"),
    pytest.param(o(status=None), invalid("attribute status is required", "Orders", "1", "status"), "1", id="no status"),
    pytest.param(o(id="x"), invalid("attribute id must be an integer, got 'x'", "Orders", "x", "id"), None, id="non-integer order id"),
    pytest.param(o(id=None), invalid("attribute id is required", "Orders", None, "id"), None, id="order without id"),
    pytest.param(o(duration="0"), invalid("attribute duration must be from 1 to 1440, got 0", "Orders", "1", "duration"), "1", id="order duration 0"),
    pytest.param(o(mw_resource_id="R1"), invalid("attribute mw_resource_id must be an integer, got 'R1'", "Orders", "1", "mw_resource_id"), "1", id="non-integer mw_resource_id"),
    pytest.param(o(reception_datetime="01.07.2010"), invalid(f"attribute reception_datetime {NOT_A_DATETIME} '01.07.2010'", "Orders", "1", "reception_datetime"), "1", id="reception date without time"),
    pytest.param(o(LastChangedOn="01.01.2200 10:00"), invalid(f"attribute LastChangedOn {YEARS} '01.01.2200 10:00'", "Orders", "1", "LastChangedOn"), "1", id="LastChangedOn in year 2200"),
    pytest.param(o(reception_datetime="01.01.0001 10:00"), invalid(f"attribute reception_datetime {YEARS} '01.01.0001 10:00'", "Orders", "1", "reception_datetime"), "1", id="reception_datetime in year 0001"),
    pytest.param(o(LastChangedOn="28.03.2021 02:30:00"), invalid("attribute LastChangedOn: 28.03.2021 02:30:00 does not exist in Europe/Berlin (daylight-saving change)", "Orders", "1", "LastChangedOn"), "1", id="LastChangedOn in the spring gap"),
    pytest.param(o(reception_datetime="28.03.2021 02:00"), invalid("attribute reception_datetime: 28.03.2021 02:00:00 does not exist in Europe/Berlin (daylight-saving change)", "Orders", "1", "reception_datetime"), "1", id="reception_datetime in the spring gap"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected", "key"), ONE_ERROR)
def test_one_bad_record_is_rejected_alone(body: str, expected: Issue, key: str | None) -> None:
    # Given a document whose only record has one problem
    # When it is read
    document = read(body)
    # Then that record is left out and is one error, with its line, section, id and attribute
    section = str(expected.section)
    assert document.errors == (expected,)
    assert records(document, section) == ()
    # And it is counted as rejected: by its key if it has one (its stored version stays), else as
    # unkeyed, and then a section that replaces (all but Orders) deletes nothing this time
    assert rejections(document) == {section: rejected(1, *([key] if key else []), unkeyed=key is None)}
    assert document.warnings == ((suspended(section),) if key is None and section != "Orders" else ())


def test_the_rest_of_the_document_applies_beside_a_rejected_record() -> None:
    # Given a bad group, a good group, and good records in every other section
    body = "\n".join(
        [
            f"<ResourceGroups>{tag('rg', RG, {'name': ''})}{tag('rg', RG, {'id': '2'})}</ResourceGroups>",
            r(),
            s(),
            a(),
            o(),
        ]
    )
    # When it is read
    document = read(body)
    # Then only the bad group is missing
    assert document.errors == (invalid("attribute name is required", "ResourceGroups", "1", "name"),)
    assert document.sections == {
        "ResourceGroups": (Group(2, "Врач-кардиолог"),),
        "Resources": (Resource(393, "Баева", 30),),
        "Schedules": (Schedule(1, dt.date(2010, 7, 1), 393, (Window(540, 1080),)),),
        "Appointments": (Appointment("SchedEvent", 8, 383, NOON, 60),),
        "Orders": (OrderChange(1, OrderStatus.ACCEPTED, CHANGED_AT),),
    }
    assert rejections(document) == {
        "ResourceGroups": rejected(1, "1"),
        **{name: rejected(0) for name in SECTION_NAMES[1:]},
    }
    assert document.warnings == ()


@pytest.mark.parametrize(
    ("body", "section", "attribute"),
    [
        pytest.param(rg(ID="2"), "ResourceGroups", "ID", id="id and ID"),
        pytest.param(a(TableName="T"), "Appointments", "TableName", id="tablename and TableName"),
    ],
)
def test_a_key_attribute_given_twice_rejects_the_record(body: str, section: str, attribute: str) -> None:
    # Given a record that gives an attribute of its key twice, in two cases
    # When it is read
    document = read(body)
    # Then that record is rejected like any other bad record, naming the second spelling
    [error] = document.errors
    name = attribute.lower()
    assert (error.code, error.message, error.line, error.section, error.attribute) == (
        "invalid_record", f"attribute {name} is given more than once", 2, section, attribute
    )  # fmt: skip
    assert records(document, section) == ()
    assert document.rejected[section].count == 1


@pytest.mark.parametrize("value", ["08:00:60", "08:00:99"])
def test_a_schedule_time_with_seconds_past_59_is_rejected(value: str) -> None:
    # Given a time_rules whose start has seconds that no clock shows
    # When it is read
    document = read(tr(w_start=value))
    # Then the schedule is rejected, naming the attribute
    assert len(document.errors) == 1
    [error] = document.errors
    assert (error.code, error.line, error.section, error.record_id, error.attribute) == (
        "invalid_record", 2, "Schedules", "1", "w_start"
    )  # fmt: skip
    assert error.message.startswith("time_rules: attribute w_start ") and repr(value) in error.message
    assert records(document, "Schedules") == ()


def test_a_time_rules_error_is_located_at_the_time_rules_line() -> None:
    # Given a schedule on line 3 whose second time_rules, on line 5, has a bad time
    inner = '\n<time_rules w_start="9:00" w_end="12:00"/>\n<time_rules w_start="13:00" w_end="12:99"/>\n'
    body = "<Schedules>\n" + tag("s", S, {"id": "7"}, inner) + "\n</Schedules>"
    # When it is read
    document = read(body)
    # Then the error is on the time_rules' line, with the schedule's id, and the whole schedule is left out
    assert document.errors == (
        invalid(f"time_rules: attribute w_end {NOT_A_TIME} '12:99'", "Schedules", "7", "w_end", 5),
    )
    assert (records(document, "Schedules"), rejections(document)) == ((), {"Schedules": rejected(1, "7")})


def test_a_schedule_of_1441_time_rules_is_rejected_at_the_one_too_many() -> None:
    # Given a schedule on line 2 with 1441 time_rules, one to a line from line 3
    body = s("\n" + "\n".join([TIME_RULES] * 1441) + "\n")
    # When it is read
    document = read(body)
    # Then it is rejected, located at the 1441st time_rules (line 1443)
    assert document.errors == (invalid("a schedule takes at most 1440 time_rules", "Schedules", "1", None, 1443),)
    assert (records(document, "Schedules"), rejections(document)) == ((), {"Schedules": rejected(1, "1")})


def test_every_bad_record_of_a_section_is_reported_in_document_order() -> None:
    # Given three resources on lines 3 to 5, the first and third bad
    lines = [tag("r", R, {"id": "1", "name": ""}), tag("r", R, {"id": "2"}), tag("r", R, {"id": "3", "time_step": "x"})]
    body = "<Resources>\n" + "\n".join(lines) + "\n</Resources>"
    # When it is read
    document = read(body)
    # Then both errors are listed, each on its own line, and the good one is read
    assert document.errors == (
        invalid("attribute name is required", "Resources", "1", "name", 3),
        invalid("attribute time_step must be an integer, got 'x'", "Resources", "3", "time_step", 5),
    )
    assert records(document, "Resources") == (Resource(2, "Баева", 30),)
    assert rejections(document) == {"Resources": rejected(2, "1", "3")}


def test_errors_come_section_by_section_in_the_table_order() -> None:
    # Given bad orders on line 2 and bad groups on line 3, in that order in the document
    body = o(id="x") + "\n" + f"<ResourceGroups>{tag('rg', RG, {'name': ''})}{tag('rg', RG, {'id': '2', 'pos': 'p'})}</ResourceGroups>"  # fmt: skip
    # When it is read
    document = read(body)
    # Then the groups' errors come first (in document order), then the orders'
    assert document.errors == (
        invalid("attribute name is required", "ResourceGroups", "1", "name", 3),
        invalid("attribute pos must be an integer, got 'p'", "ResourceGroups", "2", "pos", 3),
        invalid("attribute id must be an integer, got 'x'", "Orders", "x", "id", 2),
    )
    assert rejections(document) == {"ResourceGroups": rejected(2, "1", "2"), "Orders": rejected(1, unkeyed=True)}


# -- deletions suspended -----------------------------------------------------------------------

# Each: a replaced section holding, on line 3, a record whose key cannot be read, and on line 4 a good one.
UNKEYED = [
    pytest.param("<ResourceGroups>", '<rg id="x1" name="A"/>', '<rg id="2" name="B"/>', Group(2, "B"), id="groups"),
    pytest.param("<Resources>", '<r name="A" time_step="30"/>', '<r id="2" name="B" time_step="30"/>', Resource(2, "B", 30), id="resources"),
    pytest.param("<Schedules>", '<s id="1.5" date="01.07.2010" resource_id="393"/>', '<s id="2" date="01.07.2010" resource_id="393"/>', Schedule(2, dt.date(2010, 7, 1), 393, ()), id="schedules"),
    pytest.param('<Appointments SyncMode="full">', '<a id="8" resource_id="383" ReceptionDateTime="30.06.2010 12:00:00" Duration="60"/>', tag("a", A, {}), Appointment("SchedEvent", 8, 383, NOON, 60), id="appointments, full sync"),
]  # fmt: skip


@pytest.mark.parametrize(("opening", "bad", "good", "record"), UNKEYED)
def test_a_rejected_record_without_a_readable_key_suspends_deletions(
    opening: str, bad: str, good: str, record: Any
) -> None:
    # Given a replaced section on line 2 with a record whose key cannot be read, and a good one
    section = opening[1:-1].split()[0]
    body = f"{opening}\n{bad}\n{good}\n</{section}>"
    # When it is read
    document = read(body)
    # Then the good record is read, the bad one rejected as unkeyed, and the section warns (on its
    # own line) that it deletes nothing this time
    assert records(document, section) == (record,)
    assert [(e.code, e.line, e.section) for e in document.errors] == [("invalid_record", 3, section)]
    assert rejections(document) == {section: rejected(1, unkeyed=True)}
    assert document.warnings == (suspended(section),)


def test_orders_without_a_readable_key_suspend_nothing() -> None:
    # Given an order without an id and one with an id that is no integer, beside a good one
    body = (
        "<Orders>\n"
        + tag("o", ORDER, {"id": None})
        + tag("o", ORDER, {"id": "x"})
        + tag("o", ORDER, {})
        + "\n</Orders>"
    )
    # When it is read
    document = read(body)
    # Then both are rejected, and nothing is warned: orders are changes, never deletions
    assert records(document, "Orders") == (OrderChange(1, OrderStatus.ACCEPTED, CHANGED_AT),)
    assert document.errors == (
        invalid("attribute id is required", "Orders", None, "id", 3),
        invalid("attribute id must be an integer, got 'x'", "Orders", "x", "id", 3),
    )
    assert rejections(document) == {"Orders": rejected(2, unkeyed=True)}
    assert document.warnings == ()


def test_only_the_section_with_an_unkeyed_record_suspends_its_deletions() -> None:
    # Given groups with an unkeyed bad record (line 2) and resources with a keyed bad record (line 3)
    body = rg(id=None) + "\n" + r(time_step="0")
    # When it is read
    document = read(body)
    # Then only the groups suspend their deletions
    assert rejections(document) == {"ResourceGroups": rejected(1, unkeyed=True), "Resources": rejected(1, "393")}
    assert document.warnings == (suspended("ResourceGroups"),)


# -- duplicates --------------------------------------------------------------------------------

DUPLICATES = [
    pytest.param("ResourceGroups", '<rg id="5" name="a"/>\n<rg id="+5" name="b"/>', "5", Group(5, "b"), id="groups, one id spelled two ways"),
    pytest.param("Resources", '<r id="5" name="a" time_step="5"/>\n<R ID="5" name="b" time_step="10"/>', "5", Resource(5, "b", 10), id="resources"),
    pytest.param("Schedules", f'{tag("s", S, {}, TIME_RULES)}\n{tag("s", S, {"date": "02.07.2010"}, "")}', "1", Schedule(1, dt.date(2010, 7, 2), 393, ()), id="schedules of other dates"),
    pytest.param("Appointments", f'{tag("a", A, {})}\n{tag("a", A, {"Duration": "5"})}', "SchedEvent#8", Appointment("SchedEvent", 8, 383, NOON, 5), id="appointments by tablename and id"),
    pytest.param("Orders", f'{tag("o", ORDER, {})}\n{tag("o", ORDER, {"status": "3"})}', "1", OrderChange(1, OrderStatus.REJECTED, CHANGED_AT), id="orders"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "lines", "key", "later"), DUPLICATES)
def test_a_key_twice_in_a_section_the_later_record_wins(section: str, lines: str, key: str, later: Any) -> None:
    # Given a section with the same key on lines 3 and 4, both valid
    body = f"<{section}>\n{lines}\n</{section}>"
    # When it is read
    document = read(body)
    # Then the later record is read, the earlier dropped, with a warning naming both lines
    assert records(document, section) == (later,)
    assert records(document, section)[0].line == 4
    assert document.warnings == (duplicate(key, section, 3, 4),)
    assert (document.errors, rejections(document)) == ((), {section: rejected(0)})


def test_a_later_rejected_record_of_a_key_wins_over_a_valid_one() -> None:
    # Given resource 5 valid on line 3 and rejected on line 4
    body = '<Resources>\n<r id="5" name="a" time_step="5"/>\n<r id="5" name="b" time_step="0"/>\n</Resources>'
    # When it is read
    document = read(body)
    # Then no record of 5 is read: its key is rejected (the stored version stays), with both lines named
    assert records(document, "Resources") == ()
    assert document.errors == (invalid("attribute time_step must be from 1 to 1440, got 0", "Resources", "5", "time_step", 4),)  # fmt: skip
    assert rejections(document) == {"Resources": rejected(1, "5")}
    assert document.warnings == (duplicate("5", "Resources", 3, 4),)


def test_a_later_valid_record_of_a_key_wins_over_a_rejected_one() -> None:
    # Given appointment SchedEvent#8 rejected on line 3 and valid on line 4
    body = f"<Appointments>\n{tag('a', A, {'Duration': '-5'})}\n{tag('a', A, {})}\n</Appointments>"
    # When it is read
    document = read(body)
    # Then the valid one is read; the rejected one is still an error and counted, but its key is not held back
    assert records(document, "Appointments") == (Appointment("SchedEvent", 8, 383, NOON, 60),)
    assert document.errors == (
        invalid("attribute Duration must be from 0 to 1440, got -5", "Appointments", "SchedEvent#8", "Duration", 3),
    )
    assert rejections(document) == {"Appointments": rejected(1)}
    assert document.warnings == (duplicate("SchedEvent#8", "Appointments", 3, 4),)


def test_a_key_three_times_the_last_wins_and_each_repeat_is_warned() -> None:
    # Given group 5 valid on line 3, rejected on line 4, valid again on line 5, and group 6 on line 6
    lines = ['<rg id="5" name="a"/>', '<rg id="5" name=""/>', '<rg id="5" name="c"/>', '<rg id="6" name="d"/>']
    body = "<ResourceGroups>\n" + "\n".join(lines) + "\n</ResourceGroups>"
    # When it is read
    document = read(body)
    # Then the last 5 and the 6 are read, the rejected one is an error, and both repeats are warned
    assert sorted(records(document, "ResourceGroups"), key=lambda g: g.id) == [Group(5, "c"), Group(6, "d")]
    assert document.errors == (invalid("attribute name is required", "ResourceGroups", "5", "name", 4),)
    assert rejections(document) == {"ResourceGroups": rejected(1)}
    assert document.warnings == (duplicate("5", "ResourceGroups", 3, 4), duplicate("5", "ResourceGroups", 4, 5))


def test_one_id_in_two_tables_is_two_appointments() -> None:
    # Given two appointments with the same id but different tablenames
    body = f"<Appointments>{tag('a', A, {'tablename': 'T'})}{tag('a', A, {'tablename': 'U'})}</Appointments>"
    # When it is read
    document = read(body)
    # Then both are read, and nothing is a duplicate
    assert [x.key for x in records(document, "Appointments")] == ["T#8", "U#8"]
    assert document.warnings == ()


def test_one_id_in_two_sections_is_no_duplicate() -> None:
    # Given a group and a resource that share id 1
    # When it is read
    document = read(rg(id="1") + r(id="1"))
    # Then both are read
    assert (records(document, "ResourceGroups")[0].id, records(document, "Resources")[0].id) == (1, 1)
    assert document.warnings == ()


# -- the document as a whole -------------------------------------------------------------------


def test_a_section_twice_refuses_the_document_naming_the_first() -> None:
    # Given Resources on line 2 and again, in other case, on line 3
    body = r() + "\n<RESOURCES/>"
    # When it is read
    issues = refused(body)
    # Then the document is refused; the second section is the one error, naming the first's line
    assert issues == (
        Issue("bad_request", "section Resources appears more than once (first at line 2)", 3, "Resources"),
    )


def test_a_refused_document_lists_only_what_refuses_it() -> None:
    # Given a bad group (line 2), Resources twice (lines 3 and 4) and an unreadable SyncMode (line 5)
    body = rg(id="x") + "\n" + r() + "\n<Resources/>\n" + '<Appointments SyncMode="partial"/>'
    # When it is read
    issues = refused(body)
    # Then both document-level problems are listed, in document order, and the bad record is not
    assert [(i.code, i.message, i.line, i.section, i.record_id) for i in issues] == [
        ("bad_request", "section Resources appears more than once (first at line 3)", 4, "Resources", None),
        ("bad_request", "attribute SyncMode must be full or diff, got 'partial'", 5, "Appointments", None),
    ]


UNREADABLE_SYNC_MODES = [
    pytest.param('<Appointments SyncMode="partial"/>', "attribute SyncMode must be full or diff, got 'partial'", id="partial"),
    pytest.param(f'<Appointments SyncMode="replace">{tag("a", A, {})}</Appointments>', "attribute SyncMode must be full or diff, got 'replace'", id="replace, with a good record"),
    pytest.param('<Appointments SyncMode="full" syncMode="diff"/>', "attribute syncmode is given more than once", id="given twice"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "message"), UNREADABLE_SYNC_MODES)
def test_an_unreadable_sync_mode_refuses_the_document(section: str, message: str) -> None:
    # Given an Appointments section whose SyncMode cannot be read, beside a good group
    body = rg() + "\n" + section
    # When it is read
    issues = refused(body)
    # Then the whole document is refused: a full sync read as diff, or the reverse, would be wrong
    assert [(i.code, i.message, i.line, i.section, i.record_id) for i in issues] == [
        ("bad_request", message, 3, "Appointments", None)
    ]


def test_an_unreadable_sync_mode_names_its_attribute_as_spelled() -> None:
    # Given a SyncMode spelled in lower case with a value that is no mode
    # When it is read
    [issue] = refused('<Appointments syncmode="partial"/>')
    # Then the error names the attribute as the document spelled it
    assert issue.attribute == "syncmode"
    assert "syncmode" in issue.message


def test_more_than_1000_errors_end_with_a_count_of_the_rest() -> None:
    # Given 1005 bad groups, one to a line from line 3
    body = "<ResourceGroups>\n" + "\n".join(f'<rg id="g{i}" name="n"/>' for i in range(1005)) + "\n</ResourceGroups>"
    # When it is read
    document = read(body)
    # Then the first 1000 errors are listed and one more says how many were not; all 1005 are counted
    errors = document.errors
    assert len(errors) == 1001
    assert errors[0] == invalid("attribute id must be an integer, got 'g0'", "ResourceGroups", "g0", "id", 3)
    assert errors[999] == invalid("attribute id must be an integer, got 'g999'", "ResourceGroups", "g999", "id", 1002)
    assert errors[-1] == Issue("invalid_record", "and 5 more not listed")
    assert rejections(document) == {"ResourceGroups": rejected(1005, unkeyed=True)}
    assert document.warnings == (suspended("ResourceGroups"),)


def test_the_error_limit_spans_sections() -> None:
    # Given 999 bad groups and 3 bad resources with a good one between them
    groups = "<ResourceGroups>" + "".join(f'<rg id="{i}" name=""/>' for i in range(999)) + "</ResourceGroups>"
    resources = "<Resources>" + "".join(tag("r", R, {"id": str(i), "time_step": t}) for i, t in enumerate("0x50")) + "</Resources>"  # fmt: skip
    # When it is read
    document = read(groups + "\n" + resources)
    # Then 1000 errors are listed (the last the first bad resource), then a count of the 2 others
    assert len(document.errors) == 1001
    assert document.errors[-2] == invalid("attribute time_step must be from 1 to 1440, got 0", "Resources", "0", "time_step", 3)  # fmt: skip
    assert document.errors[-1] == Issue("invalid_record", "and 2 more not listed")
    assert records(document, "Resources") == (Resource(2, "Баева", 5),)
    assert rejections(document)["Resources"] == rejected(3, "0", "1", "3")


def test_exactly_1000_errors_are_all_listed_without_a_count() -> None:
    # Given 1000 bad groups
    body = "<ResourceGroups>" + "".join(f'<rg id="g{i}" name="n"/>' for i in range(1000)) + "</ResourceGroups>"
    # When it is read
    document = read(body)
    # Then all 1000 are listed and nothing else
    assert len(document.errors) == 1000
    assert all(issue.message.startswith("attribute id must be an integer") for issue in document.errors)
    assert rejections(document) == {"ResourceGroups": rejected(1000, unkeyed=True)}


# -- the root and its ClientKey ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param(b'<MediExchange ClientKey="ABC-1"/>', "ABC-1", id="as the seed"),
        pytest.param(b'<mediexchange clientkey="  abc-1 "/>', "abc-1", id="lower case, trimmed"),
        pytest.param(
            b'<m:MediExchange xmlns:m="urn:mis" m:ClientKey="{9ddde578-5179}"/>', "{9ddde578-5179}", id="namespaced"
        ),
    ],
)
def test_client_key_of(data: bytes, key: str) -> None:
    # Given a root with a ClientKey
    root = parse_document(data)
    # When the key is read
    # Then it is the attribute's value, trimmed, its case kept
    assert client_key_of(root) == key
    assert read_document(root, BERLIN).client_key == key


REFUSED_ROOTS = [
    pytest.param(b'<Other ClientKey="K"/>', BadRequest, "the root element must be MediExchange, not Other", id="another root"),
    pytest.param(b'<o:Other xmlns:o="urn:o" ClientKey="K"/>', BadRequest, "the root element must be MediExchange, not Other", id="another namespaced root"),
    pytest.param(b"<MediExchange/>", MissingClientKey, "the MediExchange element has no ClientKey attribute", id="no ClientKey"),
    pytest.param(b'<MediExchange ClientKey="  "/>', MissingClientKey, "the MediExchange element has no ClientKey attribute", id="blank ClientKey"),
    pytest.param(b'<MediExchange Client_Key="K"/>', MissingClientKey, "the MediExchange element has no ClientKey attribute", id="misspelt ClientKey"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "error", "message"), REFUSED_ROOTS)
def test_a_wrong_root_or_no_key_refuses_the_document(data: bytes, error: type[Exception], message: str) -> None:
    # Given a root that is not MediExchange or has no key
    root = parse_document(data)
    # When the key is read, or the whole document
    for attempt in (lambda: client_key_of(root), lambda: read_document(root, BERLIN)):
        with pytest.raises(error) as caught:
            attempt()
        # Then both refuse with exactly this error (not a subclass of it)
        assert type(caught.value) is error
        assert str(caught.value) == message


# -- bytes to a root: parse_document -----------------------------------------------------------

CYRILLIC = '<MediExchange ClientKey="K"><ResourceGroups><rg id="1" name="Врач-терапевт №2"/></ResourceGroups></MediExchange>'  # fmt: skip
DECODED = [
    pytest.param(f'<?xml version="1.0" encoding="windows-1251"?>\n{CYRILLIC}'.encode("cp1251"), None, id="windows-1251 declared"),
    pytest.param(f"<?xml version='1.0' encoding='WINDOWS-1251'?>{CYRILLIC}".encode("cp1251"), "utf-8", id="declared windows-1251 beats the charset"),
    pytest.param(f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode(), "windows-1251", id="declared UTF-8 beats the charset"),
    pytest.param(b"\xef\xbb\xbf" + f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode(), None, id="BOM and declaration"),
    pytest.param(CYRILLIC.encode("cp1251"), "windows-1251", id="undeclared: the charset"),
    pytest.param(CYRILLIC.encode("cp1251"), "cp1251", id="undeclared: the charset by another name"),
    pytest.param(f'<?xml version="1.0"?>{CYRILLIC}'.encode("cp1251"), "windows-1251", id="declaration without encoding: the charset"),
    pytest.param(CYRILLIC.encode(), None, id="undeclared, no charset: UTF-8"),
    pytest.param(b"\xef\xbb\xbf" + f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode(), "windows-1251", id="BOM and UTF-8 declaration beat the charset"),
    pytest.param(b"\xef\xbb\xbf" + f'<?xml version="1.0" encoding="windows-1251"?>{CYRILLIC}'.encode("cp1251"), "utf-8", id="declared windows-1251 beats a UTF-8 BOM"),
    pytest.param(b"\xef\xbb\xbf" + CYRILLIC.encode(), "windows-1251", id="BOM, undeclared: UTF-8 beats the charset"),
    pytest.param(b" \t\r\n\n" + f'<?xml version="1.0" encoding="windows-1251"?>{CYRILLIC}'.encode("cp1251"), "utf-8", id="white space before the declaration"),
    pytest.param(b"\xef\xbb\xbf\r\n" + f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode(), "windows-1251", id="BOM and white space before the declaration"),
    pytest.param(b"\n\n" + CYRILLIC.encode("cp1251"), "windows-1251", id="white space, undeclared: the charset"),
]  # fmt: skip


def group_name(root: etree._Element) -> str:
    name: str = records(read_document(root, BERLIN), "ResourceGroups")[0].name
    return name


@pytest.mark.parametrize(("data", "charset"), DECODED)
def test_encodings_that_decode(data: bytes, charset: str | None) -> None:
    # Given Cyrillic text in some encoding, declared or named by the request's charset
    # When it is parsed and read
    root = parse_document(data, charset)
    # Then the text comes out exactly
    assert group_name(root) == "Врач-терапевт №2"


def test_the_charset_does_not_apply_when_the_document_declares_its_encoding() -> None:
    # Given a document declared UTF-8 that is really windows-1251, and a request saying windows-1251
    data = f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode("cp1251")
    # When it is parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(data, "windows-1251")
    # Then the declaration wins and the bytes are not UTF-8
    assert caught.value.message.startswith("not well-formed XML: Invalid bytes in character encoding")


def test_undeclared_windows_1251_without_a_charset_is_malformed_utf8() -> None:
    # Given windows-1251 bytes with no declaration and no charset
    # When they are parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(CYRILLIC.encode("cp1251"))
    # Then they are malformed UTF-8, located on line 1
    assert caught.value.code == "malformed_xml"
    assert [(i.code, i.line) for i in caught.value.issues] == [("malformed_xml", 1)]


REFUSED_BYTES = [
    pytest.param(b"", "the document is empty", id="empty"),
    pytest.param(b" \r\n\t", "the document is empty", id="whitespace only"),
    pytest.param(b"\xef\xbb\xbf \r\n", "the document is empty", id="BOM and whitespace only"),
    pytest.param(b'<?xml version="1.0" encoding="UTF-16"?><MediExchange ClientKey="K"/>', NOT_ASCII, id="declared UTF-16 in ASCII bytes"),
    pytest.param(b'<?xml version="1.0" encoding="utf-32"?><MediExchange ClientKey="K"/>', NOT_ASCII, id="declared UTF-32 in ASCII bytes"),
    pytest.param(b'<?xml version="1.0" encoding="x-nope"?><MediExchange ClientKey="K"/>', "the document cannot be decoded: unknown encoding x-nope (declared by the document)", id="declared unknown encoding"),
    pytest.param(b'<?xml version="1.0" encoding="x nope"?><MediExchange ClientKey="K"/>', "the XML declaration names no valid encoding", id="declared encoding that is no name"),
    pytest.param(CYRILLIC.encode("utf-16"), NOT_ASCII, id="UTF-16 with BOM"),
    pytest.param(CYRILLIC.encode("utf-16-le"), NOT_ASCII, id="UTF-16LE without BOM"),
    pytest.param(CYRILLIC.encode("utf-16-be"), NOT_ASCII, id="UTF-16BE without BOM"),
    pytest.param(CYRILLIC.encode("utf-32"), NOT_ASCII, id="UTF-32"),
    pytest.param(b'<!DOCTYPE MediExchange>\n<MediExchange ClientKey="K"/>', "a DOCTYPE is not allowed", id="DOCTYPE"),
    pytest.param(b'<?xml version="1.0"?><!doctype m [<!ENTITY x "y">]><MediExchange ClientKey="&x;"/>', "a DOCTYPE is not allowed", id="doctype with an entity"),
    pytest.param(b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><MediExchange ClientKey="&x;"/>', "a DOCTYPE is not allowed", id="external entity"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), REFUSED_BYTES)
def test_documents_refused_before_parsing(data: bytes, message: str) -> None:
    # Given a document that is empty, not ASCII-compatible, or has a DOCTYPE
    # When it is parsed, even with a charset
    with pytest.raises(MalformedXml) as caught:
        parse_document(data, "windows-1251")
    # Then it is refused with this message and no line
    assert caught.value.message == message
    assert caught.value.issues == (Issue("malformed_xml", message),)


def test_not_well_formed_xml_is_located() -> None:
    # Given an element opened on line 2 and never closed
    data = b'<MediExchange ClientKey="K">\n<Orders>\n</MediExchange>'
    # When it is parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(data)
    # Then the error names the line lxml found it on
    [issue] = caught.value.issues
    assert (issue.code, issue.line) == ("malformed_xml", 3)
    assert issue.message.startswith(
        "not well-formed XML: Opening and ending tag mismatch: Orders line 2 and MediExchange"
    )


def test_white_space_before_the_declaration_keeps_the_real_lines() -> None:
    # Given three line breaks (CR/LF, LF, LF) before the declaration on line 4, an rg on line 6,
    # and an Orders opened on line 7 that line 8 does not close
    data = b' \t\r\n\n \n<?xml version="1.0"?>\n<MediExchange ClientKey="K">\n<ResourceGroups><rg id="1" name="a"/></ResourceGroups>\n<Orders>\n</MediExchange>'
    # When it is parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(data)
    # Then the error names the document's real lines
    [issue] = caught.value.issues
    assert (issue.code, issue.line) == ("malformed_xml", 8)
    assert issue.message.startswith(
        "not well-formed XML: Opening and ending tag mismatch: Orders line 7 and MediExchange"
    )
    # And, well-formed, every element keeps its real line
    root = parse_document(data.replace(b"<Orders>", b"<Orders/>"))
    assert [(etree.QName(e).localname, e.sourceline) for e in root.iter()] == [
        ("MediExchange", 5), ("ResourceGroups", 6), ("rg", 6), ("Orders", 7)
    ]  # fmt: skip


def test_an_error_inside_a_declaration_after_white_space_names_its_real_line() -> None:
    # Given two line breaks and two spaces before a declaration (line 3) with a bad standalone value
    data = b'\n\r\n  <?xml version="1.0" standalone="perhaps"?>\n<MediExchange ClientKey="K"/>'
    # When it is parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(data)
    # Then the error is on line 3 (column 35), in the location and in the message
    [issue] = caught.value.issues
    assert (issue.code, issue.line) == ("malformed_xml", 3)
    assert issue.message == "not well-formed XML: standalone accepts only 'yes' or 'no', line 3, column 35"


CHARSETS_REFUSED = [
    pytest.param("x-nope", "the document cannot be decoded: unknown encoding x-nope (named by the charset it was sent with)", id="unknown"),
    pytest.param("utf-16", NOT_ASCII, id="UTF-16"),
    pytest.param("UTF-32LE", NOT_ASCII, id="UTF-32LE"),
]  # fmt: skip


@pytest.mark.parametrize(("charset", "message"), CHARSETS_REFUSED)
def test_an_undeclared_document_in_a_charset_that_cannot_be_read(charset: str, message: str) -> None:
    # Given an undeclared document sent with an unknown or not ASCII-compatible charset
    # When it is parsed
    with pytest.raises(MalformedXml) as caught:
        parse_document(CYRILLIC.encode(), charset)
    # Then it is refused with a plain reason and no line
    assert caught.value.message == message
    assert caught.value.issues == (Issue("malformed_xml", message),)


def test_a_declared_encoding_makes_the_charset_irrelevant_even_if_unknown() -> None:
    # Given a declared document sent with a charset nobody knows; When it is parsed
    root = parse_document(f'<?xml version="1.0" encoding="UTF-8"?>{CYRILLIC}'.encode(), "x-nope")
    # Then the declaration alone decides
    assert group_name(root) == "Врач-терапевт №2"


def test_comments_and_processing_instructions_are_dropped() -> None:
    # Given comments and a processing instruction between and inside sections
    data = b'<MediExchange ClientKey="K"><!-- c --><?mis v2?><ResourceGroups><!-- c --><rg id="1" name="a"/></ResourceGroups></MediExchange>'
    # When it is parsed and read
    document = read_document(parse_document(data), BERLIN)
    # Then they are neither records nor warnings
    assert records(document, "ResourceGroups") == (Group(1, "a"),)
    assert document.warnings == ()


def test_received_counts_every_record_element_good_bad_and_repeated() -> None:
    # Given a section of four record elements: a good one, a bad one, and one key twice
    body = "".join(
        tag("rg", RG, changes) for changes in ({"id": "1"}, {"id": "x"}, {"id": "2"}, {"id": "2", "name": "B"})
    )
    # When it is read
    document = read(f"<ResourceGroups>{body}</ResourceGroups>")
    # Then all four were received, one rejected, two kept
    assert document.rejected["ResourceGroups"].received == 4
    assert (document.rejected["ResourceGroups"].count, len(records(document, "ResourceGroups"))) == (1, 2)
