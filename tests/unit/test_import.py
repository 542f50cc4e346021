"""Import through the Lambda handler, on moto: the seed sample, body forms, semantics, rejections."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from mediexchange.protocol.sections import APPOINTMENTS, GROUPS, RESOURCES, SCHEDULES
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_import, document, snapshot


def counts(result: Any) -> dict[str, dict[str, str]]:
    return {child.tag: dict(child.attrib) for child in result if child.tag != "Warnings"}


SAMPLE_COUNTS = {
    "ResourceGroups": {"received": "11", "written": "11", "deleted": "0"},
    "Resources": {"received": "70", "written": "70", "deleted": "0"},
    "Schedules": {"received": "43", "written": "43", "deleted": "0"},
    "Appointments": {"mode": "full", "received": "1", "written": "1", "deleted": "0"},
    "Orders": {"received": "2", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "2"},
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


def errors_of(result: Any) -> list[dict[str, str]]:
    return [{**e.attrib, "text": e.text} for e in result.iter("Error")]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            '<ResourceGroups>\n<rg id="x1" name="A"/>\n</ResourceGroups>',
            ("ResourceGroups", "x1", "attribute id must be an integer"),
        ),
        ('<ResourceGroups>\n<rg id="1"/>\n</ResourceGroups>', ("ResourceGroups", "1", "attribute name is required")),
        (
            '<Resources>\n<r id="5" name="A" time_step="0"/>\n</Resources>',
            ("Resources", "5", "time_step must be from 1 to 1440"),
        ),
        (
            '<Resources>\n<r id="5" name="A" time_step="30" group_id="9999999999999999999"/>\n</Resources>',
            ("Resources", "5", "group_id must be from -9223372036854775808 to 9223372036854775807"),
        ),
        (
            '<Schedules>\n<s id="7" date="31.02.2024" resource_id="1"><time_rules w_start="8:00" w_end="9:00"/></s>\n</Schedules>',
            ("Schedules", "7", "not a real date"),
        ),
        (
            '<Schedules>\n<s id="7" date="01.02.2024" resource_id="1"><time_rules w_start="8:00" w_end="24:01"/></s>\n</Schedules>',
            ("Schedules", "7", "w_end must be a time"),
        ),
        (
            '<Schedules>\n<s id="7" date="01.02.2024" resource_id="1"><time_rules w_start="9:00" w_end="8:00"/></s>\n</Schedules>',
            ("Schedules", "7", "w_end must be after w_start"),
        ),
        (
            '<Schedules>\n<s id="7" date="01.02.2024" resource_id="1"><time_rules w_start="8:00" w_end="18:00" b_start="13:00"/></s>\n</Schedules>',
            ("Schedules", "7", "b_start and b_end go together"),
        ),
        (
            '<Schedules>\n<s id="7" date="01.02.2024" resource_id="1"><time_rules w_start="8:00" w_end="18:00" b_start="17:00" b_end="19:00"/></s>\n</Schedules>',
            ("Schedules", "7", "inside the working hours"),
        ),
        (
            '<Schedules>\n<s id="7" date="01.02.2024" resource_id="1"/>\n</Schedules>',
            ("Schedules", "7", "at least one time_rules"),
        ),
        (
            '<Appointments SyncMode="full">\n<a tablename="T" id="3" resource_id="1" ReceptionDateTime="01.02.2024 10:00" Duration="-5"/>\n</Appointments>',
            ("Appointments", "3", "Duration must be from 1 to 1440"),
        ),
        (
            '<Appointments SyncMode="sometimes">\n</Appointments>',
            ("Appointments", None, "SyncMode must be full or diff"),
        ),
        (
            '<Appointments>\n<a tablename="T" id="3" resource_id="1" ReceptionDateTime="2024-02-01 10:00" Duration="30"/>\n</Appointments>',
            ("Appointments", "3", "DD.MM.YYYY HH:MM:SS"),
        ),
        (
            '<Orders>\n<o id="1" status="2" LastChangedOn="01.02.2024 10:00:00"/>\n</Orders>',
            ("Orders", "1", "status must be 0 (received), 1 (accepted) or 3 (rejected)"),
        ),
        ('<Orders>\n<o id="1" status="1"/>\n</Orders>', ("Orders", "1", "attribute LastChangedOn is required")),
        (
            '<Orders>\n<o id="1" status="1" LastChangedOn="01.02.2024 10:00:00" reception_datetime="soon"/>\n</Orders>',
            ("Orders", "1", "reception_datetime must be a date and time"),
        ),
    ],
)
def test_an_invalid_record_rejects_the_import_and_changes_nothing(
    clinic: Clinic, dynamodb: Any, section: str, expected: tuple[str, str | None, str]
) -> None:
    # Given a clinic with the sample imported, and a document whose record on line 4 is invalid
    # (or, with no record id, whose section element on line 3 is)
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    # When the document is imported
    status, result, _ = call_import(document(section))
    # Then it is refused with the record's section, id, line and reason, and nothing changed
    assert status == 400
    assert result.get("status") == "error"
    [error] = errors_of(result)
    name, record_id, reason = expected
    assert error["code"] == "invalid_record"
    assert error["section"] == name
    assert error.get("id") == record_id
    assert error["line"] == ("4" if record_id else "3")
    assert reason in error["text"]
    assert snapshot(dynamodb) == before


def test_every_error_of_a_document_is_reported_and_a_good_section_is_not_applied(clinic: Clinic, dynamodb: Any) -> None:
    # Given a document with good groups and two bad resources
    body = document(
        '<ResourceGroups><rg id="1" name="A"/></ResourceGroups>\n'
        '<Resources>\n<r id="1" name="" time_step="30"/>\n<r id="2" name="B" time_step="abc"/>\n</Resources>'
    )
    before = snapshot(dynamodb)
    # When it is imported
    status, result, _ = call_import(body)
    # Then both errors are reported with their lines and even the good groups are not written
    assert status == 400
    assert [(e["line"], e["id"]) for e in errors_of(result)] == [("5", "1"), ("6", "2")]
    assert snapshot(dynamodb) == before


def test_duplicate_ids_in_a_section_are_an_error(store: Store, clinic: Clinic) -> None:
    # Given two resources with id 5 and two appointments with the same (tablename, id)
    body = document(
        '<Resources>\n<r id="5" name="A" time_step="30"/>\n<r id="5" name="B" time_step="30"/>\n</Resources>\n'
        '<Appointments>\n<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 10:00:00" Duration="30"/>\n'
        '<a tablename="T" id="1" resource_id="5" ReceptionDateTime="01.02.2024 11:00:00" Duration="30"/>\n</Appointments>'
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then each duplicate is named with the line of its first occurrence
    assert status == 400
    errors = errors_of(result)
    assert [(e["section"], e["id"], e["line"]) for e in errors] == [
        ("Resources", "5", "5"),
        ("Appointments", "T#1", "9"),
    ]
    assert "first at line 4" in errors[0]["text"]
    assert "first at line 8" in errors[1]["text"]
    assert store.records.all(clinic.clinic_id, RESOURCES) == []


def test_a_section_sent_twice_is_an_error(clinic: Clinic) -> None:
    status, result, _ = call_import(document("<Resources/>\n<resources/>"))
    assert status == 400
    [error] = errors_of(result)
    assert error["section"] == "Resources" and error["line"] == "4"


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
    assert counts(result)["Resources"] == {"received": "3", "written": "1", "deleted": "1"}
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
        "Resources": {"received": "0", "written": "0", "deleted": "70"},
        "Schedules": {"received": "0", "written": "0", "deleted": "43"},
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
    assert counts(result)["Appointments"] == {"mode": "diff", "received": "2", "written": "2", "deleted": "0"}
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
    assert counts(result)["Appointments"] == {"mode": "full", "received": "2", "written": "1", "deleted": "2"}
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


def test_a_second_import_while_one_runs_gets_409_with_retry_after(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given another import holds the clinic's lease
    store.clinics.acquire_import_lease(clinic.clinic_id, "other-import", 60)
    before = snapshot(dynamodb)
    # When an import arrives
    status, result, headers = call_import(SAMPLE.read_bytes())
    # Then it is refused with a time to retry, and nothing is written
    assert status == 409
    assert errors_of(result)[0]["code"] == "import_in_progress"
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert snapshot(dynamodb) == before


def test_an_expired_lease_does_not_block_the_clinic(store: Store, clinic: Clinic) -> None:
    # Given a crashed import left a lease that has run out
    store.clinics.acquire_import_lease(clinic.clinic_id, "crashed-import", 60, now=0)
    # When an import arrives; Then it proceeds and releases its own lease
    status, _, _ = call_import(SAMPLE.read_bytes())
    assert status == 200
    store.clinics.acquire_import_lease(clinic.clinic_id, "next-import", 60)


def test_keys_are_stored_only_as_hashes(clinic: Clinic, dynamodb: Any) -> None:
    assert SAMPLE_KEY not in repr(snapshot(dynamodb))
