"""SPEC r2 section 4, "No order missed": an MIS polling contiguous windows receives every order change
at least once, even one stamped before a poll but committed after it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from lxml import etree
from mediexchange.exporting import REACH_BACK_SECONDS
from mediexchange.records import Clinic, Order
from mediexchange.store import Store

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import an_order as booked_order
from tests.unit.conftest import call_export

T = 1_900_000_000


def an_order(order_id: int, stamp: int) -> Order:
    """Orders half an hour apart, changed last at `stamp`."""
    return booked_order(order_id, stamp, reception=dt.datetime(2030, 3, 20, 9, 0) + dt.timedelta(minutes=30 * order_id))


def poll(start: int, end: int | None = None) -> list[tuple[str | None, str | None]]:
    query = {"client_key": SAMPLE_KEY, "start": str(start), **({"end": str(end)} if end is not None else {})}
    status, body, _ = call_export(query)
    assert status == 200
    return [(o.get("ID"), o.get("LastChangedOn")) for o in etree.fromstring(body).iter("o")]


def commit(store: Store, clinic: Clinic, order: Order) -> None:
    store.clinics.reserve_order_ids(clinic.clinic_id)
    store.orders.book(clinic.clinic_id, order, ZoneInfo(clinic.timezone))


def test_a_change_committed_after_the_poll_that_covered_its_stamp_comes_with_the_next(
    store: Store, clinic: Clinic
) -> None:
    # Given order 1 committed at T, and order 2 stamped at T + 5 but still being written
    commit(store, clinic, an_order(1, T))
    # When the MIS polls [T - 60, T + 10] (order 2 not yet committed), and order 2 commits after it
    first = poll(T - 60, T + 10)
    commit(store, clinic, an_order(2, T + 5))
    # And the MIS polls the next window, from where the last one ended
    second = poll(T + 10, T + 70)
    # Then order 2, missed by the first poll, comes with the second (order 1 may come twice)
    assert [order_id for order_id, _ in first] == ["1"]
    assert "2" in [order_id for order_id, _ in second]


def test_the_reach_back_is_bounded(store: Store, clinic: Clinic) -> None:
    # Given an order changed long before a window
    commit(store, clinic, an_order(1, T))
    # When the MIS polls a window that starts later than the reach-back; Then the order is not repeated
    assert poll(T + REACH_BACK_SECONDS + 1, T + 10_000) == []
    assert poll(T + REACH_BACK_SECONDS, T + 10_000) == [
        ("1", dt.datetime.fromtimestamp(T, ZoneInfo("Europe/Moscow")).strftime("%d.%m.%Y %H:%M:%S"))
    ]


def test_an_open_ended_poll_carries_changes_stamped_just_before_it(store: Store, clinic: Clinic) -> None:
    # Given an MIS whose last poll (no end) ran at T; an order stamped at T - 1 commits after it
    assert poll(T) == []
    commit(store, clinic, an_order(1, T - 1))
    # When it polls from the time of its previous request; Then the order is there
    assert [order_id for order_id, _ in poll(T)] == ["1"]
