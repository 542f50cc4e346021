"""The console's orders (search, an order with its history) and its administration (settings, keys,
disabling, a new clinic) through the console handler, on moto."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mediexchange.console import admin
from mediexchange.keys import canonical_client_key
from mediexchange.records import Clinic, ExportNames
from mediexchange.store import Store
from mediexchange.store.clinics import key_hash

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, call_portal, document, snapshot
from tests.unit.test_console_board import CSRF, console

DAY = dt.date.today() + dt.timedelta(days=10)
D = DAY.strftime("%d.%m.%Y")
SETUP = f"""<Resources>
<r id="501" name="Иванова А. А." time_step="30"/>
<r id="502" name="Петров" time_step="20"/>
</Resources>
<Schedules>
<s id="1" date="{D}" resource_id="501"><time_rules w_start="9:00" w_end="12:00"/></s>
<s id="2" date="{D}" resource_id="502"><time_rules w_start="14:00" w_end="15:00"/></s>
</Schedules>"""
PATIENT = {"name1": "Смирнова", "name2": "Ольга", "phone": "+7 (912) 345-67-89", "email": "olga@example.ru"}


@pytest.fixture
def resources(clinic: Clinic) -> dict[int, int]:
    assert call_import(document(SETUP))[0] == 200
    _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    return {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}


def book(clinic: Clinic, resource_id: int, at: str) -> dict[str, Any]:
    body = {"resource_id": resource_id, "reception_datetime": f"{DAY}T{at}", **PATIENT}
    status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", body)
    assert status == 201, order
    return dict(order)


def mis_change(order: dict[str, Any], status: int, extra: str = "") -> bytes:
    stamp = dt.datetime.fromisoformat(order["last_changed"]).strftime("%d.%m.%Y %H:%M:%S")
    return document(f'<Orders><o id="{order["id"]}" status="{status}" LastChangedOn="{stamp}" {extra}/></Orders>')


def found(page: Any) -> list[str]:
    return [str(n) for n in page.xpath("//tr[@data-order]/@data-order")]


# -- orders ----------------------------------------------------------------------------------------


def test_orders_are_found_by_id_by_day_and_by_resource(clinic: Clinic, resources: dict[int, int]) -> None:
    # Given three orders on the day, two on Иванова, one on Петров
    first = book(clinic, resources[501], "11:00")
    second = book(clinic, resources[502], "14:20")
    third = book(clinic, resources[501], "09:00")
    orders = f"/console/clinics/{clinic.clinic_id}/orders"
    # Then by id exactly that one, linked to its page
    status, page = console(orders, {"id": str(second["id"])})
    assert status == 200 and page.xpath("//main/@data-page") == ["orders"]
    assert found(page) == [str(second["id"])]
    assert page.xpath("//tr[@data-order]//a/@href") == [f"{orders}/{second['id']}"]
    assert found(console(orders, {"id": "999"})[1]) == []
    # And by day every order of the day, in visit order, with status and time in the clinic's zone
    _, page = console(orders, {"day": DAY.isoformat()})
    assert found(page) == [str(third["id"]), str(first["id"]), str(second["id"])]
    assert page.xpath("//tr[@data-order][1]/td[3]/text()") == [f"{DAY:%d.%m.%Y} 09:00"]
    assert set(page.xpath("//tr[@data-order]/@data-status")) == {"received"}
    # And by day and resource only that resource's
    _, page = console(orders, {"day": DAY.isoformat(), "resource_id": str(resources[501])})
    assert found(page) == [str(third["id"]), str(first["id"])]
    # And another day has none
    assert found(console(orders, {"day": (DAY + dt.timedelta(days=1)).isoformat()})[1]) == []
    # And nonsense is a 400 page, not a crash
    assert console(orders, {"id": "abc"})[0] == 400
    assert console(orders, {"day": "10.12.2026"})[0] == 400


def test_an_orders_page_shows_its_fields_and_its_history_in_order(clinic: Clinic, resources: dict[int, int]) -> None:
    # Given an order booked, exported, accepted by the MIS, then moved by it to 11:30
    order = book(clinic, resources[501], "11:00")
    assert call_export({"client_key": SAMPLE_KEY, "start": "0"})[0] == 200
    _, accepted, _ = call_import(mis_change(order, 1))
    _, seen = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/{order['id']}")
    _, moved, _ = call_import(mis_change(seen, 1, f'reception_datetime="{D} 11:30:00"'))
    # When the operator opens the order
    status, page = console(f"/console/clinics/{clinic.clinic_id}/orders/{order['id']}")
    # Then it shows the order as it is now, the patient's data included
    assert status == 200 and page.xpath("//main/@data-page") == ["order"]
    fields = {dd.get("data-field"): dd.text_content() for dd in page.xpath("//dd[@data-field]")}
    assert fields["Status"] == "accepted"
    assert fields["Visit"] == f"{DAY:%d.%m.%Y} 11:30"
    assert (fields["Surname"], fields["Name"], fields["Phone"]) == ("Смирнова", "Ольга", "+7 (912) 345-67-89")
    # And its history oldest first: booked, exported, accepted, moved; each MIS change links its receipt
    assert page.xpath("//tr[@data-event]/@data-event") == ["booked", "exported", "accepted", "moved"]
    assert page.xpath("//tr[@data-event]/@data-by") == ["portal", "mis", "mis", "mis"]
    imports = [accepted.get("import_id"), moved.get("import_id")]
    links = page.xpath("//tr[@data-event]//a[@data-import]/@href")
    assert links == [f"/console/clinics/{clinic.clinic_id}/imports/{i}" for i in imports]
    visits = [tr.xpath("string(td[4])") for tr in page.xpath("//tr[@data-event]")]
    assert [v[:16] for v in visits] == [f"{DAY:%d.%m.%Y} 11:00"] * 3 + [f"{DAY:%d.%m.%Y} 11:30"]


def test_an_unknown_order_is_a_404_page(clinic: Clinic, resources: dict[int, int]) -> None:
    for order_id in ("12345", "abc"):
        status, page = console(f"/console/clinics/{clinic.clinic_id}/orders/{order_id}")
        assert status == 404 and page.xpath("//*[@data-error]/@data-error") == ["not_found"]


def test_the_clinics_integrator_sees_its_orders_and_no_one_elses(
    store: Store, clinic: Clinic, resources: dict[int, int], logged: pytest.LogCaptureFixture
) -> None:
    order = book(clinic, resources[501], "11:00")
    path = f"/console/clinics/{clinic.clinic_id}/orders/{order['id']}"
    status, page = console(path, role="integrator", clinic_id=clinic.clinic_id)
    assert status == 200 and "Смирнова" in page.text_content()
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    for where in (path, f"/console/clinics/{clinic.clinic_id}/orders"):
        assert console(where, role="integrator", clinic_id=other.clinic_id)[0] == 404
    # And the patient's data is never logged
    assert "Смирнова" not in everything(logged) and "345-67-89" not in everything(logged)


# -- administration --------------------------------------------------------------------------------


def settings_path(clinic: Clinic) -> str:
    return f"/console/clinics/{clinic.clinic_id}/settings"


def post(path: str, form: dict[str, str] | None = None, **viewer: str) -> tuple[int, Any]:
    return console(path, method="POST", form={"csrf": CSRF, **(form or {})}, **viewer)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at INFO and above while the test runs (the tests' log level is WARNING)."""
    service = logging.getLogger(admin.logger.name)
    level = service.level
    admin.logger.setLevel("INFO")
    yield caplog
    service.setLevel(level)


def changes(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """The console's change lines: who, what, which clinic."""
    found = [r for r in caplog.records if r.getMessage() == "console change"]
    return [(r.who, r.action, r.clinic_id) for r in found]


def everything(caplog: pytest.LogCaptureFixture) -> str:
    return repr([r.__dict__ for r in caplog.records])


def test_settings_change_and_are_logged_with_who_changed_them(
    store: Store, clinic: Clinic, logged: pytest.LogCaptureFixture
) -> None:
    status, page = console(settings_path(clinic))
    assert status == 200 and page.xpath("//main/@data-page") == ["settings"]
    assert page.xpath("//input[@name='timezone']/@value") == ["Europe/Moscow"]
    # When the operator changes all three
    form = {"timezone": "Asia/Yekaterinburg", "export_names": "table", "stale_after_hours": "12.5"}
    status, _ = post(settings_path(clinic), form)
    # Then they are stored, and the settings page (where the answer sends the browser) says so
    assert status == 303
    assert console(settings_path(clinic), {"saved": "1"})[1].xpath("//*[@data-saved]")
    changed = store.clinics.get(clinic.clinic_id)
    assert changed is not None
    assert (changed.timezone, changed.export_names, changed.stale_after_hours) == (
        "Asia/Yekaterinburg",
        ExportNames.TABLE,
        12.5,
    )
    assert changes(logged) == [("alice", "settings", clinic.clinic_id)]


def test_a_bad_setting_is_refused_on_the_page_and_changes_nothing(
    store: Store, dynamodb: Any, clinic: Clinic, logged: pytest.LogCaptureFixture
) -> None:
    before = snapshot(dynamodb)
    refused = [
        {"timezone": "Mars/Olympus", "export_names": "table", "stale_after_hours": "5"},
        {"timezone": "Europe/Berlin", "export_names": "table", "stale_after_hours": "-1"},
        {"timezone": "Europe/Berlin", "export_names": "table", "stale_after_hours": "soon"},
        {"timezone": "Europe/Berlin", "export_names": "shouting", "stale_after_hours": "5"},
    ]
    for form in refused:
        status, page = post(settings_path(clinic), form)
        # Then the page says what is wrong and keeps what was typed
        assert status == 400, form
        assert page.xpath("//*[@data-error]"), form
        assert page.xpath("//input[@name='timezone']/@value") == [form["timezone"]]
    assert "Mars/Olympus" in post(settings_path(clinic), refused[0])[1].xpath("string(//*[@data-error])")
    # And nothing changed, nothing was logged as a change
    assert snapshot(dynamodb) == before
    assert changes(logged) == []


def test_rotate_shows_a_key_once_that_then_authenticates_an_import(
    store: Store, clinic: Clinic, logged: pytest.LogCaptureFixture
) -> None:
    # When the operator rotates the key
    status, page = post(f"/console/clinics/{clinic.clinic_id}/keys")
    # Then the new key is shown, once
    assert status == 200 and page.xpath("//main/@data-page") == ["new-key"]
    [new_key] = page.xpath("//code[@data-new-key]/text()")
    # And it authenticates an import, as the old one still does
    assert call_import(document("<ResourceGroups/>", new_key))[0] == 200
    assert call_import(document("<ResourceGroups/>", SAMPLE_KEY))[0] == 200
    # And the settings page lists two keys by hash prefix, never the key itself
    _, settings = console(settings_path(clinic))
    assert len(settings.xpath("//tr[@data-key]")) == 2
    assert new_key not in settings.text_content()
    # And the log names the change, not the key
    assert new_key not in everything(logged)
    assert changes(logged) == [("alice", "rotate key", clinic.clinic_id)]
    # And a third key is refused on the page
    status, page = post(f"/console/clinics/{clinic.clinic_id}/keys")
    assert status == 400 and page.xpath("//*[@data-error]")


def test_revoke_stops_a_key_but_never_the_last_one(store: Store, clinic: Clinic) -> None:
    _, page = post(f"/console/clinics/{clinic.clinic_id}/keys")
    [new_key] = page.xpath("//code[@data-new-key]/text()")
    # (keys made in one second sort by id: tell them apart by their hashes)
    [new] = [
        k for k in store.clinics.keys(clinic.clinic_id) if key_hash(canonical_client_key(new_key)).startswith(k.key_id)
    ]
    [old] = [k for k in store.clinics.keys(clinic.clinic_id) if k != new]
    # When the operator revokes the old key
    status, _ = post(f"/console/clinics/{clinic.clinic_id}/keys/{old.key_id}/revoke")
    assert status == 303
    # Then the MIS's old key is refused, the new one works
    assert call_import(document("<ResourceGroups/>", SAMPLE_KEY))[0] == 403
    assert call_import(document("<ResourceGroups/>", new_key))[0] == 200
    assert [k.key_id for k in store.clinics.keys(clinic.clinic_id)] == [new.key_id]
    # And the last key cannot be revoked (that would lock the MIS out)
    status, page = post(f"/console/clinics/{clinic.clinic_id}/keys/{new.key_id}/revoke")
    assert status == 400 and page.xpath("//*[@data-error]")
    assert call_import(document("<ResourceGroups/>", new_key))[0] == 200


def test_disable_refuses_the_clinics_requests(store: Store, clinic: Clinic) -> None:
    status, _ = post(f"/console/clinics/{clinic.clinic_id}/disable")
    assert status == 303
    disabled = store.clinics.get(clinic.clinic_id)
    assert disabled is not None and not disabled.enabled
    assert call_import(document("<ResourceGroups/>"))[0] == 403
    assert console(settings_path(clinic))[1].xpath("//*[@data-disabled]")


def test_a_new_clinic_shows_its_key_once(store: Store, logged: pytest.LogCaptureFixture) -> None:
    status, page = post("/console/clinics", {"name": "Клиника на Ленина", "timezone": "Asia/Novosibirsk"})
    assert status == 200 and page.xpath("//main/@data-page") == ["new-key"]
    [client_key] = page.xpath("//code[@data-new-key]/text()")
    [clinic_id] = page.xpath("//code[@data-clinic-id]/text()")
    made = store.clinics.get(clinic_id)
    assert made is not None and (made.name, made.timezone) == ("Клиника на Ленина", "Asia/Novosibirsk")
    assert call_import(document("<ResourceGroups/>", client_key))[0] == 200
    assert client_key not in everything(logged)
    assert changes(logged) == [("alice", "create", clinic_id)]
    # And a bad time zone or no name creates nothing
    for form in ({"name": "X", "timezone": "Nowhere/City"}, {"name": " ", "timezone": "Europe/Moscow"}):
        status, page = post("/console/clinics", form)
        assert status == 400 and page.xpath("//*[@data-error]")
    assert [c.name for c, _ in store.clinics.list()] == ["Клиника на Ленина"]


def test_an_integrator_gets_404_on_every_admin_url(store: Store, dynamodb: Any, clinic: Clinic) -> None:
    before = snapshot(dynamodb)
    [key] = store.clinics.keys(clinic.clinic_id)
    as_integrator = {"role": "integrator", "clinic_id": clinic.clinic_id}
    assert console(settings_path(clinic), **as_integrator)[0] == 404
    for path, form in (
        (settings_path(clinic), {"timezone": "Europe/Berlin"}),
        (f"/console/clinics/{clinic.clinic_id}/keys", {}),
        (f"/console/clinics/{clinic.clinic_id}/keys/{key.key_id}/revoke", {}),
        (f"/console/clinics/{clinic.clinic_id}/disable", {}),
        ("/console/clinics", {"name": "Mine", "timezone": "Europe/Moscow"}),
    ):
        status, page = post(path, form, **as_integrator)
        assert status == 404 and page.xpath("//*[@data-error]/@data-error") == ["not_found"], path
    assert snapshot(dynamodb) == before


def test_every_change_needs_the_sessions_csrf_value(store: Store, dynamodb: Any, clinic: Clinic) -> None:
    before = snapshot(dynamodb)
    [key] = store.clinics.keys(clinic.clinic_id)
    for path, form in (
        (settings_path(clinic), {"timezone": "Europe/Berlin", "export_names": "table", "stale_after_hours": "5"}),
        (f"/console/clinics/{clinic.clinic_id}/keys", {}),
        (f"/console/clinics/{clinic.clinic_id}/keys/{key.key_id}/revoke", {}),
        (f"/console/clinics/{clinic.clinic_id}/disable", {}),
        ("/console/clinics", {"name": "Forged", "timezone": "Europe/Moscow"}),
    ):
        for csrf in ({}, {"csrf": "not-the-sessions"}):
            status, page = console(path, method="POST", form={**form, **csrf})
            assert status == 403 and page.xpath("//*[@data-error]/@data-error") == ["forbidden"], path
    assert snapshot(dynamodb) == before
