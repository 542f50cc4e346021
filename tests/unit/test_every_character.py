"""Nothing a client sends breaks an answer (SPEC section 5: "nothing a patient can type may break the
clinic's export"): every class of code point booked through the portal and exported in both encodings;
control characters refused; values stored before that rule written all the same; request data quoted
in error messages escaped, in XML and in JSON answers alike."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.errors import MAX_MESSAGE, BadRequest, printable
from mediexchange.protocol.writing import export_document, serialize, xml_text
from mediexchange.records import Clinic, ExportNames, Order, OrderStatus
from mediexchange.store import Store

from tests.characters import ACCEPTED, FREE_TEXT_FIELDS, LINES_ALLOWED, NOT_IN_CP1251, REFUSED, patient_fields
from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import api_event, call_export, call_import, call_portal, call_status, decoded, document

MOSCOW = ZoneInfo("Europe/Moscow")
DAY = dt.date.today() + dt.timedelta(days=10)
ISO = DAY.isoformat()
# Resource 701 works all DAY in 5-minute steps: a slot for every booking a test makes.
SETUP = (
    '<Resources><r id="701" name="Круглосуточный" time_step="5"/></Resources>'
    f'<Schedules><s id="1" date="{DAY:%d.%m.%Y}" resource_id="701"><time_rules w_start="0:00" w_end="24:00"/></s></Schedules>'
)
# The export's attribute of each field a patient types (the seed sample's spelling, the default).
ATTRIBUTE = {"user_id": "user_id", "user_name": "user_name", "name1": "Name1", "name2": "Name2", "name3": "Name3", "aim": "Aim", "phone": "Phone", "city": "City", "address": "Address", "email": "Email", "comment": "Comment"}  # fmt: skip


@pytest.fixture
def resource_id(clinic: Clinic) -> int:
    """The sample clinic with SETUP imported; the portal id of resource 701."""
    status, result, _ = call_import(document(SETUP))
    assert (status, result.get("status")) == (200, "ok")
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    [resource] = view["resources"]
    return int(resource["resource_id"])


def book(clinic: Clinic, resource_id: int, at: str, fields: dict[str, Any]) -> tuple[int, Any]:
    body = {"resource_id": resource_id, "reception_datetime": f"{ISO}T{at}", **fields}
    return call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)


def exported_orders(encoding: str) -> tuple[bytes, dict[str, dict[str, str]]]:
    """The export of everything in `encoding`: its bytes, and each order's attributes by ID."""
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0", "encoding": encoding})
    assert (status, headers["Content-Type"]) == (200, f"application/xml; charset={encoding}")
    return body, {o.get("ID"): dict(o.attrib) for o in etree.fromstring(body).iter("o")}


# -- what a patient may type: every class, booked and exported in both encodings -----------------------


def test_every_class_of_character_is_booked_and_exported_exactly_in_both_encodings(
    clinic: Clinic, resource_id: int
) -> None:
    # Given one booking per class of code point, the class's text in every field a patient types
    booked: dict[str, dict[str, str]] = {}
    for minute, (name, text) in enumerate(ACCEPTED.items()):
        fields = patient_fields(text)
        status, order = book(clinic, resource_id, f"09:{5 * minute:02d}", fields)
        assert status == 201, (name, order)
        # Then the portal answers every value exactly as sent
        assert {key: order[key] for key in fields} == fields, name
        booked[str(order["id"])] = {ATTRIBUTE[key]: value for key, value in fields.items()}
    for encoding in ("utf-8", "windows-1251"):
        # When the clinic's MIS exports them
        body, orders = exported_orders(encoding)
        # Then the document parses, and every value reads back exactly as the patient typed it
        assert {order_id: {a: orders[order_id][a] for a in ATTRIBUTE.values()} for order_id in orders} == booked
        assert body.startswith(f"<?xml version='1.0' encoding='{encoding}'?>".encode())
    # And windows-1251 carries its own characters as bytes, the others as character references
    body, _ = exported_orders("windows-1251")
    assert "Щукина Ёлка-Ъ ёжик".encode("windows-1251") in body
    assert "Анна\u00a0Мария".encode("windows-1251") in body
    assert [reference for reference in NOT_IN_CP1251.values() if reference not in body] == []
    # And UTF-8 writes every character as itself
    body, _ = exported_orders("utf-8")
    assert [character for character in NOT_IN_CP1251 if character.encode() not in body] == []
    # And line breaks and tabs of free text survive attribute-value normalisation as references
    assert b"&#13;&#10;" in body and b"&#9;" in body


def test_the_patients_view_of_an_order_answers_every_class_exactly(clinic: Clinic, resource_id: int) -> None:
    # Given a booking holding every accepted class at once (within the shortest field's length)
    text = " ".join(ACCEPTED.values())[:64].rstrip()
    fields = patient_fields(text) | {"comment": " ".join(ACCEPTED.values())}
    status, order = book(clinic, resource_id, "10:00", fields)
    assert status == 201, order
    # When the patient reads it back
    status, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    # Then every field is exactly as booked
    assert status == 200
    assert {key: seen[key] for key in fields} == fields


def test_control_characters_are_refused_in_every_field_a_patient_types(clinic: Clinic, resource_id: int) -> None:
    answers = {}
    expected = {}
    for name, character in REFUSED.items():
        for field in ATTRIBUTE:
            if field in FREE_TEXT_FIELDS and name in LINES_ALLOWED:
                continue  # free text takes line breaks and tabs (see the test above)
            # Given a booking whose field holds the character inside other text; When it is sent
            answers[name, field] = book(
                clinic, resource_id, "11:00", patient_fields("Иванов") | {field: f"Ив{character}анов"}
            )
            # Then it is refused with 400 invalid_request naming the field, the code point and where it is
            message = f"{field} holds a control or invalid character (U+{ord(character):04X} at character 3)"
            expected[name, field] = (400, {"error": {"code": "invalid_request", "message": message}})
    assert answers == expected
    assert len(answers) == len(REFUSED) * len(ATTRIBUTE) - len(LINES_ALLOWED) * len(FREE_TEXT_FIELDS)
    # And nothing was booked: the export holds no order and the slot is still free
    _, orders = exported_orders("utf-8")
    assert orders == {}
    assert book(clinic, resource_id, "11:00", patient_fields("Иванов"))[0] == 201


def test_a_control_character_at_the_edge_is_refused_not_trimmed(clinic: Clinic, resource_id: int) -> None:
    # Given a surname ending in U+001F, which Python's strip() would take for white space
    status, body = book(clinic, resource_id, "11:00", patient_fields("Иванов") | {"name1": "Иванов\x1f"})
    # Then it is refused, not trimmed into an acceptable value
    assert (status, body["error"]["message"]) == (
        400,
        "name1 holds a control or invalid character (U+001F at character 7)",
    )


# -- what was stored before the rule: written all the same ----------------------------------------------


def stored_order(order_id: int, **fields: str) -> Order:
    values: dict[str, Any] = {
        "id": order_id,
        "status": OrderStatus.RECEIVED,
        "order_date": dt.date(2024, 2, 1),
        "resource_id": 1,
        "mw_resource_id": 701,
        "resource_name": "Круглосуточный",
        "reception": dt.datetime(2024, 2, 5, 17, 0),
        "duration": 30,
        "last_changed": 1_700_000_000 + order_id,
        "portal_changed": 1_700_000_000 + order_id,
        "name1": "Иванов",
        "phone": "+7 900 000-00-00",
    }
    return Order(**(values | fields))


def test_stored_values_xml_cannot_carry_are_exported_as_u_fffd_with_a_warning(
    store: Store, clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an order stored before the portal refused control characters (an older version), and one whose
    # control characters XML can carry (DEL and C1: windows-1251 writes them as character references)
    bad = stored_order(1, name1="Ива\x01нов", comment="секрет\x00пациента\ufffe\uffff\x08end")
    store.orders.book(clinic.clinic_id, bad, MOSCOW)
    store.orders.book(clinic.clinic_id, stored_order(2, comment="чисто 😷 \x7f\x80\x85\x98\x9f"), MOSCOW)
    caplog.clear()
    for encoding in ("utf-8", "windows-1251"):
        # When the clinic exports them
        _, orders = exported_orders(encoding)
        # Then the export answers, each such code point written as U+FFFD, everything else exactly
        assert (orders["1"]["Name1"], orders["1"]["Comment"]) == (
            "Ива\ufffdнов",
            "секрет\ufffdпациента\ufffd\ufffd\ufffdend",
        )
        assert (orders["2"]["Name1"], orders["2"]["Comment"]) == ("Иванов", "чисто 😷 \x7f\x80\x85\x98\x9f")
    # And each export logged one warning naming the order and its attributes, never the values
    logged = [
        (r.levelname, r.getMessage(), r.__dict__.get("order_id"), r.__dict__.get("attributes")) for r in caplog.records
    ]
    assert (
        logged == [("WARNING", "stored order value XML cannot carry: written with U+FFFD", 1, ["Name1", "Comment"])] * 2
    )
    assert [r for r in caplog.records if "секрет" in repr(r.__dict__) or "Ива" in repr(r.__dict__)] == []
    # And the patient's own view of the order still answers (JSON escapes control characters)
    status, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/1")
    assert (status, seen["name1"], seen["comment"]) == (200, "Ива\x01нов", "секрет\x00пациента\ufffe\uffff\x08end")


def test_an_mis_echoing_such_an_order_back_is_not_warned(store: Store, clinic: Clinic) -> None:
    # Given a stored order with a value XML cannot carry, as the MIS exported it (with U+FFFD)
    store.orders.book(clinic.clinic_id, stored_order(1, name1="Ива\x01нов", comment="a\x00b"), MOSCOW)
    body, _ = exported_orders("windows-1251")
    root = etree.fromstring(body)
    root.find("Orders/o").set("Status", "1")
    # When the MIS confirms it by sending the exported order back
    status, result, _ = call_import(etree.tostring(root, encoding="windows-1251", xml_declaration=True))
    # Then the change applies and warns nothing: the echo is what the export wrote of the stored values
    assert (status, result.get("status"), result.find("Orders").get("updated"), result.find("Warnings")) == (
        200, "ok", "1", None
    )  # fmt: skip
    assert store.orders.get_many(clinic.clinic_id, [1])[1].name1 == "Ива\x01нов"


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251"])
def test_the_export_writer_replaces_lone_surrogates_too(encoding: str) -> None:
    # Given an order holding lone surrogates (which no store can even encode) and a ClientKey with a control
    order = stored_order(5, comment="a\ud800b\udfffc", name2="\ud83d")
    # When the export document is written in either encoding
    body = serialize(export_document("KEY\x01", [order], MOSCOW, ExportNames.SAMPLE), encoding)
    # Then it parses, with U+FFFD in their places
    root = etree.fromstring(body)
    assert root.get("ClientKey") == "KEY\ufffd"
    assert (root.find("Orders/o").get("Comment"), root.find("Orders/o").get("Name2")) == ("a\ufffdb\ufffdc", "\ufffd")


def test_xml_text_replaces_exactly_what_xml_cannot_carry() -> None:
    every_refused = "".join(REFUSED.values())
    assert xml_text(every_refused) == "\ufffd\ufffd\ufffd\t\n\r\x7f\x80\x85\x9f\ufffd\ufffd\ufffd\ufffd"
    assert xml_text("".join(ACCEPTED.values())) == "".join(ACCEPTED.values())


# -- request data in error messages --------------------------------------------------------------------


def test_printable_escapes_control_characters_and_bounds_the_message() -> None:
    assert printable("a\x01b\x00c\x7fd\x85e\x9ff\ufffeg\uffffh\ud800i\tj\nk\rl") == (
        "a\\x01b\\x00c\\x7fd\\x85e\\x9ff\\ufffeg\\uffffh\\ud800i\tj\nk\rl"
    )
    assert printable("Ёж 😷 <&>") == "Ёж 😷 <&>"
    assert printable("я" * 5000) == "я" * MAX_MESSAGE + "…"
    assert BadRequest("bad \x01").message == "bad \\x01"
    assert BadRequest("bad \x01").issues[0].message == "bad \\x01"


@pytest.mark.parametrize(
    ("import_id", "message"),
    [
        ("a\x01b", "no import a\\x01b for this clinic"),
        ("a\x00b", "no import a\\x00b for this clinic"),
        ("a\ud800b", "no import a\\ud800b for this clinic"),
        ("a\ufffe\uffffb", "no import a\\ufffe\\uffffb for this clinic"),
        ("a\x85\x9f\x7fb", "no import a\\x85\\x9f\\x7fb for this clinic"),
        ("<&>\"'", "no import <&>\"' for this clinic"),
        ("Ёж😷", "no import Ёж😷 for this clinic"),
        ("x" * 100_000, "no import " + "x" * (MAX_MESSAGE - len("no import ")) + "…"),
    ],
)
def test_any_import_id_gets_a_well_formed_not_found(clinic: Clinic, import_id: str, message: str) -> None:
    # When status.php is asked for an import id holding anything at all
    status, root = call_status({"client_key": SAMPLE_KEY, "import_id": import_id})
    # Then it answers 404 with a well-formed ImportStatus error quoting the id, escaped and bounded
    error = root.find("Error")
    assert (status, root.tag, root.get("status"), error.get("code")) == (404, "ImportStatus", "error", "not_found")
    assert error.text == message


HOSTILE_TEXT = ["\x01", "\x00", "\x7f\x85", "\ufffe", "<&>\"'", "\xff\xfe"]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_any_content_type_gets_a_well_formed_error(clinic: Clinic, text: str) -> None:
    # When import.php is sent a Content-Type, a Content-Encoding or a charset holding the text
    answers = [
        call_import(b"<MediExchange/>", f"text/{text}plain"),
        call_import(b"<MediExchange/>", "application/xml", Content_Encoding=f"gz{text}ip"),
        call_import(f'<MediExchange ClientKey="{SAMPLE_KEY}"/>'.encode(), f"application/xml; charset=x{text}y"),
    ]
    # Then each is a well-formed ImportResult error (415, 415, 400), the headers' quoted escaped
    assert [
        (status, result.tag, result.get("status"), result.find("Error").get("code")) for status, result, _ in answers
    ] == [
        (415, "ImportResult", "error", "unsupported_media_type"),
        (415, "ImportResult", "error", "unsupported_media_type"),
        (400, "ImportResult", "error", "malformed_xml"),
    ]
    quoted = printable(text).lower()
    assert [quoted in result.find("Error").text for _, result, _ in answers[:2]] == [True, True]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_any_export_parameter_gets_a_well_formed_error(clinic: Clinic, text: str) -> None:
    answers = [
        # When export.php is sent a start, an end, an encoding or a client_key holding the text
        call_export({"client_key": SAMPLE_KEY, "start": f"1{text}"}),
        call_export({"client_key": SAMPLE_KEY, "start": "1", "end": f"2{text}"}),
        call_export({"client_key": SAMPLE_KEY, "start": "1", "encoding": f"utf{text}8"}),
        call_export({"client_key": f"key{text}", "start": "1"}),
    ]
    # Then each is a well-formed ExportResult error
    roots = [(status, etree.fromstring(body)) for status, body, _ in answers]
    assert [(status, root.tag, root.find("Error").get("code")) for status, root in roots] == [
        (400, "ExportResult", "bad_request"),
        (400, "ExportResult", "bad_request"),
        (400, "ExportResult", "bad_request"),
        (403, "ExportResult", "unknown_client_key"),
    ]


@pytest.mark.parametrize("name", [b"\x01", b"\x00", b"\xff\xfe", b"<&>", "Ёж".encode(), b"x" * 10_000])
def test_any_form_field_name_gets_a_well_formed_answer(clinic: Clinic, name: bytes) -> None:
    from functions.mis_export.app import lambda_handler
    from tests.unit.conftest import FakeContext

    form = b"=".join([quote_from_bytes(name).encode(), b"1"]) + b"&client_key=" + SAMPLE_KEY.encode() + b"&start=x%01"
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\n2\r\n--b--\r\n'
    )
    # When export.php gets a form with a field of that name (and a bad start), and import.php a form without xml
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = lambda_handler(api_event("POST", "/services/export.php", form, headers), FakeContext())
    imported = call_import(form, "application/x-www-form-urlencoded")
    multipart_import = call_import(multipart, "multipart/form-data; boundary=b")
    # Then each answer is a well-formed error document (the import's wording is body reading's business)
    export_error = etree.fromstring(decoded(response)).find("Error")
    assert (response["statusCode"], export_error.get("code"), export_error.text) == (
        400, "bad_request", "start must be unix seconds (an integer), got 'x\\x01'"
    )  # fmt: skip
    import_errors = [(status, result.find("Error")) for status, result, _ in (imported, multipart_import)]
    assert [
        (status, error.get("code"), error.text.startswith("the form has no field named xml"))
        for status, error in import_errors
    ] == [(400, "bad_request", True)] * 2


@pytest.mark.parametrize(
    ("key", "quoted"),
    [
        ("\x01", "\\x01"),
        ("\x00", "\\x00"),
        ("\ud800", "\\ud800"),
        ("\ufffe", "\\ufffe"),
        ("<b>&amp;", "<b>&amp;"),
        ("k" * 5000, "k" * (MAX_MESSAGE - len("unknown field ")) + "…"),
    ],
)
def test_any_json_key_gets_a_json_error(clinic: Clinic, key: str, quoted: str) -> None:
    # When a booking carries a JSON key holding anything (sent as JSON escapes: "\ud800" is valid JSON text)
    body = json.dumps({key: 1, "resource_id": 1}).encode()
    status, answer = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    # Then it is a 400 whose message quotes the key escaped and bounded
    assert (status, answer) == (400, {"error": {"code": "invalid_request", "message": f"unknown field {quoted}"}})


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"duration": ' + b"9" * 5000 + b"}", b"\xff\xfe{}", b'{"comment": "\\ud800', b"\x00"],
)
def test_any_json_body_gets_a_json_error(clinic: Clinic, body: bytes) -> None:
    # When a booking's body is nested too deep, holds a number too long to read, or is not JSON at all
    status, answer = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    # Then it is a 400, never a 500
    assert (status, answer) == (400, {"error": {"code": "invalid_request", "message": "the body is not valid JSON"}})


@pytest.mark.parametrize("client_key", ["\ud800", "KEY\x00"])
def test_a_key_no_clinic_can_hold_is_unknown_not_a_failure(clinic: Clinic, client_key: str) -> None:
    # When status.php is asked with a client_key holding a lone surrogate or a control character
    status, root = call_status({"client_key": client_key})
    # Then it is an unknown key, like any other
    assert (status, root.find("Error").get("code")) == (403, "unknown_client_key")
