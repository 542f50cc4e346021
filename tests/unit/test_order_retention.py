"""Orders and their held time carry `expires_at` (unix seconds) for DynamoDB's TTL: patient data is not
kept forever (ORDER_RETENTION_DAYS after the visit or the order's last change, the later)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.unit.conftest import call_import, call_portal, document
from tests.unit.test_portal import DAY, MOSCOW, PATIENT, SETUP

DAYS = 365 * 86400  # the default retention


def item(table: str, key: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return found


def test_a_booking_and_its_hold_expire_a_retention_after_the_visit(store: Store, clinic: Clinic) -> None:
    # Given the portal's resource 501 works on DAY 09:00-12:00
    assert call_import(document(SETUP))[0] == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    resource = next(r["resource_id"] for r in view["resources"] if r["mw_resource_id"] == 501)
    # When a patient books 09:30 for 30 minutes
    body = {"resource_id": resource, "reception_datetime": f"{DAY.isoformat()}T09:30", **PATIENT}
    status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    assert status == 201
    # Then the order expires a retention after the visit ends, and the day's holds after the day is over
    visit_ends = int(dt.datetime.combine(DAY, dt.time(10), MOSCOW).timestamp())
    stored = item(store.settings.orders_table, {"clinic_id": {"S": clinic.clinic_id}, "order_id": {"N": "1"}})
    assert int(stored["expires_at"]["N"]) == visit_ends + DAYS
    held = item(store.settings.holds_table, {"pk": {"S": f"{clinic.clinic_id}#501"}, "day": {"S": DAY.isoformat()}})
    day_over = int(dt.datetime.combine(DAY + dt.timedelta(days=2), dt.time(), dt.UTC).timestamp())
    assert int(held["expires_at"]["N"]) == day_over + DAYS
    # When the MIS moves the visit a day later
    later = (DAY + dt.timedelta(days=1)).strftime("%d.%m.%Y")
    change = f'<Orders><o id="{order["id"]}" status="1" Reception_Datetime="{later} 09:30:00"/></Orders>'
    assert call_import(document(change))[0] == 200
    # Then the order's expiry moves with it
    stored = item(store.settings.orders_table, {"clinic_id": {"S": clinic.clinic_id}, "order_id": {"N": "1"}})
    assert int(stored["expires_at"]["N"]) == visit_ends + 86400 + DAYS
