"""`make screenshots`: every page of the console as a PNG (docs/console/ by default), taken in Debian's
Chromium from a local server (`python -m devserver`, what `make run` runs) filled as a clinic's first week
would fill it: the seed's sample and a week of schedules, a partial import, bookings the MIS exported and
decided, a clinic that never synced.

    .venv/bin/python -m tests.browser.screenshots [DIRECTORY]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

from lxml import etree
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.console import (
    ISO,
    ConsoleServer,
    D,
    console_server,
    document,
    launch,
    new_context,
    seed_sample,
    sign_in_as_clinic,
    sign_in_as_operator,
    submit,
)
from tests.conftest import SAMPLE_KEY

DESKTOP = {"viewport": {"width": 1280, "height": 860}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# The seed sample's doctors who get a week of schedules (MIS ids), and when they work.
# (The board lists resources by name, 25 a page: these are on its first page.)
WEEK_SHIFTS = {393: ("08:00", "14:00"), 391: ("09:00", "15:00"), 422: ("12:00", "18:00"), 442: ("08:00", "12:00")}
WEEK_SHIFTS |= {427: ("14:00", "20:00"), 451: ("09:00", "13:00"), 409: ("10:00", "16:00"), 390: ("08:00", "11:00")}
FIRST = dt.date.fromisoformat(ISO) - dt.timedelta(days=3)  # the board's week, with DAY (a week from today) in it


def week_ahead(client_key: str) -> str:
    """A week of working days (Sundays off, a lunch break on the long shifts) and the MIS's busy time on DAY."""
    lines, number = ["<Schedules>"], 10_000
    for offset in range(7):
        day = FIRST + dt.timedelta(days=offset)
        if day.weekday() == 6 and day.isoformat() != ISO:
            continue  # Sundays off
        for resource, (start, end) in WEEK_SHIFTS.items():
            number += 1
            hour = int(start[:2]) + 3  # a lunch break three hours into a long shift
            lunch = f' b_start="{hour}:00" b_end="{hour}:30"' if int(end[:2]) - int(start[:2]) >= 6 else ""
            rule = f'<time_rules w_start="{start}" w_end="{end}"{lunch}/>'
            lines.append(f'<s id="{number}" date="{day:%d.%m.%Y}" resource_id="{resource}">{rule}</s>')
    lines += ["</Schedules>", '<Appointments SyncMode="full">']
    busy = [(393, "09:00", 60), (391, "13:00", 90), (442, "10:00", 30), (409, "14:30", 60)]
    for number, (resource, at, minutes) in enumerate(busy, start=1):
        lines.append(
            f'<a tablename="SchedEvent" id="{number}" resource_id="{resource}" '
            f'ReceptionDateTime="{D} {at}:00" Duration="{minutes}" Title="Приём"/>'
        )
    lines.append("</Appointments>")
    return document(client_key, *lines)


def with_mistakes(client_key: str) -> str:
    """The seed's sample as a careless MIS might send it: a resource with no time step, a schedule's end before its start."""
    text = seed_sample(client_key).decode()
    text = text.replace('<r id="391" name="Баранов" time_step="30"', '<r id="391" name="Баранов" time_step="0"', 1)
    return text.replace('w_startTime="7:00" w_endTime="18:00"', 'w_startTime="18:00" w_endTime="7:00"', 1)


def fill(server: ConsoleServer) -> dict[str, str]:
    """The clinics, imports and orders the pages show; returns the ids the pages are found by."""
    seed = server.create_clinic("Клиника «Медицина»", client_key=SAMPLE_KEY)
    clinic_id = seed["clinic_id"]
    server.post_document(seed_sample())
    assert server.post_document(week_ahead(SAMPLE_KEY)).get("status") == "ok"
    # Patients book through the portal; the MIS exports the orders and accepts one, rejects another
    first = {mw: server.resource_id(clinic_id, mw) for mw in (393, 391, 422)}
    orders = [
        server.book(clinic_id, first[393], "10:30", "Смирнова"),
        server.book(clinic_id, first[391], "09:30", "Кузнецов"),
        server.book(clinic_id, first[422], "16:00", "Попова"),
        server.book(clinic_id, first[393], "12:00", "Васильев"),
    ]
    status, _, exported = server.request(
        "GET", "/services/export.php?" + urlencode({"client_key": SAMPLE_KEY, "start": 0})
    )
    assert status == 200, exported
    changed = {o.get("ID"): o.get("LastChangedOn") for o in etree.fromstring(exported).iter("o")}
    time.sleep(1)  # the MIS decides a moment later
    decisions = [(orders[0]["id"], 1), (orders[3]["id"], 3)]
    server.post_document(
        document(
            SAMPLE_KEY,
            "<Orders>",
            *(f'<o id="{i}" status="{s}" LastChangedOn="{changed[str(i)]}"/>' for i, s in decisions),
            "</Orders>",
        )
    )
    # A second clinic whose last document had mistakes, and a third that never synced
    careless = server.create_clinic("Поликлиника № 3", timezone="Asia/Yekaterinburg")
    server.post_document(seed_sample(careless["client_key"]))
    partial = server.post_document(with_mistakes(careless["client_key"]))
    server.create_clinic("Стоматология «Улыбка»", timezone="Europe/Samara")
    return {
        "clinic": clinic_id,
        "order": str(orders[0]["id"]),
        "careless": careless["clinic_id"],
        "careless_key": careless["client_key"],
        "receipt": str(partial.get("import_id")),
    }


def shoot(page: Page, out: Path, name: str, url: str, full_page: bool = True) -> Path:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    print(f"{path} ({path.stat().st_size // 1024} KB)", flush=True)
    return path


def screenshots(browser: Browser, server: ConsoleServer, out: Path) -> Iterator[Path]:
    ids = fill(server)
    clinic, careless = f"/console/clinics/{ids['clinic']}", f"/console/clinics/{ids['careless']}"
    base = server.url

    operator = new_context(browser, **DESKTOP).new_page()
    sign_in_as_operator(operator, server.console_url)
    yield shoot(operator, out, "clinics", f"{base}/console/?lang=en")
    yield shoot(operator, out, "clinic", f"{base}{clinic}/", full_page=False)
    # The receipt: the rejected record's line in the middle of the screen
    operator.goto(f"{base}{careless}/imports/{ids['receipt']}")
    operator.locator("tr.issue-line").first.evaluate("e => e.scrollIntoView({block: 'center'})")
    path = out / "receipt.png"
    operator.screenshot(path=path, animations="disabled")
    print(f"{path} ({path.stat().st_size // 1024} KB)", flush=True)
    yield path
    yield shoot(operator, out, "board-week", f"{base}{clinic}/board?from={FIRST}&days=7", full_page=False)
    yield shoot(operator, out, "board-day", f"{base}{clinic}/board/{ISO}", full_page=False)
    yield shoot(operator, out, "order", f"{base}{clinic}/orders/{ids['order']}")
    yield shoot(operator, out, "settings", f"{base}{clinic}/settings")

    phone = new_context(browser, storage_state=operator.context.storage_state(), **PHONE).new_page()
    yield shoot(phone, out, "phone-clinics", f"{base}/console/")

    integrator = new_context(browser, **DESKTOP).new_page()
    yield shoot(integrator, out, "sign-in", f"{base}/console/sign-in")
    sign_in_as_clinic(integrator, server, ids["careless_key"])
    integrator.goto(f"{base}{careless}/dry-run")
    form = integrator.locator("form:has(textarea[name=document])")
    form.locator("textarea[name=document]").fill(with_mistakes(ids["careless_key"]))
    submit(integrator, form)
    # The receipt laid over the pasted document, down to the form (whose text holds the clinic's key)
    below = integrator.locator("form:has(textarea[name=document])").bounding_box()
    assert below is not None
    path = out / "dry-run.png"
    clip = {"x": 0, "y": 0, "width": DESKTOP["viewport"]["width"], "height": below["y"]}
    integrator.screenshot(path=path, full_page=True, clip=clip, animations="disabled")
    print(f"{path} ({path.stat().st_size // 1024} KB)", flush=True)
    yield path


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/console")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as scratch,
        console_server(log=Path(scratch) / "devserver.log") as server,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        taken = list(screenshots(browser, server, out))
        browser.close()
    print(f"{len(taken)} screenshots in {out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
