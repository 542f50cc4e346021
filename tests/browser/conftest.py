"""Browser tests: Debian's Chromium, driven by Playwright, against `python -m devserver` (what `make run` runs)
as a real process, signed in with the one-time link it prints. One server and one browser per test worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, StorageState, expect, sync_playwright

from tests.browser.console import ConsoleServer, console_server, launch, new_context, sign_in_as_operator

# A page may take a while on two cores busy with the whole suite: assertions wait up to 15 s for it.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    with console_server(log=tmp_path_factory.mktemp("devserver") / "stderr.log") as started:
        yield started


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def operator_state(server: ConsoleServer, browser: Browser) -> StorageState:
    """An operator's session, signed in once with the link `make run` printed (the link is then spent)."""
    context = new_context(browser)
    try:
        sign_in_as_operator(context.new_page(), server.console_url)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts (each its own cookies), closed after the test; and after it, no page may have
    broken the Content-Security-Policy (an inline style or script) or thrown a script error."""
    made: list[BrowserContext] = []
    broken: list[str] = []

    def make(**options: Any) -> BrowserContext:
        context = new_context(browser, **options)
        context.on("console", lambda message: _note_policy(message, broken))
        context.on("weberror", lambda error: broken.append(f"script error: {error.error}"))
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()
    assert broken == [], broken


def _note_policy(message: ConsoleMessage, broken: list[str]) -> None:
    if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
        broken.append(f"{message.page.url if message.page else '?'}: {message.text}")


@pytest.fixture
def operator(contexts: Callable[..., BrowserContext], operator_state: StorageState) -> Page:
    """A page in a browser carrying the operator's session."""
    return contexts(storage_state=operator_state).new_page()


@pytest.fixture
def stranger(contexts: Callable[..., BrowserContext]) -> Page:
    """A page in a browser that has signed in to nothing."""
    return contexts().new_page()
