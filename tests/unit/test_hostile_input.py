"""Hostile and malformed input: a document that cannot be read is a clear 4xx with the store exactly as it
was; a record that cannot be stored is rejected alone (SPEC section 3, r2), never a 500; work stays bounded."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from mediexchange.protocol.sections import APPOINTMENTS, GROUPS, RESOURCES, SCHEDULES
from mediexchange.records import Clinic, Group, Resource
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_import, document, snapshot

KEY = SAMPLE_KEY
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + f']><MediExchange ClientKey="{KEY}"><Resources><r id="1" name="&lol9;" time_step="30"/></Resources></MediExchange>'
)

ATTACKS = {
    "external entity (file)": f'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><MediExchange ClientKey="{KEY}"><ResourceGroups><rg id="1" name="&x;"/></ResourceGroups></MediExchange>',
    "external entity (network)": f'<!DOCTYPE m [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><MediExchange ClientKey="{KEY}"><ResourceGroups><rg id="1" name="&x;"/></ResourceGroups></MediExchange>',
    "billion laughs": LAUGHS,
    "external DTD": f'<?xml version="1.0"?>\n<!DOCTYPE MediExchange SYSTEM "http://127.0.0.1:9/evil.dtd"><MediExchange ClientKey="{KEY}"/>',
    "parameter entities": f'<!DOCTYPE m [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><MediExchange ClientKey="{KEY}"/>',
    "deep nesting": f'<MediExchange ClientKey="{KEY}"><Resources>'
    + "<r>" * 5000
    + "</r>" * 5000
    + "</Resources></MediExchange>",
    "NUL byte": f'<MediExchange ClientKey="{KEY}">\x00</MediExchange>',
    "unknown encoding": f'<?xml version="1.0" encoding="klingon"?><MediExchange ClientKey="{KEY}"/>',
    "UTF-16": '<?xml version="1.0" encoding="UTF-16"?><MediExchange/>',
}


@pytest.mark.parametrize("name", ATTACKS)
def test_xml_attacks_are_refused_fast_and_change_nothing(clinic: Clinic, dynamodb: Any, name: str) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    body = ATTACKS[name].encode("utf-16" if name == "UTF-16" else "utf-8")
    # When the attack is posted
    status, result, _ = call_import(body)
    # Then it is a 400 malformed_xml, and nothing changed
    assert (status, result.find("Error").get("code")) == (400, "malformed_xml"), name
    assert snapshot(dynamodb) == before


def test_processing_instructions_and_xinclude_are_inert(clinic: Clinic) -> None:
    # Given a document with a stylesheet PI and an XInclude of a local file
    body = document(
        '<?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?>\n'
        '<Resources><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'
        '<r id="1" name="A" time_step="30"/></Resources>'
    )
    # When it is imported; Then the PI is dropped, the include is an unknown element, nothing is read from disk
    status, result, _ = call_import(body)
    assert status == 200
    assert [w.get("code") for w in result.find("Warnings")] == ["unknown_element"]
    assert "root:" not in (result.find("Warnings")[0].text or "")


def errors_of(result: Any) -> list[dict[str, str]]:
    return [{**e.attrib, "text": e.text} for e in result.findall("Error")]


def invalid(line: int, section: str, record_id: str | None, attribute: str | None, text: str) -> dict[str, str]:
    located = {"line": str(line), "section": section, "id": record_id, "attribute": attribute}
    return {"code": "invalid_record", **{k: v for k, v in located.items() if v is not None}, "text": text}


def test_a_huge_attribute_value_is_a_rejected_record(store: Store, clinic: Clinic) -> None:
    # Given a resource whose name is 2,000,000 characters, beside a good one
    body = document(
        f'<Resources>\n<r id="1" name="{"Я" * 2_000_000}" time_step="30"/>\n<r id="2" name="B" time_step="30"/>\n</Resources>'
    )
    # When it is imported
    status, result, _ = call_import(body)
    # Then that record alone is rejected, and its value is not echoed back
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(4, "Resources", "1", "name", "attribute name is longer than 1000 characters (2000000)")
    ]
    assert store.records.all(clinic.clinic_id, RESOURCES) == [Resource(2, "B", 30)]


def test_millions_of_tiny_elements_get_a_bounded_answer(clinic: Clinic) -> None:
    # Given 300,000 unknown elements and one real resource
    body = document("<Resources>" + "<x/>" * 300_000 + '<r id="1" name="A" time_step="30"/></Resources>')
    # When imported; Then it applies, and the answer lists 1,000 warnings and counts the rest
    status, result, _ = call_import(body)
    assert status == 200
    warnings = result.find("Warnings")
    assert len(warnings) == 1001
    assert (warnings[-1].get("code"), warnings[-1].text) == ("more_warnings", "and 299000 more not listed")


def test_many_bad_records_get_a_bounded_error_list_and_every_one_is_counted(store: Store, clinic: Clinic) -> None:
    # Given 5,000 resources without a name and one good one
    rows = "".join(f'<r id="{i}" name="" time_step="30"/>' for i in range(5000))
    body = document(f'<Resources>{rows}<r id="5000" name="A" time_step="30"/></Resources>')
    # When it is imported
    status, result, _ = call_import(body)
    # Then the good one applies, the answer lists 1,000 errors and counts the rest, and all are counted rejected
    assert (status, result.get("status")) == (200, "partial")
    errors = result.findall("Error")
    assert len(errors) == 1001
    assert (errors[0].get("id"), errors[999].get("id")) == ("0", "999")
    assert (errors[-1].get("code"), errors[-1].text) == ("invalid_record", "and 4000 more not listed")
    assert dict(result.find("Resources").attrib) == {
        "received": "5001",
        "written": "1",
        "deleted": "0",
        "rejected": "5000",
    }
    assert [r.id for r in store.records.all(clinic.clinic_id, RESOURCES)] == [5000]


# -- values that would break the store or the arithmetic: rejected records, never a 500 ------------------


def keys_of(store: Store, clinic: Clinic, section: Any) -> set[str]:
    return {section.key(record) for record in store.records.all(clinic.clinic_id, section)}


@pytest.mark.parametrize(
    "digits",
    [
        pytest.param("١٢", id="Arabic-Indic"),
        pytest.param("۱۲", id="Extended Arabic-Indic"),
        pytest.param("१२", id="Devanagari"),
        pytest.param("１２", id="fullwidth"),
        pytest.param("¹²", id="superscript"),
    ],
)
def test_an_id_in_digits_other_than_ascii_is_a_rejected_record(store: Store, clinic: Clinic, digits: str) -> None:
    # Given the sample imported (groups 1 to 10 and -99999)
    call_import(SAMPLE.read_bytes())
    # When the groups come with a group whose id is 12 in other digits (Python's int() reads most of them as
    # 12), and group 1 renamed
    body = document(
        f'<ResourceGroups>\n<rg id="{digits}" name="Двенадцать"/>\n<rg id="1" name="Кардиологи"/>\n</ResourceGroups>'
    )
    status, result, _ = call_import(body)
    # Then that group is rejected, not stored as 12, and, its key unreadable, no stored group is deleted
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(4, "ResourceGroups", digits, "id", f"attribute id must be an integer, got '{digits}'")
    ]
    groups = {group.id: group for group in store.records.all(clinic.clinic_id, GROUPS)}
    assert 12 not in groups and len(groups) == 11
    assert groups[1] == Group(1, "Кардиологи")


def test_a_time_step_in_fullwidth_digits_is_a_rejected_record(store: Store, clinic: Clinic) -> None:
    status, result, _ = call_import(document('<Resources>\n<r id="5" name="A" time_step="３０"/>\n</Resources>'))
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(4, "Resources", "5", "time_step", "attribute time_step must be an integer, got '３０'")
    ]
    assert store.records.all(clinic.clinic_id, RESOURCES) == []


def test_a_tablename_over_255_characters_is_a_rejected_record(store: Store, clinic: Clinic) -> None:
    # Given the sample imported (its one appointment is SchedEvent#8)
    call_import(SAMPLE.read_bytes())
    # When a full sync sends an appointment whose tablename is 1,000 characters and one of exactly 255
    longest = "Т" * 255
    row = 'resource_id="383" ReceptionDateTime="30.06.2010 15:00:00" Duration="30"'
    body = document(
        f'<Appointments SyncMode="full">\n<a tablename="{"T" * 1000}" id="3" {row}/>\n'
        f'<a tablename="{longest}" id="4" {row}/>\n</Appointments>'
    )
    status, result, _ = call_import(body)
    # Then the long one is rejected; its key unreadable, the full sync deletes nothing; the other is stored
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(4, "Appointments", "3", "tablename", "attribute tablename is longer than 255 characters (1000)")
    ]
    assert dict(result.find("Appointments").attrib) == {
        "mode": "full", "received": "2", "written": "1", "deleted": "0", "rejected": "1"
    }  # fmt: skip
    assert [w.get("code") for w in result.find("Warnings")] == ["deletions_suspended"]
    assert keys_of(store, clinic, APPOINTMENTS) == {"SchedEvent#8", f"{longest}#4"}


def test_a_record_key_over_1024_bytes_is_a_rejected_record(store: Store, clinic: Clinic) -> None:
    # Given appointments whose tablename is 255 characters of four bytes each: with "#" and id 123 the key is
    # 1,024 bytes (DynamoDB's limit for a sort key), with id 1234 it is 1,025
    masks = "😷" * 255
    row = 'resource_id="383" ReceptionDateTime="30.06.2010 15:00:00" Duration="30"'
    body = document(
        f'<Appointments>\n<a tablename="{masks}" id="1234" {row}/>\n<a tablename="{masks}" id="123" {row}/>\n</Appointments>'
    )
    # When they are imported
    status, result, _ = call_import(body)
    # Then the 1,025-byte key is a rejected record and the 1,024-byte one is stored
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [invalid(4, "Appointments", "1234", None, "the record's key is longer than 1024 bytes")]
    assert [w.get("code") for w in result.find("Warnings")] == ["unknown_resource"]  # a diff deletes nothing anyway
    assert keys_of(store, clinic, APPOINTMENTS) == {f"{masks}#123"}
    assert len(f"{masks}#123".encode()) == 1024


def test_a_schedule_of_40000_time_rules_is_a_rejected_record(store: Store, clinic: Clinic) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = {s.id: s for s in store.records.all(clinic.clinic_id, SCHEDULES)}
    # When schedule 1 comes with 40,000 time_rules, one a line from line 5, and schedule 2 after it
    rules = "\n".join('<time_rules w_start="9:00" w_end="9:30"/>' for _ in range(40_000))
    body = document(
        f'<Schedules>\n<s id="1" date="01.07.2010" resource_id="393">\n{rules}\n</s>\n'
        '<s id="2" date="02.07.2010" resource_id="393"><time_rules w_start="9:00" w_end="13:00"/></s>\n</Schedules>'
    )
    status, result, _ = call_import(body)
    # Then schedule 1 is rejected at its 1,441st time_rules and keeps its stored version; schedule 2 is written
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [invalid(5 + 1440, "Schedules", "1", None, "a schedule takes at most 1440 time_rules")]
    assert dict(result.find("Schedules").attrib) == {"received": "2", "written": "1", "deleted": "41", "rejected": "1"}
    after = {s.id: s for s in store.records.all(clinic.clinic_id, SCHEDULES)}
    assert after[1] == before[1]
    assert [(w.start, w.end) for w in after[2].windows] == [(540, 780)]
    assert set(after) == {1, 2}


def test_a_schedule_of_1440_time_rules_is_stored(store: Store, clinic: Clinic) -> None:
    # Given a schedule of 1,440 one-minute windows, the most a schedule takes
    def clock(minute: int) -> str:
        return f"{minute // 60}:{minute % 60:02d}"

    rules = "".join(f'<time_rules w_start="{clock(m)}" w_end="{clock(m + 1)}"/>' for m in range(1440))
    body = document(f'<Schedules><s id="1" date="01.07.2010" resource_id="393">{rules}</s></Schedules>')
    # When it is imported; Then it is stored whole
    status, result, _ = call_import(body)
    assert (status, result.get("status"), errors_of(result)) == (200, "ok", [])
    [schedule] = store.records.all(clinic.clinic_id, SCHEDULES)
    assert [(w.start, w.end) for w in schedule.windows] == [(m, m + 1) for m in range(1440)]


YEARS_OUT_OF_RANGE = [
    pytest.param("Schedules", '<s id="1" date="01.01.0001" resource_id="393"/>', "1", "date", "'01.01.0001'", id="schedule of year 1"),
    pytest.param("Schedules", '<s id="1" date="31.12.9999" resource_id="393"/>', "1", "date", "'31.12.9999'", id="schedule of year 9999"),
    pytest.param("Schedules", '<s id="1" date="01.01.2200" resource_id="393"/>', "1", "date", "'01.01.2200'", id="schedule of year 2200"),
    pytest.param("Appointments", '<a tablename="T" id="1" resource_id="383" ReceptionDateTime="01.01.0001 00:00:00" Duration="30"/>', "T#1", "ReceptionDateTime", "'01.01.0001 00:00:00'", id="appointment at the first instant of year 1"),
    pytest.param("Appointments", '<a tablename="T" id="1" resource_id="383" ReceptionDateTime="31.12.9999 23:59:59" Duration="30"/>', "T#1", "ReceptionDateTime", "'31.12.9999 23:59:59'", id="appointment at the last instant of year 9999"),
    pytest.param("Appointments", '<a tablename="T" id="1" resource_id="383" ReceptionDateTime="31.12.1899 23:59:59" Duration="30"/>', "T#1", "ReceptionDateTime", "'31.12.1899 23:59:59'", id="appointment in 1899"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "record", "key", "attribute", "raw"), YEARS_OUT_OF_RANGE)
def test_a_date_outside_the_years_1900_to_2199_is_a_rejected_record(
    store: Store, clinic: Clinic, section: str, record: str, key: str, attribute: str, raw: str
) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = snapshot_of_records(store, clinic)
    # When a section sends one record dated outside the years 1900-2199 (Appointments: a diff)
    status, result, _ = call_import(document(f"<{section}>\n{record}\n</{section}>"))
    # Then it is a rejected record: no time-zone arithmetic overflows into a 500
    assert (status, result.get("status")) == (200, "partial")
    assert errors_of(result) == [
        invalid(4, section, key, attribute, f"attribute {attribute} must lie in the years 1900 to 2199, got {raw}")
    ]
    # And its key keeps what was stored: schedule 1 of the sample stays (the others are replaced by nothing)
    assert snapshot_of_records(store, clinic) == ({**before, "Schedules": {"1"}} if section == "Schedules" else before)


def snapshot_of_records(store: Store, clinic: Clinic) -> dict[str, set[str]]:
    return {section.name: keys_of(store, clinic, section) for section in (GROUPS, RESOURCES, SCHEDULES, APPOINTMENTS)}


def count_inflated_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of every piece zlib inflates from here on."""
    sizes: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: Any) -> None:
            self.inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    return sizes


def test_a_zip_bomb_is_refused_without_inflating_it(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gzip body of 200 KB that inflates to 200 MiB, four times the 50 MiB limit
    bomb = gzip.compress(b"<" * (200 << 20), compresslevel=9)
    inflated = count_inflated_bytes(monkeypatch)
    # When it is posted
    status, result, _ = call_import(bomb, "application/xml", content_encoding="gzip")
    # Then it is 413 too_large, decided as soon as the limit is passed: never more than the limit inflated
    assert (status, result.find("Error").get("code")) == (413, "too_large")
    assert 0 < sum(inflated) <= store.settings.max_document_bytes + 1


def test_a_declared_length_over_the_limit_is_refused_before_reading(clinic: Clinic) -> None:
    status, result, _ = call_import(b"<tiny/>", "application/xml", content_length=str(51 * 1024 * 1024))
    assert (status, result.find("Error").get("code")) == (413, "too_large")


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"", "application/xml", "malformed_xml"),
        (b"xml=%ZZ%3CMediExchange", "application/x-www-form-urlencoded", "malformed_xml"),
        (b"<MediExchange ClientKey='k'>\xff\xfe</MediExchange>", "application/xml", "malformed_xml"),
        (
            '<?xml version="1.0" encoding="UTF-8"?><MediExchange ClientKey="к"/>'.encode("cp1251"),
            "text/xml",
            "malformed_xml",
        ),
        (
            b"--x\r\nContent-Disposition: form-data; name=other\r\n\r\nv\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            "bad_request",
        ),
        (b"<MediExchange/>", "application/xml", "missing_client_key"),
        (b"{}", "application/json", "unsupported_media_type"),
        (b"\x1f\x8b\x08garbage", "application/xml", "malformed_xml"),
    ],
    ids=[
        "empty",
        "broken percent-encoding",
        "invalid UTF-8",
        "declared UTF-8, windows-1251 bytes",
        "multipart without xml",
        "no key",
        "JSON",
        "gzip magic without the header",
    ],
)
def test_wrong_shapes_are_clear_4xx(clinic: Clinic, body: bytes, content_type: str, code: str) -> None:
    status, result, _ = call_import(body, content_type)
    assert 400 <= status < 500
    assert result.find("Error").get("code") == code


def test_a_corrupt_gzip_body_is_a_bad_request(clinic: Clinic) -> None:
    status, result, _ = call_import(b"\x1f\x8b\x08\x00corrupt", "application/xml", content_encoding="gzip")
    assert (status, result.find("Error").get("code")) == (400, "bad_request")


def test_an_unknown_content_encoding_is_415(clinic: Clinic) -> None:
    status, result, _ = call_import(SAMPLE.read_bytes(), "application/xml", content_encoding="br")
    assert (status, result.find("Error").get("code")) == (415, "unsupported_media_type")
