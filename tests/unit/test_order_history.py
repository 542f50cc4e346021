"""An order's history: each write of the order (booked by the portal, changed by an import) leaves one
event in the same transaction, and the export calls that carried each version show as "exported"."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from mediexchange.errors import SlotUnavailable
from mediexchange.records import Clinic, OrderStatus
from mediexchange.slots import Interval
from mediexchange.store import OrderEvent, Store

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import an_order, call_export, call_import, document

MOSCOW = ZoneInfo("Europe/Moscow")
T = TypeVar("T")


def timed(step: Callable[[], T]) -> tuple[T, float, float]:
    """What a step returned, and the times just before and just after it."""
    before = time.time()
    result = step()
    return result, before, time.time()


def stamp(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, MOSCOW).strftime("%d.%m.%Y %H:%M:%S")


def mis_change(order_id: int, quoted: int, **attributes: str) -> str:
    """Import an MIS change to the order; returns the import's id."""
    extra = " ".join(f'{name}="{value}"' for name, value in attributes.items())
    body = document(f'<Orders><o id="{order_id}" LastChangedOn="{stamp(quoted)}" {extra}/></Orders>')
    status, result, _ = call_import(body)
    assert (status, result.find("Orders").get("updated")) == (200, "1")
    return str(result.get("import_id"))


def export_from(start: int, end: int | None = None) -> int:
    """An export call of the clinic's MIS; returns how many orders it answered."""
    query = {"client_key": SAMPLE_KEY, "start": str(start), **({"end": str(end)} if end is not None else {})}
    status, body, _ = call_export(query)
    assert status == 200, body
    return body.count(b"<o ")


def test_booked_exported_accepted_exported_moved(store: Store, clinic: Clinic) -> None:
    # Given an order the portal booked an hour ago
    booked_at = int(time.time()) - 3600
    [order_id] = store.clinics.reserve_order_ids(clinic.clinic_id)
    _, book_from, book_to = timed(lambda: store.orders.book(clinic.clinic_id, an_order(order_id, booked_at), MOSCOW))
    # When the MIS exports it, accepts it, exports again (from its last poll), then moves it to 11:00
    _, export1_from, export1_to = timed(lambda: export_from(booked_at - 60))
    accepted_in, accept_from, accept_to = timed(lambda: mis_change(order_id, booked_at, status="1"))
    accepted = store.orders.get(clinic.clinic_id, order_id)
    assert accepted is not None
    _, export2_from, export2_to = timed(lambda: export_from(int(export1_from)))
    moved_in, move_from, move_to = timed(
        lambda: mis_change(order_id, accepted.last_changed, status="1", reception_datetime="20.03.2030 11:00:00")
    )
    # Then its history tells each step, oldest first: who, the order as it was, which import
    events = store.history.of_order(clinic.clinic_id, order_id)
    ten, eleven = dt.datetime(2030, 3, 20, 10, 0), dt.datetime(2030, 3, 20, 11, 0)
    received, accepted_status = OrderStatus.RECEIVED, OrderStatus.ACCEPTED
    assert [(e.kind, e.by, e.status, e.reception, e.import_id) for e in events] == [
        ("booked", "portal", received, ten, None),
        ("exported", "mis", received, ten, None),
        ("changed", "mis", accepted_status, ten, accepted_in),
        ("exported", "mis", accepted_status, ten, None),
        ("changed", "mis", accepted_status, eleven, moved_in),
    ]
    assert all((e.duration, e.resource_name, e.mw_resource_id) == (30, "Баева", 393) for e in events)
    # And each at the time it happened
    windows = [(book_from, book_to), (export1_from, export1_to), (accept_from, accept_to)]
    windows += [(export2_from, export2_to), (move_from, move_to)]
    for event, (start, end) in zip(events, windows, strict=True):
        assert start - 0.001 <= event.at <= end + 0.001, (event, start, end)


def test_an_export_whose_window_misses_a_version_does_not_count(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given an order booked an hour ago
    booked_at = int(time.time()) - 3600
    [order_id] = store.clinics.reserve_order_ids(clinic.clinic_id)
    store.orders.book(clinic.clinic_id, an_order(order_id, booked_at), MOSCOW)
    # When the MIS exports a window that ended before it, and one that starts after it (plus the reach-back)
    assert export_from(booked_at - 7200, booked_at - 1) == 0
    assert export_from(booked_at + 600) == 0
    # Then it was never exported
    assert [e.kind for e in store.history.of_order(clinic.clinic_id, order_id)] == ["booked"]
    # And each call is one item, kept as long as the import log, with its window and count
    calls = dynamodb.query(
        TableName=store.settings.history_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{clinic.clinic_id}#exports"}},
    )["Items"]
    reach_back = 120  # exporting.REACH_BACK_SECONDS
    assert [(c["start"]["N"], c.get("end", {}).get("N"), c["answered"]["N"]) for c in calls] == [
        (str(booked_at - 7200 - reach_back), str(booked_at - 1), "0"),
        (str(booked_at + 600 - reach_back), None, "0"),
    ]
    for call in calls:
        at = int(call["sk"]["S"].partition("#")[0]) // 1000
        assert int(call["expires_at"]["N"]) == at + store.settings.retention_days * 86400


def test_an_order_event_goes_when_its_order_goes(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given a booked order
    booked_at = int(time.time()) - 3600
    [order_id] = store.clinics.reserve_order_ids(clinic.clinic_id)
    store.orders.book(clinic.clinic_id, an_order(order_id, booked_at), MOSCOW)
    # Then its event expires with the order
    key = {"clinic_id": {"S": clinic.clinic_id}, "order_id": {"N": str(order_id)}}
    order = dynamodb.get_item(TableName=store.settings.orders_table, Key=key)["Item"]
    [event] = dynamodb.query(
        TableName=store.settings.history_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{clinic.clinic_id}#{order_id}"}},
    )["Items"]
    assert event["expires_at"] == order["expires_at"]
    assert (event["kind"], event["by"], event["last_changed"]) == (
        {"S": "booked"},
        {"S": "portal"},
        {"N": str(booked_at)},
    )


def test_a_refused_order_write_leaves_no_event(store: Store, clinic: Clinic) -> None:
    # Given a booked order
    booked_at = int(time.time()) - 3600
    [order_id] = store.clinics.reserve_order_ids(clinic.clinic_id)
    order = an_order(order_id, booked_at)
    store.orders.book(clinic.clinic_id, order, MOSCOW)
    # When an MIS change decided on a version that is no longer stored is written (the order changed since)
    stale = replace(order, last_changed=booked_at - 1)
    accepted = replace(order, status=OrderStatus.ACCEPTED, last_changed=booked_at + 1)
    moved = replace(accepted, reception=dt.datetime(2030, 3, 20, 12, 0))
    # Then neither a change in place nor a move is written, and neither leaves an event
    assert store.orders.change(clinic.clinic_id, stale, accepted, MOSCOW) is False
    assert store.orders.change(clinic.clinic_id, stale, moved, MOSCOW) is False
    assert store.orders.get(clinic.clinic_id, order_id) == order
    # And a booking its check refuses (the slot was just taken) leaves none either
    [other_id] = store.clinics.reserve_order_ids(clinic.clinic_id)

    def taken(around: dict[int, Interval]) -> None:
        raise SlotUnavailable("that time was just taken")

    with pytest.raises(SlotUnavailable):
        store.orders.book(clinic.clinic_id, an_order(other_id, booked_at), MOSCOW, taken)
    assert store.orders.get(clinic.clinic_id, other_id) is None
    assert store.history.of_order(clinic.clinic_id, other_id) == []
    [booked] = store.history.of_order(clinic.clinic_id, order_id)
    assert isinstance(booked, OrderEvent) and booked.kind == "booked"
