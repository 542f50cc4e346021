"""Order changes from the MIS and the export window, through the handlers on moto."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.exporting import REACH_BACK_SECONDS
from mediexchange.records import Clinic, ExportNames, Order, OrderStatus
from mediexchange.store import Store

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, document

MOSCOW = ZoneInfo("Europe/Moscow")
# SPEC section 4 (r2): the seed sample's spelling, which the export writes by default ...
EXPORT_ATTRIBUTES = [
    "ID",
    "Status",
    "user_id",
    "user_name",
    "order_date",
    "MW_Resource_ID",
    "Resource_Name",
    "Resource_ID",
    "Reception_Datetime",
    "Duration",
    "Type",
    "Name1",
    "Name2",
    "Name3",
    "Aim",
    "Phone",
    "City",
    "Address",
    "Email",
    "Comment",
    "LastChangedOn",
]
# ... and the seed table's, which a clinic can be switched to (`clinic set --export-names table`).
TABLE_EXPORT_ATTRIBUTES = [
    "id",
    "status",
    "user_id",
    "user_name",
    "order_date",
    "mw_resource_id",
    "resource_name",
    "resource_id",
    "reception_datetime",
    "duration",
    "type",
    "name1",
    "name2",
    "name3",
    "aim",
    "phone",
    "city",
    "address",
    "email",
    "comment",
    "LastChangedOn",
]


def an_order(order_id: int, last_changed: int, **fields: Any) -> Order:
    values: dict[str, Any] = {
        "id": order_id,
        "status": OrderStatus.RECEIVED,
        "order_date": dt.date(2024, 2, 1),
        "resource_id": 1,
        "mw_resource_id": 369,
        "resource_name": "Нестеров О. П.",
        "reception": dt.datetime(2024, 2, 5, 17, 0),
        "duration": 30,
        "last_changed": last_changed,
        "portal_changed": last_changed,  # as the portal books it
        "name1": "Иванов",
        "name2": "Иван",
        "phone": "+7 900 000-00-00",
        "email": "patient@example.org",
    }
    values.update(fields)
    return Order(**values)


def save(store: Store, clinic: Clinic, order: Order) -> None:
    store.orders.book(clinic.clinic_id, order, ZoneInfo(clinic.timezone))


def local_stamp(epoch: int, tz: ZoneInfo = MOSCOW) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).strftime("%d.%m.%Y %H:%M:%S")


def change(order_id: int, status: int, last_changed: str, extra: str = "", client_key: str = SAMPLE_KEY) -> bytes:
    row = f'<o id="{order_id}" status="{status}" LastChangedOn="{last_changed}" {extra}/>'
    return document(f"<Orders>{row}</Orders>", client_key)


def orders_result(result: Any) -> dict[str, Any]:
    element = result.find("Orders")
    return {**element.attrib, "children": [(c.tag, c.get("id")) for c in element]}


def exported(query: dict[str, str]) -> list[dict[str, str]]:
    status, body, _ = call_export(query)
    assert status == 200, body
    return [dict(o.attrib) for o in etree.fromstring(body).iter("o")]


STORED_AT = 1_700_000_000  # 14.11.2023 22:13:20 UTC


def test_a_confirmation_applies_and_the_export_carries_it(store: Store, clinic: Clinic) -> None:
    # Given order 1, received, last changed at STORED_AT
    save(store, clinic, an_order(1, STORED_AT))
    # When the MIS accepts it, quoting the LastChangedOn it exported
    before = int(time.time())
    status, result, _ = call_import(change(1, 1, local_stamp(STORED_AT)))
    # Then the change applies and stamps the order with the time of the change
    assert status == 200
    assert orders_result(result) == {
        "received": "1",
        "updated": "1",
        "unchanged": "0",
        "conflicts": "0",
        "unknown": "0",
        "rejected": "0",
        "children": [],
    }
    stored = store.orders.get_many(clinic.clinic_id, [1])[1]
    assert stored.status is OrderStatus.ACCEPTED
    assert before <= stored.last_changed <= int(time.time())
    # And the next export from that time carries the new status and stamp
    [row] = exported({"client_key": SAMPLE_KEY, "start": str(before)})
    assert row["Status"] == "1"
    assert row["LastChangedOn"] == local_stamp(stored.last_changed)


def test_a_stale_change_is_a_conflict_and_is_not_applied(store: Store, clinic: Clinic) -> None:
    # Given order 1 changed on the portal at STORED_AT
    save(store, clinic, an_order(1, STORED_AT))
    # When the MIS rejects it quoting an older LastChangedOn
    status, result, _ = call_import(change(1, 3, local_stamp(STORED_AT - 1)))
    # Then the change is reported as a conflict and the order is as it was
    assert status == 200
    assert orders_result(result)["conflicts"] == "1"
    assert orders_result(result)["children"] == [("conflict", "1")]
    assert store.orders.get_many(clinic.clinic_id, [1])[1] == an_order(1, STORED_AT)


def test_asking_for_what_is_stored_is_unchanged_whatever_the_stamp(store: Store, clinic: Clinic) -> None:
    save(store, clinic, an_order(1, STORED_AT, status=OrderStatus.ACCEPTED))
    status, result, _ = call_import(change(1, 1, "01.01.2001 00:00:00", 'reception_datetime="05.02.2024 17:00:00"'))
    assert status == 200
    assert orders_result(result)["unchanged"] == "1"
    assert store.orders.get_many(clinic.clinic_id, [1])[1].last_changed == STORED_AT


def test_an_unknown_order_is_reported_not_created(store: Store, clinic: Clinic) -> None:
    status, result, _ = call_import(change(77, 1, local_stamp(STORED_AT)))
    assert status == 200
    assert orders_result(result)["children"] == [("unknown", "77")]
    assert store.orders.get_many(clinic.clinic_id, [77]) == {}


def test_a_move_applies_but_patient_fields_never_come_from_the_mis(store: Store, clinic: Clinic) -> None:
    # Given order 1 for 05.02.2024 17:00, 30 minutes
    save(store, clinic, an_order(1, STORED_AT))
    # When the MIS moves it to 18:00 for 60 minutes and sends other patient names along
    extra = 'Reception_Datetime="05.02.2024 18:00:00" Duration="60" Name1="Петров" Phone="0"'
    status, result, _ = call_import(change(1, 1, local_stamp(STORED_AT + 5), extra))
    # Then the time moves, the patient stays
    assert status == 200 and orders_result(result)["updated"] == "1"
    stored = store.orders.get_many(clinic.clinic_id, [1])[1]
    assert (stored.reception, stored.duration) == (dt.datetime(2024, 2, 5, 18, 0), 60)
    assert (stored.name1, stored.phone) == ("Иванов", "+7 900 000-00-00")


def test_a_portal_change_between_read_and_write_makes_the_mis_change_a_conflict(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the import reads order 1 as it was at STORED_AT, but the portal changes it right after
    save(store, clinic, an_order(1, STORED_AT))
    read = store.orders.get_many

    def read_then_portal_changes(clinic_id: str, ids: Any) -> dict[int, Order]:
        seen = read(clinic_id, ids)
        store.orders.change(clinic_id, seen[1], an_order(1, STORED_AT + 10, comment="portal edit"), MOSCOW)
        return seen

    monkeypatch.setattr(store.orders, "get_many", read_then_portal_changes)
    # When the MIS's change (newer than what it read) is applied
    status, result, _ = call_import(change(1, 1, local_stamp(STORED_AT + 5)))
    # Then the conditional write refuses it: a conflict, and the portal's change stands
    assert status == 200 and orders_result(result)["conflicts"] == "1"
    assert read(clinic.clinic_id, [1])[1].last_changed == STORED_AT + 10


def test_export_has_exactly_the_seeds_attributes_in_order(store: Store, clinic: Clinic) -> None:
    save(store, clinic, an_order(1, STORED_AT, user_id="42", aim="консультация"))
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    assert status == 200
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    root = etree.fromstring(body)
    assert (root.tag, root.get("ClientKey")) == ("MediExchange", SAMPLE_KEY)
    [o] = root.find("Orders")
    assert list(o.attrib) == EXPORT_ATTRIBUTES
    assert dict(o.attrib) == {
        "ID": "1", "Status": "0", "user_id": "42", "user_name": "", "order_date": "01.02.2024",
        "MW_Resource_ID": "369", "Resource_Name": "Нестеров О. П.", "Resource_ID": "1",
        "Reception_Datetime": "05.02.2024 17:00:00", "Duration": "30", "Type": "3", "Name1": "Иванов",
        "Name2": "Иван", "Name3": "", "Aim": "консультация", "Phone": "+7 900 000-00-00", "City": "",
        "Address": "", "Email": "patient@example.org", "Comment": "", "LastChangedOn": "15.11.2023 01:13:20",
    }  # fmt: skip


def test_export_in_the_table_spelling_has_exactly_the_seed_tables_attributes_in_order(
    store: Store, clinic: Clinic
) -> None:
    # Given a clinic switched to the seed table's lower-case spelling
    store.clinics.update_settings(clinic.clinic_id, export_names=ExportNames.TABLE)
    save(store, clinic, an_order(1, STORED_AT, user_id="42", aim="консультация"))
    # When its MIS exports
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    assert status == 200
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    root = etree.fromstring(body)
    assert (root.tag, root.get("ClientKey")) == ("MediExchange", SAMPLE_KEY)
    # Then the names are the table's, in the same order, the values as in the sample spelling
    [o] = root.find("Orders")
    assert list(o.attrib) == TABLE_EXPORT_ATTRIBUTES
    assert dict(o.attrib) == {
        "id": "1", "status": "0", "user_id": "42", "user_name": "", "order_date": "01.02.2024",
        "mw_resource_id": "369", "resource_name": "Нестеров О. П.", "resource_id": "1",
        "reception_datetime": "05.02.2024 17:00:00", "duration": "30", "type": "3", "name1": "Иванов",
        "name2": "Иван", "name3": "", "aim": "консультация", "phone": "+7 900 000-00-00", "city": "",
        "address": "", "email": "patient@example.org", "comment": "", "LastChangedOn": "15.11.2023 01:13:20",
    }  # fmt: skip


def test_export_window_is_inclusive_and_end_is_optional(store: Store, clinic: Clinic) -> None:
    # Given orders last changed at 1000, 2000 (two of them) and 3000
    for order_id, stamp in ((4, 2000), (1, 1000), (3, 3000), (2, 2000)):
        save(store, clinic, an_order(order_id, stamp))

    def ids(**query: str) -> list[str]:
        return [o["ID"] for o in exported({"client_key": SAMPLE_KEY, **query})]

    # Then both bounds are inclusive, the oldest change comes first (ties by id), and no end means all
    # after start; `start` reaches back REACH_BACK_SECONDS, so a change committed late is not missed
    back = REACH_BACK_SECONDS
    assert ids(start="1000", end="2000") == ["1", "2", "4"]
    assert ids(start="2000", end="2000") == ["2", "4"]
    assert ids(start=str(1001 + back), end="2999") == ["2", "4"]
    assert ids(start=str(1000 + back), end="2999") == ["1", "2", "4"]
    assert ids(start=str(2001 + back)) == ["3"]
    assert ids(start="1000", end="") == ["1", "2", "4", "3"]
    assert ids(start=str(3001 + back)) == []


def test_export_dates_follow_the_clinics_time_zone_across_daylight_saving(store: Store, dynamodb: Any) -> None:
    # Given a Berlin clinic with orders changed one second either side of the spring change (02:00 -> 03:00)
    berlin = store.clinics.create("Berlin", "Europe/Berlin", "BERLIN-KEY")
    change_at = int(dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC).timestamp())
    save(store, berlin, an_order(1, change_at - 1))
    save(store, berlin, an_order(2, change_at))
    # When it exports; Then LastChangedOn is Berlin time, winter then summer
    rows = exported({"client_key": "BERLIN-KEY", "start": str(change_at - 1), "end": str(change_at)})
    assert [r["LastChangedOn"] for r in rows] == ["31.03.2024 01:59:59", "31.03.2024 03:00:00"]


def test_an_mis_stamp_in_a_daylight_saving_gap_is_a_rejected_change_and_the_order_is_kept(
    store: Store, dynamodb: Any
) -> None:
    berlin = store.clinics.create("Berlin", "Europe/Berlin", "BERLIN-KEY")
    save(store, berlin, an_order(1, STORED_AT))
    # When the MIS quotes 02:30 on the night the clocks jump from 02:00 to 03:00
    status, result, _ = call_import(change(1, 1, "31.03.2024 02:30:00", client_key="BERLIN-KEY"))
    # Then the change is rejected, located at its record: that local time never happened
    assert (status, result.get("status")) == (200, "partial")
    assert [{**e.attrib, "text": e.text} for e in result.findall("Error")] == [
        {
            "code": "invalid_record", "line": "3", "section": "Orders", "id": "1", "attribute": "LastChangedOn",
            "text": "attribute LastChangedOn: 31.03.2024 02:30:00 does not exist in Europe/Berlin (daylight-saving change)",
        }
    ]  # fmt: skip
    assert orders_result(result) == {
        "received": "1", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "0", "rejected": "1",
        "children": [],
    }  # fmt: skip
    # And the order is as it was
    assert store.orders.get_many(berlin.clinic_id, [1])[1] == an_order(1, STORED_AT)


# -- record by record (SPEC section 3, r2): a bad change is rejected alone ------------------------------

STAMP = local_stamp(STORED_AT)
BAD_CHANGES = [
    pytest.param('status="1" LastChangedOn="01.01.0001 00:00:00"', "LastChangedOn", "attribute LastChangedOn must lie in the years 1900 to 2199, got '01.01.0001 00:00:00'", id="LastChangedOn in year 1"),
    pytest.param('status="1" LastChangedOn="31.12.9999 23:59:59"', "LastChangedOn", "attribute LastChangedOn must lie in the years 1900 to 2199, got '31.12.9999 23:59:59'", id="LastChangedOn in year 9999"),
    pytest.param('status="1" LastChangedOn="30.02.2024 10:00:00"', "LastChangedOn", "attribute LastChangedOn is not a real date or time: '30.02.2024 10:00:00'", id="LastChangedOn not a real date"),
    pytest.param('status="2" LastChangedOn="{stamp}"', "status", "attribute status must be 0 (received), 1 (accepted) or 3 (rejected), got 2", id="status 2, which the seed does not define"),
    pytest.param('Status="один" LastChangedOn="{stamp}"', "Status", "attribute Status must be an integer, got 'один'", id="status not an integer"),
    pytest.param('status="1" LastChangedOn="{stamp}" reception_datetime="soon"', "reception_datetime", "attribute reception_datetime must be a date and time DD.MM.YYYY HH:MM:SS, got 'soon'", id="reception_datetime not a date"),
    pytest.param('status="1" LastChangedOn="{stamp}" reception_datetime="01.01.0001 00:00:00"', "reception_datetime", "attribute reception_datetime must lie in the years 1900 to 2199, got '01.01.0001 00:00:00'", id="reception_datetime in year 1"),
    pytest.param('status="1" LastChangedOn="{stamp}" duration="0"', "duration", "attribute duration must be from 1 to 1440, got 0", id="duration 0"),
    pytest.param('status="1" LastChangedOn="{stamp}" MW_Resource_ID="x"', "MW_Resource_ID", "attribute MW_Resource_ID must be an integer, got 'x'", id="mw_resource_id not an integer"),
]  # fmt: skip


@pytest.mark.parametrize(("attributes", "attribute", "message"), BAD_CHANGES)
def test_a_bad_order_change_is_rejected_alone_and_the_order_kept(
    store: Store, clinic: Clinic, attributes: str, attribute: str, message: str
) -> None:
    # Given orders 1 and 2, received, last changed at STORED_AT
    save(store, clinic, an_order(1, STORED_AT))
    save(store, clinic, an_order(2, STORED_AT, reception=dt.datetime(2024, 2, 5, 18, 0)))
    # When the MIS sends a bad change of order 1 on line 4 and accepts order 2 on line 5
    bad = f'<o id="1" {attributes.format(stamp=STAMP)}/>'
    good = f'<o id="2" status="1" LastChangedOn="{STAMP}"/>'
    status, result, _ = call_import(document(f"<Orders>\n{bad}\n{good}\n</Orders>"))
    # Then the bad change is the one Error (never a 500), and the good one applies
    assert (status, result.get("status")) == (200, "partial")
    assert [{**e.attrib, "text": e.text} for e in result.findall("Error")] == [
        {"code": "invalid_record", "line": "4", "section": "Orders", "id": "1", "attribute": attribute, "text": message}
    ]
    assert orders_result(result) == {
        "received": "2", "updated": "1", "unchanged": "0", "conflicts": "0", "unknown": "0", "rejected": "1",
        "children": [],
    }  # fmt: skip
    # And order 1 is exactly as stored, order 2 accepted
    orders = store.orders.get_many(clinic.clinic_id, [1, 2])
    assert orders[1] == an_order(1, STORED_AT)
    assert orders[2].status is OrderStatus.ACCEPTED


def test_an_order_changed_twice_in_one_document_takes_the_later_change(store: Store, clinic: Clinic) -> None:
    # Given order 1, received
    save(store, clinic, an_order(1, STORED_AT))
    # When one document accepts it on line 4 and rejects it on line 5, both quoting the exported stamp
    rows = f'<o id="1" status="1" LastChangedOn="{STAMP}"/>\n<o id="1" status="3" LastChangedOn="{STAMP}"/>'
    status, result, _ = call_import(document(f"<Orders>\n{rows}\n</Orders>"))
    # Then the later change wins, with a warning naming both lines
    assert (status, result.get("status"), result.findall("Error")) == (200, "ok", [])
    assert (orders_result(result)["updated"], orders_result(result)["rejected"]) == ("1", "0")
    [warning] = result.find("Warnings")
    assert (warning.get("code"), warning.get("line"), warning.get("id"), warning.text) == (
        "duplicate_id", "5", "1", "duplicate id 1: the record at line 5 replaces the one at line 4"
    )  # fmt: skip
    assert store.orders.get_many(clinic.clinic_id, [1])[1].status is OrderStatus.REJECTED


def test_an_order_whose_later_change_is_invalid_is_kept_as_stored(store: Store, clinic: Clinic) -> None:
    # Given order 1, received
    save(store, clinic, an_order(1, STORED_AT))
    # When one document accepts it on line 4 and sends an invalid change of it on line 5
    rows = f'<o id="1" status="1" LastChangedOn="{STAMP}"/>\n<o id="1" status="3" LastChangedOn="yesterday"/>'
    status, result, _ = call_import(document(f"<Orders>\n{rows}\n</Orders>"))
    # Then the later, invalid change wins: it is rejected and the earlier one is not applied either
    assert (status, result.get("status")) == (200, "partial")
    assert [(e.get("line"), e.get("id"), e.get("attribute")) for e in result.findall("Error")] == [
        ("5", "1", "LastChangedOn")
    ]
    assert (orders_result(result)["updated"], orders_result(result)["rejected"]) == ("0", "1")
    assert [w.get("code") for w in result.find("Warnings")] == ["duplicate_id"]
    assert store.orders.get_many(clinic.clinic_id, [1])[1] == an_order(1, STORED_AT)


def test_windows_1251_export(store: Store, clinic: Clinic) -> None:
    # Given an order whose comment holds Cyrillic, XML specials and a character windows-1251 lacks
    save(store, clinic, an_order(1, STORED_AT, comment='Боль в "спине" & <колене> 😷'))
    # When exported in windows-1251
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0", "encoding": "windows-1251"})
    # Then the bytes are windows-1251, declared as such, and every character round-trips
    assert status == 200
    assert headers["Content-Type"] == "application/xml; charset=windows-1251"
    assert body.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    assert "Боль".encode("windows-1251") in body
    assert etree.fromstring(body).find("Orders/o").get("Comment") == 'Боль в "спине" & <колене> 😷'


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"start": "0"}, 400, "missing_client_key"),
        ({"client_key": SAMPLE_KEY}, 400, "bad_request"),
        ({"client_key": SAMPLE_KEY, "start": "yesterday"}, 400, "bad_request"),
        ({"client_key": SAMPLE_KEY, "start": "10", "end": "9"}, 400, "bad_request"),
        ({"client_key": SAMPLE_KEY, "start": "0", "encoding": "koi8-r"}, 400, "bad_request"),
        ({"client_key": "no-such-key", "start": "0"}, 403, "unknown_client_key"),
    ],
)
def test_export_errors_are_xml(clinic: Clinic, query: dict[str, str], status: int, code: str) -> None:
    got, body, headers = call_export(query)
    root = etree.fromstring(body)
    assert (got, root.tag, root.get("status"), root.find("Error").get("code")) == (
        status,
        "ExportResult",
        "error",
        code,
    )
    assert headers["Content-Type"] == "application/xml; charset=utf-8"


def test_one_clinic_never_sees_anothers_orders(store: Store, clinic: Clinic) -> None:
    # Given two clinics with orders of the same ids
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    save(store, clinic, an_order(1, 1000, name1="Свой"))
    save(store, other, an_order(1, 1000, name1="Чужой"))
    # When each exports and the other changes order 1
    call_import(change(1, 3, local_stamp(1000), client_key="OTHER-KEY"))
    # Then each sees only its own order, and only the other's was rejected
    assert [(o["Name1"], o["Status"]) for o in exported({"client_key": SAMPLE_KEY, "start": "0"})] == [("Свой", "0")]
    assert [(o["Name1"], o["Status"]) for o in exported({"client_key": "OTHER-KEY", "start": "0"})] == [("Чужой", "3")]
