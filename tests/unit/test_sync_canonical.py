"""A record's canonical text, written directly (`canonical_text`), is byte for byte what the stored content
hashes were made of (`canonical_json(content(record))`): were it to differ by one byte, every stored record
would look changed and be written again after a deploy."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mediexchange.protocol.reading import read_document
from mediexchange.protocol.sections import SYNCED
from mediexchange.protocol.xmlparse import parse_document
from mediexchange.records import Appointment, Group, Resource, Schedule, Window
from mediexchange.sync import canonical_json, canonical_text, content, desired, digest_of

from bench.generate import TYPICAL, document
from tests.conftest import SAMPLE


def the_long_way(record: Any) -> str:
    return canonical_json(content(record))


def test_every_record_of_the_sample_and_the_typical_clinic_is_written_as_before() -> None:
    # Given the seed sample and the benchmark's typical clinic, read as an import reads them
    documents = [SAMPLE.read_bytes(), document(TYPICAL, "KEY")]
    for data in documents:
        read = read_document(parse_document(data), ZoneInfo("Europe/Moscow"))
        for section in SYNCED:
            records = section.of(read) or ()
            assert records, f"{section.name} is missing: the check would prove nothing"
            # When each record's text and hash are made directly, Then they are those made the long way
            for key, wanted in desired(section, records).items():
                assert wanted.canonical == the_long_way(wanted.record), key
                assert wanted.digest == digest_of(the_long_way(wanted.record))


TRICKY_TEXT = [
    "",
    "Иванов И.И. - приём",
    'quote " and backslash \\ and slash /',
    "controls \x00 \x01 \x1f \x7f \x80 \x9f",
    "lines \n \r \t and \u2028 \u2029",
    "astral 😀 𝄞 and BOM \ufeff",
    "&lt;not xml&gt; <b>",
]


class Kind(StrEnum):
    VISIT = "visit"


class Level(IntEnum):
    HIGH = 3


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_text_with_every_kind_of_escape_is_written_as_before(text: str) -> None:
    # Given records holding the text in each of their text fields, and nothing where nothing may be
    records = [
        Group(id=1, name=text),
        Resource(id=2, name=text, time_step=15, group_id=None),
        Appointment(tablename=text, id=3, resource_id=2, start=dt.datetime(2031, 3, 3, 8, 15), duration=15, title=text),
    ]
    # When they are written directly, Then each is the text made the long way
    for record in records:
        assert canonical_text(record) == the_long_way(record)


def test_nested_windows_dates_and_values_of_unusual_types_are_written_as_before() -> None:
    # Given a schedule with windows with and without breaks, and with none at all
    windows = (Window(480, 720), Window(780, 1080, 900, 915))
    schedules = [Schedule(id=1, date=dt.date(2031, 3, 3), resource_id=2, windows=w) for w in (windows, ())]
    # And records holding values an import never makes: floats, booleans, enums, a time zone, microseconds
    start = dt.datetime(2031, 3, 3, 8, 15, 7, 123456, tzinfo=dt.UTC)
    appointment = Appointment(tablename="T", id=1, resource_id=2, start=start, duration=15)
    unusual = [
        replace(appointment, duration=1.5),
        replace(appointment, duration=float("nan")),
        replace(appointment, id=True),
        replace(appointment, tablename=Kind.VISIT),
        replace(appointment, resource_id=Level.HIGH),
        replace(appointment, title=None),
        replace(appointment, start=dt.date(2031, 3, 3)),
    ]
    # When they are written directly, Then each is the text made the long way
    for record in [*schedules, appointment, *unusual]:
        assert canonical_text(record) == the_long_way(record)


@given(
    tablename=st.text(),
    title=st.text(),
    number=st.integers(),
    start=st.datetimes(),
)
def test_any_appointment_is_written_as_before(tablename: str, title: str, number: int, start: dt.datetime) -> None:
    appointment = Appointment(
        tablename=tablename, id=number, resource_id=-number, start=start, duration=number, title=title
    )
    assert canonical_text(appointment) == the_long_way(appointment)
