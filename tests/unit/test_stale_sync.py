"""SPEC r2 section 5, "Stale busy time": a clinic whose MIS sends Appointments but has sent none for
longer than its stale_after offers no slots and books nothing, so patients never book on busy time
the portal cannot see."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE
from tests.unit.conftest import call_import, call_portal, document

DAY = dt.date.today() + dt.timedelta(days=7)
SCHEDULE = f'<Schedules><s id="1" date="{DAY:%d.%m.%Y}" resource_id="393"><time_rules w_start="9:00" w_end="12:00"/></s></Schedules>'
BUSY = f'<Appointments SyncMode="full"><a tablename="Visits" id="1" resource_id="393" ReceptionDateTime="{DAY:%d.%m.%Y} 09:00" Duration="30"/></Appointments>'


@pytest.fixture
def portal_id(store: Store, clinic: Clinic) -> int:
    """The sample's resources, resource 393 working 9:00-12:00 next week, busy 9:00-9:30."""
    assert call_import(SAMPLE.read_bytes())[0] == 200
    assert call_import(document(SCHEDULE + BUSY))[0] == 200
    return store.records.resource_ids(clinic.clinic_id)[393]


def slots(clinic: Clinic, portal_id: int) -> tuple[int, Any]:
    return call_portal(
        "GET",
        f"/portal/clinics/{clinic.clinic_id}/slots",
        query={"resource_id": str(portal_id), "from": str(DAY), "to": str(DAY)},
    )


def book(clinic: Clinic, portal_id: int) -> tuple[int, Any]:
    body = {
        "resource_id": portal_id,
        "reception_datetime": f"{DAY}T10:00",
        "name1": "Смирнова",
        "phone": "+7 912 345-67-89",
    }
    return call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)


def test_an_import_with_appointments_records_when_the_mis_last_synced(store: Store, clinic: Clinic) -> None:
    before = int(time.time())
    assert call_import(document(BUSY))[0] == 200
    synced = store.clinics.get(clinic.clinic_id)
    assert synced is not None and synced.appointments_synced_at is not None
    assert before <= synced.appointments_synced_at <= int(time.time())


def test_a_fresh_sync_offers_slots(store: Store, clinic: Clinic, portal_id: int) -> None:
    status, answer = slots(clinic, portal_id)
    assert status == 200 and "stale" not in answer
    assert [s["start"][11:16] for s in answer["slots"]] == ["09:30", "10:00", "10:30", "11:00", "11:30"]


def test_busy_time_older_than_stale_after_offers_nothing_and_books_nothing(
    store: Store, clinic: Clinic, portal_id: int
) -> None:
    # Given the MIS last sent its busy time 3 h 1 min ago (the default stale_after is 3 hours)
    last = int(time.time()) - 3 * 3600 - 60
    store.clinics.note_appointments_sync(clinic.clinic_id, last)
    # When a patient asks for slots and tries to book
    status, answer = slots(clinic, portal_id)
    booking_status, refusal = book(clinic, portal_id)
    # Then no slot is offered, the answer says why and since when, and booking is refused with 409
    expected_last = dt.datetime.fromtimestamp(last, dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()
    assert (status, answer) == (200, {"slots": [], "stale": True, "last_sync": expected_last})
    assert (booking_status, refusal["error"]["code"]) == (409, "sync_stale")
    # And the MIS syncing again makes the slots come back
    assert call_import(document(BUSY))[0] == 200
    assert len(slots(clinic, portal_id)[1]["slots"]) == 5


def test_a_clinic_allowed_longer_is_not_stale_yet(store: Store, clinic: Clinic, portal_id: int) -> None:
    # Given a clinic set to stale_after 5 hours, last synced 4 hours ago
    store.clinics.update_settings(clinic.clinic_id, stale_after_hours=5)
    store.clinics.note_appointments_sync(clinic.clinic_id, int(time.time()) - 4 * 3600)
    # Then its slots are offered
    assert len(slots(clinic, portal_id)[1]["slots"]) == 5


def test_a_clinic_whose_mis_never_sends_appointments_is_never_stale(store: Store, clinic: Clinic) -> None:
    # Given a clinic with resources and schedules but no Appointments ever
    assert call_import(SAMPLE.read_bytes().split(b"<Appointments")[0] + b"</MediExchange>")[0] == 200
    assert call_import(document(SCHEDULE))[0] == 200
    portal_id = store.records.resource_ids(clinic.clinic_id)[393]
    # Then its slots are offered whatever the time
    status, answer = slots(clinic, portal_id)
    assert status == 200 and "stale" not in answer and len(answer["slots"]) == 6
