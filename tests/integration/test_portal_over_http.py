"""The whole loop over real HTTP against `make run`'s server: MIS import -> slots -> booking -> export ->
MIS confirmation -> the patient sees it; and never two patients in one slot."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from tests.integration.conftest import LocalServer

DAY = dt.date.today() + dt.timedelta(days=7)
D, ISO = DAY.strftime("%d.%m.%Y"), DAY.isoformat()


def mis_document(client_key: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><MediExchange ClientKey="{client_key}">{body}</MediExchange>'.encode()
    )


def setup_clinic(server: LocalServer, name: str) -> tuple[dict[str, str], int]:
    """A clinic whose resource 77 works 09:00-11:00 in 30-minute steps; returns it and the portal resource id."""
    clinic = server.create_clinic(name)
    body = (
        '<Resources><r id="77" name="Доктор" time_step="30"/></Resources>'
        f'<Schedules><s id="1" date="{D}" resource_id="77"><time_rules w_start="09:00" w_end="11:00"/></s></Schedules>'
    )
    status, _, answer = server.request(
        "POST", "/services/import.php", mis_document(clinic["client_key"], body), {"Content-Type": "application/xml"}
    )
    assert status == 200, answer
    _, view = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}")
    return clinic, view["resources"][0]["resource_id"]


def portal(server: LocalServer, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"x-api-key": server.portal_api_key if key is None else key, "Content-Type": "application/json"}
    status, _, raw = server.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
    return status, json.loads(raw)


def slots(server: LocalServer, clinic: dict[str, str], resource_id: int) -> list[str]:
    query = urlencode({"resource_id": resource_id, "from": ISO, "to": ISO})
    status, body = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}/slots?{query}")
    assert status == 200, body
    return [s["start"][11:16] for s in body["slots"]]


def book(
    server: LocalServer, clinic: dict[str, str], resource_id: int, at: str, name1: str, phone: str = "+79120000000"
) -> tuple[int, Any]:
    """A patient books `at` (HH:MM) on DAY through the portal API."""
    booking = {"resource_id": resource_id, "reception_datetime": f"{ISO}T{at}", "name1": name1, "phone": phone}
    return portal(server, "POST", f"/portal/clinics/{clinic['clinic_id']}/orders", booking)


def test_the_loop_from_schedule_to_confirmed_order(server: LocalServer) -> None:
    clinic, resource_id = setup_clinic(server, "Loop clinic")
    assert slots(server, clinic, resource_id) == ["09:00", "09:30", "10:00", "10:30"]
    # A patient books 10:00
    status, order = book(server, clinic, resource_id, "10:00", "Кузнецов", phone="89120000000")
    assert status == 201 and order["status"] == 0
    assert slots(server, clinic, resource_id) == ["09:00", "09:30", "10:30"]
    # The MIS exports it
    query = urlencode({"client_key": clinic["client_key"], "start": 0})
    status, _, body = server.request("GET", f"/services/export.php?{query}")
    [exported] = etree.fromstring(body).iter("o")
    assert (exported.get("ID"), exported.get("Name1"), exported.get("MW_Resource_ID")) == (
        str(order["id"]),
        "Кузнецов",
        "77",
    )
    # It confirms it, quoting the exported LastChangedOn
    change = f'<Orders><o id="{order["id"]}" status="1" LastChangedOn="{exported.get("LastChangedOn")}"/></Orders>'
    status, _, body = server.request(
        "POST", "/services/import.php", mis_document(clinic["client_key"], change), {"Content-Type": "application/xml"}
    )
    assert status == 200 and etree.fromstring(body).find("Orders").get("updated") == "1"
    # And the patient sees it accepted
    status, seen = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}/orders/{order['id']}")
    assert (status, seen["status_name"]) == (200, "accepted")


def test_twenty_patients_at_once_for_one_slot_make_exactly_one_order(server: LocalServer) -> None:
    clinic, resource_id = setup_clinic(server, "Contended clinic")

    def attempt(n: int) -> tuple[int, Any]:
        return book(server, clinic, resource_id, "09:30", f"Пациент {n}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(20)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19, statuses
    assert {body["error"]["code"] for status, body in results if status == 409} == {"slot_unavailable"}
    # And the store holds exactly one order
    query = urlencode({"client_key": clinic["client_key"], "start": 0})
    _, _, body = server.request("GET", f"/services/export.php?{query}")
    assert len(list(etree.fromstring(body).iter("o"))) == 1
    assert "09:30" not in slots(server, clinic, resource_id)


def test_the_portal_needs_its_api_key(server: LocalServer) -> None:
    clinic, _ = setup_clinic(server, "Keyed clinic")
    for key in ("", "wrong-key"):
        status, body = portal(server, "GET", f"/portal/clinics/{clinic['clinic_id']}", key=key)
        assert (status, body) == (403, {"message": "Forbidden"})


def test_clinics_with_the_same_ids_never_see_each_others_data(server: LocalServer) -> None:
    # Given two clinics whose resources and orders carry the same ids
    first, first_resource = setup_clinic(server, "First")
    second, second_resource = setup_clinic(server, "Second")
    assert first_resource == second_resource
    status, order = book(server, second, second_resource, "09:00", "Чужой")
    assert status == 201
    # Then the first clinic still offers 09:00, and the second's order is not found through the first
    assert slots(server, first, first_resource)[0] == "09:00"
    assert slots(server, second, second_resource)[0] == "09:30"
    status, _ = portal(server, "GET", f"/portal/clinics/{first['clinic_id']}/orders/{order['id']}")
    assert status == 404
