"""A clinic's integrator in a real browser: signed in with the clinic's key they see their own clinic's pages
and nothing of another's, not even by guessing its URLs; a dry run lays a receipt over a pasted document.
And the console's languages, and a phone-sized screen."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, StorageState, expect

from tests.browser.console import (
    BAD_LINE,
    ISO,
    ConsoleServer,
    one_doctor,
    sign_in_as_clinic,
    submit,
    with_a_bad_record,
)

pytestmark = pytest.mark.browser
CYRILLIC = re.compile("[а-яА-ЯёЁ]")


@dataclass(frozen=True)
class Clinic:
    name: str
    clinic_id: str
    client_key: str
    import_id: str  # a partial import's receipt
    order_id: int | None


def onboard(server: ConsoleServer, name: str, booking: bool) -> Clinic:
    """A clinic with a doctor working a week from today, a partial import, and maybe a booking."""
    created = server.create_clinic(name)
    clinic_id, key = created["clinic_id"], created["client_key"]
    server.post_document(one_doctor(key))
    partial = server.post_document(with_a_bad_record(key))
    order_id = None
    if booking:
        order_id = int(server.book(clinic_id, server.resource_id(clinic_id, 77), "09:00", "Петров")["id"])
    return Clinic(name, clinic_id, key, str(partial.get("import_id")), order_id)


@pytest.fixture(scope="module")
def ours(server: ConsoleServer) -> Clinic:
    return onboard(server, "Our clinic", booking=False)


@pytest.fixture(scope="module")
def theirs(server: ConsoleServer) -> Clinic:
    return onboard(server, "Their clinic", booking=True)


def page_kind(page: Page) -> Locator:
    return page.locator("main[data-page]")


def test_the_integrator_signs_in_with_the_key_and_sees_their_clinic(
    server: ConsoleServer, stranger: Page, ours: Clinic, theirs: Clinic
) -> None:
    # When the integrator signs in with their clinic's key
    sign_in_as_clinic(stranger, server, ours.client_key)
    # Then their clinic's page, its key in no URL
    expect(page_kind(stranger)).to_have_attribute("data-page", "clinic")
    assert stranger.url == server.page_url(f"/console/clinics/{ours.clinic_id}/")
    # And the console's home takes them there too
    stranger.goto(server.page_url("/console/"))
    assert stranger.url == server.page_url(f"/console/clinics/{ours.clinic_id}/")
    # And they open its receipt, board, day, orders and dry run; no page links to the other clinic
    stranger.locator(f'[data-import="{ours.import_id}"] a').first.click()
    expect(page_kind(stranger)).to_have_attribute("data-page", "receipt")
    expect(stranger.locator(f'tr.issue-line[data-line="{BAD_LINE}"] mark.attr')).to_have_count(1)
    assert_mentions_nothing_of(stranger, theirs)
    for path, kind in [
        ("board", "board"),
        (f"board/{ISO}", "day"),
        ("orders", "orders"),
        ("dry-run", "dry-run"),
    ]:
        answer = stranger.goto(server.page_url(f"/console/clinics/{ours.clinic_id}/{path}"))
        assert answer is not None and answer.status == 200, path
        expect(page_kind(stranger)).to_have_attribute("data-page", kind)
        assert_mentions_nothing_of(stranger, theirs)
    # And the operator's pages are not theirs: the clinic's settings
    answer = stranger.goto(server.page_url(f"/console/clinics/{ours.clinic_id}/settings"))
    assert answer is not None and answer.status in (403, 404)
    expect(stranger.locator("main[data-page=settings]")).to_have_count(0)


def assert_mentions_nothing_of(page: Page, other: Clinic) -> None:
    """No link or form leads to the other clinic (a link back to the very URL asked for, as the language
    switch is, tells nothing), and the page names it nowhere."""
    here = urlsplit(page.url).path
    targets = page.locator("a[href], form[action]").evaluate_all(
        "els => els.map(e => new URL(e.getAttribute('href') ?? e.getAttribute('action'), location.href).pathname)"
    )
    assert [t for t in targets if f"/clinics/{other.clinic_id}" in t and t != here] == [], page.url
    html = page.content()
    assert other.name not in html and other.client_key not in html and other.import_id not in html.replace(here, "")
    if f"/clinics/{other.clinic_id}" not in here:
        assert other.clinic_id not in html


def test_the_integrator_gets_404_for_another_clinics_pages_by_guessing_urls(
    server: ConsoleServer, stranger: Page, ours: Clinic, theirs: Clinic
) -> None:
    # Given the integrator of one clinic, who knows (or guesses) another clinic's ids
    sign_in_as_clinic(stranger, server, ours.client_key)
    expect(page_kind(stranger)).to_have_attribute("data-page", "clinic")
    csrf = stranger.locator("input[name=csrf]").first.get_attribute("value") or ""
    clinic = f"/console/clinics/{theirs.clinic_id}"
    guesses = [
        f"{clinic}/",
        f"{clinic}/imports/{theirs.import_id}",
        f"{clinic}/board",
        f"{clinic}/board?from={ISO}&days=7",
        f"{clinic}/board/{ISO}",
        f"{clinic}/orders",
        f"{clinic}/orders?day={ISO}",
        f"{clinic}/orders/{theirs.order_id}",
        f"{clinic}/dry-run",
        f"{clinic}/settings",
        # their receipt under our clinic's path
        f"/console/clinics/{ours.clinic_id}/imports/{theirs.import_id}",
    ]
    for path in guesses:
        # When they open each in the browser
        answer = stranger.goto(server.page_url(path))
        # Then 404, a page that says nothing of that clinic
        assert answer is not None and answer.status == 404, (path, answer and answer.status)
        assert_mentions_nothing_of(stranger, theirs)
    # And the stored document, and every change, are refused alike (with a valid csrf of their own)
    request = stranger.context.request
    document = request.get(server.page_url(f"{clinic}/imports/{theirs.import_id}/document"))
    assert document.status == 404 and theirs.client_key.encode() not in document.body()
    for action in ("keys", "settings", "disable", "dry-run"):
        refused = request.post(server.page_url(f"{clinic}/{action}"), form={"csrf": csrf, "timezone": "UTC"})
        assert refused.status == 404, (action, refused.status)
    assert server.post_document(one_doctor(theirs.client_key)).get("status") == "ok", "their key still works"


def test_a_dry_run_lays_the_receipt_over_the_pasted_document_and_writes_nothing(
    server: ConsoleServer, stranger: Page, ours: Clinic
) -> None:
    # Given the integrator on their clinic's dry-run page, and the receipts listed on the clinic's page
    sign_in_as_clinic(stranger, server, ours.client_key)
    imports_before = stranger.locator("[data-import]").count()
    stranger.goto(server.page_url(f"/console/clinics/{ours.clinic_id}/dry-run"))
    expect(page_kind(stranger)).to_have_attribute("data-page", "dry-run")
    # When they paste a document with a bad record and run it
    form = stranger.locator("form:has(textarea[name=document])")
    form.locator("textarea[name=document]").fill(with_a_bad_record(ours.client_key))
    submit(stranger, form)
    # Then the receipt is laid over it: the rejected record at its line
    expect(page_kind(stranger)).to_have_attribute("data-page", "dry-run")
    line = stranger.locator("tr.issue-line")
    expect(line).to_have_count(1)
    expect(line).to_have_attribute("data-line", str(BAD_LINE))
    expect(line.locator("mark.attr")).to_contain_text("time_step")
    # And nothing was written: the clinic lists the same imports
    stranger.goto(server.page_url(f"/console/clinics/{ours.clinic_id}/"))
    expect(stranger.locator("[data-import]")).to_have_count(imports_before)


def test_labels_are_russian_with_lang_ru_and_stay_so(
    server: ConsoleServer, contexts: Callable[..., BrowserContext], operator_state: StorageState, ours: Clinic
) -> None:
    # Given an operator's browser reading English
    page = contexts(storage_state=operator_state).new_page()
    page.goto(server.page_url("/console/?lang=en"))
    english = page.locator("main h1").first.inner_text()
    assert english and not CYRILLIC.search(english), english
    # When they ask for Russian
    page.goto(server.page_url("/console/?lang=ru"))
    # Then the labels are Russian, on this page and the next
    assert CYRILLIC.search(page.locator("main h1").first.inner_text())
    page.goto(server.page_url(f"/console/clinics/{ours.clinic_id}/board?from={ISO}"))
    expect(page_kind(page)).to_have_attribute("data-page", "board")
    assert CYRILLIC.search(page.locator("main h1").first.inner_text())


def test_a_browser_asking_for_russian_gets_the_sign_in_page_in_russian(
    server: ConsoleServer, contexts: Callable[..., BrowserContext]
) -> None:
    page = contexts(locale="ru-RU").new_page()
    page.goto(server.page_url("/console/sign-in"))
    expect(page_kind(page)).to_have_attribute("data-page", "sign-in")
    assert CYRILLIC.search(page.locator("main").inner_text())


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}


def test_a_phone_shows_the_pages_without_sideways_scrolling_but_the_boards_own(
    server: ConsoleServer, contexts: Callable[..., BrowserContext], operator_state: StorageState, ours: Clinic
) -> None:
    # Given a clinic with a long name
    server.create_clinic("Многопрофильная клиника «Здоровье» на Ленинском проспекте, 158")
    page = contexts(storage_state=operator_state, **PHONE).new_page()
    overflowing: list[tuple[str, int, int, bool]] = []
    for path, kind in [
        ("/console/", "clinics"),
        (f"/console/clinics/{ours.clinic_id}/", "clinic"),
        (f"/console/clinics/{ours.clinic_id}/board?from={ISO}", "board"),
        (f"/console/clinics/{ours.clinic_id}/board/{ISO}", "day"),
    ]:
        # When a phone opens each page
        page.goto(server.page_url(path))
        expect(page_kind(page)).to_have_attribute("data-page", kind)
        # Then it is laid out for the phone's width, and the page itself never scrolls sideways
        width, scrolled = page.evaluate(
            "[document.documentElement.clientWidth, Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)]"
        )
        # And a board, when wider than the phone, scrolls sideways inside a container of its own
        board_scrolls = kind not in ("board", "day") or page.locator("tr[data-resource]").first.evaluate(
            SCROLLS_IN_ITS_CONTAINER
        )
        if (width, scrolled, board_scrolls) != (390, 390, True):
            overflowing.append((path, width, scrolled, board_scrolls))
    assert not overflowing, (
        "pages wider than the phone (path, width, scroll width, board scrolls alone):\n"
        + "\n".join(map(str, overflowing))
    )


# A board wider than the screen sits in a container of its own that scrolls sideways.
SCROLLS_IN_ITS_CONTAINER = """row => {
    const table = row.closest('table');
    if (table.getBoundingClientRect().width <= document.documentElement.clientWidth) return true;
    let box = table.parentElement;
    while (box && box !== document.body && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
    return box !== null && box !== document.body && box.scrollWidth > box.clientWidth;
}"""
