"""Booking in the hour the autumn clock change repeats (SPEC §5): an offset in reception_datetime picks
the occurrence, both occurrences can be booked, and the order keeps the one it was booked for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.unit.conftest import call_import, call_portal, document

KEY = "BERLIN-KEY"
PATIENT = {"name1": "Schmidt", "phone": "+49 30 1234567"}


def next_autumn_change(after: dt.date) -> dt.date:
    """The last Sunday of October (Europe's clocks go back at 03:00 summer time) after `after`."""
    year = after.year if after < dt.date(after.year, 10, 1) else after.year + 1
    last = dt.date(year, 10, 31)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


DAY = next_autumn_change(dt.date.today() + dt.timedelta(days=1))


@pytest.fixture
def berlin(store: Store) -> tuple[Clinic, int]:
    """A Berlin clinic whose one resource (60-minute steps) works 00:00-06:00 on the night the clocks go back."""
    clinic = store.clinics.create("Berlin", "Europe/Berlin", KEY)
    setup = (
        '<Resources><r id="1" name="Dr. Weber" time_step="60"/></Resources>'
        f'<Schedules><s id="1" date="{DAY:%d.%m.%Y}" resource_id="1"><time_rules w_start="00:00" w_end="06:00"/></s>'
        "</Schedules><Appointments/>"
    )
    assert call_import(document(setup, KEY))[0] == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    return clinic, view["resources"][0]["resource_id"]


def book(clinic: Clinic, resource_id: int, at: str) -> tuple[int, Any]:
    body = {"resource_id": resource_id, "reception_datetime": f"{DAY}T{at}", **PATIENT}
    return call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)


def free_starts(clinic: Clinic, resource_id: int) -> list[str]:
    query = {"resource_id": str(resource_id), "from": DAY.isoformat(), "to": DAY.isoformat()}
    status, body = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/slots", query=query)
    assert status == 200, body
    return [slot["start"][11:] for slot in body["slots"]]


def test_the_repeated_hour_offers_two_slots(berlin: tuple[Clinic, int]) -> None:
    clinic, resource = berlin
    # Then seven hours of work fit between 00:00 and 06:00 that night, 02:00 twice, told apart by the offset
    assert free_starts(clinic, resource) == [
        "00:00:00+02:00",
        "01:00:00+02:00",
        "02:00:00+02:00",
        "02:00:00+01:00",
        "03:00:00+01:00",
        "04:00:00+01:00",
        "05:00:00+01:00",
    ]


def test_an_offset_books_the_second_occurrence_and_the_order_keeps_it(berlin: tuple[Clinic, int]) -> None:
    clinic, resource = berlin
    # When a patient books 02:00 in winter time (the second occurrence)
    status, order = book(clinic, resource, "02:00+01:00")
    # Then it is booked for that instant, and read back the same
    assert status == 201, order
    assert order["reception_datetime"] == f"{DAY}T02:00:00+01:00"
    _, again = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    assert again["reception_datetime"] == f"{DAY}T02:00:00+01:00"
    # And only that slot is taken: the first 02:00 stays free
    assert "02:00:00+01:00" not in free_starts(clinic, resource)
    assert "02:00:00+02:00" in free_starts(clinic, resource)
    # When another patient books 02:00 without an offset (the first occurrence, as ever), then with it
    assert book(clinic, resource, "02:00")[0] == 201
    # Then both 02:00 slots are taken, and neither can be booked again
    assert [s for s in free_starts(clinic, resource) if s.startswith("02:")] == []
    assert book(clinic, resource, "02:00+02:00")[0] == 409
    assert book(clinic, resource, "02:00+01:00")[0] == 409


def test_an_offset_the_zone_does_not_have_then_is_refused(berlin: tuple[Clinic, int]) -> None:
    clinic, resource = berlin
    # When a booking names 04:00 with summer time's offset (summer time is over by then)
    status, answer = book(clinic, resource, "04:00+02:00")
    # Then it is refused, naming the field, the offset and the zone
    assert status == 400
    assert answer["error"] == {
        "code": "invalid_request",
        "message": f"reception_datetime {DAY}T04:00+02:00 has an offset the clinic's zone (Europe/Berlin) "
        "does not have then",
    }
