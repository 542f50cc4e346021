"""What real MIS software sends (SPEC §3 ⟨r2⟩), over real HTTP against `make run`'s server: every case
that used to be refused or stored wrong, with the exact answer it gets and what is stored after it
(read back through the portal, the export, or a re-import / dry run of the same document).

Every test has its own clinic and its own GUID client key: the server is shared by the session.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from typing import Any
from urllib.parse import urlencode

from lxml import etree
from mediexchange.protocol.schema import lower_cased

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.integration.conftest import LocalServer

XML = {"Content-Type": "application/xml"}
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
DAY = dt.date.today() + dt.timedelta(days=7)  # far enough ahead that every slot of the day is still to come
NEXT_DAY = DAY + dt.timedelta(days=1)
D = DAY.strftime("%d.%m.%Y")
MOSCOW = "+03:00"  # Europe/Moscow, every clinic's zone here, has kept one offset since 2014


# -- documents and answers ------------------------------------------------------------------------


def new_clinic(server: LocalServer, name: str) -> dict[str, str]:
    """A clinic of its own, with a fresh upper-case GUID key as the original portal issued them."""
    return server.create_clinic(name, str(uuid.uuid4()).upper())


def document(client_key: str, *lines: str, declaration: str = DECLARATION) -> str:
    """A document whose n-th given line (from 0) is line n + 3: the declaration is line 1, the root line 2."""
    return "\n".join([declaration, f'<MediExchange ClientKey="{client_key}">', *lines, "</MediExchange>"])


def post(
    server: LocalServer, data: bytes, headers: dict[str, str] | None = None, query: str = ""
) -> tuple[int, etree._Element]:
    status, response_headers, body = server.request("POST", "/services/import.php" + query, data, headers or XML)
    assert response_headers["Content-Type"] == "application/xml; charset=utf-8", body
    return status, etree.fromstring(body)


def counts(result: etree._Element) -> dict[str, dict[str, str]]:
    return {c.tag: dict(c.attrib) for c in result if c.tag not in ("Error", "Warnings")}


def errors(result: etree._Element) -> list[tuple[dict[str, str], str]]:
    return [(dict(e.attrib), e.text or "") for e in result.findall("Error")]


def warnings(result: etree._Element) -> list[tuple[dict[str, str], str]]:
    return [(dict(w.attrib), w.text or "") for w in result.iterfind("Warnings/w")]


def synced(received: int, written: int, deleted: int = 0, rejected: int = 0) -> dict[str, str]:
    return {"received": str(received), "written": str(written), "deleted": str(deleted), "rejected": str(rejected)}


def appointments(mode: str, received: int, written: int, deleted: int = 0, rejected: int = 0) -> dict[str, str]:
    return {"mode": mode, **synced(received, written, deleted, rejected)}


def orders(received: int, updated: int = 0, unknown: int = 0, rejected: int = 0) -> dict[str, str]:
    return {
        "received": str(received),
        "updated": str(updated),
        "unchanged": "0",
        "conflicts": "0",
        "unknown": str(unknown),
        "rejected": str(rejected),
    }


# -- what is stored, read back --------------------------------------------------------------------


def portal(server: LocalServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"x-api-key": server.portal_api_key, "Content-Type": "application/json"}
    status, _, raw = server.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
    return status, json.loads(raw)


def resources(server: LocalServer, clinic: dict[str, str]) -> dict[int, dict[str, Any]]:
    """The clinic's resources as the portal shows them, by their MIS id."""
    status, view = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}")
    assert status == 200, view
    return {r["mw_resource_id"]: r for r in view["resources"]}


def slots(
    server: LocalServer, clinic: dict[str, str], mw_id: int, first: dt.date = DAY, last: dt.date = DAY
) -> list[str]:
    """The free slots' starts of one resource (by its MIS id) from `first` to `last`."""
    portal_id = resources(server, clinic)[mw_id]["resource_id"]
    query = urlencode({"resource_id": portal_id, "from": first.isoformat(), "to": last.isoformat()})
    status, body = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}/slots?{query}")
    assert status == 200, body
    return [s["start"] for s in body["slots"]]


def at(day: dt.date, *times: str) -> list[str]:
    """How the slots answer spells local starts on `day`."""
    return [f"{day.isoformat()}T{t}:00{MOSCOW}" for t in times]


def book(server: LocalServer, clinic: dict[str, str], mw_id: int, time: str) -> int:
    """A patient books `time` (HH:MM) on DAY through the portal; the order's id."""
    portal_id = resources(server, clinic)[mw_id]["resource_id"]
    booking = {"resource_id": portal_id, "reception_datetime": f"{DAY.isoformat()}T{time}", "name1": "Пациентов"}
    status, order = portal(
        server, "POST", f"/portal/clinics/{clinic['clinic_id']}/orders", {**booking, "phone": "+79120000000"}
    )
    assert status == 201, order
    order_id: int = order["id"]
    return order_id


def exported(server: LocalServer, client_key: str) -> tuple[int, etree._Element]:
    status, _, body = server.request("GET", "/services/export.php?" + urlencode({"client_key": client_key, "start": 0}))
    return status, etree.fromstring(body)


def exported_orders(server: LocalServer, clinic: dict[str, str]) -> list[dict[str, str]]:
    """The clinic's exported orders, their attributes by lower-case name (whichever spelling the export uses)."""
    status, root = exported(server, clinic["client_key"])
    assert status == 200
    return [{str(name).lower(): value for name, value in o.attrib.items()} for o in root.iter("o")]


def one_resource_working(server: LocalServer, clinic: dict[str, str], start: str = "9:00", end: str = "12:00") -> None:
    """Resource 1 (60-minute steps) works on DAY from `start` to `end`."""
    status, result = post(
        server,
        document(
            clinic["client_key"],
            '<Resources><r id="1" name="Доктор" time_step="60"/></Resources>',
            f'<Schedules><s id="1" date="{D}" resource_id="1"><time_rules w_start="{start}" w_end="{end}"/></s></Schedules>',
        ).encode(),
    )
    assert (status, result.get("status")) == (200, "ok"), etree.tostring(result)


# -- 1. breaks, days off, overnight windows -------------------------------------------------------


def test_no_break_days_off_and_an_overnight_window(server: LocalServer) -> None:
    # Given a clinic whose four resources (60-minute steps) work on DAY: resource 1 with a break written
    # 0:00-0:00, resources 2 and 3 from 9:00 to 11:00, resource 4 overnight from 20:00 to 08:00
    clinic = new_clinic(server, "Breaks and days off")

    def schedules(second: str, third: str) -> bytes:
        return document(
            clinic["client_key"],
            "<Schedules>",
            f'<s id="1" date="{D}" resource_id="1">'
            '<time_rules w_startTime="9:00" w_endTime="12:00" b_startTime="0:00" b_endTime="0:00"/></s>',
            second,
            third,
            f'<s id="4" date="{D}" resource_id="4"><time_rules w_startTime="20:00" w_endTime="08:00"/></s>',
            "</Schedules>",
        ).encode()

    working = '<time_rules w_startTime="9:00" w_endTime="11:00"/></s>'
    resources_xml = "".join(f'<r id="{n}" name="Доктор {n}" time_step="60"/>' for n in range(1, 5))
    status, result = post(server, document(clinic["client_key"], f"<Resources>{resources_xml}</Resources>").encode())
    assert (status, result.get("status")) == (200, "ok")
    # When the MIS sends the schedules
    status, result = post(
        server,
        schedules(f'<s id="2" date="{D}" resource_id="2">{working}', f'<s id="3" date="{D}" resource_id="3">{working}'),
    )
    # Then all four are written, with no error or warning
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Schedules": synced(4, 4)})
    assert (errors(result), warnings(result)) == ([], [])
    # And 0:00-0:00 is no break; the overnight window's slots run past midnight into the next day
    assert slots(server, clinic, 1) == at(DAY, "09:00", "10:00", "11:00")
    assert slots(server, clinic, 2) == at(DAY, "09:00", "10:00")
    evening, night = ("20:00", "21:00", "22:00", "23:00"), tuple(f"0{h}:00" for h in range(8))
    assert slots(server, clinic, 4, DAY, NEXT_DAY) == at(DAY, *evening) + at(NEXT_DAY, *night)
    assert slots(server, clinic, 4, NEXT_DAY, NEXT_DAY) == at(NEXT_DAY, *night)

    # When the MIS sends resource 2's day as an empty <time_rules/> and resource 3's as an s without any
    days_off = schedules(
        f'<s id="2" date="{D}" resource_id="2"><time_rules/></s>', f'<s id="3" date="{D}" resource_id="3"/>'
    )
    status, result = post(server, days_off)
    # Then both days off are written (they replace the working days), with no error or warning
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Schedules": synced(4, 2)})
    assert (errors(result), warnings(result)) == ([], [])
    # And they offer no slots, while the other two resources are as they were
    assert (slots(server, clinic, 2), slots(server, clinic, 3)) == ([], [])
    assert slots(server, clinic, 1) == at(DAY, "09:00", "10:00", "11:00")
    assert slots(server, clinic, 4, DAY, NEXT_DAY) == at(DAY, *evening) + at(NEXT_DAY, *night)
    # And the days off are stored as days off: sending them again writes nothing
    status, result = post(server, days_off)
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Schedules": synced(4, 0)})


# -- 2. seconds, midnight times after dates, Duration 0 -------------------------------------------


def test_times_with_seconds_dates_with_a_midnight_time_and_a_zero_duration(server: LocalServer) -> None:
    # Given a clinic
    clinic = new_clinic(server, "Seconds and midnights")
    # When the MIS writes times as HH:MM:SS, dates with 0:00:00 after them, and an appointment of 0 minutes
    sent = document(
        clinic["client_key"],
        '<Resources><r id="1" name="Доктор" time_step="60"/></Resources>',
        "<Schedules>",
        f'<s id="1" date="{D} 0:00:00" resource_id="1">'
        '<time_rules w_start="08:00:00" w_end="12:00:00" b_start="10:00:00" b_end="11:00:00"/></s>',
        '<s id="2" date="01.07.2010 0:00:00" resource_id="1"><time_rules w_start="08:00:00" w_end="12:00:00"/></s>',
        "</Schedules>",
        '<Appointments SyncMode="full">',
        f'<a tablename="Visits" id="1" resource_id="1" ReceptionDateTime="{D} 08:00:00" Duration="0"/>',
        f'<a tablename="Visits" id="2" resource_id="1" ReceptionDateTime="{D} 9:00:00" Duration="60"/>',
        "</Appointments>",
    ).encode()
    status, result = post(server, sent)
    # Then everything is written, with no error or warning
    assert (status, result.get("status")) == (200, "ok")
    assert counts(result) == {
        "Resources": synced(1, 1),
        "Schedules": synced(2, 2),
        "Appointments": appointments("full", 2, 2),
    }
    assert (errors(result), warnings(result)) == ([], [])
    # And the window is 08:00-12:00 with its 10:00-11:00 break; the 0-minute appointment blocks no time
    assert slots(server, clinic, 1) == at(DAY, "08:00", "11:00")
    # And what is stored is what was read: the same document again writes nothing
    status, result = post(server, sent)
    assert (status, result.get("status")) == (200, "ok")
    assert counts(result) == {
        "Resources": synced(1, 0),
        "Schedules": synced(2, 0),
        "Appointments": appointments("full", 2, 0),
    }


# -- 3. the same key twice ------------------------------------------------------------------------


def test_the_same_appointment_and_the_same_order_twice_the_later_wins(server: LocalServer) -> None:
    # Given resource 1 working 9:00-13:00 on DAY and a patient's order for 12:00
    clinic = new_clinic(server, "Duplicates")
    one_resource_working(server, clinic, "9:00", "13:00")
    order_id = book(server, clinic, 1, "12:00")
    [order] = exported_orders(server, clinic)
    stamp = order["lastchangedon"]
    # When one document sends appointment Visits#1 twice (9:00, then 10:00) and the order twice (accept, then reject)
    status, result = post(
        server,
        document(
            clinic["client_key"],
            "<Appointments>",
            f'<a tablename="Visits" id="1" resource_id="1" ReceptionDateTime="{D} 9:00" Duration="60"/>',
            f'<a tablename="Visits" id="1" resource_id="1" ReceptionDateTime="{D} 10:00" Duration="60"/>',
            "</Appointments>",
            "<Orders>",
            f'<o id="{order_id}" status="1" LastChangedOn="{stamp}"/>',
            f'<o id="{order_id}" status="3" LastChangedOn="{stamp}"/>',
            "</Orders>",
        ).encode(),
    )
    # Then the later of each applies, with a duplicate_id warning naming both lines
    assert (status, result.get("status"), errors(result)) == (200, "ok", [])
    assert counts(result) == {"Appointments": appointments("diff", 2, 1), "Orders": orders(2, updated=1)}
    assert warnings(result) == [
        (
            {"code": "duplicate_id", "line": "5", "section": "Appointments", "id": "Visits#1"},
            "duplicate id Visits#1: the record at line 5 replaces the one at line 4",
        ),
        (
            {"code": "duplicate_id", "line": "9", "section": "Orders", "id": str(order_id)},
            f"duplicate id {order_id}: the record at line 9 replaces the one at line 8",
        ),
    ]
    # And 10:00 is busy, 9:00 free, and the order is rejected (which frees 12:00)
    assert slots(server, clinic, 1) == at(DAY, "09:00", "11:00", "12:00")
    [order] = exported_orders(server, clinic)
    assert (order["id"], order["status"]) == (str(order_id), "3")


# -- 4. byte-order marks, charsets, white space ---------------------------------------------------

NAME = "Кабинет №2 — Иванова Ё."


def test_a_bom_before_a_utf8_declaration_wins_over_the_requests_charset(server: LocalServer) -> None:
    # Given a clinic
    clinic = new_clinic(server, "BOM")
    # When the MIS sends UTF-8 bytes after a BOM and a UTF-8 declaration, labelled windows-1251 by the request
    sent = (
        b"\xef\xbb\xbf"
        + document(clinic["client_key"], f'<Resources><r id="1" name="{NAME}" time_step="30"/></Resources>').encode()
    )
    status, result = post(server, sent, {"Content-Type": "text/xml; charset=windows-1251"})
    # Then it is read as UTF-8: the Cyrillic arrives intact
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Resources": synced(1, 1)})
    assert resources(server, clinic)[1]["name"] == NAME


def test_a_multipart_parts_own_charset_names_a_document_without_a_declaration(server: LocalServer) -> None:
    # Given a clinic
    clinic = new_clinic(server, "Multipart charset")
    # When the MIS posts a windows-1251 document without a declaration as a multipart part labelled windows-1251
    xml = document(
        clinic["client_key"], f'<Resources><r id="1" name="{NAME}" time_step="30"/></Resources>', declaration=""
    )
    boundary = "----MediExchange7d1c2f"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="xml"; filename="export.xml"\r\n'
            "Content-Type: text/xml; charset=windows-1251\r\n\r\n"
        ).encode()
        + xml.lstrip("\n").encode("cp1251")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, result = post(server, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    # Then it is read as windows-1251: the Cyrillic arrives intact
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Resources": synced(1, 1)})
    assert resources(server, clinic)[1]["name"] == NAME


def test_white_space_before_the_declaration_is_tolerated_and_lines_keep_their_numbers(server: LocalServer) -> None:
    # Given a clinic
    clinic = new_clinic(server, "Leading white space")
    # When the document starts with two line breaks and some blanks, so that its r element is on line 6
    sent = "\r\n\n \t" + document(
        clinic["client_key"], "<Resources>", f'<r id="1" name="{NAME}" time_step="30" note="x"/>', "</Resources>"
    )
    status, result = post(server, sent.encode())
    # Then it is applied, and the warning names the line the r element is really on
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Resources": synced(1, 1)})
    assert warnings(result) == [
        (
            {"code": "unknown_attribute", "line": "6", "section": "Resources", "id": "1", "attribute": "note"},
            "unknown attribute note ignored",
        )
    ]
    assert resources(server, clinic)[1]["name"] == NAME


# -- 5. GUID keys as 1C and Delphi write them -----------------------------------------------------


def test_a_guid_key_in_lower_case_or_in_braces_is_the_clinics_key(server: LocalServer) -> None:
    # Given a clinic whose key is an upper-case GUID
    clinic = new_clinic(server, "GUID spellings")
    key = clinic["client_key"]
    assert key == key.upper()
    # When 1C sends resource 1 with the key in lower case
    status, result = post(
        server, document(key.lower(), '<Resources><r id="1" name="A" time_step="30"/></Resources>').encode()
    )
    # Then it is imported
    assert (status, result.get("status"), counts(result)) == (200, "ok", {"Resources": synced(1, 1)})
    # When Delphi sends resources 1 and 2 with the key in braces (and in braces and lower case)
    for n, spelling in enumerate((f"{{{key}}}", f"{{{key.lower()}}}"), start=2):
        rows = "".join(f'<r id="{i}" name="A" time_step="30"/>' for i in range(1, n + 1))
        status, result = post(server, document(spelling, f"<Resources>{rows}</Resources>").encode())
        # Then it is the same clinic: only the new resource is written
        assert (status, result.get("status"), counts(result)) == (200, "ok", {"Resources": synced(n, 1)})
    assert sorted(resources(server, clinic)) == [1, 2, 3]
    # And the export takes every spelling too, echoing the key as it was sent
    for spelling in (key.lower(), f"{{{key}}}", f"{{{key.lower()}}}"):
        status, root = exported(server, spelling)
        assert (status, root.tag, root.get("ClientKey")) == (200, "MediExchange", spelling)
    # While another GUID in braces is still no clinic's key
    status, result = post(server, document(f"{{{uuid.uuid4()}}}", "<Resources/>").encode())
    assert (status, result.get("status"), [e["code"] for e, _ in errors(result)]) == (
        403,
        "error",
        ["unknown_client_key"],
    )


# -- 6. limits: rejected records, never a 500 -----------------------------------------------------


def test_a_thousand_character_tablename_is_a_rejected_record(server: LocalServer) -> None:
    # Given resource 1 working 9:00-12:00 on DAY
    clinic = new_clinic(server, "Long tablename")
    one_resource_working(server, clinic)
    # When the MIS sends an appointment whose tablename has 1,000 characters beside a good one
    status, result = post(
        server,
        document(
            clinic["client_key"],
            "<Appointments>",
            f'<a tablename="{"T" * 1000}" id="1" resource_id="1" ReceptionDateTime="{D} 9:00" Duration="60"/>',
            f'<a tablename="Visits" id="2" resource_id="1" ReceptionDateTime="{D} 10:00" Duration="60"/>',
            "</Appointments>",
        ).encode(),
    )
    # Then that record alone is rejected
    assert (status, result.get("status")) == (200, "partial")
    assert counts(result) == {"Appointments": appointments("diff", 2, 1, rejected=1)}
    assert errors(result) == [
        (
            {"code": "invalid_record", "line": "4", "section": "Appointments", "id": "1", "attribute": "tablename"},
            "attribute tablename is longer than 255 characters (1000)",
        )
    ]
    assert warnings(result) == []
    # And only the good appointment holds time
    assert slots(server, clinic, 1) == at(DAY, "09:00", "11:00")


def test_forty_thousand_time_rules_in_one_schedule_are_a_rejected_record(server: LocalServer) -> None:
    # Given resource 1 working 9:00-12:00 on DAY (schedule 1), and resource 2 with no schedule yet
    clinic = new_clinic(server, "Many windows")
    status, result = post(
        server,
        document(
            clinic["client_key"],
            '<Resources><r id="1" name="A" time_step="60"/><r id="2" name="B" time_step="60"/></Resources>',
            f'<Schedules><s id="1" date="{D}" resource_id="1"><time_rules w_start="9:00" w_end="12:00"/></s></Schedules>',
        ).encode(),
    )
    assert (status, result.get("status")) == (200, "ok")
    # When the MIS sends schedule 1 with 40,000 time_rules, one per line, and a good schedule 2, gzipped
    sent = document(
        clinic["client_key"],
        "<Schedules>",
        f'<s id="1" date="{D}" resource_id="1">',
        *['<time_rules w_start="9:00" w_end="10:00"/>'] * 40_000,
        "</s>",
        f'<s id="2" date="{D}" resource_id="2"><time_rules w_start="14:00" w_end="16:00"/></s>',
        "</Schedules>",
    ).encode()
    status, result = post(server, gzip.compress(sent), {**XML, "Content-Encoding": "gzip"})
    # Then schedule 1 alone is rejected, at its 1,441st time_rules (line 4 + 1441)
    assert (status, result.get("status")) == (200, "partial")
    assert counts(result) == {"Schedules": synced(2, 1, rejected=1)}
    assert errors(result) == [
        (
            {"code": "invalid_record", "line": "1445", "section": "Schedules", "id": "1"},
            "a schedule takes at most 1440 time_rules",
        )
    ]
    assert warnings(result) == []
    # And schedule 1 keeps its stored version (the replace did not delete it); schedule 2 is there
    assert slots(server, clinic, 1) == at(DAY, "09:00", "10:00", "11:00")
    assert slots(server, clinic, 2) == at(DAY, "14:00", "15:00")


def test_a_year_0001_last_changed_on_is_a_rejected_order_change(server: LocalServer) -> None:
    # Given a patient's order for 10:00
    clinic = new_clinic(server, "Year one")
    one_resource_working(server, clinic)
    order_id = book(server, clinic, 1, "10:00")
    [before] = exported_orders(server, clinic)
    # When the MIS accepts it quoting LastChangedOn 01.01.0001 (an uninitialised .NET DateTime)
    status, result = post(
        server,
        document(
            clinic["client_key"],
            "<Orders>",
            f'<o id="{order_id}" status="1" LastChangedOn="01.01.0001 0:00:00"/>',
            "</Orders>",
        ).encode(),
    )
    # Then that change is rejected
    assert (status, result.get("status")) == (200, "partial")
    assert counts(result) == {"Orders": orders(1, rejected=1)}
    assert errors(result) == [
        (
            {
                "code": "invalid_record",
                "line": "4",
                "section": "Orders",
                "id": str(order_id),
                "attribute": "LastChangedOn",
            },
            "attribute LastChangedOn must lie in the years 1900 to 2199, got '01.01.0001 0:00:00'",
        )
    ]
    assert warnings(result) == []
    # And the order is as it was: received, unchanged, still holding 10:00
    assert exported_orders(server, clinic) == [before]
    assert before["status"] == "0"
    assert slots(server, clinic, 1) == at(DAY, "09:00", "11:00")


def test_an_id_in_arabic_indic_digits_is_rejected_not_read_as_12(server: LocalServer) -> None:
    # Given a clinic with resource 5
    clinic = new_clinic(server, "Arabic digits")
    status, result = post(
        server, document(clinic["client_key"], '<Resources><r id="5" name="E" time_step="30"/></Resources>').encode()
    )
    assert (status, result.get("status")) == (200, "ok")
    # When the MIS replaces the resources with resource "١٢" (twelve in Arabic-Indic digits) and resource 1
    status, result = post(
        server,
        document(
            clinic["client_key"],
            "<Resources>",
            '<r id="١٢" name="L" time_step="30"/>',
            '<r id="1" name="A" time_step="30"/>',
            "</Resources>",
        ).encode(),
    )
    # Then "١٢" is rejected, and as a record without a readable key it suspends the section's deletions
    assert (status, result.get("status")) == (200, "partial")
    assert counts(result) == {"Resources": synced(2, 1, rejected=1)}
    assert errors(result) == [
        (
            {"code": "invalid_record", "line": "4", "section": "Resources", "id": "١٢", "attribute": "id"},
            "attribute id must be an integer, got '١٢'",
        )
    ]
    assert warnings(result) == [
        (
            {"code": "deletions_suspended", "line": "3", "section": "Resources"},
            "a rejected record of Resources has no readable key, so Resources deletes nothing this time",
        )
    ]
    # And no resource 12 is stored; resource 5 is kept, resource 1 added
    assert sorted(resources(server, clinic)) == [1, 5]


# -- 7. five bad records in the seed sample -------------------------------------------------------

# (line, the sample's text on it, what the bad document has there instead)
BAD_LINES = (
    (6, '<rg id="3" name="Врач-терапевт участковый" pos="0"/>', '<rg id="3" name="" pos="0"/>'),
    (18, 'r id="391" name="Баранов" time_step="30"', 'r id="391" name="Баранов" time_step="0"'),
    (101, '<s id="5" date="07.07.2010" resource_id="393">', '<s id="5" date="31.06.2010" resource_id="393">'),
    (189, '<time_rules w_startTime="8:00" w_endTime="16:00"/>', '<time_rules w_startTime="8:60" w_endTime="16:00"/>'),
    (220, 'Duration="60" Title="Печеркина', 'Duration="-5" Title="Печеркина'),
)
GOOD_CHANGE = (17, '<r id="393" name="Баева"', '<r id="393" name="Баева А. А."')


def with_lines_changed(text: str, changes: tuple[tuple[int, str, str], ...]) -> str:
    lines = text.split("\n")
    for line, old, new in changes:
        assert old in lines[line - 1], (line, lines[line - 1])
        lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines)


def test_five_bad_records_in_the_seed_sample_leave_their_stored_versions(server: LocalServer) -> None:
    # Given a clinic that imported the clean seed sample
    clinic = new_clinic(server, "Five bad records")
    clean = SAMPLE.read_text(encoding="utf-8").replace(SAMPLE_KEY, clinic["client_key"])
    status, result = post(server, clean.encode())
    assert (status, result.get("status"), errors(result), warnings(result)) == (200, "ok", [], [])
    assert counts(result) == {
        "ResourceGroups": synced(11, 11),
        "Resources": synced(70, 70),
        "Schedules": synced(43, 43),
        "Appointments": appointments("full", 1, 1),
        "Orders": orders(2, unknown=2),
    }
    # When it sends the sample with 5 bad records in it (a group without a name, a resource with time_step 0,
    # a 31 June, a time 8:60, a negative Duration) and one good change (resource 393 renamed)
    status, result = post(server, with_lines_changed(clean, (*BAD_LINES, GOOD_CHANGE)).encode())
    # Then the rest applies, and the answer lists exactly the 5 bad records
    assert (status, result.get("status")) == (200, "partial")
    assert counts(result) == {
        "ResourceGroups": synced(11, 0, rejected=1),
        "Resources": synced(70, 1, rejected=1),
        "Schedules": synced(43, 0, rejected=2),
        "Appointments": appointments("full", 1, 0, rejected=1),
        "Orders": orders(2, unknown=2),
    }
    assert errors(result) == [
        (
            {"code": "invalid_record", "line": "6", "section": "ResourceGroups", "id": "3", "attribute": "name"},
            "attribute name is required",
        ),
        (
            {"code": "invalid_record", "line": "18", "section": "Resources", "id": "391", "attribute": "time_step"},
            "attribute time_step must be from 1 to 1440, got 0",
        ),
        (
            {"code": "invalid_record", "line": "101", "section": "Schedules", "id": "5", "attribute": "date"},
            "attribute date is not a real date or time: '31.06.2010'",
        ),
        (
            {"code": "invalid_record", "line": "189", "section": "Schedules", "id": "34", "attribute": "w_startTime"},
            "time_rules: attribute w_startTime must be a time HH:MM from 00:00 to 23:59, got '8:60'",
        ),
        (
            {
                "code": "invalid_record",
                "line": "220",
                "section": "Appointments",
                "id": "SchedEvent#8",
                "attribute": "Duration",
            },
            "attribute Duration must be from 0 to 1440, got -5",
        ),
    ]
    assert warnings(result) == []
    stored = resources(server, clinic)
    assert (stored[393]["name"], stored[391]["time_step"], stored[391]["group_id"]) == ("Баева А. А.", 30, 7)
    # When the clean sample is planned again (a dry run)
    status, result = post(server, clean.encode(), query="?dry_run=1")
    # Then only resource 393 would be written back: the 5 bad records' stored versions were neither
    # overwritten nor deleted (group 3, resource 391, schedules 5 and 34, appointment SchedEvent#8)
    assert (status, result.get("status"), result.get("dry_run")) == (200, "ok", "1")
    assert counts(result) == {
        "ResourceGroups": synced(11, 0),
        "Resources": synced(70, 1),
        "Schedules": synced(43, 0),
        "Appointments": appointments("full", 1, 0),
        "Orders": orders(2, unknown=2),
    }
    assert (errors(result), warnings(result)) == ([], [])
    # And the dry run wrote nothing: resource 393 still has the name the bad document gave it
    assert resources(server, clinic)[393]["name"] == "Баева А. А."


# -- the schema ------------------------------------------------------------------------------------


def test_the_schema_is_an_xml_schema_that_validates_the_seed_sample(server: LocalServer) -> None:
    # When anyone asks for the schema
    status, headers, body = server.request("GET", "/services/schema.xsd")
    # Then it is an XML Schema lxml accepts, and the seed sample, its names lower-cased, is valid under it
    assert (status, headers["Content-Type"]) == (200, "application/xml; charset=utf-8")
    schema = etree.XMLSchema(etree.fromstring(body))
    sample = lower_cased(etree.fromstring(SAMPLE.read_bytes()))
    assert schema.validate(sample), schema.error_log
