"""The console's pages (issue 13): the plumbing (HTML answers, language, prefix, CSRF, who sees what), the
clinics list and a clinic's page, receipts laid over their documents, the document download and the dry run.

Requests come as API Gateway hands them to the console function behind its authorizer: a REST proxy event
with requestContext.authorizer holding the session (role, who, clinic_id, csrf)."""

from __future__ import annotations

import gzip
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import lxml.html
import pytest
import requests
from mediexchange.console import clinics, receipts
from mediexchange.console.receipts import ReceiptIssue, overlay
from mediexchange.protocol.xmlparse import parse_document
from mediexchange.records import Clinic
from mediexchange.store import ClinicOverview, SectionSeen, Store
from mediexchange.store.imports import document_key
from mediexchange.web import INLINE_BODY_BYTES

from devserver import template
from functions.console.app import lambda_handler
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, api_event, call_import, decoded, document, headers_of, items_got, snapshot

CSRF = "k3Y-csrf-value-of-this-session-0123456789ab"
OPERATOR = {"principalId": "ann", "role": "operator", "who": "ann", "clinic_id": "", "csrf": CSRF}
OTHER_KEY = "0F0F0F0F-1111-2222-3333-444455556666"
FORM = "application/x-www-form-urlencoded"


def integrator(clinic_id: str) -> dict[str, str]:
    who = f"clinic:{clinic_id}"
    return {"principalId": who, "role": "integrator", "who": who, "clinic_id": clinic_id, "csrf": CSRF}


class Answer:
    def __init__(self, response: dict[str, Any]) -> None:
        self.status: int = response["statusCode"]
        self.headers = headers_of(response)
        self.body = decoded(response)

    @property
    def html(self) -> Any:
        return lxml.html.document_fromstring(self.body.decode("utf-8"))

    @property
    def page(self) -> str:
        [main] = self.html.xpath("//main")
        return str(main.get("data-page"))

    @property
    def main(self) -> bytes:
        """The page's own content (the header's links differ by the path asked for)."""
        return bytes(lxml.html.tostring(self.html.xpath("//main")[0]))

    def text(self, xpath: str) -> list[str]:
        return [" ".join(e.text_content().split()) for e in self.html.xpath(xpath)]


def call(
    method: str,
    path: str,
    viewer: dict[str, str] | None = OPERATOR,
    form: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    prefix: str = "",
    body: bytes | None = None,
) -> Answer:
    """The console function's answer to a request that passed the authorizer as `viewer` (None: a route
    without the authorizer)."""
    sent = body if body is not None else urlencode(form).encode() if form is not None else b""
    all_headers = {**({"Content-Type": FORM} if form is not None else {}), **(headers or {})}
    event = api_event(method, path, sent, all_headers, query)
    event["requestContext"]["path"] = prefix + path
    if viewer is not None:
        event["requestContext"]["authorizer"] = dict(viewer)
    return Answer(lambda_handler(event, FakeContext()))


def multipart(fields: dict[str, tuple[bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart/form-data body: each field's bytes, as a file when a content type is given."""
    boundary = "----console-test-boundary"
    parts = []
    for name, (value, kind) in fields.items():
        head = f'Content-Disposition: form-data; name="{name}"'
        if kind is not None:
            head += f'; filename="{name}.xml"\r\nContent-Type: {kind}'
        parts.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + value + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def documents_kept(store: Store) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=store.settings.documents_bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


# -- the plumbing ----------------------------------------------------------------------------------


def test_a_page_is_html_never_cached_framed_or_referred_from(store: Store, clinic: Clinic) -> None:
    # When an operator opens the clinics list
    answer = call("GET", "/console/")
    # Then it is an HTML page with the console's security headers
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Content-Security-Policy"].startswith(
        "default-src 'self'; script-src 'self'; style-src 'self'"
    )
    assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]
    # And its <main> names the page for the browser tests, with no inline style or script anywhere
    assert answer.page == "clinics"
    assert answer.html.xpath("//style | //script[not(@src)] | //*[@style]") == []


def test_the_stylesheet_is_served_and_cached_for_an_hour(store: Store) -> None:
    # When the stylesheet is asked for (no authorizer on this route)
    answer = call("GET", "/console/static/console.css", viewer=None)
    # Then it comes as CSS, cached for an hour
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/css; charset=utf-8"
    assert answer.headers["Cache-Control"] == "public, max-age=3600"
    assert b".health.bad" in answer.body
    # And nothing else of the package is served from there
    for name in ("pages.py", "..%2Fpages.py", "missing.css"):
        assert call("GET", f"/console/static/{name}", viewer=None).status == 404


def test_an_unknown_console_page_is_a_404_page(store: Store) -> None:
    answer = call("GET", "/console/nowhere")
    assert (answer.status, answer.page) == (404, "error")
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.text("//section[@data-error]/p[@class='message']") == ["There is no such page."]


@pytest.mark.parametrize(
    ("query", "headers", "language", "cookie"),
    [
        pytest.param(
            {"lang": "ru"},
            {},
            "ru",
            "mx_lang=ru; Path=/console; Max-Age=31536000; HttpOnly; SameSite=Strict",
            id="?lang=ru sets the cookie",
        ),
        pytest.param(
            {"lang": "en"},
            {"Cookie": "mx_lang=ru", "Accept-Language": "ru"},
            "en",
            "mx_lang=en; Path=/console; Max-Age=31536000; HttpOnly; SameSite=Strict",
            id="?lang wins over the cookie",
        ),
        pytest.param(
            None,
            {"Cookie": "mx_console=x; mx_lang=ru", "Accept-Language": "en"},
            "ru",
            None,
            id="the cookie wins over Accept-Language",
        ),
        pytest.param(
            None, {"Accept-Language": "ru-RU,ru;q=0.9,en-US;q=0.8"}, "ru", None, id="Accept-Language ru first"
        ),
        pytest.param(
            None, {"Accept-Language": "de-DE, en;q=0.5, ru;q=0.7"}, "ru", None, id="Accept-Language by weight"
        ),
        pytest.param(
            None, {"Accept-Language": "RU;Q=0, ru-RU;q=x, EN-gb;q=0.1"}, "en", None, id="q 0 or unreadable: not at all"
        ),
        pytest.param(None, {"Accept-Language": "de"}, "en", None, id="else English"),
    ],
)
def test_the_language_is_chosen_by_query_cookie_then_accept_language(
    store: Store,
    clinic: Clinic,
    query: dict[str, str] | None,
    headers: dict[str, str],
    language: str,
    cookie: str | None,
) -> None:
    # When a clinic's page is asked for so
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/", query=query, headers=headers)
    # Then it is in that language, with its labels
    assert answer.status == 200
    assert answer.html.xpath("/html/@lang") == [language]
    heading = {"en": "Recent imports", "ru": "Последние импорты"}[language]
    assert heading in answer.text("//h2")
    nav = answer.text("//nav/a")
    assert ("Расписание" in nav) == (language == "ru") and ("Board" in nav) == (language == "en")
    # And the language chosen in the query is kept in a cookie for the console's paths
    assert answer.headers.get("Set-Cookie") == cookie


def test_links_forms_and_redirects_carry_the_stage_prefix(store: Store, clinic: Clinic) -> None:
    # When pages are asked for through the execute-api URL, whose path has the stage
    listing = call("GET", "/console/", prefix="/live")
    own = call("GET", "/console/", viewer=integrator(clinic.clinic_id), prefix="/live")
    # Then every link and form of the page is under /live/console
    targets = listing.html.xpath("//a/@href | //form/@action | //link/@href")
    assert targets and all(t.startswith("/live/console") for t in targets), targets
    assert f"/live/console/clinics/{clinic.clinic_id}/" in targets
    # And the integrator's redirect to their clinic too
    assert own.status == 303
    assert own.headers["Location"] == f"/live/console/clinics/{clinic.clinic_id}/"
    # And the language cookie is for the stage's console paths, Secure over https
    chosen = call("GET", "/console/", query={"lang": "ru"}, headers={"X-Forwarded-Proto": "https"}, prefix="/live")
    assert (
        chosen.headers["Set-Cookie"]
        == "mx_lang=ru; Path=/live/console; Max-Age=31536000; HttpOnly; SameSite=Strict; Secure"
    )
    assert chosen.html.xpath("//a[@hreflang='en']/@href") == ["/live/console/?lang=en"]
    # And behind the custom domain (no stage) they are plain
    assert call("GET", "/console/").html.xpath("//link/@href") == ["/console/static/console.css"]


def test_a_form_without_the_sessions_csrf_value_is_refused(store: Store, dynamodb: Any, clinic: Clinic) -> None:
    before = snapshot(dynamodb)
    path = f"/console/clinics/{clinic.clinic_id}/dry-run"
    doc = document('<Resources><r id="1" name="A" time_step="30"/></Resources>').decode()
    # When forms are posted without the csrf field, or with another one
    answers = [
        call("POST", path, form={"document": doc}),
        call("POST", path, form={"document": doc, "csrf": "another-sessions-value"}),
        call("POST", "/console/sign-out", form={}),
    ]
    # Then each is refused with the 403 page, and nothing changed
    assert [(a.status, a.page) for a in answers] == [(403, "error")] * 3
    assert [a.html.xpath("//section/@data-error") for a in answers] == [["forbidden"]] * 3
    assert snapshot(dynamodb) == before
    assert store.imports.recent(clinic.clinic_id) == []


def test_the_sign_in_routes_answer_through_the_console_function(store: Store, clinic: Clinic) -> None:
    # When the sign-in page is opened (no authorizer on it), and an integrator signs in with the clinic's key
    form = call("GET", "/console/sign-in", viewer=None, prefix="/live")
    signed = call("POST", "/console/sign-in/clinic", viewer=None, form={"client_key": SAMPLE_KEY}, prefix="/live")
    # Then the page is the sign-in page, and the sign-in a redirect to their clinic with the session cookie
    assert (form.status, form.page) == (200, "sign-in")
    assert (signed.status, signed.headers["Location"]) == (303, f"/live/console/clinics/{clinic.clinic_id}/")
    assert signed.headers["Set-Cookie"].startswith("mx_console=")
    assert "Path=/live/console" in signed.headers["Set-Cookie"]
    assert signed.headers["Cache-Control"] == "no-store" and signed.headers["X-Frame-Options"] == "DENY"


# -- who sees which clinic ---------------------------------------------------------------------------


def test_an_integrator_sees_only_their_clinic_and_cannot_tell_others_exist(store: Store, clinic: Clinic) -> None:
    # Given another clinic with an import
    other = store.clinics.create("Other clinic", "Asia/Yekaterinburg", OTHER_KEY)
    status, result, _ = call_import(document('<Resources><r id="1" name="A" time_step="30"/></Resources>', OTHER_KEY))
    assert status == 200
    import_id = result.get("import_id")
    mine = integrator(clinic.clinic_id)
    # When the clinic's integrator opens the console, and their own clinic
    home = call("GET", "/console/", viewer=mine)
    own = call("GET", f"/console/clinics/{clinic.clinic_id}/", viewer=mine)
    # Then the console is their clinic
    assert (home.status, home.headers["Location"]) == (303, f"/console/clinics/{clinic.clinic_id}/")
    assert (own.status, own.page) == (200, "clinic")
    assert own.html.xpath("//nav//a[text()='Settings']") == []  # operators only
    # And every page of the other clinic, guessed or not, is the same 404 as a clinic that does not exist
    guessed = [
        f"/console/clinics/{other.clinic_id}/",
        f"/console/clinics/{other.clinic_id}/imports/{import_id}",
        f"/console/clinics/{other.clinic_id}/imports/{import_id}/document",
        f"/console/clinics/{other.clinic_id}/dry-run",
    ]
    missing = call("GET", "/console/clinics/0123456789ab/", viewer=mine)
    assert (missing.status, missing.page) == (404, "error")
    for path in guessed:
        answer = call("GET", path, viewer=mine)
        assert (answer.status, answer.main) == (404, missing.main), path
    # And an operator sees it
    assert call("GET", f"/console/clinics/{other.clinic_id}/imports/{import_id}").status == 200


# -- the clinics list and a clinic's page --------------------------------------------------------------


def test_the_clinics_list_shows_each_clinics_sync_health(store: Store, clinic: Clinic) -> None:
    # Given the sample imported for one clinic, and a clinic that never imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    quiet = store.clinics.create("Quiet clinic", "Europe/Moscow", OTHER_KEY)
    # When an operator opens the list
    answer = call("GET", "/console/")
    # Then every clinic has its row, by name
    rows = answer.html.xpath("//tr[@data-clinic]")
    assert [r.get("data-clinic") for r in rows] == [quiet.clinic_id, clinic.clinic_id]
    sample = answer.html.xpath(f"//tr[@data-clinic='{clinic.clinic_id}']")[0]

    def health(row: Any, section: str) -> list[str]:
        return row.xpath(f"td[@data-section='{section}']//@data-health")

    # And the sample's clinic is healthy in every section it sent, just now (orders: their age alone)
    for section in ("Appointments", "Schedules", "Resources", "ResourceGroups", "Orders"):
        assert health(sample, section) == ["ok"], section
    assert "just now" in sample.xpath("string(td[@data-section='Appointments'])")
    assert sample.xpath("td[@data-queued]/@data-queued") == ["0"]
    assert sample.xpath("td[@data-waiting]/@data-waiting") == ["0"]
    # And the quiet clinic's sections are late: never sent (orders are not due before there are any)
    row = answer.html.xpath(f"//tr[@data-clinic='{quiet.clinic_id}']")[0]
    assert [health(row, s) for s in ("Appointments", "Schedules", "Resources", "ResourceGroups", "Orders")] == [
        ["warn"],
        ["warn"],
        ["warn"],
        ["warn"],
        [],
    ]
    # And a health badge says it in words too, not by colour alone
    assert row.xpath("string(td[@data-section='Appointments']/span)") == "never"


def seen(ago: float, outcome: str = "ok", now: float = 1_900_000_000.0) -> SectionSeen:
    return SectionSeen(int(now - ago), "20300101T000000.000000-00000000", outcome)


@pytest.mark.parametrize(
    ("section", "ago", "outcome", "level"),
    [
        ("Appointments", 50 * 60, "ok", "ok"),  # full hourly
        ("Appointments", 61 * 60, "ok", "warn"),  # late
        ("Appointments", 3 * 3600 + 1, "ok", "bad"),  # past stale_after_hours (3)
        ("Appointments", 60, "partial", "warn"),
        ("Appointments", 60, "error", "bad"),
        ("Schedules", 23 * 3600, "ok", "ok"),
        ("Schedules", 25 * 3600, "ok", "warn"),
        ("Schedules", 7 * 86400 + 1, "ok", "bad"),
        ("Resources", 6 * 86400, "ok", "ok"),
        ("ResourceGroups", 8 * 86400, "ok", "warn"),
        ("Resources", 15 * 86400, "ok", "bad"),
        ("Orders", 90 * 86400, "ok", "ok"),  # age alone: orders follow the exports
        ("Orders", 60, "error", "bad"),
    ],
)
def test_a_sections_health_is_its_age_against_the_seeds_cadence_and_its_last_outcome(
    section: str, ago: float, outcome: str, level: str
) -> None:
    synced = int(1_900_000_000 - ago) if section == "Appointments" else None
    clinic = Clinic("c1", "C", "Europe/Moscow", appointments_synced_at=synced)
    overview = ClinicOverview(clinic, 1, {}, {section: seen(ago, outcome)}, seen(ago, outcome))
    judged = clinics.judge(overview, (0, None), 1_900_000_000.0)
    [found] = [s for s in judged.sections if s.name == section]
    assert found.level == level
    # And the clinic is stale (SPEC 5) exactly when its appointments are older than it allows
    assert (judged.stale_since is not None) == (section == "Appointments" and ago > 3 * 3600)


def test_a_clinics_page_lists_its_imports_with_their_outcome(store: Store, clinic: Clinic) -> None:
    # Given the sample imported, then a document with a rejected record
    ok_id = call_import(SAMPLE.read_bytes())[1].get("import_id")
    bad = document('<Schedules>\n<s id="1" date="31.02.2010" resource_id="393"/>\n</Schedules>')
    partial_id = call_import(bad)[1].get("import_id")
    # When the clinic's page is opened
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/")
    # Then its imports are listed newest first, with their outcome, counts and links to their receipts
    rows = answer.html.xpath("//tr[@data-import]")
    assert [(r.get("data-import"), r.get("data-outcome")) for r in rows] == [(partial_id, "partial"), (ok_id, "ok")]
    assert rows[0].xpath("td[3]/text()") == ["1"]  # rejected
    assert rows[0].xpath(".//a/@href") == [
        f"/console/clinics/{clinic.clinic_id}/imports/{partial_id}",
        f"/console/clinics/{clinic.clinic_id}/imports/{partial_id}/document",
    ]
    # And the schedules section's last import is the partial one
    card = answer.html.xpath("//div[@class='card'][@data-section='Schedules']")[0]
    assert card.xpath(".//@data-health") == ["warn"]
    assert card.xpath(".//a/@href") == [f"/console/clinics/{clinic.clinic_id}/imports/{partial_id}"]
    # And the page names the clinic's zone once
    assert answer.text("//*[@data-zone]") == ["Europe/Moscow"]


def test_a_clinics_page_reads_the_clinics_item_once(store: Store, clinic: Clinic) -> None:
    # Given every read of a clinic's item counted
    reads = items_got(store, store.settings.clinics_table)
    # When the clinic's page is opened
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/")
    # Then it is shown, about that clinic, from one read of its item
    assert (answer.status, answer.page) == (200, "clinic")
    assert answer.text("//*[@data-zone]") == ["Europe/Moscow"]
    assert reads == [{"clinic_id": clinic.clinic_id}]


# -- receipts over their documents ---------------------------------------------------------------------


def numbered(count: int) -> str:
    """`count` good resources, one per line, as a document body's lines."""
    return "\n".join(f'<r id="{n}" name="Ресурс {n}" time_step="30"/>' for n in range(1, count + 1))


def test_a_receipt_shows_the_rejected_record_at_its_line_with_the_attribute_marked(
    store: Store, clinic: Clinic
) -> None:
    # Given a document whose line 10 holds a resource with a bad time_step (lines 1-2: declaration, root)
    body = f'<Resources>\n{numbered(6)}\n<r id="77" name="Плохой" time_step="0"/>\n{numbered(20)[0:0]}<r id="78" name="B" time_step="30"/>\n<r id="79" name="C" time_step="30"/>\n<r id="80" name="D" time_step="30"/>\n<r id="81" name="E" time_step="30"/>\n</Resources>'
    status, result, _ = call_import(document(body))
    assert (status, result.get("status")) == (200, "partial")
    import_id = result.get("import_id")
    # When its receipt is opened
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}")
    # Then the rejected line is shown with the three lines before and after it, numbered
    assert (answer.status, answer.page) == (200, "receipt")
    rows = answer.html.xpath("//table[@class='listing']/tr[@data-line]")
    assert [r.get("data-line") for r in rows] == ["7", "8", "9", "10", "11", "12", "13"]
    [line] = answer.html.xpath("//tr[@class='issue-line'][@data-line='10']")
    assert line.xpath("td[@class='n']/text()") == ["10"]
    # And the attribute at fault is highlighted there
    assert line.xpath(".//mark[@class='attr']/text()") == ['time_step="0"']
    assert " ".join(line.text_content().split()) == '10 <r id="77" name="Плохой" time_step="0"/>'
    # And the message follows it, with the section's counts
    assert answer.text("//tr[@class='issue-message'][@data-for-line='10']") == [
        "rejected invalid_record · Resources id=77 · time_step: attribute time_step must be from 1 to 1440, got 0"
    ]
    [section] = answer.html.xpath("//table[@class='sections']/tbody/tr[@data-section='Resources']")
    assert [" ".join(td.text_content().split()) for td in section.xpath("td")][1:6] == ["11", "10", "0", "1", "0"]
    assert answer.html.xpath("//section[@class='receipt']/@data-status") == ["partial"]


def test_a_windows_1251_document_is_shown_in_its_letters_and_downloads_as_sent(store: Store, clinic: Clinic) -> None:
    # Given a windows-1251 document (declared) with a rejected record
    text = f'<?xml version="1.0" encoding="windows-1251"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">\n<ResourceGroups>\n<rg id="1" name="Кардиологи" pos="первый"/>\n</ResourceGroups>\n</MediExchange>\n'
    sent = text.encode("windows-1251")
    status, result, _ = call_import(sent, "application/xml; charset=windows-1251")
    assert status == 200
    import_id = result.get("import_id")
    # When its receipt is opened
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}")
    # Then the line reads as the MIS wrote it, the attribute marked
    [line] = answer.html.xpath("//tr[@class='issue-line'][@data-line='4']")
    assert line.xpath(".//mark[@class='attr']/text()") == ['pos="первый"']
    # When the document is downloaded
    download = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}/document")
    # Then it is the bytes received, as an attachment, in its own type and charset
    assert download.status == 200
    assert download.body == sent
    assert download.headers["Content-Type"] == "application/xml; charset=windows-1251"
    assert download.headers["Content-Disposition"] == f'attachment; filename="{import_id}.xml"'
    assert download.headers["Cache-Control"] == "private, no-store"


def test_a_document_too_large_to_answer_downloads_from_a_link_to_itself(store: Store, clinic: Clinic) -> None:
    # Given a document of over 5 MB (more than a Lambda answer holds), sent gzip-compressed
    padding = "".join(f"<!-- line {n:07d} {'x' * 60} -->\n" for n in range(70_000))
    sent = document(f"{padding}<ResourceGroups/>")
    assert len(sent) > INLINE_BODY_BYTES
    status, result, _ = call_import(gzip.compress(sent), Content_Encoding="gzip")
    assert status == 200
    import_id = result.get("import_id")
    kept = documents_kept(store)
    # When it is downloaded by a client that takes it as it is
    download = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}/document")
    # Then the browser is sent to a short-lived link that answers with the document as an attachment
    assert (download.status, download.body) == (302, b"")
    location = download.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["response-content-disposition"] == [f'attachment; filename="{import_id}.xml"']
    fetched = requests.get(location, timeout=30)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Disposition"] == f'attachment; filename="{import_id}.xml"'
    assert fetched.content == sent
    # And the link is to the kept document itself: nothing was copied (under exports/ or anywhere)
    assert documents_kept(store) == kept
    assert not [key for key in kept if key.startswith("exports/")]
    # When a client that takes gzip downloads it
    compressed = call(
        "GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}/document", headers={"Accept-Encoding": "gzip"}
    )
    # Then it comes in the answer, compressed, as the attachment in the type it was sent with (no charset)
    assert (compressed.status, compressed.headers["Content-Encoding"]) == (200, "gzip")
    assert compressed.headers["Content-Type"] == "application/xml"
    assert compressed.headers["Content-Disposition"] == f'attachment; filename="{import_id}.xml"'
    assert compressed.headers["Cache-Control"] == "private, no-store"
    assert gzip.decompress(compressed.body) == sent


def test_once_its_document_is_no_longer_kept_a_receipt_lists_its_issues_and_the_download_is_not_found(
    store: Store, clinic: Clinic
) -> None:
    # Given an import with a rejected record whose document has since expired from the bucket
    bad = document('<Schedules>\n<s id="1" date="31.02.2010" resource_id="393"/>\n</Schedules>')
    import_id = call_import(bad)[1].get("import_id")
    boto3.client("s3").delete_object(
        Bucket=store.settings.documents_bucket, Key=document_key(clinic.clinic_id, import_id)
    )
    # When its receipt is opened and its document downloaded
    receipt = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}")
    download = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{import_id}/document")
    # Then the receipt says the document is gone and lists the issue without its line
    assert receipt.status == 200
    assert len(receipt.html.xpath("//p[@class='notice']")) == 1
    assert receipt.html.xpath("//tr[@class='issue-line']") == []
    assert "31.02.2010" in receipt.body.decode()
    # And the download is the 404 page
    assert download.status == 404


def test_the_consoles_role_reads_the_kept_documents_and_writes_nothing_to_their_bucket() -> None:
    # Given the console function's policies in template.yaml (a presigned link is signed with its role)
    props = template.resources("AWS::Serverless::Function")["ConsoleFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    # When the statements about S3 are picked out
    on_s3 = [s for s in statements if any(action.startswith("s3:") for action in s["Action"])]
    # Then it may only read, and only what is under the documents' prefix; and list there, so that S3 tells
    # it a document is gone (NoSuchKey, what kept_document takes for "no longer kept") rather than AccessDenied
    folder = document_key("c", "i").split("/")[0]
    assert [(s["Effect"], s["Action"], s["Resource"], s.get("Condition")) for s in on_s3] == [
        ("Allow", ["s3:GetObject"], {"Fn::Sub": f"${{DocumentsBucket.Arn}}/{folder}/*"}, None),
        (
            "Allow",
            ["s3:ListBucket"],
            {"Fn::GetAtt": "DocumentsBucket.Arn"},
            {"StringLike": {"s3:prefix": f"{folder}/*"}},
        ),
    ]


def test_a_receipt_shows_at_most_200_issues_at_their_lines_and_counts_the_rest(store: Store, clinic: Clinic) -> None:
    # Given a document with 230 rejected resources, one a line
    bad = "\n".join(f'<r id="{n}" name="R" time_step="0"/>' for n in range(1, 231))
    status, result, _ = call_import(document(f"<Resources>\n{bad}\n</Resources>"))
    assert status == 200
    # When its receipt is opened
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/{result.get('import_id')}")
    # Then the first 200 are at their lines (4 to 203) and the page says how many more there are
    lines = answer.html.xpath("//tr[contains(@class, 'issue-line')]/@data-line")
    assert lines == [str(n) for n in range(4, 204)]
    assert answer.html.xpath("//*[@data-hidden]/@data-hidden") == ["30"]
    assert answer.html.xpath("//section/@data-errors") == ["230"]


def test_a_long_line_is_cut_around_each_issues_record() -> None:
    # Given a document of 20,000 records on one line, and issues with two of them
    records = "".join(f'<r id="{n}" name="R{n}" time_step="30"/>' for n in range(1, 20_001))
    data = f'<MediExchange ClientKey="K"><Resources>{records}</Resources></MediExchange>'.encode()
    issues = [ReceiptIssue("error", "invalid_record", "bad", 1, "Resources", str(n), "time_step") for n in (15_000, 7)]
    # When they are laid over it
    laid = overlay(data, None, issues)
    # Then each is shown once, cut around its own record, the attribute marked, never the whole line
    [block] = laid.blocks
    assert [line.number for line in block.lines] == [1, 1]
    for line, n in zip(block.lines, (7, 15_000), strict=True):
        text = "".join(piece.text for piece in line.pieces)
        assert f'<r id="{n}" name="R{n}" time_step="30"/>' in text
        assert len(text) < 2 * receipts.LINE_CHARS
        assert [p.text for p in line.pieces if p.marked] == ['time_step="30"']
        assert [i.record_id for i in line.issues] == [str(n)]
    assert laid.unplaced == () and laid.hidden == 0


@pytest.mark.parametrize(
    ("line", "issue", "marked"),
    [
        pytest.param(
            '<a tablename="T" id="1" Duration="15"/><a tablename="T" id="02" Duration="x"/>',
            ReceiptIssue("error", "invalid_record", "m", 1, "Appointments", "T#2", "Duration"),
            'Duration="x"',
            id="an appointment by its key tablename#id, its id written with a zero",
        ),
        pytest.param(
            '<s id="1" date="01.07.2010"><time_rules w_end="9:00"/></s><s id="2" date="02.07.2010"><time_rules w_end="24:01"/></s>',
            ReceiptIssue("error", "invalid_record", "m", 1, "Schedules", "2", "w_end"),
            'w_end="24:01"',
            id="a schedule's time_rules",
        ),
        pytest.param(
            '<r id="1" name="A" resource_id="2" time_step="30"/><r id="2" name="B" time_step="0"/>',
            ReceiptIssue("error", "invalid_record", "m", 1, "Resources", "2", "time_step"),
            'time_step="0"',
            id="not fooled by another attribute ending in id",
        ),
    ],
)
def test_the_attribute_is_marked_in_its_own_record_when_a_line_holds_several(
    line: str, issue: ReceiptIssue, marked: str
) -> None:
    laid = overlay(line.encode(), None, [issue])
    [block] = laid.blocks
    [shown] = block.lines
    assert [p.text for p in shown.pieces if p.marked] == [marked]
    assert "".join(p.text for p in shown.pieces) == line


BODY = '<MediExchange ClientKey="K"><Resources>\n<r id="1" name="Иванова" time_step="0"/>\n</Resources></MediExchange>'


@pytest.mark.parametrize(
    ("data", "charset", "read_in"),
    [
        pytest.param(BODY.encode(), None, "utf-8", id="no declaration, no charset"),
        pytest.param(BODY.encode("cp1251"), "windows-1251", "windows-1251", id="the charset it was sent with"),
        pytest.param(b"\xef\xbb\xbf" + BODY.encode(), "windows-1251", "utf-8", id="a BOM over the charset"),
        pytest.param(
            b'<?xml version="1.0" encoding="windows-1251"?>' + BODY.encode("cp1251"),
            "utf-8",
            "windows-1251",
            id="the declaration over the charset",
        ),
        pytest.param(
            b'<?xml-stylesheet href="r.xsl" encoding="windows-1251"?>' + BODY.encode(),
            None,
            "utf-8",
            id="a processing instruction is no declaration",
        ),
        pytest.param(
            b"\n" * 600 + b'<?xml version="1.0" encoding="windows-1251"?>' + BODY.encode("cp1251"),
            None,
            "windows-1251",
            id="a declaration after 600 blank lines",
        ),
    ],
)
def test_a_receipt_reads_the_document_in_the_encoding_the_import_read_it(
    data: bytes, charset: str | None, read_in: str
) -> None:
    # Given a document the import reads in `read_in`
    assert parse_document(data, charset).getroottree().docinfo.encoding.lower() == read_in
    issue = ReceiptIssue(
        "error", "invalid_record", "m", data.count(b"\n", 0, data.index(b"<r ")) + 1, "Resources", "1", "time_step"
    )
    # When its receipt is laid over it
    laid = overlay(data, charset, [issue])
    # Then the receipt decodes it in the same encoding, and the record reads as it was written
    assert receipts.encoding_of(data, charset) == read_in
    [block] = laid.blocks
    [shown] = [line for line in block.lines if line.issues]
    assert "".join(p.text for p in shown.pieces) == '<r id="1" name="Иванова" time_step="0"/>'


def test_an_import_not_finished_shows_its_state_and_a_missing_import_is_404(store: Store, clinic: Clinic) -> None:
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/20300101T000000.000000-0000abcd")
    assert (answer.status, answer.page) == (404, "error")
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/imports/not-an-id")
    assert answer.status == 404


# -- the dry run -----------------------------------------------------------------------------------------


def test_a_dry_run_lays_the_receipt_over_the_pasted_document_and_writes_nothing(
    store: Store, dynamodb: Any, clinic: Clinic
) -> None:
    # Given the sample imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    before, kept = snapshot(dynamodb), documents_kept(store)
    logged = store.imports.recent(clinic.clinic_id)
    # When the integrator pastes a document with a bad schedule on line 5
    pasted = document(
        '<Schedules>\n<s id="5" date="02.07.2010" resource_id="393"/>\n<s id="6" date="30.02.2010" resource_id="393"/>\n</Schedules>'
    ).decode()
    answer = call(
        "POST",
        f"/console/clinics/{clinic.clinic_id}/dry-run",
        viewer=integrator(clinic.clinic_id),
        form={"document": pasted, "csrf": CSRF},
    )
    # Then the page shows the receipt of a dry run, the rejected line marked at its place
    assert (answer.status, answer.page) == (200, "dry-run")
    assert answer.html.xpath("//section[@class='receipt']/@data-status") == ["partial"]
    assert "dry run: nothing was written" in answer.text("//section[@class='receipt']/p")[0]
    [line] = answer.html.xpath("//tr[@class='issue-line'][@data-line='5']")
    assert line.xpath(".//mark[@class='attr']/text()") == ['date="30.02.2010"']
    # And the document is in the form again
    assert answer.html.xpath("//textarea[@name='document']/text()") == [pasted]
    # And nothing was stored: no record, no import log, no kept document
    assert snapshot(dynamodb) == before
    assert store.imports.recent(clinic.clinic_id) == logged
    assert documents_kept(store) == kept


def test_a_dry_run_looks_its_key_up_once(store: Store, clinic: Clinic) -> None:
    # Given a count of the store's reads of the client keys table
    key_reads = items_got(store, store.settings.client_keys_table)
    pasted = document('<Resources>\n<r id="1" name="A" time_step="30"/>\n</Resources>').decode()
    # When the integrator dry-runs a document of their clinic
    answer = call(
        "POST",
        f"/console/clinics/{clinic.clinic_id}/dry-run",
        viewer=integrator(clinic.clinic_id),
        form={"document": pasted, "csrf": CSRF},
    )
    # Then it is answered, and its key was read from the store once, not once more by the import
    assert (answer.status, answer.html.xpath("//section[@class='receipt']/@data-status")) == (200, ["ok"])
    assert len(key_reads) == 1


def test_a_dry_run_of_an_uploaded_windows_1251_file(store: Store, dynamodb: Any, clinic: Clinic) -> None:
    before = snapshot(dynamodb)
    text = f'<?xml version="1.0" encoding="windows-1251"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">\n<ResourceGroups>\n<rg id="1" name="Хирурги" pos="x"/>\n</ResourceGroups>\n</MediExchange>\n'
    body, content_type = multipart(
        {"csrf": (CSRF.encode(), None), "document": (b"", None), "file": (text.encode("windows-1251"), "text/xml")}
    )
    # When a file is uploaded to the dry run
    answer = call(
        "POST", f"/console/clinics/{clinic.clinic_id}/dry-run", body=body, headers={"Content-Type": content_type}
    )
    # Then its receipt is laid over it, read in its own encoding
    assert answer.status == 200
    [line] = answer.html.xpath("//tr[@class='issue-line'][@data-line='4']")
    assert " ".join(line.text_content().split()) == '4 <rg id="1" name="Хирурги" pos="x"/>'
    assert snapshot(dynamodb) == before
    assert store.imports.recent(clinic.clinic_id) == []


def test_a_dry_run_of_another_clinics_document_is_refused_as_an_unknown_key(
    store: Store, dynamodb: Any, clinic: Clinic
) -> None:
    # Given another clinic
    store.clinics.create("Other clinic", "Europe/Moscow", OTHER_KEY)
    before, kept = snapshot(dynamodb), documents_kept(store)
    body = '<Resources><r id="1" name="A" time_step="30"/></Resources>'
    mine = integrator(clinic.clinic_id)
    path = f"/console/clinics/{clinic.clinic_id}/dry-run"
    # When the integrator dry-runs the other clinic's document, and one with a key nobody has
    theirs = call("POST", path, viewer=mine, form={"document": document(body, OTHER_KEY).decode(), "csrf": CSRF})
    nobodys = call("POST", path, viewer=mine, form={"document": document(body, "NO-SUCH-KEY").decode(), "csrf": CSRF})
    # Then both get the one answer an unknown key gets everywhere
    assert theirs.status == nobodys.status == 403
    refusal = "//section[@class='receipt']//li[@data-code='unknown_client_key']"
    assert (
        theirs.text(refusal)
        == nobodys.text(refusal)
        == ["rejected unknown_client_key: no active clinic has this client_key"]
    )
    assert theirs.html.xpath("//section[@class='receipt']/@data-status") == ["error"]
    # And nothing was stored
    assert snapshot(dynamodb) == before and documents_kept(store) == kept


def test_a_malformed_dry_run_document_shows_the_error_at_its_line(store: Store, clinic: Clinic) -> None:
    pasted = f'<MediExchange ClientKey="{SAMPLE_KEY}">\n<Resources>\n<r id="1" name="A" time_step="30">\n</Resources>\n</MediExchange>'
    answer = call("POST", f"/console/clinics/{clinic.clinic_id}/dry-run", form={"document": pasted, "csrf": CSRF})
    assert answer.status == 400
    assert answer.html.xpath("//section[@class='receipt']/@data-status") == ["error"]
    assert answer.html.xpath("//tr[@class='issue-line']/@data-line") == ["4"]
    assert answer.html.xpath("//tr[@data-line]/@data-line") == ["1", "2", "3", "4", "5"]


def test_the_dry_run_form(store: Store, clinic: Clinic) -> None:
    answer = call("GET", f"/console/clinics/{clinic.clinic_id}/dry-run", viewer=integrator(clinic.clinic_id))
    assert (answer.status, answer.page) == (200, "dry-run")
    [form] = answer.html.xpath("//form[@data-form='dry-run']")
    assert form.get("action") == f"/console/clinics/{clinic.clinic_id}/dry-run"
    assert form.xpath("input[@name='csrf']/@value") == [CSRF]
    assert answer.html.xpath("//section[@class='receipt']") == []


def test_pages_take_well_under_a_second(store: Store, clinic: Clinic) -> None:
    """A smoke check of time on moto (bench/console.py measures the big clinic)."""
    assert call_import(SAMPLE.read_bytes())[0] == 200
    started = time.perf_counter()
    for path in ("/console/", f"/console/clinics/{clinic.clinic_id}/"):
        assert call("GET", path).status == 200
    assert time.perf_counter() - started < 2
