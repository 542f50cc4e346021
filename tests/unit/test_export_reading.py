"""How the export reads the orders: straight from the index's pages (no model per order), a page read
while the one before is written, in order across pages, and a store failure on any page is a 503."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError
from lxml import etree
from mediexchange.exporting import REACH_BACK_SECONDS
from mediexchange.protocol.writing import export_document, serialize
from mediexchange.records import Clinic, ExportNames
from mediexchange.store import Store

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import an_order, call_export

T = 1_900_000_000
MOSCOW = ZoneInfo("Europe/Moscow")


def pages_of(store: Store, size: int) -> None:
    """Every query of the store answers `size` items a page (as DynamoDB does at 1 MB)."""

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = size

    store.instrument("before-parameter-build.dynamodb.Query", limit)


def ties_reversed(store: Store) -> None:
    """Each page of the store's queries holds the orders of one second highest id first (DynamoDB promises
    no order among equal sort keys; moto keeps them by id)."""

    def reverse(parsed: dict[str, Any], **_: Any) -> None:
        parsed.get("Items", []).sort(key=lambda item: (int(item["last_changed"]["N"]), -int(item["order_id"]["N"])))

    store.instrument("after-call.dynamodb.Query", reverse)


def exported_ids(query: dict[str, str]) -> list[str]:
    status, body, _ = call_export({"client_key": SAMPLE_KEY, **query})
    assert status == 200, body
    return [str(o.get("ID")) for o in etree.fromstring(body).iter("o")]


def test_orders_come_by_last_change_then_id_across_pages(store: Store, clinic: Clinic) -> None:
    # Given nine orders written newest id first, three changed in each of three seconds
    ids = store.clinics.reserve_order_ids(clinic.clinic_id, 9)
    orders = [an_order(order_id, T + (9 - order_id) // 3) for order_id in reversed(ids)]
    store.orders.load(clinic.clinic_id, orders, MOSCOW)
    # When the MIS exports them and the store answers two orders a page (a second's orders span pages),
    # those of one second in any order
    pages_of(store, 2)
    ties_reversed(store)
    # Then the oldest change comes first, the orders of one second by id
    assert exported_ids({"start": str(T), "end": str(T + 2)}) == ["7", "8", "9", "4", "5", "6", "1", "2", "3"]
    assert exported_ids({"start": str(T + 1 + REACH_BACK_SECONDS)}) == ["4", "5", "6", "1", "2", "3"]


def test_a_store_failure_on_a_later_page_is_503_not_a_partial_answer(store: Store, clinic: Clinic) -> None:
    # Given five orders, two a page, and a store that throttles every query after the first
    ids = store.clinics.reserve_order_ids(clinic.clinic_id, 5)
    store.orders.load(clinic.clinic_id, [an_order(order_id, T + order_id) for order_id in ids], MOSCOW)
    pages_of(store, 2)
    queries = []

    def throttle(model: Any, **_: Any) -> None:
        queries.append(model.name)
        if len(queries) > 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, model.name)

    store.instrument("before-call.dynamodb.Query", throttle)
    # When the MIS exports
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    # Then it is told the store is busy and to come back, not sent the first page alone
    assert (status, etree.fromstring(body).find("Error").get("code"), headers["Retry-After"]) == (
        503,
        "unavailable",
        "5",
    )


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251"])
@pytest.mark.parametrize("names", list(ExportNames))
def test_the_export_is_the_document_of_the_orders_as_read_one_by_one(
    store: Store, clinic: Clinic, dynamodb: Any, encoding: str, names: ExportNames
) -> None:
    # Given a booked order with every field and a character windows-1251 lacks, and an order kept before
    # the optional fields existed (its item has only the required ones)
    store.clinics.update_settings(clinic.clinic_id, export_names=names)
    full = an_order(1, T, user_id="42", user_name="Анна", aim="Боль & <колено> 😷", email="a@example.org")
    store.orders.load(clinic.clinic_id, [full], MOSCOW)
    sparse = {
        "clinic_id": {"S": clinic.clinic_id},
        "order_id": {"N": "2"},
        "status": {"N": "1"},
        "order_date": {"S": "2030-03-17"},
        "mw_resource_id": {"N": "393"},
        "resource_name": {"S": "Баева"},
        "resource_id": {"N": "1"},
        "reception": {"S": "2030-10-27T02:30:00/1"},
        "duration": {"N": "30"},
        "last_changed": {"N": str(T + 1)},
    }
    dynamodb.put_item(TableName=store.settings.orders_table, Item=sparse)
    # When the MIS exports them
    status, body, _ = call_export({"client_key": SAMPLE_KEY, "start": "0", "encoding": encoding})
    # Then the answer is, byte for byte, the document of the orders each read by its key
    read = store.orders.get_many(clinic.clinic_id, [1, 2])
    assert read[1] == full and read[2].reception == dt.datetime(2030, 10, 27, 2, 30, fold=1)
    expected = serialize(export_document(SAMPLE_KEY, [read[1], read[2]], MOSCOW, names), encoding)
    assert status == 200 and body == expected
