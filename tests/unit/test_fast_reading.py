"""The fast path of reading (protocol.bulk) agrees with the full reader, record by record.

Every document here is read twice: as the service reads it (big sections column by column, the full
reader for any record the fast path leaves) and by the full reader alone. The two must give the same
Document: the same records with the same lines, the same warnings and errors with their line, section,
id, attribute and text, in the same order, and the same refusals. Other tests show that the common
document does take the fast path, so that agreeing is not agreeing by never taking it.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from mediexchange.errors import DocumentRefused
from mediexchange.protocol.attributes import FORMS, INT64_MAX, INT64_MIN, Attributes, RecordError
from mediexchange.protocol.bulk import Columns, Integers, Texts, read_columns
from mediexchange.protocol.reading import DocumentReader, read_document
from mediexchange.protocol.sections import SECTIONS, read_appointments, read_schedules
from mediexchange.protocol.xmlparse import parse_document

from bench.generate import TYPICAL, document
from tests.conftest import SAMPLE, SAMPLE_KEY

BERLIN = ZoneInfo("Europe/Berlin")  # clocks go forward 28.03.2021 02:00 -> 03:00
MOSCOW = ZoneInfo("Europe/Moscow")
CHECKS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Values an MIS writes, and values it should not: every example of every form the reader knows, and
# the fuzzing's hostile values (tests/reliability/test_fuzz.py) with a few more.
EXAMPLES = [example for form in FORMS for example in form.examples]
HOSTILE = [
    "", " ", "-1", "0", "1441", "99999999999999999999", "-9223372036854775809", "9223372036854775807",
    "1e3", "0x10", "1_000", "٣", " 12 ", "\u00a012", "+7", "007", "31.02.2024", "29.02.2023", "32.01.2024",
    "01.01.1899", "01.01.2200", "24:00", "24:01", "23:60", "7:5", "08:00:60", "2024-01-01",
    "01.01.2024 25:00:00", "01.01.2024  9:00", "28.03.2021 02:30:00", "31.03.2030 02:30:00", "&", "<>", '"',
    "'", "абв", "😷", "\t", "a\nb", "NaN", "Я" * 1001, "😷" * 255,
]  # fmt: skip
A_NAMES = ("tablename", "id", "resource_id", "ReceptionDateTime", "Duration", "Title")
A_VALUES = ("SchedEvent", "8", "383", "30.06.2010 12:00:00", "60", "Печеркина М.И. - прием")
S_NAMES = ("id", "date", "resource_id")
S_VALUES = ("1", "01.07.2010", "393")
RULE_NAMES = ("w_start", "w_end", "b_start", "b_end")
RULE_VALUES = ("9:00", "18:00", "13:00", "14:00")


@contextmanager
def full_reader_only() -> Iterator[None]:
    """Every section read record by record, as before the fast path."""
    saved = {section: section.read_fast for section in SECTIONS}
    for section in SECTIONS:
        object.__setattr__(section, "read_fast", None)  # the table is frozen: this is the test's switch
    try:
        yield
    finally:
        for section, read_fast in saved.items():
            object.__setattr__(section, "read_fast", read_fast)


def outcome(data: bytes, tz: ZoneInfo) -> tuple[Any, ...]:
    """Everything a reading says, records with their lines (which record equality leaves out)."""
    try:
        read = read_document(parse_document(data), tz)
    except DocumentRefused as exc:
        return ("refused", str(exc), exc.issues)
    sections = {name: [(repr(record), record.line) for record in records] for name, records in read.sections.items()}
    return (read.client_key, read.sync_mode, sections, read.warnings, read.errors, dict(read.rejected))


def assert_read_alike(data: bytes, tz: ZoneInfo = BERLIN) -> tuple[Any, ...]:
    fast = outcome(data, tz)
    with full_reader_only():
        full = outcome(data, tz)
    assert fast == full
    return fast


def doc(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">\n{body}\n</MediExchange>'.encode()


def element(tag: str, attributes: list[tuple[str, str]], inner: str | None = None, space: str = " ") -> str:
    text = "".join(f"{space}{name}={quoteattr(value)}" for name, value in attributes)
    return f"<{tag}{text}/>" if inner is None else f"<{tag}{text}>{inner}</{tag}>"


def appointments(records: list[str], attributes: str = ' SyncMode="full"') -> str:
    return f"<Appointments{attributes}>\n" + "\n".join(records) + "\n</Appointments>"


def schedules(records: list[str]) -> str:
    return "<Schedules>\n" + "\n".join(records) + "\n</Schedules>"


def common_a(n: int, **changes: str) -> str:
    values = dict(zip(A_NAMES, A_VALUES, strict=True)) | {"id": str(n)} | changes
    return element("a", list(values.items()))


def common_s(n: int, rules: str | None = None, **changes: str) -> str:
    values = dict(zip(S_NAMES, S_VALUES, strict=True)) | {"id": str(n)} | changes
    default = element("time_rules", list(zip(RULE_NAMES, RULE_VALUES, strict=True)))
    return element("s", list(values.items()), default if rules is None else rules or None)


# -- the common document takes the fast path ------------------------------------------------------


def test_the_common_document_is_read_the_fast_way_and_alike() -> None:
    # Given the benchmark's typical clinic (10,000 appointments, 2,000 schedules, written alike)
    data = document(TYPICAL, SAMPLE_KEY)
    # When its big sections are read the fast way
    root = parse_document(data)
    reader = DocumentReader(MOSCOW)
    schedules_read, appointments_read = read_schedules(reader, root[2]), read_appointments(reader, root[3])
    # Then every record of both is read there, clean (no warning, error or duplicate to look at)
    assert schedules_read is not None and schedules_read.clean and len(schedules_read.records) == 2_000
    assert appointments_read is not None and appointments_read.clean and len(appointments_read.records) == 10_000
    assert (reader.warnings.listed, reader.errors.listed) == ([], [])
    # And the document reads exactly as the full reader reads it
    assert_read_alike(data, MOSCOW)


def test_the_seed_sample_reads_alike() -> None:
    assert_read_alike(SAMPLE.read_bytes(), MOSCOW)


def test_a_bad_record_among_good_ones_alone_goes_the_full_way() -> None:
    # Given 50 appointments of which the 20th has a date that does not exist
    records = [common_a(n, **({"ReceptionDateTime": "31.02.2010 12:00:00"} if n == 20 else {})) for n in range(50)]
    root = parse_document(doc(appointments(records)))
    # When the section is read the fast way
    read = read_appointments(DocumentReader(BERLIN), root[0])
    # Then only that record is left to the full reader
    assert read is not None and not read.clean
    assert [n for n, record in enumerate(read.records) if record is None] == [20]
    # And the whole document reads alike, with the one error
    result = assert_read_alike(doc(appointments(records)))
    assert [issue.record_id for issue in result[4]] == ["SchedEvent#20"]


def test_cycle_collection_is_as_it_was_after_reading() -> None:
    data = doc(appointments([common_a(n) for n in range(10)]))
    assert gc.isenabled()
    read_document(parse_document(data), BERLIN)
    assert gc.isenabled()
    gc.disable()
    try:
        read_document(parse_document(data), BERLIN)
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- every value form, and hostile values, both ways ---------------------------------------------


@pytest.mark.parametrize("value", EXAMPLES + HOSTILE)
@pytest.mark.parametrize("name", A_NAMES)
def test_every_value_of_an_appointment_reads_alike(name: str, value: str) -> None:
    # Given appointments written alike, one with `value` as its `name`, and one without `name` at all
    records = [common_a(n) for n in range(6)]
    records[2] = common_a(2, **{name: value})
    records[4] = element("a", [(n, v) for n, v in zip(A_NAMES, A_VALUES, strict=True) if n != name])
    # Then both ways read them alike
    assert_read_alike(doc(appointments(records)))


@pytest.mark.parametrize("value", EXAMPLES + HOSTILE)
@pytest.mark.parametrize("name", S_NAMES + RULE_NAMES)
def test_every_value_of_a_schedule_reads_alike(name: str, value: str) -> None:
    # Given schedules written alike, one with `value` as its `name`
    changed = [common_s(n) for n in range(6)]
    if name in S_NAMES:
        changed[3] = common_s(3, **{name: value})
    else:
        rule = dict(zip(RULE_NAMES, RULE_VALUES, strict=True)) | {name: value}
        changed[3] = common_s(3, element("time_rules", list(rule.items())))
    # Then both ways read them alike
    assert_read_alike(doc(schedules(changed)))


UNUSUAL = {
    "unknown attribute": [
        common_a(0),
        element("a", [*zip(A_NAMES, A_VALUES, strict=True), ("Note", "x")]),
        common_a(2),
    ],
    "namespaced attribute": [
        common_a(0),
        element("a", [*zip(A_NAMES, A_VALUES, strict=True), ("p:id", "3"), ("xmlns:p", "urn:p")]),
    ],
    "another order": [common_a(0), element("a", list(zip(A_NAMES[::-1], A_VALUES[::-1], strict=True)))],
    "another case": [common_a(0), element("a", [(n.upper(), v) for n, v in zip(A_NAMES, A_VALUES, strict=True)])],
    "one name twice": [common_a(0), element("a", [*zip(A_NAMES, A_VALUES, strict=True), ("ID", "9")])],
    "content": [common_a(0), common_a(1).replace("/>", "><x/>text</a>"), common_a(2)],
    "record within a record": [common_a(0), common_a(1).replace("/>", ">" + common_a(5) + "</a>")],
    "text between records": [common_a(0), "loose text", common_a(1)],
    "an unknown element": [common_a(0), "<b/>", common_a(1)],
    "upper-case tag": [common_a(0), common_a(1).replace("<a ", "<A ")],
    "first record odd": [common_a(0, Note="x"), common_a(1), common_a(2)],
    "duplicates": [common_a(0), common_a(1), common_a(0, Title="later")],
    "duplicate of a rejected record": [common_a(0), common_a(0, Duration="x"), common_a(1)],
    "references": [common_a(0, Title='A &amp; B "q" <x> &#10;line'), common_a(1, tablename="T&amp;T")],
    "two tables": [common_a(0), common_a(0, tablename="Other"), common_a(1, tablename="Other")],
    "long key": [common_a(n, tablename="😷" * 255) for n in range(3)],
    "too long a key": [common_a(n, tablename="😷" * 255, id=str(INT64_MIN + n)) for n in range(3)],
    "key just short": [common_a(n, tablename="t" * 255) for n in range(3)],
    "daylight-saving gap": [common_a(0), common_a(1, ReceptionDateTime="28.03.2021 02:30:00")],
    "comments and instructions": [common_a(0), "<!-- note -->", "<?pi x?>", common_a(1)],
    "many lines in a tag": [common_a(0), common_a(1).replace(" ", "\n   "), common_a(2)],
}


@pytest.mark.parametrize("records", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_unusual_appointments_read_alike(records: list[str]) -> None:
    assert_read_alike(doc(appointments(records)))
    assert_read_alike(doc(appointments(records, "")))  # a diff: nothing replaced


def test_appointments_in_a_default_namespace_read_alike() -> None:
    body = appointments([common_a(0), common_a(1)])
    data = doc(body).replace(b"<MediExchange ", b'<MediExchange xmlns="urn:mis" ')
    assert_read_alike(data)


def test_many_appointments_across_chunks_read_alike() -> None:
    # Given enough appointments to be cut into several chunks, with odd ones here and there
    rng = random.Random(12)
    records = []
    for n in range(6_000):
        odd = rng.random()
        if odd < 0.002:
            records.append(common_a(n, Duration="-5"))
        elif odd < 0.004:
            records.append(common_a(rng.randrange(n + 1)))  # a duplicate
        elif odd < 0.006:
            records.append(common_a(n, Title="A &amp; B"))
        else:
            records.append(common_a(n, ReceptionDateTime=f"{1 + n % 28:02}.03.2010 {8 + n % 9}:{n % 4 * 15:02}:00"))
    assert_read_alike(doc(appointments(records)))


RULES = element("time_rules", list(zip(RULE_NAMES, RULE_VALUES, strict=True)))
UNUSUAL_SCHEDULES = {
    "no time_rules": [common_s(0), common_s(1, "")],
    "empty time_rules": [common_s(0), common_s(1, "<time_rules/>")],
    "several time_rules": [
        common_s(0),
        common_s(1, RULES + element("time_rules", [("w_start", "19:00"), ("w_end", "21:00")])),
    ],
    "overnight": [common_s(0, element("time_rules", [("w_start", "20:00"), ("w_end", "08:00")]))],
    "aliases": [common_s(0, element("time_rules", [("w_startTime", "7:00"), ("w_endTime", "18:00")]))],
    "alias and name": [
        common_s(0, element("time_rules", [("w_start", "7:00"), ("w_StartTime", "8:00"), ("w_end", "9:00")]))
    ],
    "break half": [common_s(0, element("time_rules", [("w_start", "7:00"), ("w_end", "9:00"), ("b_start", "8:00")]))],
    "unknown rule attribute": [
        common_s(0, element("time_rules", [("w_start", "7:00"), ("w_end", "9:00"), ("x", "1")]))
    ],
    "unknown child": [common_s(0), common_s(1, RULES + "<break/>")],
    "text in a schedule": [common_s(0), common_s(1, "text" + RULES)],
    "time_rules with content": [common_s(0), common_s(1, "<time_rules>x</time_rules>")],
    "upper-case time_rules": [common_s(0), common_s(1, RULES.replace("time_rules", "TIME_RULES"))],
    "namespaced time_rules": [common_s(0), common_s(1, RULES.replace("<time_rules ", '<time_rules xmlns="urn:x" '))],
    "schedule within a schedule": [common_s(0), common_s(1, common_s(2))],
    "duplicates": [common_s(0), common_s(1), common_s(0, date="02.07.2010")],
    "empty break": [common_s(0, element("time_rules", [("w_start", "9:00"), ("w_end", "18:00"), ("b_start", "")]))],
    "references": [
        common_s(0),
        '<s id="1" date="0&#49;.07.2010" resource_id="3&#x39;3"><time_rules w_start="9&#58;00" w_end="18:00"/></s>',
    ],
    "another order": [common_s(0), element("s", list(zip(S_NAMES[::-1], S_VALUES[::-1], strict=True)), RULES)],
    "too many time_rules": [common_s(0), common_s(1, RULES * 1441)],
}


@pytest.mark.parametrize("records", UNUSUAL_SCHEDULES.values(), ids=UNUSUAL_SCHEDULES.keys())
def test_unusual_schedules_read_alike(records: list[str]) -> None:
    assert_read_alike(doc(schedules(records)))


# -- any document, both ways -------------------------------------------------------------------


def xml_text(max_size: int = 8) -> st.SearchStrategy[str]:
    """Text an XML document can carry (its Char production), quotes, ampersands and all."""
    return st.text(
        st.characters(exclude_categories=["Cs"]).filter(
            lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")
        ),
        max_size=max_size,
    )


VALUES = st.sampled_from(EXAMPLES + HOSTILE[:-2]) | xml_text()


@st.composite
def attribute_lists(draw: st.DrawFn, names: tuple[str, ...], values: tuple[str, ...]) -> list[tuple[str, str]]:
    """Mostly the common record; sometimes a value changed, a name missing, spelled otherwise, added."""
    attributes = list(zip(names, values, strict=True))
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["value", "value", "drop", "case", "unknown", "swap"]))
        i = draw(st.integers(0, len(attributes) - 1)) if attributes else 0
        if change == "value" and attributes:
            attributes[i] = (attributes[i][0], draw(VALUES))
        elif change == "drop" and attributes:
            del attributes[i]
        elif change == "case" and attributes:
            attributes[i] = (attributes[i][0].swapcase(), attributes[i][1])
        elif change == "unknown":
            attributes.insert(i, ("extra", draw(VALUES)))
        elif change == "swap" and len(attributes) > 1:
            attributes[0], attributes[-1] = attributes[-1], attributes[0]
    names_given = [name.lower() for name, _ in attributes]
    return [(name, value) for k, (name, value) in enumerate(attributes) if names_given.index(name.lower()) == k]


@st.composite
def appointment_documents(draw: st.DrawFn) -> bytes:
    records = []
    for _ in range(draw(st.integers(1, 8))):
        attributes = draw(attribute_lists(A_NAMES, A_VALUES))
        attributes = [(n, str(draw(st.integers(0, 5)))) if n == "id" else (n, v) for n, v in attributes]
        space = draw(st.sampled_from([" ", "\n  ", "  "]))
        records.append(element("a", attributes, draw(st.sampled_from([None, None, None, "", "<x/>"])), space))
    mode = draw(st.sampled_from(['SyncMode="full"', 'SyncMode="diff"', ""]))
    return doc(appointments(records, f" {mode}" if mode else ""))


@st.composite
def schedule_documents(draw: st.DrawFn) -> bytes:
    records = []
    for _ in range(draw(st.integers(1, 6))):
        attributes = draw(attribute_lists(S_NAMES, S_VALUES))
        attributes = [(n, str(draw(st.integers(0, 4)))) if n == "id" else (n, v) for n, v in attributes]
        count = draw(st.integers(0, 3))
        rules = [element("time_rules", draw(attribute_lists(RULE_NAMES, RULE_VALUES))) for _ in range(count)]
        records.append(element("s", attributes, "".join(rules) or None))
    return doc(schedules(records))


@CHECKS
@given(appointment_documents(), st.sampled_from([BERLIN, MOSCOW]))
def test_any_appointments_read_alike(data: bytes, tz: ZoneInfo) -> None:
    assert_read_alike(data, tz)


@CHECKS
@given(schedule_documents())
def test_any_schedules_read_alike(data: bytes) -> None:
    assert_read_alike(data)


# -- the pieces, value by value ------------------------------------------------------------------


@CHECKS
@given(st.lists(st.tuples(xml_text(12), xml_text(12)), min_size=1, max_size=6))
def test_columns_are_the_values_the_tree_holds(rows: list[tuple[str, str]]) -> None:
    # Given records whose values hold anything XML can carry (quotes, ampersands, line breaks, emoji)
    body = "".join(element("a", [("tablename", first), ("Title", second)]) for first, second in rows)
    section = parse_document(doc(appointments([body])))[0]
    # When the section is cut into columns
    read = read_columns(
        section,
        "a",
        frozenset({"tablename", "title"}),
        lambda c: list(zip(c.column("tablename"), c.column("title"), strict=True)),
    )
    # Then each value is the one the tree holds
    assert read is not None
    assert read == ([(child.get("tablename"), child.get("Title")) for child in section], set())


def columns_of(values: list[str]) -> Columns:
    return Columns([etree.Element("a") for _ in values], {"v": values}, [], set())


def exactly(name: str, raw: str, read: Any) -> Any:
    """The value as the full reader reads it, or None if it refuses it."""
    try:
        return read(Attributes.detached(name, raw))
    except RecordError:
        return None


INTEGER_LIKE = st.from_regex(r"\A\s?[+\-]?[0-9]{0,21}\s?\Z") | VALUES | st.just("1\x002")


@CHECKS
@given(st.lists(INTEGER_LIKE, min_size=1, max_size=40), st.sampled_from([(INT64_MIN, INT64_MAX), (0, 1440)]))
def test_integer_columns_read_each_value_as_the_full_reader(values: list[str], bounds: tuple[int, int]) -> None:
    low, high = bounds
    for column in (values, values * 30):  # few distinct values, and many
        found = columns_of(column)
        numbers = Integers("v", low, high).column(found)
        expected = [exactly("v", raw, lambda a: a.integer("v", low, high)) for raw in column]
        assert found.failed == {i for i, value in enumerate(expected) if value is None}
        assert [n for i, n in enumerate(numbers) if i not in found.failed] == [v for v in expected if v is not None]


@CHECKS
@given(st.lists(VALUES | st.sampled_from(["", "  ", "x" * 300]), min_size=1, max_size=40), st.booleans())
def test_text_columns_read_each_value_as_the_full_reader(values: list[str], required: bool) -> None:
    for column in (values, values * 30):
        found = columns_of(column)
        texts = Texts("v", required, 255).column(found)
        expected = [exactly("v", raw, lambda a: a.text("v", required, 255)) for raw in column]
        assert found.failed == {i for i, value in enumerate(expected) if value is None}
        assert [t for i, t in enumerate(texts) if i not in found.failed] == [v for v in expected if v is not None]


def test_distinct_dates_are_read_by_the_full_readers_code() -> None:
    # Given a column of datetimes in a zone whose clock skips an hour
    times = ["28.03.2021 01:59:00", "28.03.2021 02:00:00", "28.03.2021 03:00:00"] * 3
    data = doc(appointments([common_a(n, ReceptionDateTime=time) for n, time in enumerate(times)]))
    read = read_appointments(DocumentReader(BERLIN), parse_document(data)[0])
    # Then the times in the gap are left to the full reader, the others are read
    assert read is not None
    assert [record.start if record else None for record in read.records] == [
        dt.datetime(2021, 3, 28, 1, 59),
        None,
        dt.datetime(2021, 3, 28, 3),
    ] * 3
