"""Import through the Lambda handler, on moto: the seed sample, body forms, semantics, record-by-record
rejection (SPEC section 3, r2), duplicates, and the lenient forms MIS software really writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import pytest
from mediexchange.protocol.sections import APPOINTMENTS, GROUPS, RESOURCES, SCHEDULES, SYNCED, Section
from mediexchange.records import Appointment, Clinic, Group, Order, OrderStatus, Resource, Schedule, Window
from mediexchange.store import Store
from mediexchange.timeutil import to_epoch

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_import, document, snapshot

MOSCOW = ZoneInfo("Europe/Moscow")
BY_NAME: dict[str, Section[Any]] = {section.name: section for section in SYNCED}


def counts(result: Any) -> dict[str, dict[str, str]]:
    """The answer's section elements and their counts (not its Errors and Warnings)."""
    return {child.tag: dict(child.attrib) for child in result if child.tag not in ("Error", "Warnings")}


def errors_of(result: Any) -> list[dict[str, str]]:
    """The Error elements directly under the answer's root, each its attributes and its text."""
    return [{**e.attrib, "text": e.text} for e in result.findall("Error")]


def warnings_of(result: Any) -> list[tuple[str | None, ...]]:
    warnings = result.find("Warnings")
    return (
        []
        if warnings is None
        else [(w.get("code"), w.get("line"), w.get("section"), w.get("id"), w.text) for w in warnings]
    )


def invalid(line: int | str, section: str, record_id: str | None, attribute: str | None, text: str) -> dict[str, str]:
    """An Error element of a rejected record, as errors_of gives it."""
    located = {"line": str(line), "section": section, "id": record_id, "attribute": attribute}
    return {"code": "invalid_record", **{k: v for k, v in located.items() if v is not None}, "text": text}


def stored(store: Store, clinic: Clinic, section: Section[Any]) -> dict[str, Any]:
    """{record key: record} of what the clinic has of a section."""
    return {section.key(record): record for record in store.records.all(clinic.clinic_id, section)}


def everything(store: Store, clinic: Clinic) -> dict[str, dict[str, Any]]:
    return {section.name: stored(store, clinic, section) for section in SYNCED}


SAMPLE_COUNTS = {
    "ResourceGroups": {"received": "11", "written": "11", "deleted": "0", "rejected": "0"},
    "Resources": {"received": "70", "written": "70", "deleted": "0", "rejected": "0"},
    "Schedules": {"received": "43", "written": "43", "deleted": "0", "rejected": "0"},
    "Appointments": {"mode": "full", "received": "1", "written": "1", "deleted": "0", "rejected": "0"},
    "Orders": {"received": "2", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "2", "rejected": "0"},
}


def form_body(xml: bytes) -> bytes:
    return b"xml=" + quote_from_bytes(xml).encode()


def test_seed_sample_as_form_post_imports_everything(store: Store, clinic: Clinic) -> None:
    # Given the seed sample, posted as the original portal took it: form field xml
    body = form_body(SAMPLE.read_bytes())
    # When it is imported
    status, result, _ = call_import(body, "application/x-www-form-urlencoded")
    # Then every section is counted and stored, and both orders are reported unknown
    assert status == 200
    assert result.get("status") == "ok" and result.get("import_id")
    assert counts(result) == SAMPLE_COUNTS
    assert [u.get("id") for u in result.find("Orders")] == ["1", "2"]
    assert result.find("Warnings") is None
    assert len(store.records.all(clinic.clinic_id, GROUPS)) == 11
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 70
    assert len(store.records.all(clinic.clinic_id, SCHEDULES)) == 43
    [appointment] = store.records.all(clinic.clinic_id, APPOINTMENTS)
    assert appointment.title == "Печеркина М.И. - повторный прием"
    assert str(appointment.start) == "2010-06-30 12:00:00" and appointment.duration == 60


def test_resending_the_same_document_writes_nothing(clinic: Clinic, dynamodb: Any) -> None:
    # Given the sample already imported
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    # When the identical document comes again
    status, result, _ = call_import(SAMPLE.read_bytes())
    # Then nothing is written or deleted and no data item changed
    assert status == 200
    for section in ("ResourceGroups", "Resources", "Schedules", "Appointments"):
        assert counts(result)[section]["written"] == "0"
        assert counts(result)[section]["deleted"] == "0"
    data_tables = ("mediexchange-records", "mediexchange-orders")
    after = snapshot(dynamodb)
    assert {t: after[t] for t in data_tables} == {t: before[t] for t in data_tables}


def windows_1251_sample() -> bytes:
    text = SAMPLE.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="windows-1251"')
    return text.encode("windows-1251")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (windows_1251_sample(), "text/xml"),
        (form_body(windows_1251_sample()), "application/x-www-form-urlencoded"),
        (SAMPLE.read_bytes(), "application/xml; charset=utf-8"),
    ],
    ids=["windows-1251 raw", "windows-1251 form", "utf-8 raw"],
)
def test_sample_in_other_body_forms_imports_the_same(
    store: Store, clinic: Clinic, body: bytes, content_type: str
) -> None:
    # Given the sample in another encoding or body form; When it is imported
    status, result, _ = call_import(body, content_type)
    # Then the counts and the Cyrillic names are exactly those of the UTF-8 form post
    assert status == 200, result
    assert counts(result) == SAMPLE_COUNTS
    names = {r.id: r.name for r in store.records.all(clinic.clinic_id, RESOURCES)}
    assert names[-90] == "Кабинет УЗИ №2"
    assert names[393] == "Баева"


def test_sample_as_multipart_file_upload(store: Store, clinic: Clinic) -> None:
    # Given the windows-1251 sample as a multipart file field named xml
    boundary = "----mediexchange-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="xml"; filename="export.xml"\r\n'
            f"Content-Type: text/xml\r\n\r\n"
        ).encode()
        + windows_1251_sample()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    # When it is imported
    status, result, _ = call_import(body, f"multipart/form-data; boundary={boundary}")
    # Then it is read byte for byte
    assert status == 200, result
    assert counts(result) == SAMPLE_COUNTS
    names = {g.id: g.name for g in store.records.all(clinic.clinic_id, GROUPS)}
    assert names[-99999] == "Кабинеты"


def test_gzip_body_is_inflated(clinic: Clinic) -> None:
    import gzip

    # Given the sample gzipped with Content-Encoding: gzip; When it is imported
    status, result, _ = call_import(gzip.compress(SAMPLE.read_bytes()), "application/xml", content_encoding="gzip")
    # Then it imports as the plain document does
    assert status == 200 and counts(result) == SAMPLE_COUNTS


# -- record by record (SPEC section 3, r2): a bad record is rejected alone ----------------------------

# For each synced section, a good record sent on line 5, after the bad one: a changed or a new record of the
# sample, and the record it must be stored as.
GOOD: dict[str, tuple[str, Any]] = {
    "ResourceGroups": ('<rg id="2" name="Терапевты"/>', Group(2, "Терапевты")),
    "Resources": ('<r id="391" name="Баранов А. А." time_step="20" group_id="7"/>', Resource(391, "Баранов А. А.", 20, 7)),
    "Schedules": (
        '<s id="2" date="02.07.2010" resource_id="393"><time_rules w_start="9:00" w_end="13:00"/></s>',
        Schedule(2, dt.date(2010, 7, 2), 393, (Window(540, 780),)),
    ),
    "Appointments": (
        '<a tablename="SchedEvent" id="9" resource_id="383" ReceptionDateTime="30.06.2010 14:00:00" Duration="30"/>',
        Appointment("SchedEvent", 9, 383, dt.datetime(2010, 6, 30, 14, 0), 30),
    ),
}  # fmt: skip
OPENING = {name: name for name in GOOD} | {"Appointments": 'Appointments SyncMode="full"'}

# Each: a bad version of a record the sample stored, its key, the Error's attribute (None: the rule spans
# several) and message.
BAD_RECORDS = [
    pytest.param("ResourceGroups", '<rg id="1"/>', "1", "name", "attribute name is required", id="group without a name"),
    pytest.param("ResourceGroups", '<rg id="1" name="A" pos="first"/>', "1", "pos", "attribute pos must be an integer, got 'first'", id="group pos not an integer"),
    pytest.param("Resources", '<r id="393" name="A" time_step="0"/>', "393", "time_step", "attribute time_step must be from 1 to 1440, got 0", id="time_step 0"),
    pytest.param("Resources", '<R ID="393" NAME="A" TIME_STEP="1441"/>', "393", "TIME_STEP", "attribute TIME_STEP must be from 1 to 1440, got 1441", id="time_step 1441, named as the document spells it"),
    pytest.param("Resources", '<r id="393" name="A" time_step="30" group_id="9999999999999999999"/>', "393", "group_id", "attribute group_id must be from -9223372036854775808 to 9223372036854775807, got 9999999999999999999", id="group_id over 64 bits"),
    pytest.param("Resources", f'<r id="393" name="{"Я" * 1001}" time_step="30"/>', "393", "name", "attribute name is longer than 1000 characters (1001)", id="name over 1000 characters"),
    pytest.param("Schedules", '<s id="1" date="31.02.2010" resource_id="393"><time_rules w_start="8:00" w_end="9:00"/></s>', "1", "date", "attribute date is not a real date or time: '31.02.2010'", id="no such date"),
    pytest.param("Schedules", '<s id="1" date="01.07.2010 9:00:00" resource_id="393"/>', "1", "date", "attribute date must be a date DD.MM.YYYY, got '01.07.2010 9:00:00'", id="date with a time other than midnight"),
    pytest.param("Schedules", '<s id="1" date="01.07.2010" resource_id="393"><time_rules w_start="8:00" w_end="24:01"/></s>', "1", "w_end", "time_rules: attribute w_end must be a time HH:MM from 00:00 to 23:59, got '24:01'", id="w_end 24:01"),
    pytest.param("Schedules", '<s id="1" date="01.07.2010" resource_id="393"><time_rules w_start="8.00" w_end="9:00"/></s>', "1", "w_start", "time_rules: attribute w_start must be a time HH:MM, got '8.00'", id="w_start with a dot"),
    pytest.param("Schedules", '<s id="1" date="01.07.2010" resource_id="393"><time_rules w_start="8:00" w_end="18:00" b_start="13:00"/></s>', "1", None, "time_rules: b_start and b_end go together: give both or neither", id="break start alone"),
    pytest.param("Schedules", '<s id="1" date="01.07.2010" resource_id="393"><time_rules w_start="8:00" w_end="18:00" b_start="17:00" b_end="19:00"/></s>', "1", None, "time_rules: the break must end after it starts and lie inside the working hours", id="break outside the window"),
    pytest.param("Appointments", '<a tablename="SchedEvent" id="8" resource_id="383" ReceptionDateTime="30.06.2010 12:00:00" Duration="-5"/>', "SchedEvent#8", "Duration", "attribute Duration must be from 0 to 1440, got -5", id="negative Duration"),
    pytest.param("Appointments", '<a tablename="SchedEvent" id="8" resource_id="383" ReceptionDateTime="30.06.2010 12:00:00" Duration="1441"/>', "SchedEvent#8", "Duration", "attribute Duration must be from 0 to 1440, got 1441", id="Duration over a day"),
    pytest.param("Appointments", '<a tablename="SchedEvent" id="8" resource_id="383" ReceptionDateTime="2010-06-30 12:00:00" Duration="60"/>', "SchedEvent#8", "ReceptionDateTime", "attribute ReceptionDateTime must be a date and time DD.MM.YYYY HH:MM:SS, got '2010-06-30 12:00:00'", id="ISO date and time"),
    pytest.param("Appointments", '<a tablename="SchedEvent" id="8" ReceptionDateTime="30.06.2010 12:00:00" Duration="60"/>', "SchedEvent#8", "resource_id", "attribute resource_id is required", id="no resource_id"),
]  # fmt: skip

# What each section's answer counts: the bad record and the good one received, the good one written, the bad
# one rejected; a replace deletes the sample's other records (the bad one's stored version stays), a full
# sync deletes nothing (the sample's one appointment is the bad one's key).
COUNTS_WITH_ONE_REJECTED = {
    "ResourceGroups": {"received": "2", "written": "1", "deleted": "9", "rejected": "1"},
    "Resources": {"received": "2", "written": "1", "deleted": "68", "rejected": "1"},
    "Schedules": {"received": "2", "written": "1", "deleted": "41", "rejected": "1"},
    "Appointments": {"mode": "full", "received": "2", "written": "1", "deleted": "0", "rejected": "1"},
}


@pytest.mark.parametrize(("section", "bad", "key", "attribute", "message"), BAD_RECORDS)
def test_an_invalid_record_is_rejected_alone_its_stored_version_kept_and_the_rest_applied(
    store: Store, clinic: Clinic, section: str, bad: str, key: str, attribute: str | None, message: str
) -> None:
    # Given the sample imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    before = everything(store, clinic)
    # And a document whose section holds, on line 4, an invalid version of a record the sample stored,
    # and on line 5 a good record
    good, good_record = GOOD[section]
    body = document(f"<{OPENING[section]}>\n{bad}\n{good}\n</{section}>")
    # When it is imported
    status, result, _ = call_import(body)
    # Then it applies, partially: the bad record is the one Error, with its line, section, id and attribute
    assert status == 200
    assert result.get("status") == "partial" and result.get("import_id")
    assert errors_of(result) == [invalid(4, section, key, attribute, message)]
    assert counts(result) == {section: COUNTS_WITH_ONE_REJECTED[section]}
    assert warnings_of(result) == []
    # And the section holds the bad record's stored version, untouched, and the good record
    after = everything(store, clinic)
    assert after[section] == {key: before[section][key], BY_NAME[section].key(good_record): good_record}
    # And the sections not sent are as they were
    assert {name: records for name, records in after.items() if name != section} == {
        name: records for name, records in before.items() if name != section
    }


# Each: a bad record whose key cannot be read, the Error's id (as far as it goes) and attribute, and message.
UNKEYED = [
    pytest.param("ResourceGroups", '<rg id="x1" name="A"/>', "x1", "id", "attribute id must be an integer, got 'x1'", id="group id not an integer"),
    pytest.param("Resources", '<r name="A" time_step="30"/>', None, "id", "attribute id is required", id="resource without an id"),
    pytest.param("Schedules", '<s id="1.5" date="01.07.2010" resource_id="393"/>', "1.5", "id", "attribute id must be an integer, got '1.5'", id="schedule id with a fraction"),
    pytest.param("Appointments", '<a id="8" resource_id="383" ReceptionDateTime="30.06.2010 12:00:00" Duration="60"/>', "8", "tablename", "attribute tablename is required", id="appointment without a tablename"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "bad", "record_id", "attribute", "message"), UNKEYED)
def test_a_rejected_record_without_a_readable_key_suspends_the_deletions_of_its_replaced_section(
    store: Store, clinic: Clinic, section: str, bad: str, record_id: str | None, attribute: str | None, message: str
) -> None:
    # Given the sample imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    before = everything(store, clinic)
    # When a replacing section (Appointments: a full sync) holds a record whose key cannot be read, and a good one
    good, good_record = GOOD[section]
    good_key = BY_NAME[section].key(good_record)
    status, result, _ = call_import(document(f"<{OPENING[section]}>\n{bad}\n{good}\n</{section}>"))
    # Then the good record is written, the bad one rejected, and nothing of the section is deleted: the
    # unreadable record could have been any stored one
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [invalid(4, section, record_id, attribute, message)]
    assert counts(result)[section] == {
        **({"mode": "full"} if section == "Appointments" else {}),
        "received": "2", "written": "1", "deleted": "0", "rejected": "1",
    }  # fmt: skip
    suspended = f"a rejected record of {section} has no readable key, so {section} deletes nothing this time"
    assert warnings_of(result) == [("deletions_suspended", "3", section, None, suspended)]
    assert stored(store, clinic, BY_NAME[section]) == {**before[section], good_key: good_record}
    # When the section comes again with every key readable
    status, result, _ = call_import(document(f"<{OPENING[section]}>\n{good}\n</{section}>"))
    # Then the deletions resume
    assert (status, result.get("status"), errors_of(result)) == (200, "ok", [])
    assert counts(result)[section]["deleted"] == str(len({**before[section], good_key: good_record}) - 1)
    assert stored(store, clinic, BY_NAME[section]) == {good_key: good_record}


def test_a_rejected_record_without_a_readable_key_in_a_diff_deletes_nothing_and_warns_nothing(
    store: Store, clinic: Clinic
) -> None:
    # Given the sample imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    before = stored(store, clinic, APPOINTMENTS)
    # When a diff (which never deletes) holds an appointment without a tablename, and a good one
    good, good_record = GOOD["Appointments"]
    bad = '<a id="8" resource_id="383" ReceptionDateTime="30.06.2010 12:00:00" Duration="60"/>'
    status, result, _ = call_import(document(f"<Appointments>\n{bad}\n{good}\n</Appointments>"))
    # Then the bad one is rejected and the good one added, with no warning about deletions
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [invalid(4, "Appointments", "8", "tablename", "attribute tablename is required")]
    assert counts(result)["Appointments"] == {
        "mode": "diff", "received": "2", "written": "1", "deleted": "0", "rejected": "1"
    }  # fmt: skip
    assert warnings_of(result) == []
    assert stored(store, clinic, APPOINTMENTS) == {**before, "SchedEvent#9": good_record}


def test_every_bad_record_is_reported_and_every_good_record_applies(store: Store, clinic: Clinic) -> None:
    # Given a document with a good group, two bad resources and a good one
    body = document(
        '<ResourceGroups><rg id="1" name="A"/></ResourceGroups>\n'
        '<Resources>\n<r id="1" name="" time_step="30"/>\n<r id="2" name="B" time_step="abc"/>\n'
        '<r id="3" name="C" time_step="15" group_id="1"/>\n</Resources>'
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then both bad resources are reported on their lines, and the group and the good resource are written
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(5, "Resources", "1", "name", "attribute name is required"),
        invalid(6, "Resources", "2", "time_step", "attribute time_step must be an integer, got 'abc'"),
    ]
    assert counts(result) == {
        "ResourceGroups": {"received": "1", "written": "1", "deleted": "0", "rejected": "0"},
        "Resources": {"received": "3", "written": "1", "deleted": "0", "rejected": "2"},
    }
    assert store.records.all(clinic.clinic_id, GROUPS) == [Group(1, "A")]
    assert store.records.all(clinic.clinic_id, RESOURCES) == [Resource(3, "C", 15, 1)]


def test_errors_come_after_the_sections_and_before_the_warnings(clinic: Clinic) -> None:
    # Given a document with a bad resource, a good one in an unknown group, and a rejected order change
    body = document(
        '<Resources>\n<r id="1" name="" time_step="30"/>\n<r id="2" name="B" time_step="30" group_id="9"/>\n</Resources>\n'
        '<Orders>\n<o id="1" status="2" LastChangedOn="01.01.2024 10:00:00"/>\n</Orders>'
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then the answer lists the sections, then one Error per rejected record, then the warnings
    assert status == 200
    assert [child.tag for child in result] == ["Resources", "Orders", "Error", "Error", "Warnings"]
    assert [(e["section"], e["line"]) for e in errors_of(result)] == [("Resources", "4"), ("Orders", "8")]
    assert counts(result)["Orders"] == {
        "received": "1", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "0", "rejected": "1"
    }  # fmt: skip
    assert [w[0] for w in warnings_of(result)] == ["unknown_group"]


def line_of(text: str, needle: str) -> int:
    """The number of the one line of `text` that holds `needle`."""
    [number] = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


def in_place(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced, on the same lines."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def sample_order_1() -> Order:
    """The sample's order 1 as the portal holds it: the sample's echo of it asks for nothing new."""
    return Order(
        id=1, status=OrderStatus.RECEIVED, user_id="1", user_name="имя пользователя", order_date=dt.date(2010, 7, 1),
        mw_resource_id=369, resource_name="Нестеров О. П.", resource_id=1, reception=dt.datetime(2010, 7, 1, 17, 0),
        duration=30, name1="фамилия", name2="имя", name3="отчество", aim="цель", phone="телефон", city="город",
        address="адрес", email="mlab@medwork.ru", last_changed=to_epoch(dt.datetime(2010, 7, 1, 12, 11, 2), MOSCOW),
    )  # fmt: skip


def test_five_bad_records_in_the_sample_are_rejected_and_everything_else_applies(store: Store, clinic: Clinic) -> None:
    # Given the portal holds the sample's order 1, and the clean sample was imported
    store.orders.book(clinic.clinic_id, sample_order_1(), MOSCOW)
    status, result, _ = call_import(SAMPLE.read_bytes())
    assert (status, result.get("status")) == (200, "ok")
    before = everything(store, clinic)
    # And the sample again, with five records broken in place (one in every section, each another kind of
    # error) and three good changes: group 3 renamed, resource 393 renamed, schedule 43 now sent as 44
    text = SAMPLE.read_text(encoding="utf-8")
    for old, new in [
        ('<rg id="2" name="Врач-терапевт" pos="0"/>', '<rg id="2" name="" pos="0"/>'),
        ('<r id="391" name="Баранов" time_step="30"', '<r id="391" name="Баранов" time_step="1441"'),
        (
            '<s id="5" date="07.07.2010" resource_id="393">\n      <time_rules w_startTime="7:00" w_endTime="18:00" b_startTime="13:00" b_endTime="14:00"',
            '<s id="5" date="07.07.2010" resource_id="393">\n      <time_rules w_startTime="7:00" w_endTime="18:00" b_startTime="13:00" b_endTime="19:00"',
        ),
        ('ReceptionDateTime="30.06.2010 12:00:00"', 'ReceptionDateTime="2010-06-30 12:00:00"'),
        ('<o ID="1" Status="0"', '<o ID="1" Status="1"'),
        ('LastChangedOn="01.07.2010 12:11:02"', 'LastChangedOn="31.06.2010 12:11:02"'),
        ('<rg id="3" name="Врач-терапевт участковый"', '<rg id="3" name="Терапевт участковый"'),
        ('<r id="393" name="Баева"', '<r id="393" name="Баева Е. Н."'),
        ('<s id="43" date="11.07.2010"', '<s id="44" date="11.07.2010"'),
    ]:
        text = in_place(text, old, new)
    # When it is imported
    status, result, _ = call_import(text.encode())
    # Then it is a partial success listing exactly the five errors, after the sections, where they are
    assert (status, result.get("status")) == (200, "partial")
    sections = ["ResourceGroups", "Resources", "Schedules", "Appointments", "Orders"]
    assert [child.tag for child in result] == [*sections, *["Error"] * 5]
    assert errors_of(result) == [
        invalid(line_of(text, '<rg id="2"'), "ResourceGroups", "2", "name", "attribute name is required"),
        invalid(line_of(text, '<r id="391"'), "Resources", "391", "time_step", "attribute time_step must be from 1 to 1440, got 1441"),
        invalid(line_of(text, '<s id="5"') + 1, "Schedules", "5", None, "time_rules: the break must end after it starts and lie inside the working hours"),
        invalid(line_of(text, "<a "), "Appointments", "SchedEvent#8", "ReceptionDateTime", "attribute ReceptionDateTime must be a date and time DD.MM.YYYY HH:MM:SS, got '2010-06-30 12:00:00'"),
        invalid(line_of(text, '<o ID="1"'), "Orders", "1", "LastChangedOn", "attribute LastChangedOn is not a real date or time: '31.06.2010 12:11:02'"),
    ]  # fmt: skip
    # And every section counts its rejected record; the good changes are written and schedule 43 deleted
    assert counts(result) == {
        "ResourceGroups": {"received": "11", "written": "1", "deleted": "0", "rejected": "1"},
        "Resources": {"received": "70", "written": "1", "deleted": "0", "rejected": "1"},
        "Schedules": {"received": "43", "written": "1", "deleted": "1", "rejected": "1"},
        "Appointments": {"mode": "full", "received": "1", "written": "0", "deleted": "0", "rejected": "1"},
        "Orders": {
            "received": "2",
            "updated": "0",
            "unchanged": "0",
            "conflicts": "0",
            "unknown": "1",
            "rejected": "1",
        },
    }
    assert [(u.tag, u.get("id")) for u in result.find("Orders")] == [("unknown", "2")]
    # And the five keep their stored versions while the rest is exactly what was sent
    expected = {name: dict(records) for name, records in before.items()}
    expected["ResourceGroups"]["3"] = Group(3, "Терапевт участковый")
    expected["Resources"]["393"] = dataclasses.replace(before["Resources"]["393"], name="Баева Е. Н.")
    expected["Schedules"]["44"] = dataclasses.replace(expected["Schedules"].pop("43"), id=44)
    assert everything(store, clinic) == expected
    assert store.orders.get_many(clinic.clinic_id, [1]) == {1: sample_order_1()}


# -- duplicates (SPEC section 3, r2): the later record of a key wins ----------------------------------


def without_received(section_counts: dict[str, str]) -> dict[str, str]:
    """A section's counts apart from `received` (what a key sent twice adds to it is an open question)."""
    return {name: value for name, value in section_counts.items() if name != "received"}


def test_a_key_twice_in_a_section_the_later_record_wins_with_a_warning(store: Store, clinic: Clinic) -> None:
    # Given two resources with id 5 (one spelled +5) and two appointments with the same (tablename, id)
    body = document(
        '<Resources>\n<r id="5" name="A" time_step="30"/>\n<r id="+5" name="B" time_step="20"/>\n</Resources>\n'
        '<Appointments>\n<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 10:00:00" Duration="30"/>\n'
        '<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 11:00:00" Duration="45"/>\n</Appointments>'
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then it applies without error, the later record of each key is stored, and each duplicate is a warning
    # naming both lines
    assert (status, result.get("status"), errors_of(result)) == (200, "ok", [])
    assert warnings_of(result) == [
        ("duplicate_id", "5", "Resources", "5", "duplicate id 5: the record at line 5 replaces the one at line 4"),
        (
            "duplicate_id",
            "9",
            "Appointments",
            "T#1",
            "duplicate id T#1: the record at line 9 replaces the one at line 8",
        ),
    ]
    assert store.records.all(clinic.clinic_id, RESOURCES) == [Resource(5, "B", 20)]
    assert store.records.all(clinic.clinic_id, APPOINTMENTS) == [
        Appointment("T", 1, 5, dt.datetime(2024, 2, 1, 11), 45)
    ]
    assert without_received(counts(result)["Resources"]) == {"written": "1", "deleted": "0", "rejected": "0"}
    assert without_received(counts(result)["Appointments"]) == {
        "mode": "diff",
        "written": "1",
        "deleted": "0",
        "rejected": "0",
    }


def test_a_key_whose_later_record_is_invalid_is_rejected_and_keeps_its_stored_version(
    store: Store, clinic: Clinic
) -> None:
    # Given resource 5 and appointment T#1 stored
    call_import(
        document(
            '<Resources><r id="5" name="Старое" time_step="30"/></Resources>'
            '<Appointments><a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 10:00:00" Duration="30"/></Appointments>'
        )
    )
    # When a document sends each key twice, a good record first and an invalid one later, and a new resource 6
    body = document(
        '<Resources>\n<r id="5" name="Новое" time_step="30"/>\n<r id="5" name="Новое" time_step="0"/>\n'
        '<r id="6" name="Другой" time_step="30"/>\n</Resources>\n'
        '<Appointments SyncMode="full">\n<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 11:00:00" Duration="30"/>\n'
        '<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 11:00:00" Duration="x"/>\n</Appointments>'
    )
    status, result, _ = call_import(body)
    # Then the later record wins even though it is invalid: the key is rejected, and neither the earlier good
    # record is written nor the stored version deleted
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(5, "Resources", "5", "time_step", "attribute time_step must be from 1 to 1440, got 0"),
        invalid(10, "Appointments", "T#1", "Duration", "attribute Duration must be an integer, got 'x'"),
    ]
    assert warnings_of(result) == [
        ("duplicate_id", "5", "Resources", "5", "duplicate id 5: the record at line 5 replaces the one at line 4"),
        (
            "duplicate_id",
            "10",
            "Appointments",
            "T#1",
            "duplicate id T#1: the record at line 10 replaces the one at line 9",
        ),
    ]
    assert without_received(counts(result)["Resources"]) == {"written": "1", "deleted": "0", "rejected": "1"}
    assert without_received(counts(result)["Appointments"]) == {
        "mode": "full",
        "written": "0",
        "deleted": "0",
        "rejected": "1",
    }
    assert sorted(store.records.all(clinic.clinic_id, RESOURCES), key=lambda r: r.id) == [
        Resource(5, "Старое", 30),
        Resource(6, "Другой", 30),
    ]
    assert store.records.all(clinic.clinic_id, APPOINTMENTS) == [
        Appointment("T", 1, 5, dt.datetime(2024, 2, 1, 10), 30)
    ]


def test_a_key_whose_later_record_is_good_is_written_and_the_earlier_reported(store: Store, clinic: Clinic) -> None:
    # Given resource 5 stored
    call_import(document('<Resources><r id="5" name="Старое" time_step="30"/></Resources>'))
    # When a document sends resource 5 invalid, then valid
    body = document(
        '<Resources>\n<r id="5" name="" time_step="30"/>\n<r id="5" name="Новое" time_step="30"/>\n</Resources>'
    )
    status, result, _ = call_import(body)
    # Then the earlier record is an error, and the later one, which wins, is written
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [invalid(4, "Resources", "5", "name", "attribute name is required")]
    assert warnings_of(result) == [
        ("duplicate_id", "5", "Resources", "5", "duplicate id 5: the record at line 5 replaces the one at line 4")
    ]
    assert without_received(counts(result)["Resources"]) == {"written": "1", "deleted": "0", "rejected": "1"}
    assert store.records.all(clinic.clinic_id, RESOURCES) == [Resource(5, "Новое", 30)]


# -- what refuses the whole document -------------------------------------------------------------------


def test_a_section_sent_twice_refuses_the_document_and_changes_nothing(clinic: Clinic, dynamodb: Any) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    # When a document sends good groups and Resources twice (the second in another case)
    body = document('<ResourceGroups><rg id="1" name="A"/></ResourceGroups>\n<Resources/>\n<resources/>')
    status, result, _ = call_import(body)
    # Then the whole document is refused, naming the second section and the first's line, and nothing changed
    assert (status, result.get("status"), result.get("import_id")) == (400, "error", None)
    assert errors_of(result) == [
        {
            **invalid(5, "Resources", None, None, "section Resources appears more than once (first at line 4)"),
            "code": "bad_request",
        }
    ]
    assert snapshot(dynamodb) == before


def test_an_unreadable_sync_mode_refuses_the_document_and_changes_nothing(clinic: Clinic, dynamodb: Any) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    # When a document sends good resources and appointments whose SyncMode is neither full nor diff
    body = document(
        '<Resources><r id="1" name="A" time_step="30"/></Resources>\n<Appointments SyncMode="sometimes">\n'
        '<a tablename="T" id="1" resource_id="1" ReceptionDateTime="01.02.2024 10:00:00" Duration="30"/>\n</Appointments>'
    )
    status, result, _ = call_import(body)
    # Then the whole document is refused (a full sync or a diff cannot be guessed), and nothing changed
    assert (status, result.get("status")) == (400, "error")
    assert errors_of(result) == [
        {
            **invalid(4, "Appointments", None, "SyncMode", "attribute SyncMode must be full or diff, got 'sometimes'"),
            "code": "bad_request",
        }
    ]
    assert snapshot(dynamodb) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"<MediExchange><Resources/></MediExchange>", 400, "missing_client_key"),
        (b'<MediExchange ClientKey="  "/>', 400, "missing_client_key"),
        (b'<Exchange ClientKey="x"/>', 400, "bad_request"),
        (b'<MediExchange ClientKey="x"><Resources>', 400, "malformed_xml"),
        (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY e "x">]><MediExchange ClientKey="x"/>', 400, "malformed_xml"),
        (b"", 400, "malformed_xml"),
        (b'<MediExchange ClientKey="00000000-0000-0000-0000-000000000000"/>', 403, "unknown_client_key"),
    ],
    ids=["no key", "blank key", "wrong root", "not well-formed", "doctype", "empty", "unknown key"],
)
def test_requests_refused_before_any_record_is_read(clinic: Clinic, body: bytes, status: int, code: str) -> None:
    got, result, _ = call_import(body)
    assert (got, result.get("status"), errors_of(result)[0]["code"]) == (status, "error", code)


def test_a_malformed_document_names_the_line(clinic: Clinic) -> None:
    status, result, _ = call_import(b'<MediExchange ClientKey="x">\n<Resources>\n<r id="1">\n</Resources>')
    assert status == 400
    assert errors_of(result)[0]["line"] == "4"


def test_disabled_clinic_gets_the_same_answer_as_an_unknown_key(store: Store, clinic: Clinic) -> None:
    # Given the clinic is disabled
    store.clinics.disable(clinic.clinic_id)
    # When it imports with its own key
    status, result, _ = call_import(SAMPLE.read_bytes())
    # Then the answer is the unknown-key answer, word for word
    _, unknown, _ = call_import(document("", client_key="not-a-key"))
    assert status == 403
    assert errors_of(result) == errors_of(unknown)


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [("application/json", 415, "unsupported_media_type"), ("", 415, "unsupported_media_type")],
)
def test_unsupported_content_types(clinic: Clinic, content_type: str, status: int, code: str) -> None:
    got, result, _ = call_import(SAMPLE.read_bytes(), content_type)
    assert (got, errors_of(result)[0]["code"]) == (status, code)


def test_form_without_xml_field_is_a_bad_request(clinic: Clinic) -> None:
    status, result, _ = call_import(b"document=abc", "application/x-www-form-urlencoded")
    assert status == 400
    assert errors_of(result)[0] == {"code": "bad_request", "text": "the form has no field named xml"}


def test_unknown_elements_and_attributes_are_warnings(store: Store, clinic: Clinic) -> None:
    # Given a resource with an attribute and a child this version does not know, and an unknown section
    body = document('<Resources>\n<r id="1" name="A" time_step="30" colour="red"/>\n</Resources>\n<Rooms/>')
    # When it is imported
    status, result, _ = call_import(body)
    # Then it applies and each is a located warning
    assert status == 200
    warnings = [(w.get("code"), w.get("line"), w.get("section")) for w in result.find("Warnings")]
    assert warnings == [("unknown_attribute", "4", "Resources"), ("unknown_element", "6", "MediExchange")]
    assert [r.id for r in store.records.all(clinic.clinic_id, RESOURCES)] == [1]


def test_references_to_unknown_groups_and_resources_are_warnings(clinic: Clinic) -> None:
    # Given a resource in a group that does not exist and an appointment of a resource that does not exist
    body = document(
        '<ResourceGroups><rg id="1" name="G"/></ResourceGroups>\n'
        '<Resources><r id="10" name="A" time_step="30" group_id="2"/></Resources>\n'
        '<Appointments><a tablename="T" id="1" resource_id="11" ReceptionDateTime="01.02.2024 10:00:00" Duration="30"/>'
        "</Appointments>"
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then both records are stored and both references are warned about
    assert status == 200
    warnings = [(w.get("code"), w.get("section"), w.get("id")) for w in result.find("Warnings")]
    assert warnings == [("unknown_group", "Resources", "10"), ("unknown_resource", "Appointments", "T#1")]


def resources_doc(*ids: int) -> bytes:
    rows = "".join(f'<r id="{i}" name="R{i}" time_step="30"/>' for i in ids)
    return document(f"<Resources>{rows}</Resources>")


def test_resources_replace_the_previous_set_and_keep_their_portal_ids(store: Store, clinic: Clinic) -> None:
    # Given resources 1, 2, 3 imported
    call_import(resources_doc(1, 2, 3))
    first_ids = store.records.resource_ids(clinic.clinic_id)
    # When a later import sends 2, 3, 4
    status, result, _ = call_import(resources_doc(2, 3, 4))
    # Then 1 is gone, 4 is new, and 2 and 3 keep their portal ids; 1's id is never reused
    assert status == 200
    assert counts(result)["Resources"] == {"received": "3", "written": "1", "deleted": "1", "rejected": "0"}
    assert sorted(r.id for r in store.records.all(clinic.clinic_id, RESOURCES)) == [2, 3, 4]
    ids = store.records.resource_ids(clinic.clinic_id)
    assert {k: ids[k] for k in (1, 2, 3)} == first_ids
    assert ids[4] not in first_ids.values()


def test_present_but_empty_sections_empty_the_set_and_absent_ones_are_untouched(store: Store, clinic: Clinic) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    # When a document sends empty Resources and Schedules only
    status, result, _ = call_import(document("<Resources/>\n<Schedules></Schedules>"))
    # Then those are emptied; groups and appointments, absent, are untouched
    assert status == 200
    assert counts(result) == {
        "Resources": {"received": "0", "written": "0", "deleted": "70", "rejected": "0"},
        "Schedules": {"received": "0", "written": "0", "deleted": "43", "rejected": "0"},
    }
    assert store.records.all(clinic.clinic_id, RESOURCES) == []
    assert store.records.all(clinic.clinic_id, SCHEDULES) == []
    assert len(store.records.all(clinic.clinic_id, GROUPS)) == 11
    assert len(store.records.all(clinic.clinic_id, APPOINTMENTS)) == 1


def appointments_doc(mode: str | None, *rows: tuple[str, int, str]) -> bytes:
    attribute = f' SyncMode="{mode}"' if mode else ""
    body = "".join(
        f'<a tablename="{t}" id="{i}" resource_id="1" ReceptionDateTime="{when}" Duration="30" Title="t{i}"/>'
        for t, i, when in rows
    )
    return document(f"<Appointments{attribute}>{body}</Appointments>")


def stored_appointments(store: Store, clinic: Clinic) -> dict[str, str]:
    return {a.key: a.start.isoformat() for a in store.records.all(clinic.clinic_id, APPOINTMENTS)}


def test_diff_adds_and_updates_by_tablename_and_id_and_deletes_nothing(store: Store, clinic: Clinic) -> None:
    # Given appointments T#1 and T#2
    call_import(appointments_doc("full", ("T", 1, "01.02.2024 10:00:00"), ("T", 2, "01.02.2024 11:00:00")))
    # When a diff moves T#2, adds U#2 (same id, other table) and leaves T#1 out
    status, result, _ = call_import(
        appointments_doc(None, ("T", 2, "01.02.2024 12:00:00"), ("U", 2, "01.02.2024 13:00"))
    )
    # Then T#2 is updated, U#2 added and T#1 kept
    assert status == 200
    assert counts(result)["Appointments"] == {
        "mode": "diff", "received": "2", "written": "2", "deleted": "0", "rejected": "0"
    }  # fmt: skip
    assert stored_appointments(store, clinic) == {
        "T#1": "2024-02-01T10:00:00",
        "T#2": "2024-02-01T12:00:00",
        "U#2": "2024-02-01T13:00:00",
    }


def test_full_makes_the_stored_set_exactly_the_sent_set(store: Store, clinic: Clinic) -> None:
    # Given appointments T#1, T#2, T#3
    rows = [("T", i, f"01.02.2024 1{i}:00:00") for i in (1, 2, 3)]
    call_import(appointments_doc("full", *rows))
    # When a full sync (mode in any case) sends T#2 unchanged and T#4
    status, result, _ = call_import(appointments_doc("FULL", rows[1], ("T", 4, "02.02.2024 09:00:00")))
    # Then T#1 and T#3 are deleted, T#4 written, T#2 not rewritten
    assert status == 200
    assert counts(result)["Appointments"] == {
        "mode": "full", "received": "2", "written": "1", "deleted": "2", "rejected": "0"
    }  # fmt: skip
    assert stored_appointments(store, clinic) == {"T#2": "2024-02-01T12:00:00", "T#4": "2024-02-02T09:00:00"}


def test_schedule_windows_and_aliases_are_stored(store: Store, clinic: Clinic) -> None:
    # Given one schedule with two time_rules in both spellings, and 24:00 as an end
    body = document(
        '<Schedules><S ID="1" DATE="01.02.2024" Resource_ID="7">'
        '<time_rules w_startTime="8:00" w_endTime="12:00" b_startTime="10:00" b_endTime="10:30"/>'
        '<TIME_RULES w_start="20:00" w_end="24:00"/></S></Schedules>'
    )
    # When it is imported
    status, _, _ = call_import(body)
    # Then both windows are stored in minutes
    assert status == 200
    [schedule] = store.records.all(clinic.clinic_id, SCHEDULES)
    assert [(w.start, w.end, w.break_start, w.break_end) for w in schedule.windows] == [
        (480, 720, 600, 630),
        (1200, 1440, None, None),
    ]


# -- times and days as MIS software really writes them (SPEC section 3, r2) ----------------------------

DOCTOR = '<Resources><r id="5" name="Доктор" time_step="30"/></Resources>\n'

LENIENT_TIME_RULES = [
    pytest.param("", (), id="day off: no time_rules"),
    pytest.param("<time_rules/>", (), id="day off: an empty time_rules"),
    pytest.param('<time_rules w_start="" w_end=""/>', (), id="day off: empty times"),
    pytest.param('<time_rules w_start="9:00" w_end="9:00"/>', (), id="day off: w_start equal to w_end"),
    pytest.param('<time_rules w_start="20:00" w_end="08:00"/>', (Window(1200, 1920),), id="overnight window"),
    pytest.param('<time_rules w_start="20:00" w_end="08:00" b_start="23:30" b_end="00:30"/>', (Window(1200, 1920, 1410, 1470),), id="overnight window, break across midnight"),
    pytest.param('<time_rules w_start="20:00" w_end="08:00" b_start="02:00" b_end="03:00"/>', (Window(1200, 1920, 1560, 1620),), id="overnight window, break after midnight"),
    pytest.param('<time_rules w_start="8:00" w_end="17:00" b_start="0:00" b_end="0:00"/>', (Window(480, 1020),), id="break 0:00-0:00: no break"),
    pytest.param('<time_rules w_start="8:00" w_end="17:00" b_start="13:00" b_end="13:00"/>', (Window(480, 1020),), id="equal break inside the window: no break"),
    pytest.param('<time_rules w_start="08:00:00" w_end="17:30:00" b_start="13:00:00" b_end="14:00:00"/>', (Window(480, 1050, 780, 840),), id="times with seconds"),
    pytest.param('<time_rules w_start="20:00:00" w_end="24:00:00"/>', (Window(1200, 1440),), id="24:00:00 as an end"),
    pytest.param('<time_rules w_start="9:00" w_end="9:00"/><time_rules w_start="14:00" w_end="18:00"/>', (Window(840, 1080),), id="an empty window beside a real one"),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "windows"), LENIENT_TIME_RULES)
def test_lenient_time_rules_import_and_are_stored(
    store: Store, clinic: Clinic, rules: str, windows: tuple[Window, ...]
) -> None:
    # Given resource 5 and its schedule of 01.02.2024 written in a form MIS software uses
    body = document(DOCTOR + f'<Schedules>\n<s id="1" date="01.02.2024" resource_id="5">{rules}</s>\n</Schedules>')
    # When it is imported
    status, result, _ = call_import(body)
    # Then it is accepted as it is meant, and stored with those windows (none: a day off)
    assert (status, result.get("status"), errors_of(result), warnings_of(result)) == (200, "ok", [], [])
    assert counts(result)["Schedules"] == {"received": "1", "written": "1", "deleted": "0", "rejected": "0"}
    assert store.records.all(clinic.clinic_id, SCHEDULES) == [Schedule(1, dt.date(2024, 2, 1), 5, windows)]


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("01.07.2010 0:00:00", dt.date(2010, 7, 1)),
        ("01.07.2010 00:00:00", dt.date(2010, 7, 1)),
        ("01.07.2010 00:00", dt.date(2010, 7, 1)),
        ("1.7.2010", dt.date(2010, 7, 1)),
        ("01.01.1900", dt.date(1900, 1, 1)),
        ("31.12.2199", dt.date(2199, 12, 31)),
    ],
)
def test_a_date_with_a_midnight_time_imports_as_the_date(
    store: Store, clinic: Clinic, date: str, expected: dt.date
) -> None:
    # Given a schedule whose date carries the midnight time 1C and .NET write after it
    body = document(
        DOCTOR
        + f'<Schedules><s id="1" date="{date}" resource_id="5"><time_rules w_start="9:00" w_end="12:00"/></s></Schedules>'
    )
    # When it is imported; Then it is stored under that date
    status, result, _ = call_import(body)
    assert (status, result.get("status"), errors_of(result)) == (200, "ok", [])
    assert store.records.all(clinic.clinic_id, SCHEDULES) == [Schedule(1, expected, 5, (Window(540, 720),))]


def test_a_day_off_replaces_the_stored_schedule(store: Store, clinic: Clinic) -> None:
    # Given schedule 1 of resource 5 stored with a working window
    working = '<time_rules w_start="9:00" w_end="18:00"/>'
    call_import(document(DOCTOR + f'<Schedules><s id="1" date="01.02.2024" resource_id="5">{working}</s></Schedules>'))
    assert store.records.all(clinic.clinic_id, SCHEDULES)[0].windows == (Window(540, 1080),)
    # When the MIS sends the same schedule as a day off
    status, result, _ = call_import(
        document(DOCTOR + '<Schedules><s id="1" date="01.02.2024" resource_id="5"/></Schedules>')
    )
    # Then it is written: the schedule is kept, with no windows
    assert (status, result.get("status")) == (200, "ok")
    assert counts(result)["Schedules"] == {"received": "1", "written": "1", "deleted": "0", "rejected": "0"}
    assert store.records.all(clinic.clinic_id, SCHEDULES) == [Schedule(1, dt.date(2024, 2, 1), 5, ())]


def test_an_appointment_of_duration_0_imports(store: Store, clinic: Clinic) -> None:
    # Given an appointment of 0 minutes (a note in the MIS's calendar)
    body = document(
        DOCTOR + '<Appointments><a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 10:00:00" '
        'Duration="0" Title="Звонок"/></Appointments>'
    )
    # When it is imported; Then it is stored as it is
    status, result, _ = call_import(body)
    assert (status, result.get("status"), errors_of(result)) == (200, "ok", [])
    assert store.records.all(clinic.clinic_id, APPOINTMENTS) == [
        Appointment("T", 1, 5, dt.datetime(2024, 2, 1, 10), 0, "Звонок")
    ]


def test_keys_are_stored_only_as_hashes(clinic: Clinic, dynamodb: Any) -> None:
    assert SAMPLE_KEY not in repr(snapshot(dynamodb))
