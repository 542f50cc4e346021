"""What the browser tests and `make screenshots` share: `python -m devserver` (what `make run` runs) as a real
process with the console's one-time sign-in link it prints, Debian's Chromium driven by Playwright (never a
browser of Playwright's own), and the documents, bookings and sign-ins the console is shown with."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from lxml import etree
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect

from devserver.server import free_port
from tests.conftest import ROOT, SAMPLE
from tests.integration.conftest import LocalServer

# Playwright must never fetch a browser: the tests drive the system's Chromium (`make test` installs it).
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
# Headless, and quiet: no first-run screens, no calls home, no component or sync downloads. Playwright's
# launch gives every browser a fresh temporary profile (user-data-dir) and deletes it on close.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PRINTED = ("DYNAMODB_ENDPOINT_URL", "PORTAL_API_KEY", "CONSOLE_URL")
ONCE = re.compile(r"/console/sign-in/once/([A-Za-z0-9_\-.~%]+)")

# The day the examples book: a week from today, as the README's walk-through does.
DAY = dt.date.today() + dt.timedelta(days=7)
D, ISO = DAY.strftime("%d.%m.%Y"), DAY.isoformat()


@dataclass(frozen=True)
class ConsoleServer(LocalServer):
    """The local server, with the one-time operator sign-in link it printed."""

    console_url: str

    def page_url(self, path: str) -> str:
        return f"{self.url}{path}"

    def fresh_link(self) -> str:
        """Another one-time operator link, from `mediexchange console link` (against the local store)."""
        printed = "\n".join(self.cli("console", "link"))
        found = ONCE.search(printed)
        assert found, f"`mediexchange console link` printed no one-time link: {printed!r}"
        return f"{self.url}/console/sign-in/once/{found.group(1)}"

    def post_document(self, document: str | bytes) -> etree._Element:
        """POST an MIS document to import.php as the MIS does; returns its ImportResult."""
        body = document.encode() if isinstance(document, str) else document
        status, _, answer = self.request(
            "POST", "/services/import.php", body, {"Content-Type": "application/xml; charset=utf-8"}
        )
        assert status == 200, answer
        return etree.fromstring(answer)

    def portal(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"x-api-key": self.portal_api_key, "Content-Type": "application/json"}
        status, _, raw = self.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
        return status, json.loads(raw)

    def resource_id(self, clinic_id: str, mw_resource_id: int) -> int:
        """The portal's resource_id of an MIS resource."""
        status, view = self.portal("GET", f"/portal/clinics/{clinic_id}")
        assert status == 200, view
        [found] = [r["resource_id"] for r in view["resources"] if r["mw_resource_id"] == mw_resource_id]
        return int(found)

    def free_slots(self, clinic_id: str, resource_id: int, day: str = ISO) -> list[str]:
        """What the portal's API offers that day, as HH:MM in the clinic's zone."""
        query = urlencode({"resource_id": resource_id, "from": day, "to": day})
        status, body = self.portal("GET", f"/portal/clinics/{clinic_id}/slots?{query}")
        assert status == 200, body
        return [slot["start"][11:16] for slot in body["slots"]]

    def book(self, clinic_id: str, resource_id: int, at: str, name1: str, day: str = ISO) -> dict[str, Any]:
        """A patient books `at` (HH:MM) through the portal's API; returns the order."""
        booking = {
            "resource_id": resource_id,
            "reception_datetime": f"{day}T{at}",
            "name1": name1,
            "phone": "+79120000000",
        }
        status, order = self.portal("POST", f"/portal/clinics/{clinic_id}/orders", booking)
        assert status == 201, order
        return dict(order)


def _read_printed(stream: IO[str], printed: queue.Queue[tuple[str, str]]) -> None:
    """Hand over the lines the server prints (`NAME=value`), and keep its pipe drained until it exits."""
    for line in stream:
        name, _, value = line.strip().partition("=")
        if name in PRINTED:
            printed.put((name, value))
    printed.put(("", ""))


@contextmanager
def console_server(log: Path | None = None, **settings: str) -> Iterator[ConsoleServer]:
    """`python -m devserver` on a free port (stopped on leaving) with what it printed: the store's URL,
    the portal's API key and the console's one-time sign-in link. Its request log goes to `log`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TABLE")}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    env.update(PORT=str(port), PYTHONUNBUFFERED="1", **settings)
    with open(log or os.devnull, "w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "devserver"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            assert process.stdout is not None
            lines: queue.Queue[tuple[str, str]] = queue.Queue()
            threading.Thread(target=_read_printed, args=(process.stdout, lines), daemon=True).start()
            printed: dict[str, str] = {}
            while set(PRINTED) - printed.keys():
                try:
                    name, value = lines.get(timeout=60)
                except queue.Empty:
                    break
                if not name:
                    break  # the server exited
                printed[name] = value
            missing = sorted(set(PRINTED) - printed.keys())
            assert not missing, f"the local server did not print {missing} (its log: {log})"
            url = f"http://127.0.0.1:{port}"
            assert printed["CONSOLE_URL"].startswith(f"{url}/console/"), printed["CONSOLE_URL"]
            yield ConsoleServer(
                url, printed["DYNAMODB_ENDPOINT_URL"], printed["PORTAL_API_KEY"], printed["CONSOLE_URL"]
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; never a browser Playwright downloaded."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt-get when run as root "
            "(else: sudo apt-get install --no-install-recommends chromium)"
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    options.setdefault("locale", "en-US")
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context


def main_of(page: Page) -> str:
    """The page's kind, as its `<main data-page>` names it."""
    expect(page.locator("main[data-page]")).to_have_count(1)
    return str(page.locator("main[data-page]").get_attribute("data-page"))


def sign_in_as_operator(page: Page, link: str) -> None:
    """Open a one-time operator link: the clinics page."""
    page.goto(link)
    expect(page.locator("main")).to_have_attribute("data-page", "clinics")


def sign_in_as_clinic(page: Page, server: ConsoleServer, client_key: str) -> None:
    """The integrator's form on the sign-in page: the key in a POST body, never in a URL."""
    page.goto(server.page_url("/console/sign-in"))
    form = page.locator("form:has(input[name=client_key])")
    form.locator("input[name=client_key]").fill(client_key)
    submit(page, form)


def submit(page: Page, form: Locator) -> None:
    """Submit a form with its button, and wait for the page that answers it."""
    with page.expect_navigation():
        form.locator("button[type=submit], input[type=submit], button:not([type])").first.click()


# Documents, each record on a line of its own so a receipt's line numbers are known.
def document(client_key: str, *lines: str) -> str:
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<MediExchange ClientKey="{client_key}">',
            *lines,
            "</MediExchange>",
        ]
    )


def one_doctor(client_key: str) -> str:
    """Resource 77 works DAY 09:00-11:00 in 30-minute steps with a break 10:00-10:30 (slots 09:00, 09:30, 10:30)."""
    return document(
        client_key,
        "<Resources>",
        '<r id="77" name="Доктор Айболит" time_step="30"/>',
        "</Resources>",
        "<Schedules>",
        f'<s id="1" date="{D}" resource_id="77"><time_rules w_start="09:00" w_end="11:00" b_start="10:00" b_end="10:30"/></s>',
        "</Schedules>",
    )


BAD_LINE = 5  # the line of the rejected record in `with_a_bad_record`


def with_a_bad_record(client_key: str) -> str:
    """Two resources, the second (line 5) with time_step="0": a partial import rejecting exactly that record."""
    return document(
        client_key,
        "<Resources>",
        '<r id="77" name="Доктор Айболит" time_step="30"/>',
        '<r id="78" name="Кабинет УЗИ" time_step="0"/>',
        "</Resources>",
    )


def seed_sample(client_key: str | None = None) -> bytes:
    """The seed's sample document, for its own clinic or (with another key) for any clinic."""
    raw = SAMPLE.read_bytes()
    if client_key is None:
        return raw
    return re.sub(rb'ClientKey="[^"]*"', f'ClientKey="{client_key}"'.encode(), raw, count=1)
