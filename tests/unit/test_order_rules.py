"""The order rules of SPEC r2 (section 3, Orders) through the import handler: the MIS's own changes apply
in the order received, conflicts come only from the portal's side, a repeated hour matches either way,
a move to an unknown resource is rejected, echoed fields warn only when they differ, and the MIS's own
record of an order it accepted is not a double booking."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from mediexchange.protocol.sections import RESOURCES
from mediexchange.records import Clinic, Order, OrderStatus
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import an_order, call_import, call_portal, document

MOSCOW = ZoneInfo("Europe/Moscow")
T0 = 1_900_000_000  # when the portal booked the orders below (17.03.2030 20:46:40 in Moscow)


def booked(store: Store, clinic: Clinic, order: Order) -> Order:
    """The order stored as the portal books it: its id from the clinic's counter, its time held."""
    assert store.clinics.reserve_order_ids(clinic.clinic_id) == range(order.id, order.id + 1)
    store.orders.book(clinic.clinic_id, order, ZoneInfo(clinic.timezone))
    return order


def local(epoch: int, tz: ZoneInfo = MOSCOW) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).strftime("%d.%m.%Y %H:%M:%S")


def changes(*rows: str, key: str = SAMPLE_KEY) -> bytes:
    return document("<Orders>\n" + "\n".join(rows) + "\n</Orders>", key)


def stored(store: Store, clinic: Clinic, order_id: int = 1) -> Order:
    return store.orders.get_many(clinic.clinic_id, [order_id])[order_id]


def warnings(result: Any, code: str | None = None) -> list[tuple[str | None, str | None]]:
    return [(w.get("code"), w.get("id")) for w in result.iter("w") if code in (None, w.get("code"))]


def test_an_mis_that_confirms_then_rejects_quoting_the_same_export_gets_both(store: Store, clinic: Clinic) -> None:
    # Given order 1 as the MIS exported it (LastChangedOn T0)
    booked(store, clinic, an_order())
    # When it confirms, and later rejects, quoting T0 both times
    first = call_import(changes(f'<o id="1" status="1" LastChangedOn="{local(T0)}"/>'))
    second = call_import(changes(f'<o id="1" status="3" LastChangedOn="{local(T0)}"/>'))
    # Then both apply: the order ends rejected and frees its time
    assert [r[1].find("Orders").get("updated") for r in (first, second)] == ["1", "1"]
    assert stored(store, clinic).status is OrderStatus.REJECTED
    assert store.orders.held(clinic.clinic_id, 393, dt.date(2030, 3, 20), dt.date(2030, 3, 20)) == {}


def test_a_change_quoting_a_time_before_a_portal_side_change_is_a_conflict(store: Store, clinic: Clinic) -> None:
    # Given order 1 changed on the portal side an hour after the MIS read it
    booked(store, clinic, an_order(last_changed=T0 + 3600, portal_changed=T0 + 3600))
    # When the MIS confirms it quoting what it read
    status, result, _ = call_import(changes(f'<o id="1" status="1" LastChangedOn="{local(T0)}"/>'))
    # Then it is a conflict, listed, and the order stays as it was
    orders = result.find("Orders")
    assert (status, orders.get("conflicts"), [c.get("id") for c in orders.iter("conflict")]) == (200, "1", ["1"])
    assert stored(store, clinic).status is OrderStatus.RECEIVED


def test_either_occurrence_of_the_autumn_repeated_hour_matches(store: Store) -> None:
    # Given a Berlin clinic whose order was booked in the second 02:30 of 27.10.2024
    berlin = ZoneInfo("Europe/Berlin")
    clinic = store.clinics.create("Berlin", "Europe/Berlin", "BERLIN-KEY")
    second_0230 = int(dt.datetime(2024, 10, 27, 2, 30, tzinfo=berlin).replace(fold=1).timestamp())
    booked(store, clinic, an_order(last_changed=second_0230, portal_changed=second_0230))
    # When the MIS echoes the LastChangedOn it exported (the same wall-clock text for both occurrences)
    status, result, _ = call_import(
        changes('<o id="1" status="1" LastChangedOn="27.10.2024 02:30:00"/>', key="BERLIN-KEY")
    )
    # Then it is no conflict: the change applies
    assert (status, result.find("Orders").get("updated"), result.find("Orders").get("conflicts")) == (200, "1", "0")


def test_a_move_to_an_unknown_resource_rejects_that_change_only(store: Store, clinic: Clinic) -> None:
    # Given the sample's resources and two orders
    assert call_import(SAMPLE.read_bytes())[0] == 200
    booked(store, clinic, an_order(1))
    booked(store, clinic, an_order(2, reception=dt.datetime(2030, 3, 20, 11, 0)))
    # When the MIS moves order 1 to resource 999, which it never sent, and accepts order 2
    status, result, _ = call_import(
        changes(
            f'<o id="1" status="1" mw_resource_id="999" LastChangedOn="{local(T0)}"/>',
            f'<o id="2" status="1" LastChangedOn="{local(T0)}"/>',
        )
    )
    # Then order 1's change is rejected, named, and order 2's applies
    [error] = result.findall("Error")
    assert (status, result.get("status")) == (200, "partial")
    assert dict(error.attrib) == {
        "code": "unknown_resource", "line": "4", "section": "Orders", "id": "1", "attribute": "mw_resource_id"
    }  # fmt: skip
    assert error.text == "mw_resource_id 999 is not a resource of this clinic; the change is not applied"
    orders = result.find("Orders")
    assert (orders.get("updated"), orders.get("rejected")) == ("1", "1")
    assert (stored(store, clinic, 1).status, stored(store, clinic, 1).mw_resource_id) == (OrderStatus.RECEIVED, 393)
    assert stored(store, clinic, 2).status is OrderStatus.ACCEPTED


def test_a_move_to_a_known_resource_takes_its_portal_id_and_name(store: Store, clinic: Clinic) -> None:
    # Given the sample's resources and order 1 on 393 (Баева)
    assert call_import(SAMPLE.read_bytes())[0] == 200
    booked(store, clinic, an_order())
    names = {r.id: r.name for r in store.records.all(clinic.clinic_id, RESOURCES)}
    # When the MIS moves it to 422
    status, result, _ = call_import(changes(f'<o id="1" status="1" mw_resource_id="422" LastChangedOn="{local(T0)}"/>'))
    # Then the order is on 422 with that resource's portal id and name
    order = stored(store, clinic)
    portal_ids = store.records.resource_ids(clinic.clinic_id)
    assert (status, result.get("status")) == (200, "ok")
    assert (order.mw_resource_id, order.resource_id, order.resource_name) == (422, portal_ids[422], names[422])


def test_echoed_fields_warn_only_when_they_differ(store: Store, clinic: Clinic) -> None:
    # Given order 1 as exported
    booked(store, clinic, an_order())
    echo = f'Name1="Иванов" Phone="+7 900 000-00-00" Resource_ID="1" Type="3" order_date="17.03.2030" LastChangedOn="{local(T0)}"'
    # When the MIS echoes it unchanged but accepted; Then nothing is warned
    status, result, _ = call_import(changes(f'<o ID="1" Status="1" {echo}/>'))
    assert (status, warnings(result)) == (200, [])
    # When it then sends a different phone and surname with a rejection
    changed = echo.replace("+7 900 000-00-00", "+7 999 999-99-99").replace("Иванов", "Петров")
    status, result, _ = call_import(changes(f'<o ID="1" Status="3" {changed}/>'))
    # Then the rejection applies, the patient fields stay, and one warning names both attributes as spelled
    [warning] = result.iter("w")
    assert (status, warning.get("code"), warning.get("id"), warning.get("attribute")) == (
        200,
        "ignored_attribute",
        "1",
        "Name1",
    )
    assert warning.text == "an MIS cannot change Name1, Phone of an order; ignored"
    assert (stored(store, clinic).status, stored(store, clinic).phone) == (OrderStatus.REJECTED, "+7 900 000-00-00")


def test_a_change_without_last_changed_on_applies_with_a_warning(store: Store, clinic: Clinic) -> None:
    booked(store, clinic, an_order())
    status, result, _ = call_import(changes('<o id="1" status="1"/>'))
    assert (status, result.find("Orders").get("updated"), warnings(result)) == (200, "1", [("no_last_changed", "1")])
    assert stored(store, clinic).status is OrderStatus.ACCEPTED


def appointments(*rows: str) -> bytes:
    return document('<Appointments SyncMode="diff">\n' + "\n".join(rows) + "\n</Appointments>")


def test_the_mis_record_of_an_accepted_order_is_no_double_booking(store: Store, clinic: Clinic) -> None:
    # Given order 1 (393, 20.03.2030 10:00, 30 min), accepted by the MIS
    booked(store, clinic, an_order(status=OrderStatus.ACCEPTED))
    # When the MIS syncs its own record of that visit, and another visit overlapping it
    own = '<a tablename="Visits" id="1" resource_id="393" ReceptionDateTime="20.03.2030 10:00" Duration="30"/>'
    other = '<a tablename="Visits" id="2" resource_id="393" ReceptionDateTime="20.03.2030 10:15" Duration="30"/>'
    status, result, _ = call_import(appointments(own, other))
    # Then only the other is a double booking
    assert (status, warnings(result, "overlaps_order")) == (200, [("overlaps_order", "Visits#2")])


def test_an_appointment_on_a_received_order_still_warns(store: Store, clinic: Clinic) -> None:
    # Given order 1 not yet accepted: Then the same record is a real clash the clinic must see
    booked(store, clinic, an_order())
    own = '<a tablename="Visits" id="1" resource_id="393" ReceptionDateTime="20.03.2030 10:00" Duration="30"/>'
    status, result, _ = call_import(appointments(own))
    assert (status, warnings(result, "overlaps_order")) == (200, [("overlaps_order", "Visits#1")])


def test_a_portal_sends_user_id_as_a_number(store: Store, clinic: Clinic) -> None:
    # Given a resource with a schedule next week
    day = dt.date.today() + dt.timedelta(days=7)
    schedule = f'<Schedules><s id="1" date="{day:%d.%m.%Y}" resource_id="393"><time_rules w_start="9:00" w_end="12:00"/></s></Schedules>'
    assert call_import(SAMPLE.read_bytes())[0] == 200 and call_import(document(schedule))[0] == 200
    portal_id = store.records.resource_ids(clinic.clinic_id)[393]
    # When the portal books with user_id 17 as a JSON number
    body = {
        "resource_id": portal_id,
        "reception_datetime": f"{day}T09:30",
        "name1": "Смирнова",
        "phone": "+7 912 345-67-89",
        "user_id": 17,
    }
    status, answer = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    # Then it is booked, the id kept as text
    assert (status, answer["user_id"]) == (201, "17")
