"""The operator's console in a real browser (Debian's Chromium) against `make run`'s server: sign in with the
one-time link, watch the seed sample's clinic become healthy, read a partial receipt at its rejected line,
see a booking take its slot on the board, and issue clinics and keys that are shown once."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.console import (
    BAD_LINE,
    CHROMIUM,
    ISO,
    ConsoleServer,
    one_doctor,
    seed_sample,
    sign_in_as_operator,
    submit,
    with_a_bad_record,
)
from tests.conftest import SAMPLE_KEY

pytestmark = pytest.mark.browser


def page_kind(page: Page) -> Locator:
    return page.locator("main[data-page]")


def health(scope: Locator) -> list[str]:
    """Every health badge's verdict in `scope`, in page order."""
    return [
        str(value) for value in scope.locator("[data-health]").evaluate_all("els => els.map(e => e.dataset.health)")
    ]


def test_the_browser_is_debians_chromium(server: ConsoleServer, browser: Browser, stranger: Page) -> None:
    # Given the system's Chromium, as `chromium --version` names it
    installed = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, check=True).stdout
    # Then it is the browser the tests drive (Playwright downloaded none)
    assert browser.version in installed, (browser.version, installed)
    # And it reads the local server: the schema the MIS documents are read by
    stranger.goto(server.page_url("/services/schema.xsd"))
    expect(stranger.locator("body")).to_contain_text("MediExchange")


def test_the_printed_link_signs_an_operator_in_once(
    server: ConsoleServer, operator_state: object, stranger: Page
) -> None:
    # Given the one-time link `make run` printed, opened once by the operator (who landed on the clinics page)
    # When another browser opens it again
    stranger.goto(server.console_url)
    # Then it is not let in: the sign-in page
    expect(page_kind(stranger)).to_have_attribute("data-page", "sign-in")
    # And the console still sends it to sign in
    stranger.goto(server.page_url("/console/"))
    expect(page_kind(stranger)).to_have_attribute("data-page", "sign-in")


def test_a_fresh_link_signs_in_once_and_signing_out_ends_the_session(
    server: ConsoleServer, contexts: Callable[..., BrowserContext]
) -> None:
    # Given a fresh one-time link from `mediexchange console link`
    link = server.fresh_link()
    # When an operator opens it; Then the clinics page
    page = contexts().new_page()
    sign_in_as_operator(page, link)
    # When someone opens it a second time; Then the sign-in page
    other = contexts().new_page()
    other.goto(link)
    expect(page_kind(other)).to_have_attribute("data-page", "sign-in")
    # When the operator signs out; Then the sign-in page, and the console asks for a sign-in again
    signed_in = page.context.storage_state()
    submit(page, page.locator("form[action$='/console/sign-out']"))
    expect(page_kind(page)).to_have_attribute("data-page", "sign-in")
    page.goto(server.page_url("/console/"))
    expect(page_kind(page)).to_have_attribute("data-page", "sign-in")
    # And even the cookie kept from before no longer opens the console: the session is gone
    kept = contexts(storage_state=signed_in).new_page()
    kept.goto(server.page_url("/console/"))
    expect(page_kind(kept)).to_have_attribute("data-page", "sign-in")


def test_the_seed_sample_clinic_becomes_healthy_after_its_import(server: ConsoleServer, operator: Page) -> None:
    # Given the seed sample's clinic, created with the key its MIS already sends, before any import
    clinic_id = server.create_clinic("Клиника", client_key=SAMPLE_KEY)["clinic_id"]
    operator.goto(server.page_url("/console/"))
    row = operator.locator(f'[data-clinic="{clinic_id}"]')
    expect(row).to_have_count(1)
    assert set(health(row)) != {"ok"}, "a clinic that never sent a document is not healthy"
    # When its MIS posts the sample
    result = server.post_document(seed_sample())
    assert result.get("status") == "ok"
    # Then the clinics page shows it healthy
    operator.reload()
    assert health(row) and set(health(row)) == {"ok"}, health(row)
    # And its page too, every section, with the import among its receipts
    operator.goto(server.page_url(f"/console/clinics/{clinic_id}/"))
    expect(page_kind(operator)).to_have_attribute("data-page", "clinic")
    assert health(page_kind(operator)) and set(health(page_kind(operator))) == {"ok"}, health(page_kind(operator))
    expect(operator.locator(f'[data-import="{result.get("import_id")}"]')).to_have_count(1)


def test_a_partial_receipt_highlights_the_rejected_record_at_its_line(server: ConsoleServer, operator: Page) -> None:
    # Given a clinic whose MIS posted a document with one bad record, on line 5
    clinic = server.create_clinic("Partial clinic")
    sent = with_a_bad_record(clinic["client_key"])
    result = server.post_document(sent)
    assert result.get("status") == "partial"
    import_id = result.get("import_id")
    # When the operator opens the clinic's page and follows that import's receipt
    operator.goto(server.page_url(f"/console/clinics/{clinic['clinic_id']}/"))
    operator.locator(f'[data-import="{import_id}"] a').first.click()
    # Then the receipt is laid over the document: the rejected record at its line, its attribute highlighted
    expect(page_kind(operator)).to_have_attribute("data-page", "receipt")
    line = operator.locator("tr.issue-line")
    expect(line).to_have_count(1)
    expect(line).to_have_attribute("data-line", str(BAD_LINE))
    expect(line.locator("mark.attr")).to_contain_text("time_step")
    expect(line).to_contain_text('name="Кабинет УЗИ"')
    # And the reason, and the lines around it
    expect(page_kind(operator)).to_contain_text("1440")
    expect(page_kind(operator)).to_contain_text('name="Доктор Айболит"')
    # And the document as it was stored downloads
    with operator.expect_download() as download:
        operator.locator(f'a[href$="/imports/{import_id}/document"]').first.click()
    with open(download.value.path(), "rb") as stored:
        assert stored.read() == sent.encode()


def test_a_booked_slot_appears_on_the_board_and_leaves_the_free_slots(server: ConsoleServer, operator: Page) -> None:
    # Given a clinic whose doctor works a week from today (slots 09:00, 09:30, 10:30)
    clinic = server.create_clinic("Board clinic")
    clinic_id = clinic["clinic_id"]
    server.post_document(one_doctor(clinic["client_key"]))
    resource_id = server.resource_id(clinic_id, 77)
    # When the operator opens the board's week and follows that day
    operator.goto(server.page_url(f"/console/clinics/{clinic_id}/board?from={ISO}&days=7"))
    expect(page_kind(operator)).to_have_attribute("data-page", "board")
    operator.locator(f'a[href*="/board/{ISO}"]').first.click()
    # Then the day view offers exactly the slots the portal's API offers, and no order
    expect(page_kind(operator)).to_have_attribute("data-page", "day")
    slots = operator.locator("[data-slot]")
    expect(slots).to_have_count(3)
    assert slot_times(slots) == server.free_slots(clinic_id, resource_id) == ["09:00", "09:30", "10:30"]
    expect(operator.locator("[data-order-id]")).to_have_count(0)
    # When a patient books 09:30 through the portal's API
    order = server.book(clinic_id, resource_id, "09:30", "Смирнова")
    # Then the day view shows the order, and 09:30 is no longer free, as the API says
    operator.reload()
    expect(operator.locator(f'[data-order-id="{order["id"]}"]')).to_have_count(1)
    expect(operator.locator('[data-slot="09:30"]')).to_have_count(0)
    assert slot_times(slots) == server.free_slots(clinic_id, resource_id) == ["09:00", "10:30"]


def slot_times(slots: Locator) -> list[str]:
    return [str(value) for value in slots.evaluate_all("els => els.map(e => e.dataset.slot)")]


def test_an_order_is_found_by_its_day_and_shows_its_history(server: ConsoleServer, operator: Page) -> None:
    # Given a clinic where a patient booked 10:30 through the portal
    clinic = server.create_clinic("Orders clinic")
    server.post_document(one_doctor(clinic["client_key"]))
    resource_id = server.resource_id(clinic["clinic_id"], 77)
    order = server.book(clinic["clinic_id"], resource_id, "10:30", "Кузнецов")
    # When the operator searches the clinic's orders by that day and opens the order
    operator.goto(server.page_url(f"/console/clinics/{clinic['clinic_id']}/orders?day={ISO}"))
    expect(page_kind(operator)).to_have_attribute("data-page", "orders")
    row = operator.locator(f'[data-order="{order["id"]}"]')
    expect(row).to_have_count(1)
    row.locator("a").first.click()
    # Then the order's page, with its time in the clinic's zone and its booking in the history
    expect(page_kind(operator)).to_have_attribute("data-page", "order")
    expect(page_kind(operator)).to_contain_text("10:30")
    expect(operator.locator("[data-zone]")).to_have_text("Europe/Moscow")


def test_a_rotated_key_is_shown_once_and_authenticates_imports(server: ConsoleServer, operator: Page) -> None:
    # Given a clinic and its settings page
    clinic = server.create_clinic("Rotating clinic")
    settings = server.page_url(f"/console/clinics/{clinic['clinic_id']}/settings")
    operator.goto(settings)
    expect(page_kind(operator)).to_have_attribute("data-page", "settings")
    # When the operator rotates its key
    submit(operator, operator.locator("form[action$='/keys']"))
    # Then the new key is shown, once
    expect(page_kind(operator)).to_have_attribute("data-page", "new-key")
    new_key = operator.locator("code[data-new-key]").inner_text().strip()
    assert new_key and new_key != clinic["client_key"]
    # And the MIS can import with it
    assert server.post_document(one_doctor(new_key)).get("status") == "ok"
    # And the settings page, opened again, lists two keys and shows neither
    operator.goto(settings)
    expect(page_kind(operator)).to_have_attribute("data-page", "settings")
    expect(operator.locator("code[data-new-key]")).to_have_count(0)
    assert new_key not in operator.content() and clinic["client_key"] not in operator.content()
    old_id, new_id = (hashlib.sha256(key.encode()).hexdigest()[:12] for key in (clinic["client_key"], new_key))
    expect(operator.locator("tr[data-key]")).to_have_count(2)
    # When the operator revokes the old key
    submit(operator, operator.locator(f"form[action$='/keys/{old_id}/revoke']"))
    # Then only the new one is listed, and the old one no longer authenticates an import
    operator.goto(settings)
    expect(operator.locator("tr[data-key]")).to_have_count(1)
    expect(operator.locator(f'tr[data-key="{new_id}"]')).to_have_count(1)
    status, _, answer = server.request(
        "POST", "/services/import.php", one_doctor(clinic["client_key"]).encode(), {"Content-Type": "application/xml"}
    )
    assert status == 403, answer


def test_a_clinic_created_in_the_console_gets_a_key_shown_once(server: ConsoleServer, operator: Page) -> None:
    # Given the clinics page
    operator.goto(server.page_url("/console/"))
    form = operator.locator("form:has(input[name=name])")
    # When the operator creates a clinic there
    form.locator("input[name=name]").fill("Clinic from the console")
    zone = form.locator("[name=timezone]")
    if zone.evaluate("e => e.tagName") == "SELECT":
        zone.select_option("Asia/Yekaterinburg")
    else:
        zone.fill("Asia/Yekaterinburg")
    submit(operator, form)
    # Then its key is shown once, and its MIS can import with it
    expect(page_kind(operator)).to_have_attribute("data-page", "new-key")
    key = operator.locator("code[data-new-key]").inner_text().strip()
    assert server.post_document(one_doctor(key)).get("status") == "ok"
    # And the clinics page lists it, without its key
    operator.goto(server.page_url("/console/"))
    expect(operator.locator("[data-clinic]", has_text="Clinic from the console")).to_have_count(1)
    assert key not in operator.content()
