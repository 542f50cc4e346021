"""The portal API through its handler, on moto: clinic, slots, booking, and the MIS loop around them."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, call_portal, document

MOSCOW = ZoneInfo("Europe/Moscow")
DAY = dt.date.today() + dt.timedelta(days=10)
D = DAY.strftime("%d.%m.%Y")
ISO = DAY.isoformat()

# Resource 501 (30-minute step) works 09:00-12:00 with a break 10:30-11:00; resource 502 (20 minutes) 14:00-15:00.
SETUP = f"""<ResourceGroups><rg id="1" name="Терапевты"/></ResourceGroups>
<Resources>
<r id="501" name="Иванова А. А." time_step="30" group_id="1"/>
<r id="502" name="Петров" time_step="20"/>
</Resources>
<Schedules>
<s id="1" date="{D}" resource_id="501"><time_rules w_start="9:00" w_end="12:00" b_start="10:30" b_end="11:00"/></s>
<s id="2" date="{D}" resource_id="502"><time_rules w_start="14:00" w_end="15:00"/></s>
</Schedules>"""

PATIENT = {"name1": "Смирнова", "name2": "Ольга", "phone": "+7 (912) 345-67-89", "email": "olga@example.ru"}


@pytest.fixture
def portal_clinic(clinic: Clinic) -> dict[str, int]:
    """The sample clinic with SETUP imported; returns {MIS resource id: portal resource id}."""
    status, _, _ = call_import(document(SETUP))
    assert status == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    return {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}


def slot_starts(clinic: Clinic, resource_id: int, first: str = ISO, last: str = ISO) -> list[str]:
    status, body = call_portal(
        "GET",
        f"/portal/clinics/{clinic.clinic_id}/slots",
        query={"resource_id": str(resource_id), "from": first, "to": last},
    )
    assert status == 200, body
    return [s["start"][11:16] for s in body["slots"]]


def book(clinic: Clinic, resource: int, at: str, **fields: Any) -> tuple[int, Any]:
    body = {"resource_id": resource, "reception_datetime": f"{ISO}T{at}", **PATIENT, **fields}
    return call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)


def test_clinic_view_lists_groups_and_resources_with_stable_portal_ids(
    clinic: Clinic, portal_clinic: dict[int, int]
) -> None:
    status, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    assert status == 200
    assert view["groups"] == [{"group_id": 1, "name": "Терапевты", "pos": 0}]
    assert [(r["mw_resource_id"], r["name"], r["group_id"], r["time_step"]) for r in view["resources"]] == [
        (501, "Иванова А. А.", 1, 30),
        (502, "Петров", None, 20),
    ]
    # Re-importing keeps the portal ids
    call_import(document(SETUP))
    _, again = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    assert {r["mw_resource_id"]: r["resource_id"] for r in again["resources"]} == portal_clinic


def test_free_slots_follow_schedule_break_and_imported_busy_time(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    assert slot_starts(clinic, portal_clinic[501]) == ["09:00", "09:30", "10:00", "11:00", "11:30"]
    assert slot_starts(clinic, portal_clinic[502]) == ["14:00", "14:20", "14:40"]
    # When the MIS reports an appointment 09:15-09:45, both slots it touches go
    appointment = f'<Appointments><a tablename="T" id="1" resource_id="501" ReceptionDateTime="{D} 09:15:00" Duration="30"/></Appointments>'
    call_import(document(appointment))
    assert slot_starts(clinic, portal_clinic[501]) == ["10:00", "11:00", "11:30"]


def test_an_appointment_of_duration_0_blocks_no_time(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    # When the MIS reports an appointment of 0 minutes at 09:30
    appointment = f'<Appointments><a tablename="T" id="1" resource_id="501" ReceptionDateTime="{D} 09:30:00" Duration="0"/></Appointments>'
    status, result, _ = call_import(document(appointment))
    # Then it is accepted and every slot is still offered
    assert (status, result.get("status")) == (200, "ok")
    assert slot_starts(clinic, portal_clinic[501]) == ["09:00", "09:30", "10:00", "11:00", "11:30"]


NEXT_DAY = DAY + dt.timedelta(days=1)
NEXT_ISO = NEXT_DAY.isoformat()


def slots(clinic: Clinic, resource_id: int, first: str, last: str) -> list[str]:
    """The starts of the free slots, as the portal answers them."""
    status, body = call_portal(
        "GET",
        f"/portal/clinics/{clinic.clinic_id}/slots",
        query={"resource_id": str(resource_id), "from": first, "to": last},
    )
    assert status == 200, body
    return [slot["start"] for slot in body["slots"]]


def test_an_overnight_window_offers_slots_after_midnight_and_a_day_off_offers_none(clinic: Clinic) -> None:
    # Given resource 601 (60-minute steps) working 20:00-08:00 overnight from DAY, and resource 602 off on DAY
    body = document(
        '<Resources><r id="601" name="Ночной" time_step="60"/><r id="602" name="Выходной" time_step="60"/></Resources>\n'
        f'<Schedules><s id="1" date="{D}" resource_id="601"><time_rules w_start="20:00" w_end="08:00"/></s>\n'
        f'<s id="2" date="{D}" resource_id="602"><time_rules/></s></Schedules>'
    )
    status, result, _ = call_import(body)
    assert (status, result.get("status")) == (200, "ok")
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    ids = {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}
    evening = [f"{ISO}T{hour}:00:00+03:00" for hour in range(20, 24)]
    night = [f"{NEXT_ISO}T{hour:02d}:00:00+03:00" for hour in range(8)]
    # When the slots of DAY and the next day are asked for; Then the window's hours run on past midnight
    assert slots(clinic, ids[601], ISO, NEXT_ISO) == evening + night
    # And each day shows the slots that start on it
    assert slots(clinic, ids[601], ISO, ISO) == evening
    assert slots(clinic, ids[601], NEXT_ISO, NEXT_ISO) == night
    # And the day off offers nothing
    assert slots(clinic, ids[602], ISO, NEXT_ISO) == []
    # And a patient can book 02:00 after midnight, which is then taken
    booking = {"resource_id": ids[601], "reception_datetime": f"{NEXT_ISO}T02:00", **PATIENT}
    status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", booking)
    assert status == 201 and order["reception_datetime"] == f"{NEXT_ISO}T02:00:00+03:00"
    assert slots(clinic, ids[601], NEXT_ISO, NEXT_ISO) == [start for start in night if "T02:" not in start]


def test_slots_answer_with_the_clinics_offset(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    _, body = call_portal(
        "GET",
        f"/portal/clinics/{clinic.clinic_id}/slots",
        query={"resource_id": str(portal_clinic[502]), "from": ISO, "to": ISO},
    )
    assert body["slots"][0] == {"start": f"{ISO}T14:00:00+03:00", "end": f"{ISO}T14:20:00+03:00"}


def test_booking_takes_the_slot_and_a_second_patient_gets_409(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    # When a patient books 09:30
    status, order = book(clinic, portal_clinic[501], "09:30")
    # Then the order is created as received, with the portal and MIS ids of the resource
    assert status == 201
    assert {k: order[k] for k in ("status", "status_name", "type", "resource_id", "mw_resource_id", "resource_name", "duration")} == {
        "status": 0, "status_name": "received", "type": 3, "resource_id": portal_clinic[501], "mw_resource_id": 501,
        "resource_name": "Иванова А. А.", "duration": 30,
    }  # fmt: skip
    assert order["reception_datetime"] == f"{ISO}T09:30:00+03:00"
    assert (order["name1"], order["phone"]) == ("Смирнова", "+7 (912) 345-67-89")
    # And the slot is no longer offered, and nobody else can take it
    assert slot_starts(clinic, portal_clinic[501]) == ["09:00", "10:00", "11:00", "11:30"]
    status, error = book(clinic, portal_clinic[501], "09:30", name1="Другой")
    assert (status, error["error"]["code"]) == (409, "slot_unavailable")
    # And the patient can read the order back
    status, again = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    assert status == 200 and again == order


def test_a_longer_booking_needs_every_step_free(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    assert book(clinic, portal_clinic[501], "10:00", duration=60)[0] == 409  # 10:30 is the break
    status, order = book(clinic, portal_clinic[501], "09:00", duration=60)
    assert status == 201 and order["duration"] == 60
    assert slot_starts(clinic, portal_clinic[501]) == ["10:00", "11:00", "11:30"]
    assert book(clinic, portal_clinic[501], "09:30")[0] == 409


def test_order_ids_increase_per_clinic(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    ids = [book(clinic, portal_clinic[502], at)[1]["id"] for at in ("14:00", "14:20", "14:40")]
    assert ids == sorted(ids) and len(set(ids)) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name1": ""}, "name1 is required"),
        ({"phone": None}, "phone is required"),
        ({"phone": "call me"}, "phone must be a phone number: digits, spaces, +, -, ( and )"),
        ({"email": "olga@"}, "email is not an e-mail address"),
        ({"comment": "x" * 1001}, "comment is longer than 1000 characters"),
        ({"duration": 45}, "duration must be a multiple of the resource's time_step (30 minutes)"),
        ({"duration": True}, "duration must be an integer"),
        (
            {"reception_datetime": "05.02.2030 09:00"},
            "reception_datetime must be local time YYYY-MM-DDTHH:MM, optionally with its offset",
        ),
        ({"reception_datetime": "2030-02-30T09:00"}, "reception_datetime is not a real time: 2030-02-30T09:00"),
        ({"colour": "red"}, "unknown field colour"),
        ({"resource_id": "abc"}, "resource_id must be an integer"),
    ],
)
def test_bad_booking_fields_are_400_with_a_reason(
    clinic: Clinic, portal_clinic: dict[int, int], fields: dict[str, Any], message: str
) -> None:
    status, body = book(clinic, portal_clinic[501], "09:00", **fields)
    assert (status, body) == (400, {"error": {"code": "invalid_request", "message": message}})


def test_a_body_that_is_not_json_is_400(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    status, body = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", b"{not json")
    assert (status, body["error"]["code"]) == (400, "invalid_request")


def test_unknown_clinic_resource_and_order_are_404(store: Store, clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    assert call_portal("GET", "/portal/clinics/nope")[0] == 404
    assert book(clinic, 999, "09:00")[0] == 404
    assert call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/12345") == (
        404, {"error": {"code": "not_found", "message": f"no order 12345 in clinic {clinic.clinic_id}"}}
    )  # fmt: skip
    store.clinics.disable(clinic.clinic_id)
    assert call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")[0] == 404


def test_slot_queries_are_checked(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    path = f"/portal/clinics/{clinic.clinic_id}/slots"
    rid = str(portal_clinic[501])
    assert call_portal("GET", path, query={"resource_id": rid, "from": "2030-01-01", "to": "2030-02-01"})[0] == 400
    assert call_portal("GET", path, query={"resource_id": rid, "from": "2030-01-02", "to": "2030-01-01"})[0] == 400
    assert call_portal("GET", path, query={"resource_id": rid, "from": "01.01.2030", "to": "2030-01-01"})[0] == 400
    assert call_portal("GET", path, query={"from": ISO, "to": ISO})[0] == 400
    assert call_portal("GET", path, query={"resource_id": rid, "from": "2030-01-01", "to": "2030-01-31"})[0] == 200


def mis_change(order: dict[str, Any], status: int, extra: str = "") -> bytes:
    stamp = dt.datetime.fromisoformat(order["last_changed"]).strftime("%d.%m.%Y %H:%M:%S")
    return document(f'<Orders><o id="{order["id"]}" status="{status}" LastChangedOn="{stamp}" {extra}/></Orders>')


def test_the_full_loop_export_confirm_reject_frees_the_slot(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    # Given a patient booked 11:00
    _, order = book(clinic, portal_clinic[501], "11:00")
    # When the MIS exports it
    status, body, _ = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    assert status == 200 and f' ID="{order["id"]}"' in body.decode()
    assert f' Resource_ID="{portal_clinic[501]}"'.encode() in body and b' MW_Resource_ID="501"' in body
    # And accepts it: the patient sees it accepted, the slot stays taken
    status, result, _ = call_import(mis_change(order, 1))
    assert status == 200 and result.find("Orders").get("updated") == "1"
    _, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    assert seen["status_name"] == "accepted"
    assert "11:00" not in slot_starts(clinic, portal_clinic[501])
    # And then rejects it: the slot is free again
    call_import(mis_change(seen, 3))
    _, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    assert seen["status_name"] == "rejected"
    assert "11:00" in slot_starts(clinic, portal_clinic[501])


def test_a_move_by_the_mis_frees_the_old_time_and_holds_the_new(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    _, order = book(clinic, portal_clinic[501], "09:00")
    _, other = book(clinic, portal_clinic[501], "11:30")
    # When the MIS moves the first order onto 11:30, which the second holds
    status, result, _ = call_import(mis_change(order, 1, f'reception_datetime="{D} 11:30:00"'))
    # Then the move applies, with a warning naming both orders
    assert status == 200 and result.find("Orders").get("updated") == "1"
    [warning] = result.find("Warnings")
    assert warning.get("code") == "overlaps_order" and f"time order {other['id']} already holds" in warning.text
    assert slot_starts(clinic, portal_clinic[501]) == ["09:00", "09:30", "10:00", "11:00"]


def test_a_move_to_another_resource_takes_its_name_and_portal_id(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    _, order = book(clinic, portal_clinic[501], "09:00")
    status, _, _ = call_import(
        mis_change(order, 1, f'mw_resource_id="502" reception_datetime="{D} 14:00:00" duration="20"')
    )
    assert status == 200
    _, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    assert (seen["resource_id"], seen["mw_resource_id"], seen["resource_name"]) == (portal_clinic[502], 502, "Петров")
    assert "09:00" in slot_starts(clinic, portal_clinic[501])
    assert slot_starts(clinic, portal_clinic[502]) == ["14:20", "14:40"]


def test_an_appointment_on_a_held_slot_is_reported(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    _, order = book(clinic, portal_clinic[501], "10:00")
    appointment = f'<Appointments>\n<a tablename="T" id="9" resource_id="501" ReceptionDateTime="{D} 10:15:00" Duration="30"/>\n</Appointments>'
    status, result, _ = call_import(document(appointment))
    assert status == 200
    [warning] = result.find("Warnings")
    assert (warning.get("code"), warning.get("id"), warning.get("line")) == ("overlaps_order", "T#9", "4")
    assert f"portal order {order['id']}" in warning.text


def test_a_dropped_resource_keeps_its_orders_exportable(clinic: Clinic, portal_clinic: dict[int, int]) -> None:
    # Given an order on resource 501, which a later import drops
    _, order = book(clinic, portal_clinic[501], "09:00")
    call_import(document('<Resources><r id="502" name="Петров" time_step="20"/></Resources>'))
    # Then the export still carries it with the resource it was booked with
    _, body, _ = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    [row] = etree.fromstring(body).iter("o")
    assert (row.get("ID"), row.get("Resource_ID"), row.get("MW_Resource_ID"), row.get("Resource_Name")) == (
        str(order["id"]), str(portal_clinic[501]), "501", "Иванова А. А."
    )  # fmt: skip


def test_one_clinics_slots_never_show_anothers_data(
    store: Store, clinic: Clinic, portal_clinic: dict[int, int]
) -> None:
    # Given another clinic with the same MIS ids and an appointment taking 09:00-12:00 there
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    busy = f'<Appointments><a tablename="T" id="1" resource_id="501" ReceptionDateTime="{D} 09:00:00" Duration="180"/></Appointments>'
    call_import(document(SETUP + busy, "OTHER-KEY"))
    # Then the first clinic's slots are untouched, and its ids do not reach the other clinic
    assert slot_starts(clinic, portal_clinic[501]) == ["09:00", "09:30", "10:00", "11:00", "11:30"]
    _, view = call_portal("GET", f"/portal/clinics/{other.clinic_id}")
    other_ids = {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}
    status, body = call_portal(
        "GET",
        f"/portal/clinics/{other.clinic_id}/slots",
        query={"resource_id": str(other_ids[501]), "from": ISO, "to": ISO},
    )
    assert status == 200 and body == {"slots": []}


def test_sample_import_still_works_with_the_portal_tables(clinic: Clinic) -> None:
    assert call_import(SAMPLE.read_bytes())[0] == 200
