"""SPEC r2, section 3: the encodings MIS software really sends (a byte-order mark before the declaration,
white space before it, a multipart part's own charset) and client keys in GUID form in any case."""

from __future__ import annotations

from typing import Any

import pytest
from mediexchange.errors import AdminError
from mediexchange.keys import canonical_client_key
from mediexchange.protocol.sections import GROUPS, RESOURCES
from mediexchange.records import Clinic
from mediexchange.store import Store
from mediexchange.store.clinics import key_hash

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, call_status, document

BOM = b"\xef\xbb\xbf"
LOWER_KEY = SAMPLE_KEY.lower()
SAMPLE_COUNTS = {
    "ResourceGroups": {"received": "11", "written": "11", "deleted": "0"},
    "Resources": {"received": "70", "written": "70", "deleted": "0"},
    "Schedules": {"received": "43", "written": "43", "deleted": "0"},
    "Appointments": {"mode": "full", "received": "1", "written": "1", "deleted": "0"},
    "Orders": {"received": "2", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "2"},
}


def counts(result: Any) -> dict[str, dict[str, str]]:
    """Each section's counters, without the unknown orders' ids and rejected counts others may add."""
    return {
        child.tag: {k: v for k, v in child.attrib.items() if k != "rejected"}
        for child in result
        if child.tag not in ("Warnings", "Error")
    }


def resource_names(store: Store, clinic: Clinic) -> dict[int, str]:
    return {r.id: r.name for r in store.records.all(clinic.clinic_id, RESOURCES)}


def error_of(result: Any) -> dict[str, str | None]:
    [error] = result.iter("Error")
    return {**error.attrib, "text": error.text}


def multipart(document_bytes: bytes, part_type: str, boundary: str = "mis-boundary-7") -> bytes:
    """A multipart body with a text field before the xml file field, as a browser form posts it."""
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="comment"\r\n\r\nexport\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="xml"; filename="export.xml"\r\n'
            f"Content-Type: {part_type}\r\n\r\n"
        ).encode()
        + document_bytes
        + f"\r\n--{boundary}--\r\n".encode()
    )


def undeclared_windows_1251_sample() -> bytes:
    """The sample in windows-1251 with no XML declaration at all."""
    text = SAMPLE.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return text.split("\n", 1)[1].encode("windows-1251")


# -- encodings --------------------------------------------------------------------------------------


def test_the_sample_declares_utf8() -> None:
    # Given the seed sample as the tests use it; Then it declares UTF-8 and has no BOM (the tests below rely on it)
    assert SAMPLE.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange')


def test_a_bom_and_a_utf8_declaration_beat_a_windows_1251_charset(store: Store, clinic: Clinic) -> None:
    # Given the UTF-8 sample behind a UTF-8 byte-order mark, sent with a request charset windows-1251
    body = BOM + SAMPLE.read_bytes()
    # When it is imported
    status, result, _ = call_import(body, "text/xml; charset=windows-1251")
    # Then the declaration wins: everything is imported and the Cyrillic names are stored exactly
    assert status == 200, error_of(result)
    assert result.get("status") == "ok"
    assert counts(result) == SAMPLE_COUNTS
    names = resource_names(store, clinic)
    assert (names[-90], names[393]) == ("Кабинет УЗИ №2", "Баева")
    assert {g.id: g.name for g in store.records.all(clinic.clinic_id, GROUPS)}[-99999] == "Кабинеты"


def test_a_bom_and_a_windows_1251_declaration_beat_a_utf8_charset(store: Store, clinic: Clinic) -> None:
    # Given the sample in windows-1251, declared so, behind a UTF-8 byte-order mark, with a request charset utf-8
    text = SAMPLE.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="windows-1251"')
    body = BOM + text.encode("windows-1251")
    # When it is imported
    status, result, _ = call_import(body, "application/xml; charset=utf-8")
    # Then the declaration wins over both the mark and the charset
    assert status == 200, error_of(result)
    assert counts(result) == SAMPLE_COUNTS
    assert resource_names(store, clinic)[-90] == "Кабинет УЗИ №2"


def test_white_space_before_the_declaration_is_tolerated(store: Store, clinic: Clinic) -> None:
    # Given the sample behind spaces, tabs, CR/LF and LF, as a form post
    body = b" \t\r\n\n\t  \r\n" + SAMPLE.read_bytes()
    # When it is imported
    status, result, _ = call_import(body, "text/xml")
    # Then it imports as the bare sample does
    assert status == 200, error_of(result)
    assert counts(result) == SAMPLE_COUNTS
    assert resource_names(store, clinic)[393] == "Баева"


LEADING = b" \t\r\n\n\t \n"  # three line breaks: the declaration stands on line 4


def test_after_white_space_a_malformed_document_names_its_real_line(clinic: Clinic) -> None:
    # Given three line breaks before the declaration (line 4), the root on line 5, and an r opened on
    # line 7 that line 8 does not close
    body = LEADING + document('<Resources>\n<r id="1" name="A" time_step="30">\n</Resources>')
    assert body.split(b"\n")[7 - 1].startswith(b"<r ")
    # When it is imported
    status, result, _ = call_import(body)
    # Then it is malformed on line 8, the document's real line, and lxml names line 7 for the r
    error = error_of(result)
    assert (status, error["code"], error["line"]) == (400, "malformed_xml", "8")
    assert (error["text"] or "").startswith(
        "not well-formed XML: Opening and ending tag mismatch: r line 7 and Resources"
    )


def test_after_white_space_a_record_is_reported_on_its_real_line(clinic: Clinic) -> None:
    # Given three line breaks before the declaration, and on line 7 a resource of an unknown group
    body = LEADING + document('<Resources>\n<r id="1" name="A" time_step="30" group_id="77"/>\n</Resources>')
    # When it is imported
    status, result, _ = call_import(body)
    # Then it applies, and the warning names line 7
    assert status == 200, error_of(result)
    [warning] = result.find("Warnings")
    assert (warning.get("code"), warning.get("line"), warning.get("id")) == ("unknown_group", "7", "1")


def test_a_windows_1251_multipart_part_without_declaration_is_read_by_its_charset(store: Store, clinic: Clinic) -> None:
    # Given the sample in windows-1251 without a declaration, as a multipart file part whose own
    # Content-Type says charset=windows-1251 (the request's Content-Type names no charset)
    body = multipart(undeclared_windows_1251_sample(), "text/xml; charset=windows-1251")
    # When it is imported
    status, result, _ = call_import(body, "multipart/form-data; boundary=mis-boundary-7")
    # Then it is decoded as windows-1251
    assert status == 200, error_of(result)
    assert counts(result) == SAMPLE_COUNTS
    names = resource_names(store, clinic)
    assert (names[-90], names[393]) == ("Кабинет УЗИ №2", "Баева")


def test_a_multipart_parts_charset_beats_the_requests(store: Store, clinic: Clinic) -> None:
    # Given the undeclared windows-1251 sample in a part saying windows-1251, in a request saying utf-8
    body = multipart(undeclared_windows_1251_sample(), 'text/xml; charset="Windows-1251"')
    # When it is imported
    status, result, _ = call_import(body, "multipart/form-data; boundary=mis-boundary-7; charset=utf-8")
    # Then the part's own charset decodes it
    assert status == 200, error_of(result)
    assert resource_names(store, clinic)[-90] == "Кабинет УЗИ №2"


def test_a_multipart_part_without_charset_falls_back_to_utf8(clinic: Clinic) -> None:
    # Given the undeclared windows-1251 sample in a part that names no charset
    body = multipart(undeclared_windows_1251_sample(), "text/xml")
    # When it is imported
    status, result, _ = call_import(body, "multipart/form-data; boundary=mis-boundary-7")
    # Then it is read as UTF-8, which it is not: malformed, on its first Cyrillic line
    error = error_of(result)
    assert (status, error["code"]) == (400, "malformed_xml")
    assert (error["text"] or "").startswith("not well-formed XML: Invalid bytes in character encoding")


def test_a_declared_unknown_encoding_is_named_plainly(clinic: Clinic) -> None:
    # Given a document that declares an encoding nobody knows
    body = document("<Resources/>").replace(b'encoding="UTF-8"', b'encoding="x-nope"')
    # When it is imported
    status, result, _ = call_import(body)
    # Then it is malformed, and the reason names the encoding as written
    assert (status, error_of(result)) == (
        400,
        {
            "code": "malformed_xml",
            "text": "the document cannot be decoded: unknown encoding x-nope (declared by the document)",
        },
    )


# -- client keys --------------------------------------------------------------------------------------

CANONICAL = [
    pytest.param(SAMPLE_KEY, SAMPLE_KEY, id="upper case"),
    pytest.param(LOWER_KEY, SAMPLE_KEY, id="lower case"),
    pytest.param("9dddE578-5179-4cc4-A2a0-f681618ED9ea", SAMPLE_KEY, id="mixed case"),
    pytest.param("{" + SAMPLE_KEY + "}", SAMPLE_KEY, id="braces"),
    pytest.param("{" + LOWER_KEY + "}", SAMPLE_KEY, id="braces, lower case"),
    pytest.param("{" + SAMPLE_KEY, "{" + SAMPLE_KEY, id="an opening brace alone: not a GUID"),
    pytest.param(LOWER_KEY + "}", LOWER_KEY + "}", id="a closing brace alone: not a GUID"),
    pytest.param("{{" + LOWER_KEY + "}}", "{{" + LOWER_KEY + "}}", id="double braces: not a GUID"),
    pytest.param(" " + LOWER_KEY, " " + LOWER_KEY, id="a space: not a GUID"),
    pytest.param(LOWER_KEY.replace("-", ""), LOWER_KEY.replace("-", ""), id="no hyphens: not a GUID"),
    pytest.param(LOWER_KEY[:-1] + "g", LOWER_KEY[:-1] + "g", id="a g: not a GUID"),
    pytest.param(LOWER_KEY[:-1] + "٣", LOWER_KEY[:-1] + "٣", id="an Arabic-Indic digit: not a GUID"),
    pytest.param(LOWER_KEY + "0", LOWER_KEY + "0", id="13 digits at the end: not a GUID"),
    pytest.param("Clinic-Key-7", "Clinic-Key-7", id="another key stays exactly as given"),
    pytest.param("", "", id="empty"),
]


@pytest.mark.parametrize(("key", "expected"), CANONICAL)
def test_canonical_client_key(key: str, expected: str) -> None:
    # Given a client key as an MIS or an administrator writes it; When it is made canonical
    # Then a GUID is upper case without braces, and anything else is left exactly as it was
    assert canonical_client_key(key) == expected


GUID_FORMS = [
    pytest.param(LOWER_KEY, id="lower case"),
    pytest.param("{" + SAMPLE_KEY + "}", id="braces"),
    pytest.param("{" + LOWER_KEY + "}", id="braces, lower case"),
]


@pytest.mark.parametrize("key", GUID_FORMS)
def test_the_sample_key_in_another_form_imports_exports_and_shows_status(
    store: Store, clinic: Clinic, key: str
) -> None:
    # Given the sample's clinic (key in upper case) and the sample sending its key in another form
    body = SAMPLE.read_bytes().replace(SAMPLE_KEY.encode(), key.encode())
    assert key.encode() in body
    # When it is imported
    status, result, _ = call_import(body)
    # Then it is the sample's clinic that imports it
    assert status == 200, error_of(result)
    assert counts(result) == SAMPLE_COUNTS
    assert len(resource_names(store, clinic)) == 70
    # And export and status accept the key in that form too
    exported, body, _ = call_export({"client_key": key, "start": "0"})
    assert exported == 200, body
    status_code, root = call_status({"client_key": key})
    assert status_code == 200
    assert [i.get("import_id") for i in root] == [result.get("import_id")]


def test_a_key_that_is_not_a_guid_must_match_exactly(store: Store) -> None:
    # Given a clinic whose key is not a GUID
    store.clinics.create("Other", "Europe/Moscow", "Clinic-Key-7")
    # When a document sends it in another case
    status, result, _ = call_import(document("<Resources/>", client_key="CLINIC-KEY-7"))
    # Then no clinic has that key, for import and export alike
    assert (status, error_of(result)["code"]) == (403, "unknown_client_key")
    assert call_export({"client_key": "clinic-key-7", "start": "0"})[0] == 403
    assert store.clinics.for_key("clinic-key-7") is None
    # And the key as issued works
    assert call_import(document("<Resources/>", client_key="Clinic-Key-7"))[0] == 200


def test_a_clinic_created_with_a_braced_lower_case_guid_is_found_by_the_plain_upper_case_form(store: Store) -> None:
    # Given a clinic created with its key as a lower-case GUID in braces
    created = store.clinics.create("Braced", "Europe/Moscow", "{" + LOWER_KEY + "}")
    # When it is looked up by the plain upper-case form, and that form imports
    found = store.clinics.for_key(SAMPLE_KEY)
    status, result, _ = call_import(document("<Resources/>"))
    # Then it is that clinic
    assert found is not None and found.clinic_id == created.clinic_id
    assert status == 200, error_of(result)
    # And the key was stored in its canonical form only
    assert store.clinics.model.get(created.clinic_id).key_hashes == {key_hash(SAMPLE_KEY)}


def test_a_guid_key_in_use_in_another_form_is_refused(store: Store, clinic: Clinic) -> None:
    # Given the sample's clinic with its upper-case key; When another clinic is created with it in braces
    with pytest.raises(AdminError) as caught:
        store.clinics.create("Copy", "Europe/Moscow", "{" + LOWER_KEY + "}")
    # Then the key is in use
    assert caught.value.message == "this client key is already in use"


@pytest.mark.parametrize("form", [pytest.param(SAMPLE_KEY, id="as issued"), *GUID_FORMS])
def test_revoke_accepts_any_form_of_a_guid_key(store: Store, clinic: Clinic, form: str) -> None:
    # Given the sample's clinic with a second key rotated in
    new_key = store.clinics.rotate_key(clinic.clinic_id)
    assert new_key == new_key.upper() and canonical_client_key(new_key) == new_key
    # When the sample's key is revoked, named in this form
    store.clinics.revoke_key(clinic.clinic_id, form)
    # Then no form of it works any more, and the rotated key works in any form
    assert [store.clinics.for_key(k) for k in (SAMPLE_KEY, LOWER_KEY, "{" + LOWER_KEY + "}")] == [None, None, None]
    assert store.clinics.for_key("{" + new_key.lower() + "}") == clinic
    # And the clinic holds exactly the rotated key
    assert store.clinics.model.get(clinic.clinic_id).key_hashes == {key_hash(new_key)}


def test_revoking_a_key_the_clinic_does_not_have_is_refused(store: Store, clinic: Clinic) -> None:
    # Given the sample's clinic; When another GUID is revoked
    with pytest.raises(AdminError) as caught:
        store.clinics.revoke_key(clinic.clinic_id, "{00000000-0000-0000-0000-00000000000a}")
    # Then nothing changes
    assert caught.value.message == f"that key is not a live key of clinic {clinic.clinic_id}"
    assert store.clinics.for_key(LOWER_KEY) == clinic


LEGACY_KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.fixture
def legacy_clinic(store: Store) -> str:
    """A clinic created before keys were made canonical: its lower-case GUID hashed as it was given."""
    clinics = store.clinics
    clinic_id = "legacy000001"
    clinics.key_model(key_hash(LEGACY_KEY), clinic_id=clinic_id, created_at=0).save()
    clinics.model(
        clinic_id, name="Old", timezone="Europe/Moscow", enabled=True, key_hashes={key_hash(LEGACY_KEY)}, created_at=0
    ).save()
    return clinic_id


def test_a_lower_case_guid_stored_before_the_change_still_works(store: Store, legacy_clinic: str) -> None:
    # Given a clinic whose lower-case GUID key was stored as given; When its MIS sends it as before
    found = store.clinics.for_key(LEGACY_KEY)
    status, result, _ = call_import(document("<Resources/>", client_key=LEGACY_KEY))
    # Then it is found (the canonical form is tried first, then the key as given) and imports
    assert found is not None and found.clinic_id == legacy_clinic
    assert status == 200, error_of(result)
    assert call_export({"client_key": LEGACY_KEY, "start": "0"})[0] == 200


def test_a_stored_lower_case_guid_cannot_be_issued_again_in_upper_case(store: Store, legacy_clinic: str) -> None:
    # Given the legacy clinic; When a new clinic is created with the upper-case form of its key
    with pytest.raises(AdminError) as caught:
        store.clinics.create("New", "Europe/Moscow", LEGACY_KEY.upper())
    # Then it is refused: two clinics would answer to one key
    assert caught.value.message == "this client key is already in use"
    assert store.clinics.for_key(LEGACY_KEY.upper()) is None


def test_a_stored_lower_case_guid_is_revoked_as_given(store: Store, legacy_clinic: str) -> None:
    # Given the legacy clinic; When its key is revoked as it was stored
    store.clinics.revoke_key(legacy_clinic, LEGACY_KEY)
    # Then it no longer works
    assert store.clinics.for_key(LEGACY_KEY) is None
    assert store.clinics.model.get(legacy_clinic).key_hashes in (None, set())
