"""The console's schedule board through the console handler, on moto: the week and the day view show
what the portal offers, computed by the function the portal's slots answer uses."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from lxml import html
from mediexchange import portal
from mediexchange.console import board
from mediexchange.errors import InvalidRequest
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.unit.conftest import FakeContext, api_event, call_import, call_portal, decoded, document

DAY = dt.date.today() + dt.timedelta(days=10)
D = DAY.strftime("%d.%m.%Y")
NEXT = DAY + dt.timedelta(days=1)
CSRF = "csrf-of-the-session"

# Resource 501 (30-minute step) works 09:00-12:00 with a break 10:30-11:00 and on the next day 08:00-09:00;
# resource 502 (20 minutes) 14:00-15:00; the MIS has 501 busy 09:15-09:45.
SETUP = f"""<Resources>
<r id="501" name="Иванова А. А." time_step="30"/>
<r id="502" name="Петров" time_step="20"/>
</Resources>
<Schedules>
<s id="1" date="{D}" resource_id="501"><time_rules w_start="9:00" w_end="12:00" b_start="10:30" b_end="11:00"/></s>
<s id="2" date="{D}" resource_id="502"><time_rules w_start="14:00" w_end="15:00"/></s>
<s id="3" date="{NEXT:%d.%m.%Y}" resource_id="501"><time_rules w_start="8:00" w_end="9:00"/></s>
</Schedules>
<Appointments mode="full">
<a tablename="T" id="7" resource_id="501" ReceptionDateTime="{D} 09:15:00" Duration="30" title="Приём"/>
</Appointments>"""
PATIENT = {"name1": "Смирнова", "phone": "+7 (912) 345-67-89"}


def console(
    path: str,
    query: dict[str, str] | None = None,
    role: str = "operator",
    clinic_id: str = "",
    method: str = "GET",
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A console page as the authorizer lets it through for a session; returns the status and the parsed page."""
    from functions.console.app import lambda_handler

    body = urlencode(form).encode() if form is not None else b""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    event = api_event(method, path, body, headers, query)
    who = "alice" if role == "operator" else f"clinic:{clinic_id}"
    event["requestContext"]["authorizer"] = {"role": role, "who": who, "clinic_id": clinic_id, "csrf": CSRF}
    response = lambda_handler(event, FakeContext())
    text = decoded(response)
    return response["statusCode"], html.fromstring(text) if text else None


@pytest.fixture
def resources(clinic: Clinic) -> dict[int, int]:
    """The sample clinic with SETUP imported; {MIS resource id: portal resource id}."""
    status, _, _ = call_import(document(SETUP))
    assert status == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    return {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}


def api_slots(clinic: Clinic, resource_id: int, first: dt.date, last: dt.date) -> list[str]:
    query = {"resource_id": str(resource_id), "from": first.isoformat(), "to": last.isoformat()}
    status, body = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/slots", query=query)
    assert status == 200, body
    return [slot["start"] for slot in body["slots"]]


def day_view(clinic: Clinic, day: dt.date, **query: str) -> Any:
    status, page = console(f"/console/clinics/{clinic.clinic_id}/board/{day}", query or None)
    assert status == 200
    assert page.xpath("//main/@data-page") == ["day"]
    return page


def row(page: Any, resource_id: int) -> Any:
    [found] = page.xpath(f"//tr[@data-resource='{resource_id}']")
    return found


def slots(page: Any, resource_id: int) -> list[str]:
    return [str(s) for s in row(page, resource_id).xpath(".//*[@data-slot]/@data-slot")]


def book(clinic: Clinic, resource_id: int, at: str) -> dict[str, Any]:
    body = {"resource_id": resource_id, "reception_datetime": f"{DAY}T{at}", **PATIENT}
    status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    assert status == 201, order
    return dict(order)


def test_the_day_view_shows_windows_breaks_busy_time_and_free_slots(clinic: Clinic, resources: dict[int, int]) -> None:
    page = day_view(clinic, DAY)
    ivanova = row(page, resources[501])
    # Then the free slots are the schedule's steps off the break and off the MIS's busy time
    assert slots(page, resources[501]) == ["10:00", "11:00", "11:30"]
    assert slots(page, resources[502]) == ["14:00", "14:20", "14:40"]
    # And blocks sit at their minute of the day: the window 09:00-12:00, the break, the appointment
    [window] = ivanova.xpath(".//rect[@class='window']")
    assert (window.get("x"), window.get("width")) == ("540", "180")
    [pause] = ivanova.xpath(".//rect[@class='break']")
    assert (pause.get("x"), pause.get("width")) == ("630", "30")
    [busy] = ivanova.xpath(".//rect[@class='busy']")
    assert (busy.get("data-appointment"), busy.get("x"), busy.get("width")) == ("T#7", "555", "30")
    assert busy.xpath("string(title)") == "busy (MIS) 09:15–09:45 · Приём"
    # And the zone is named on the page
    assert page.xpath("string(//*[@data-zone])") == "Europe/Moscow"


def test_a_booked_slot_appears_as_an_order_and_leaves_the_free_slots(clinic: Clinic, resources: dict[int, int]) -> None:
    # Given 11:00 is free on the board
    assert "11:00" in slots(day_view(clinic, DAY), resources[501])
    # When a patient books it through the portal
    order = book(clinic, resources[501], "11:00")
    # Then the day view shows the order there, received, and 11:00 is no longer free
    page = day_view(clinic, DAY)
    assert slots(page, resources[501]) == ["10:00", "11:30"]
    [placed] = row(page, resources[501]).xpath(".//rect[@data-order-id]")
    assert (placed.get("data-order-id"), placed.get("data-status")) == (str(order["id"]), "received")
    assert (placed.get("x"), placed.get("width")) == ("660", "30")
    assert placed.getparent().get("href") == f"/console/clinics/{clinic.clinic_id}/orders/{order['id']}"
    # And the week board's cell counts one free slot less and links the order
    status, week = console(f"/console/clinics/{clinic.clinic_id}/board", {"from": DAY.isoformat(), "days": "2"})
    assert status == 200 and week.xpath("//main/@data-page") == ["board"]
    [cell] = row(week, resources[501]).xpath(f".//td[@data-day='{DAY}']")
    assert cell.xpath(".//@data-free") == ["2"]
    assert [(a.get("data-order-id"), a.get("data-status")) for a in cell.xpath(".//a[@data-order-id]")] == [
        (str(order["id"]), "received")
    ]
    # And once the MIS rejects it, its time is free again and it leaves the board
    stamp = dt.datetime.fromisoformat(order["last_changed"]).strftime("%d.%m.%Y %H:%M:%S")
    call_import(document(f'<Orders><o id="{order["id"]}" status="3" LastChangedOn="{stamp}"/></Orders>'))
    page = day_view(clinic, DAY)
    assert slots(page, resources[501]) == ["10:00", "11:00", "11:30"]
    assert page.xpath("//*[@data-order-id]") == []


def test_the_boards_free_slots_are_the_portals(clinic: Clinic, resources: dict[int, int]) -> None:
    # Given an order on each resource
    book(clinic, resources[501], "10:00")
    book(clinic, resources[502], "14:20")
    first, last = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    # When the week board shows the four days
    query = {"from": first.isoformat(), "days": "4"}
    _, week = console(f"/console/clinics/{clinic.clinic_id}/board", query)
    for resource_id in resources.values():
        offered = api_slots(clinic, resource_id, first, last)
        # Then every day view's free slots, to the offset, are the portal's slots of that resource and day
        shown = [
            str(s)
            for n in range(4)
            for s in row(day_view(clinic, first + dt.timedelta(days=n)), resource_id).xpath(".//@data-start")
        ]
        assert shown == offered
        # And the week's counts per day are the portal's too
        cells = row(week, resource_id).xpath("./td")
        counts = {c.get("data-day"): int((c.xpath("./p/@data-free") or ["0"])[0]) for c in cells}
        days = [(first + dt.timedelta(days=n)).isoformat() for n in range(4)]
        assert counts == {day: sum(s.startswith(day) for s in offered) for day in days}
    assert [int(c) for c in row(week, resources[501]).xpath(".//td/p/@data-free")] == [2, 2]  # 10:00 is taken


def test_the_computation_is_one_resource_days_for_board_and_api(
    store: Store, clinic: Clinic, resources: dict[int, int]
) -> None:
    # When the board reads a page of resources in parallel
    found = board.board(store, clinic, DAY, 2, 1)
    # Then each row holds exactly what the portal's shared computation gives for that resource
    listed = portal.resources(store, clinic.clinic_id)
    one = portal.resource_days(store, clinic, listed[0][1], DAY, NEXT)
    shown = [dt.datetime.fromisoformat(f.start) for c in found.rows[0].cells for f in c.free]
    assert shown == [s.start for s in one.free] and len(shown) == 5
    assert [b.appointment for b in found.rows[0].cells[0].busy] == ["T#7"]


@pytest.mark.parametrize(
    ("written", "refusal"),
    [
        pytest.param("2024-2-03", "from must be a date YYYY-MM-DD", id="not zero-padded"),
        pytest.param("03.02.2024", "from must be a date YYYY-MM-DD", id="the MIS's format"),
        pytest.param("2024-02-30", "from is not a real date: 2024-02-30", id="no such day"),
    ],
)
def test_the_board_reads_a_day_as_the_portals_slots_do(
    store: Store, clinic: Clinic, resources: dict[int, int], written: str, refusal: str
) -> None:
    # Given a day written wrongly
    slots_query = {"resource_id": str(resources[501]), "from": written, "to": written}
    # When the week board and the portal's slots are asked from it
    with pytest.raises(InvalidRequest) as on_board:
        board.week_board(store, clinic, {"from": written})
    with pytest.raises(InvalidRequest) as in_slots:
        portal.slots_view(store, clinic.clinic_id, slots_query)
    # Then both refuse it in the same words
    assert (str(on_board.value), str(in_slots.value)) == (refusal, refusal)


def test_the_board_starts_today_when_no_day_is_given(store: Store, clinic: Clinic) -> None:
    # When the week board is asked with an empty from
    found = board.week_board(store, clinic, {"from": ""})
    # Then it starts on the clinic's today
    assert found.first == board.today_in(clinic)


def next_autumn_change(after: dt.date) -> dt.date:
    year = after.year if after < dt.date(after.year, 10, 1) else after.year + 1
    last = dt.date(year, 10, 31)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def test_a_clock_change_day_is_25_hours_long_on_the_board(store: Store) -> None:
    # Given a Berlin clinic working 00:00-06:00 in 60-minute steps on the night the clocks go back
    key = "BERLIN-KEY"
    day = next_autumn_change(dt.date.today() + dt.timedelta(days=1))
    clinic = store.clinics.create("Berlin", "Europe/Berlin", key)
    setup = (
        '<Resources><r id="1" name="Dr. Weber" time_step="60"/></Resources>'
        f'<Schedules><s id="1" date="{day:%d.%m.%Y}" resource_id="1"><time_rules w_start="00:00" w_end="06:00"/></s>'
        "</Schedules>"
    )
    assert call_import(document(setup, key))[0] == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    resource_id = view["resources"][0]["resource_id"]
    # When the day view shows that day
    page = day_view(clinic, day)
    # Then 02:00 is offered twice, each with its own offset, exactly as the portal offers them
    assert slots(page, resource_id) == ["00:00", "01:00", "02:00", "02:00", "03:00", "04:00", "05:00"]
    assert [str(s) for s in row(page, resource_id).xpath(".//@data-start")] == api_slots(clinic, resource_id, day, day)
    # And each slot sits at its elapsed minute: the second 02:00 an hour after the first
    xs = [int(r.get("x")) - 1 for r in row(page, resource_id).xpath(".//rect[@data-slot]")]
    assert xs == [0, 60, 120, 180, 240, 300, 360]
    # And the hour ruler names 02:00 twice
    labels = page.xpath("//svg[@class='hours']/text/text()")
    assert labels[:5] == ["00:00", "01:00", "02:00", "02:00", "03:00"]
    # And the day is 25 hours long
    assert board.board(store, clinic, day, 1, 1).rows[0].cells[0].length == 1500


def test_a_stale_clinic_shows_that_the_portal_offers_nothing(
    store: Store, clinic: Clinic, resources: dict[int, int]
) -> None:
    # Given the MIS last sent its busy time 30 hours ago, and the clinic allows 24
    store.clinics.note_appointments_sync(clinic.clinic_id, int(time.time()) - 30 * 3600)
    store.clinics.update_settings(clinic.clinic_id, stale_after_hours=24)
    # Then the portal offers nothing
    assert api_slots(clinic, resources[501], DAY, DAY) == []
    # And neither does the board, which says why
    page = day_view(clinic, DAY)
    assert page.xpath("//*[@data-slot]") == []
    assert page.xpath("//*[@data-stale]")
    _, week = console(f"/console/clinics/{clinic.clinic_id}/board", {"from": DAY.isoformat()})
    assert week.xpath("//*[@data-stale]") and set(week.xpath("//@data-free")) == {"0"}
    # And its schedule and busy time still show
    assert row(page, resources[501]).xpath(".//rect[@class='busy']")


def test_the_board_pages_25_resources_at_a_time(clinic: Clinic) -> None:
    # Given 30 resources
    listed = "".join(f'<r id="{n}" name="R{n:02d}" time_step="30" pos="{n}"/>' for n in range(1, 31))
    assert call_import(document(f"<Resources>{listed}</Resources>"))[0] == 200
    # Then the first page shows 25 of them, the second the other 5
    _, first = console(f"/console/clinics/{clinic.clinic_id}/board")
    _, second = console(f"/console/clinics/{clinic.clinic_id}/board", {"page": "2"})
    assert len(first.xpath("//tbody/tr[@data-resource]")) == 25
    assert [n.text for n in second.xpath("//tbody//span[@class='resource-name']")] == [f"R{n}" for n in range(26, 31)]
    # And seven days from today by default, at most 14 on request
    assert len(first.xpath("//thead//th[@data-day]")) == 7
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=3))).date()
    assert first.xpath("//thead//th[@data-day]/@data-day")[0] == today.isoformat()
    assert console(f"/console/clinics/{clinic.clinic_id}/board", {"days": "14"})[0] == 200
    assert console(f"/console/clinics/{clinic.clinic_id}/board", {"days": "15"})[0] == 400
    assert console(f"/console/clinics/{clinic.clinic_id}/board", {"from": "31.12.2026"})[0] == 400


def test_an_integrator_sees_only_their_own_clinics_board(
    store: Store, clinic: Clinic, resources: dict[int, int]
) -> None:
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    own = f"/console/clinics/{clinic.clinic_id}"
    assert console(f"{own}/board", role="integrator", clinic_id=clinic.clinic_id)[0] == 200
    assert console(f"{own}/board/{DAY}", role="integrator", clinic_id=clinic.clinic_id)[0] == 200
    # And another clinic's board, or one that does not exist, is the same 404
    for path in (f"{own}/board", f"{own}/board/{DAY}", "/console/clinics/000000000000/board"):
        status, page = console(path, role="integrator", clinic_id=other.clinic_id)
        assert status == 404 and page.xpath("//*[@data-error]/@data-error") == ["not_found"]
