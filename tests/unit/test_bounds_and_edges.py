"""Answers stay within their bounds, and the edges of overnight windows and status.php hold."""

from __future__ import annotations

import datetime as dt

from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_import, call_portal, call_status, document


def test_the_imports_own_warnings_are_bounded_too(clinic: Clinic) -> None:
    # Given 1,200 schedules of a resource the clinic never sent (each an unknown_resource warning)
    rows = "".join(
        f'<s id="{n}" date="01.07.2010" resource_id="999"><time_rules w_start="9:00" w_end="10:00"/></s>'
        for n in range(1200)
    )
    # When they are imported
    status, result, _ = call_import(document(f"<Schedules>{rows}</Schedules>"))
    # Then they apply, and the answer lists 1,000 warnings and counts the other 200
    warnings = list(result.iter("w"))
    assert (status, result.find("Schedules").get("written"), len(warnings)) == (200, "1200", 1001)
    assert (warnings[-1].get("code"), warnings[-1].text) == ("more_warnings", "and 200 more not listed")


def test_a_booking_in_an_overnight_window_may_run_past_midnight(store: Store, clinic: Clinic) -> None:
    # Given resource 393 working 20:00-08:00 next week, 30-minute steps
    day = dt.date.today() + dt.timedelta(days=7)
    schedule = f'<Schedules><s id="1" date="{day:%d.%m.%Y}" resource_id="393"><time_rules w_start="20:00" w_end="08:00"/></s></Schedules>'
    assert call_import(SAMPLE.read_bytes())[0] == 200 and call_import(document(schedule))[0] == 200
    portal_id = store.records.resource_ids(clinic.clinic_id)[393]
    # When a patient books 23:30 for an hour (two steps, the second after midnight)
    body = {
        "resource_id": portal_id,
        "reception_datetime": f"{day}T23:30",
        "duration": 60,
        "name1": "Совина",
        "phone": "+7 900 000-00-01",
    }
    status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    # Then it is booked, and both steps are taken
    assert (status, order["duration"]) == (201, 60)
    query = {
        "resource_id": str(portal_id),
        "from": str(day + dt.timedelta(days=1)),
        "to": str(day + dt.timedelta(days=1)),
    }
    starts = [
        s["start"][11:16]
        for s in call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/slots", query=query)[1]["slots"]
    ]
    assert starts[:2] == ["00:30", "01:00"]  # 23:30 and 00:00 are the booking's two steps


def test_status_of_an_import_id_this_service_never_made_is_404(clinic: Clinic) -> None:
    # Given an import_id longer than a DynamoDB key may be (AWS would refuse the lookup itself)
    status, root = call_status({"client_key": SAMPLE_KEY, "import_id": "x" * 2000})
    # Then it is simply not found
    assert (status, root.find("Error").get("code")) == (404, "not_found")


def test_order_ids_an_answer_lists_are_bounded_and_counted_whole(clinic: Clinic) -> None:
    # Given an Orders section of 1,500 order ids the portal never made
    rows = "".join(f'<o id="{n}" status="1" LastChangedOn="01.07.2010 12:11:02"/>' for n in range(1, 1501))
    # When it is imported
    status, result, _ = call_import(document(f"<Orders>{rows}</Orders>"))
    # Then each is counted, and the first 1,000 are listed: the answer stays bounded
    orders = result.find("Orders")
    assert (status, orders.get("unknown")) == (200, "1500")
    assert [u.get("id") for u in orders.findall("unknown")] == [str(n) for n in range(1, 1001)]


def test_an_error_quotes_a_long_refused_value_only_in_part(clinic: Clinic) -> None:
    # Given a schedule whose date is 900 characters long (longer ones are refused by their length alone)
    long_date = "1" * 900
    body = f'<Schedules><s id="1" date="{long_date}" resource_id="5"><time_rules w_start="9:00" w_end="10:00"/></s></Schedules>'
    # When it is imported
    status, result, _ = call_import(document(body))
    # Then the record is rejected, quoting the value's start and saying how long it was
    [error] = result.findall("Error")
    assert (status, error.get("attribute")) == (200, "date")
    assert error.text.endswith(f"got '{'1' * 80}'… (900 characters)")
    assert len(error.text) < 300
