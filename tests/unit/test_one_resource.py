"""The portal finds the one resource a request names by its portal id (`SyncedRecords.resource`): two
GetItems (the portal id's MIS id, then the resource's record), never every resource and identity of the
clinic, with the answers and the 404s as before; and a bad booking body is refused before any read."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from mediexchange.records import Clinic, Resource
from mediexchange.store import Store

from bench.units import Units
from tests.unit.conftest import call_import, call_portal, document
from tests.unit.test_portal import ISO, SETUP

IVANOVA = Resource(id=501, name="Иванова А. А.", time_step=30, group_id=1, pos=0)
PETROV = Resource(id=502, name="Петров", time_step=20, group_id=None, pos=0)
PATIENT = {"name1": "Смирнова", "phone": "+7 (912) 345-67-89"}


class Calls:
    """The DynamoDB calls the store makes (a botocore before-call handler): (operation, partition key)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made: list[tuple[str, str]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        sent = json.loads(params.get("body") or b"{}")
        values = [*sent.get("Key", {}).values(), *sent.get("ExpressionAttributeValues", {}).values()]
        partition = next((v["S"] for v in values if "S" in v and "#" in v["S"]), sent.get("TableName", ""))
        with self.lock:
            self.made.append((model.name, partition))


@pytest.fixture
def calls(store: Store) -> Calls:
    counter = Calls()
    store.instrument("before-call.dynamodb.*", counter)
    return counter


@pytest.fixture
def ids(clinic: Clinic, store: Store) -> dict[int, int]:
    """SETUP imported into the sample clinic; {MIS resource id: portal id}."""
    assert call_import(document(SETUP))[0] == 200
    return store.records.resource_ids(clinic.clinic_id)


def slots(clinic_id: str, resource_id: str) -> tuple[int, Any]:
    query = {"resource_id": resource_id, "from": ISO, "to": ISO}
    return call_portal("GET", f"/portal/clinics/{clinic_id}/slots", query=query)


def not_found(message: str) -> tuple[int, Any]:
    return 404, {"error": {"code": "not_found", "message": message}}


def test_one_resource_is_read_by_two_getitems_and_is_the_one_the_clinic_lists(
    store: Store, clinic: Clinic, ids: dict[int, int], calls: Calls
) -> None:
    # Given the clinic's two resources, portal ids 1 and 2 in the document's order
    assert ids == {501: 1, 502: 2}
    calls.made.clear()
    # When the portal asks for each by its portal id
    found = [store.records.resource(clinic.clinic_id, portal_id) for portal_id in (1, 2)]
    # Then it gets each resource as the clinic lists it, each by a GetItem of its portal id and one of its record
    assert found == [IVANOVA, PETROV]
    partitions = [f"{clinic.clinic_id}#RID", f"{clinic.clinic_id}#R#0"]
    assert calls.made == [("GetItem", partition) for _ in (1, 2) for partition in partitions]
    assert sorted(store.records.resources_with_ids(clinic.clinic_id)) == [(1, IVANOVA), (2, PETROV)]


def test_the_slots_answer_reads_no_resource_but_the_one_asked_for(
    store: Store, clinic: Clinic, ids: dict[int, int], calls: Calls
) -> None:
    calls.made.clear()
    # When the portal asks for the free slots of resource 501
    status, body = slots(clinic.clinic_id, str(ids[501]))
    # Then they are its slots (09:00-12:00, a break 10:30-11:00), and no Records partition was read whole but
    # the resource's busy time by index
    starts = ["09:00", "09:30", "10:00", "11:00", "11:30"]
    assert (status, [s["start"][11:16] for s in body["slots"]]) == (200, starts)
    reads = sorted((operation, partition) for operation, partition in calls.made if "#" in partition)
    assert reads == sorted(
        [
            ("GetItem", f"{clinic.clinic_id}#RID"),
            ("GetItem", f"{clinic.clinic_id}#R#0"),
            ("Query", f"{clinic.clinic_id}#501"),  # schedules, by_resource
            ("Query", f"{clinic.clinic_id}#501"),  # appointments, by_resource
            ("Query", f"{clinic.clinic_id}#501"),  # holds
        ]
    )


def test_a_portal_id_the_clinic_never_gave_is_the_404_it_always_was(
    store: Store, clinic: Clinic, ids: dict[int, int]
) -> None:
    # When the portal asks for portal ids the clinic has not given (0, 3, negative, past any counter)
    for portal_id in (0, 3, -1, 10**17):
        # Then there is no such resource, and the slots answer and a booking are the same 404 as before
        assert store.records.resource(clinic.clinic_id, portal_id) is None
        message = f"no resource {portal_id} in clinic {clinic.clinic_id}"
        assert slots(clinic.clinic_id, str(portal_id)) == not_found(message)
        booking = {"resource_id": portal_id, "reception_datetime": f"{ISO}T09:00", **PATIENT}
        assert call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", booking) == not_found(message)


def test_a_portal_id_the_clinic_never_gave_is_known_absent_from_two_getitems(
    store: Store, clinic: Clinic, ids: dict[int, int], calls: Calls
) -> None:
    calls.made.clear()
    # When the portal asks for a portal id the clinic has not given
    found = store.records.resource(clinic.clinic_id, 3)
    # Then there is none, known from the missing p# item and the mark that every identity has one: no query
    assert found is None
    assert calls.made == [("GetItem", f"{clinic.clinic_id}#RID")] * 2


def test_a_resource_the_mis_dropped_keeps_its_id_and_is_404(store: Store, clinic: Clinic, ids: dict[int, int]) -> None:
    # Given a later import that sends 502 alone
    assert call_import(document('<Resources><r id="502" name="Петров" time_step="20"/></Resources>'))[0] == 200
    # Then 501 keeps its portal id, yet is no current resource: 404 as before
    assert store.records.resource_ids(clinic.clinic_id) == {501: 1, 502: 2}
    assert store.records.resource(clinic.clinic_id, 1) is None
    assert store.records.resource(clinic.clinic_id, 2) == PETROV
    assert slots(clinic.clinic_id, "1") == not_found(f"no resource 1 in clinic {clinic.clinic_id}")


def test_another_clinics_resource_with_the_same_portal_id_is_never_returned(
    store: Store, clinic: Clinic, ids: dict[int, int]
) -> None:
    # Given another clinic whose one resource (MIS 777) has portal id 1, as 501 has in the sample clinic
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    sent = '<Resources><r id="777" name="Сидоров" time_step="15"/></Resources>'
    assert call_import(document(sent, "OTHER-KEY"))[0] == 200
    assert store.records.resource_ids(other.clinic_id) == {777: 1}
    # Then each clinic's portal id 1 is its own resource, and the other clinic has no portal id 2
    assert store.records.resource(clinic.clinic_id, 1) == IVANOVA
    assert store.records.resource(other.clinic_id, 1) == Resource(id=777, name="Сидоров", time_step=15)
    assert store.records.resource(other.clinic_id, 2) is None
    assert slots(other.clinic_id, "2") == not_found(f"no resource 2 in clinic {other.clinic_id}")
    # And a clinic that does not exist has none
    assert store.records.resource("nope", 1) is None


def identity_items(dynamodb: Any, store: Store, clinic_id: str) -> list[dict[str, Any]]:
    table = store.settings.records_table
    asked = {":pk": {"S": f"{clinic_id}#RID"}}
    return list(
        dynamodb.query(TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues=asked)["Items"]
    )


def identity_pairs(dynamodb: Any, store: Store, clinic_id: str) -> list[tuple[str, str]]:
    """(sort key, portal id or MIS id, "" for neither) of every item of the clinic's identity partition."""
    items = identity_items(dynamodb, store, clinic_id)
    return sorted((i["sk"]["S"], i.get("portal_id", i.get("mis_id", {"N": ""}))["N"]) for i in items)


def test_each_identity_has_its_portal_ids_item_written_with_it(
    store: Store, clinic: Clinic, ids: dict[int, int], dynamodb: Any
) -> None:
    # Then beside each identity (sort key: the MIS id) is its portal id's item (p#, the MIS id), and the mark
    # that every identity has one, no other
    pairs = identity_pairs(dynamodb, store, clinic.clinic_id)
    assert pairs == [("#p", ""), ("501", "1"), ("502", "2"), ("p#1", "501"), ("p#2", "502")]


def test_identities_from_before_the_portal_id_items_are_found_and_given_them_by_the_next_import(
    store: Store, clinic: Clinic, ids: dict[int, int], dynamodb: Any, calls: Calls
) -> None:
    # Given a stack from before the p# items: the identities alone
    table = store.settings.records_table
    for item in identity_items(dynamodb, store, clinic.clinic_id):
        if item["sk"]["S"].startswith("p#") or item["sk"]["S"] == "#p":
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    # When the portal asks for a resource, and for one that does not exist
    # Then it finds the first by its identity (a query of the identities), and still not the other
    assert store.records.resource(clinic.clinic_id, 2) == PETROV
    assert slots(clinic.clinic_id, "3") == not_found(f"no resource 3 in clinic {clinic.clinic_id}")
    # And the next import that sends Resources writes the missing items, and a new resource gets its id and item
    sent = '<Resources><r id="501" name="Иванова А. А." time_step="30" group_id="1"/><r id="503" name="Орлов" time_step="10"/></Resources>'
    assert call_import(document(sent))[0] == 200
    pairs = identity_pairs(dynamodb, store, clinic.clinic_id)
    assert pairs == [
        ("#p", ""),
        ("501", "1"),
        ("502", "2"),
        ("503", "3"),
        ("p#1", "501"),
        ("p#2", "502"),
        ("p#3", "503"),
    ]
    calls.made.clear()
    assert store.records.resource(clinic.clinic_id, 3) == Resource(id=503, name="Орлов", time_step=10)
    assert [operation for operation, _ in calls.made] == ["GetItem", "GetItem"]


def test_an_import_reads_the_identities_and_their_mark_not_the_portal_ids_items(
    store: Store, clinic: Clinic, ids: dict[int, int]
) -> None:
    # Given the clinic's two resources with their identities, p# items and mark, and the store's reads counted
    units = Units(store.settings.records_table)
    store.instrument("before-parameter-build.*.*", units.before)
    store.instrument("after-call.*.*", units.after)
    # When the same Resources are imported again
    assert call_import(document(SETUP))[0] == 200
    # Then of the identity partition it read the two identities and the mark, not the two p# items
    assert units.tallies[(store.settings.records_table, "RID", "read")].items == 3


def test_a_bad_booking_body_is_refused_before_anything_is_read(
    store: Store, clinic: Clinic, ids: dict[int, int], calls: Calls
) -> None:
    calls.made.clear()
    path = f"/portal/clinics/{clinic.clinic_id}/orders"
    # When a booking's body is refused for what it alone says
    refused = [
        call_portal("POST", path, [1]),
        call_portal("POST", path, {"resource_id": 1, "reception_datetime": f"{ISO}T09:00", "colour": "red"}),
        call_portal("POST", path, {"reception_datetime": f"{ISO}T09:00", **PATIENT}),
        call_portal("POST", path, {"resource_id": 1, "reception_datetime": "tomorrow", **PATIENT}),
        call_portal("POST", path, {"resource_id": 1, "reception_datetime": f"{ISO}T09:00", "name1": "Смирнова"}),
        # of a clinic that does not exist, and a resource that does not: the body's fault is the answer
        call_portal("POST", "/portal/clinics/nope/orders", {"resource_id": 1, **PATIENT}),
        call_portal("POST", path, {"resource_id": 99, "reception_datetime": f"{ISO}T09:00", "phone": "555"}),
    ]
    # Then each is a 400 with its reason, and the store was not asked anything
    assert [(status, body["error"]["message"]) for status, body in refused] == [
        (400, "the body must be a JSON object"),
        (400, "unknown field colour"),
        (400, "resource_id is required"),
        (400, "reception_datetime must be local time YYYY-MM-DDTHH:MM, optionally with its offset"),
        (400, "phone is required"),
        (400, "reception_datetime must be local time YYYY-MM-DDTHH:MM, optionally with its offset"),
        (400, "name1 is required"),
    ]
    assert calls.made == []
    # And a body that is right but for the resource's step is refused once the resource is read
    booking = {"resource_id": ids[501], "reception_datetime": f"{ISO}T09:00", "duration": 45, **PATIENT}
    status, body = call_portal("POST", path, booking)
    assert (status, body["error"]["message"]) == (
        400,
        "duration must be a multiple of the resource's time_step (30 minutes)",
    )


def test_the_slots_answer_keeps_its_order_of_refusals(clinic: Clinic, ids: dict[int, int]) -> None:
    path = f"/portal/clinics/{clinic.clinic_id}/slots"
    # The clinic's 404 first, then the resource id, then the resource's 404, then the dates
    assert call_portal("GET", "/portal/clinics/nope/slots", query={"from": "x"}) == not_found("no clinic nope")
    assert call_portal("GET", "/portal/clinics/nope/slots", query={"resource_id": "1"}) == not_found("no clinic nope")
    refused = [
        call_portal("GET", path, query={"from": "x"}),
        call_portal("GET", path, query={"resource_id": "abc", "from": "x"}),
        call_portal("GET", path, query={"resource_id": "9", "from": "x"}),
        call_portal("GET", path, query={"resource_id": "1", "from": "x"}),
    ]
    assert [(status, body["error"]["message"]) for status, body in refused] == [
        (400, "resource_id is required"),
        (400, "resource_id must be an integer"),
        (404, f"no resource 9 in clinic {clinic.clinic_id}"),
        (400, "from must be a date YYYY-MM-DD"),
    ]
