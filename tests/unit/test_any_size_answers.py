"""SPEC r2 section 4, "Any size", and section 7: no answer outgrows Lambda's 6 MB response (the body
base64 in it). An export goes in the answer where it fits, gzip-compressed for a client that accepts
gzip, and otherwise by a redirect to the whole document in S3; status.php's list stays bounded."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from lxml import etree
from mediexchange import web
from mediexchange.protocol.writing import STATUS_LIST_BYTES, status_document
from mediexchange.records import Clinic, Order
from mediexchange.store import Store
from mediexchange.web import INLINE_BODY_BYTES, LAMBDA_RESPONSE_BYTES, accepts_gzip, sized_xml_response, xml_resolver

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import FakeContext, api_event, call_import, decoded, document, headers_of
from tests.unit.conftest import an_order as booked_order

MOSCOW = ZoneInfo("Europe/Moscow")
XML = "application/xml; charset=utf-8"
BUCKET = "mediexchange-documents"


def event(method: str = "GET", accept_encoding: str | None = None) -> APIGatewayProxyEvent:
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding is not None else {}
    return APIGatewayProxyEvent(api_event(method, "/services/export.php", headers=headers))


def xml_of(size: int, compressible: bool = True) -> bytes:
    """An XML document of exactly `size` bytes: repetitive (as exports are) or random-looking (a seeded
    generator's bytes, base64 so they stay XML text), which gzip cannot shrink."""
    head, tail = b'<?xml version="1.0"?>\n<d>', b"</d>"
    room = size - len(head) - len(tail)
    filler = b"o" * room if compressible else base64.b64encode(random.Random(7).randbytes(room))[:room]
    return head + filler + tail


class Kept:
    """Stands in for the store's `exports.keep`: records what it was given, answers a fixed URL."""

    URL = "https://bucket.s3.eu-central-1.amazonaws.com/exports/x.xml?X-Amz-Signature=s"

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []

    def __call__(self, body: bytes, content_type: str) -> str:
        self.calls.append((body, content_type))
        return self.URL


# --- Accept-Encoding (RFC 9110) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*;q=0", False),
        ("deflate, br", False),
        ("identity", False),
        ("", False),
        (None, False),
    ],
)
def test_gzip_is_accepted_only_when_the_client_says_so(header: str | None, accepted: bool) -> None:
    # Given a request with this Accept-Encoding; When asked; Then gzip is accepted exactly as RFC 9110 says
    assert accepts_gzip(event(accept_encoding=header)) is accepted


# --- The size decision -----------------------------------------------------------------------------------


def answer(
    body: bytes, method: str = "GET", accept: str | None = None, encoding: str = "utf-8", limit: int = 10_000
) -> tuple[Response[bytes], Kept]:
    kept = Kept()
    return sized_xml_response(event(method, accept), body, encoding, kept, limit), kept


def test_a_small_answer_goes_as_it_is_even_to_a_client_that_accepts_gzip() -> None:
    # Given an answer under GZIP_FROM_BYTES
    body = xml_of(web.GZIP_FROM_BYTES - 1)
    # When a client accepting gzip gets it
    response, kept = answer(body, accept="gzip")
    # Then it goes as it is
    assert (response.status_code, response.body, response.headers) == (
        200,
        body,
        {"Content-Type": XML, "Vary": "Accept-Encoding"},
    )
    assert kept.calls == []


def test_an_answer_that_fits_is_compressed_for_a_client_that_accepts_gzip() -> None:
    # Given an 8 KB answer, within the 10 KB limit
    body = xml_of(8_000)
    # When a client accepting gzip gets it, and one that does not
    compressed, kept = answer(body, accept="gzip, deflate")
    plain, kept_plain = answer(body, accept="identity")
    # Then the first gets it gzip-compressed, the second as it is, both in the answer
    assert (compressed.status_code, compressed.headers) == (
        200,
        {"Content-Type": XML, "Vary": "Accept-Encoding", "Content-Encoding": "gzip"},
    )
    assert isinstance(compressed.body, bytes) and gzip.decompress(compressed.body) == body
    assert (plain.status_code, plain.body, plain.headers) == (
        200,
        body,
        {"Content-Type": XML, "Vary": "Accept-Encoding"},
    )
    assert kept.calls == kept_plain.calls == []


def test_an_answer_over_the_limit_that_compresses_under_it_goes_compressed() -> None:
    # Given a 50 KB answer, five times the limit, that compresses well
    body = xml_of(50_000)
    # When a client accepting gzip gets it
    response, kept = answer(body, accept="gzip")
    # Then it is in the answer, compressed, within the limit, and nothing is stored
    assert (response.status_code, response.headers["Content-Encoding"]) == (200, "gzip")
    assert isinstance(response.body, bytes) and len(response.body) <= 10_000
    assert gzip.decompress(response.body) == body
    assert kept.calls == []


@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("POST", 303)])
@pytest.mark.parametrize("accept", [None, "identity", "gzip"])
def test_an_answer_that_does_not_fit_is_redirected_to_the_whole_document(
    method: str, status: int, accept: str | None
) -> None:
    # Given a 50 KB answer that even compressed exceeds the 10 KB limit
    body = xml_of(50_000, compressible=False)
    assert len(web.gzipped(body)) > 10_000
    # When a client gets it (GET, or the form's POST), whatever it accepts
    response, kept = answer(body, method=method, accept=accept, encoding="windows-1251")
    # Then the answer is an empty redirect (303 to a POST: fetch it with GET) to where it was kept
    assert (response.status_code, response.body) == (status, b"")
    assert response.headers == {"Vary": "Accept-Encoding", "Location": Kept.URL, "Cache-Control": "no-store"}
    # And what was kept is the whole document, not compressed, with its encoding named
    assert kept.calls == [(body, "application/xml; charset=windows-1251")]


def test_an_incompressible_answer_that_fits_is_not_redirected_for_a_gzip_client() -> None:
    # Given a 9,990-byte answer, within the 10 KB limit, that gzip would only make larger
    body = random.Random(7).randbytes(9_990)
    assert len(web.gzipped(body)) > len(body)
    # When a client accepting gzip gets it; Then it goes as it is, in the answer
    response, kept = answer(body, accept="gzip")
    assert (response.status_code, response.body, response.headers.get("Content-Encoding")) == (200, body, None)
    assert kept.calls == []


def lambda_answer(body: bytes) -> dict[str, Any]:
    """What the function returns to Lambda for an answer of this body, through the service's resolver."""
    app = xml_resolver("ExportResult")
    kept = Kept()

    @app.get("/services/export.php")
    def route() -> Response[bytes]:
        return sized_xml_response(app.current_event, body, "utf-8", kept)

    result: dict[str, Any] = app.resolve(api_event("GET", "/services/export.php"), FakeContext())
    return result


def test_the_largest_body_answered_in_place_fits_lambdas_limit_after_base64() -> None:
    # Given answers of exactly INLINE_BODY_BYTES (4 MiB) and one byte more, incompressible
    largest = xml_of(INLINE_BODY_BYTES, compressible=False)
    over = xml_of(INLINE_BODY_BYTES + 1, compressible=False)
    # When the function answers them to a client that does not accept gzip
    in_place, redirected = lambda_answer(largest), lambda_answer(over)
    # Then the first is in the answer, whose JSON (the body base64 in it) is under Lambda's 6 MB
    assert (in_place["statusCode"], decoded(in_place)) == (200, largest)
    assert len(json.dumps(in_place)) < LAMBDA_RESPONSE_BYTES
    # And the second is redirected
    assert (redirected["statusCode"], headers_of(redirected)["Location"]) == (302, Kept.URL)


# --- Through the export handler, on moto, with the limit lowered to 5 KB ---------------------------------


def an_order(order_id: int) -> Order:
    """Orders half an hour apart, each with a comment the export must escape."""
    return booked_order(
        order_id,
        1_900_000_000 + order_id,
        reception=dt.datetime(2030, 3, 20, 9, 0) + dt.timedelta(minutes=30 * order_id),
        comment="Первичный приём & «консультация»",
    )


@pytest.fixture
def forty_orders(store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sample clinic with 40 orders (about 22 KB of export), and answers limited to 5 KB in place."""
    ids = store.clinics.reserve_order_ids(clinic.clinic_id, 40)
    store.orders.load(clinic.clinic_id, [an_order(order_id) for order_id in ids], MOSCOW)
    monkeypatch.setattr(web, "INLINE_BODY_BYTES", 5_000)
    return [str(order_id) for order_id in ids]


def call_export_with(query: dict[str, str], method: str = "GET", **headers: str) -> tuple[int, bytes, dict[str, str]]:
    from functions.mis_export.app import lambda_handler

    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    body = b""
    if method == "POST":
        body = "&".join(f"{k}={v}" for k, v in query.items()).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    event = api_event(method, "/services/export.php", body, all_headers, None if body else query)
    response = lambda_handler(event, FakeContext())
    return response["statusCode"], decoded(response), headers_of(response)


def ids_in(body: bytes) -> list[str]:
    return [o.get("ID") for o in etree.fromstring(body).iter("o")]


def stored_at(location: str) -> tuple[str, Any]:
    """The key a presigned URL names, and the object stored under it."""
    key = urlsplit(location).path.lstrip("/")
    return key, boto3.client("s3").get_object(Bucket=BUCKET, Key=key)


EXPORT_ALL = {"client_key": SAMPLE_KEY, "start": "0"}


def test_an_export_too_large_for_the_answer_is_fetched_from_a_presigned_url(
    clinic: Clinic, forty_orders: list[str]
) -> None:
    # Given 40 orders, an export over the (lowered) limit
    # When an MIS that does not accept gzip exports them
    status, body, headers = call_export_with(EXPORT_ALL, Accept_Encoding="identity")
    # Then it is redirected, with no body, to the bucket's regional virtual host, a URL valid for 5 minutes
    assert (status, body) == (302, b"")
    location = headers["Location"]
    split = urlsplit(location)
    assert (split.scheme, split.netloc) == ("https", f"{BUCKET}.s3.eu-central-1.amazonaws.com")
    signed = parse_qs(split.query)
    assert (signed["X-Amz-Algorithm"], signed["X-Amz-Expires"]) == (["AWS4-HMAC-SHA256"], ["300"])
    # And the document is stored whole under exports/orders/<clinic_id>/, as it is
    key, stored = stored_at(location)
    assert key.startswith(f"exports/orders/{clinic.clinic_id}/") and key.endswith(".xml")
    assert (stored["ContentType"], stored.get("ContentEncoding")) == (XML, None)
    document_bytes = stored["Body"].read()
    assert ids_in(document_bytes) == forty_orders
    # And a plain HTTP GET of the URL gets it
    fetched = requests.get(location, timeout=10)
    assert (fetched.status_code, fetched.content) == (200, document_bytes)


def test_the_same_export_comes_compressed_in_the_answer_to_a_client_that_accepts_gzip(
    clinic: Clinic, forty_orders: list[str]
) -> None:
    # Given 40 orders whose export is over the limit but compresses under it
    # When an MIS that accepts gzip exports them
    status, body, headers = call_export_with(EXPORT_ALL, Accept_Encoding="gzip")
    # Then they are in the answer, gzip-compressed
    assert (status, headers["Content-Encoding"], headers["Content-Type"]) == (200, "gzip", XML)
    assert len(body) <= 5_000
    assert ids_in(gzip.decompress(body)) == forty_orders


def test_a_posted_export_is_redirected_with_303_in_its_encoding(clinic: Clinic, forty_orders: list[str]) -> None:
    # Given 40 orders over the limit
    # When an MIS posts the export form asking for windows-1251
    status, body, headers = call_export_with({**EXPORT_ALL, "encoding": "windows-1251"}, method="POST")
    # Then it is told to GET the document (303), stored in windows-1251
    assert (status, body) == (303, b"")
    _, stored = stored_at(headers["Location"])
    assert stored["ContentType"] == "application/xml; charset=windows-1251"
    document_bytes = stored["Body"].read()
    assert document_bytes.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    assert ids_in(document_bytes) == forty_orders
    assert etree.fromstring(document_bytes).find("Orders/o").get("Comment") == "Первичный приём & «консультация»"


def test_an_export_that_fits_is_answered_in_place_and_nothing_is_stored(clinic: Clinic, store: Store) -> None:
    # Given three orders (an export of about 2 KB)
    store.orders.load(
        clinic.clinic_id, [an_order(n) for n in store.clinics.reserve_order_ids(clinic.clinic_id, 3)], MOSCOW
    )
    # When an MIS exports it, accepting gzip or not
    plain_status, plain, _ = call_export_with(EXPORT_ALL)
    gzip_status, compressed, headers = call_export_with(EXPORT_ALL, Accept_Encoding="gzip")
    # Then both are answered in place, and the bucket holds no export
    assert (plain_status, gzip_status, headers["Content-Encoding"]) == (200, 200, "gzip")
    assert gzip.decompress(compressed) == plain and ids_in(plain) == ["1", "2", "3"]
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="exports/")["KeyCount"] == 0


# --- status.php's list is bounded -------------------------------------------------------------------------


def a_result(import_id: str, errors: int, message_length: int = 200, warnings: int = 1) -> bytes:
    """A stored ImportResult listing `errors` rejected records (each message `message_length` long)."""
    root = etree.Element("ImportResult", status="partial", import_id=import_id)
    etree.SubElement(root, "Resources", received=str(errors + 5), written="5", deleted="0", rejected=str(errors))
    orders = etree.SubElement(root, "Orders", received="2", updated="0", unchanged="0", conflicts="0", unknown="2")
    orders.set("rejected", "0")
    for order_id in (7, 8):
        etree.SubElement(orders, "unknown", id=str(order_id))
    for n in range(errors):
        error = etree.SubElement(root, "Error", code="invalid_record", line=str(n + 3), section="Resources")
        error.text = "ф" * (message_length // 2)
    listed = etree.SubElement(root, "Warnings")
    for n in range(warnings):
        etree.SubElement(listed, "w", code="unknown_group", line=str(n + 3)).text = "group 9 is not known"
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def rows(results: list[bytes | None]) -> list[tuple[str, str, str, bytes | None]]:
    return [(f"imp-{n}", "30.11.2026 05:15:26", "done" if r else "queued", r) for n, r in enumerate(results)]


def imports_of(root: etree._Element) -> list[tuple[str | None, str | None, str | None, int, int]]:
    """Each import: abridged, errors, warnings as the list says, and the Error and w elements it carries."""
    return [
        (i.get("abridged"), i.get("errors"), i.get("warnings"), len(i.findall("ImportResult/Error")), len(i.findall("ImportResult/Warnings/w")))
        for i in root.iter("import")
    ]  # fmt: skip


def test_twenty_imports_of_a_thousand_errors_make_a_list_within_the_budget() -> None:
    # Given the 20 imports status.php lists, each with 1,000 errors listed (about 300 KB each, 6 MB in all)
    results: list[bytes | None] = [a_result(f"imp-{n}", errors=1000, message_length=200) for n in range(20)]
    each = len(results[0] or b"")
    assert 250_000 < each < STATUS_LIST_BYTES // 3
    # When the list is written
    root = status_document(rows(results))
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    # Then the newest imports that fit in 1 MiB carry their whole result, the others a summary
    whole = STATUS_LIST_BYTES // each
    assert imports_of(root) == [(None, None, None, 1000, 1)] * whole + [("1", "1000", "1", 0, 0)] * (20 - whole)
    # And the answer stays within the budget and a few summaries, far under Lambda's limit
    assert len(body) < STATUS_LIST_BYTES + 20 * 1_000
    assert len(body) < INLINE_BODY_BYTES


def test_a_summary_keeps_the_results_status_and_counts_and_drops_the_records() -> None:
    # Given one import too large for the list's budget
    result = a_result("imp-0", errors=3)
    # When the list is written with a budget smaller than it
    [element] = status_document(rows([result]), whole=False, budget=100)
    # Then it is marked abridged, and its ImportResult keeps its own attributes and each section's counts
    assert dict(element.attrib) == {
        "import_id": "imp-0",
        "received_at": "30.11.2026 05:15:26",
        "state": "done",
        "abridged": "1",
        "errors": "3",
        "warnings": "1",
    }
    [summary] = element
    assert (summary.tag, dict(summary.attrib)) == ("ImportResult", {"status": "partial", "import_id": "imp-0"})
    assert [(c.tag, dict(c.attrib), len(c)) for c in summary] == [
        ("Resources", {"received": "8", "written": "5", "deleted": "0", "rejected": "3"}, 0),
        ("Orders", {"received": "2", "updated": "0", "unchanged": "0", "conflicts": "0", "unknown": "2", "rejected": "0"}, 0),
    ]  # fmt: skip


def test_a_large_result_does_not_crowd_out_the_small_ones_after_it() -> None:
    # Given a queued import, a huge result (2 MB), then two small ones, newest first
    results: list[bytes | None] = [None, a_result("a", 10_000, 200), a_result("b", 2), a_result("c", 2)]
    # When the list is written; Then the small ones come whole, the huge one as a summary
    assert imports_of(status_document(rows(results))) == [
        (None, None, None, 0, 0),
        ("1", "10000", "1", 0, 0),
        (None, None, None, 2, 1),
        (None, None, None, 2, 1),
    ]


def test_one_import_asked_for_by_its_id_comes_whole_whatever_its_size() -> None:
    # Given an import whose result (5 MB) is over the list's budget
    result = a_result("a", 25_000, 200)
    assert len(result) > 4 * STATUS_LIST_BYTES
    # When it is asked for alone (by its id, or as a list of one); Then it comes whole
    assert imports_of(status_document(rows([result]), whole=True)) == [(None, None, None, 25_000, 1)]
    assert imports_of(status_document(rows([result]))) == [(None, None, None, 25_000, 1)]
    # And in a list of more it comes as a summary
    assert imports_of(status_document(rows([result, None]))) == [("1", "25000", "1", 0, 0), (None, None, None, 0, 0)]


def test_status_php_lists_big_results_abridged_and_gives_each_whole_by_its_id(clinic: Clinic) -> None:
    # Given three imports, each rejecting 1,001 resources whose 450-character ids are no integers
    bad = "".join(f'<r id="{"x" * 449}{n % 10}" name="Врач" time_step="15"/>' for n in range(1_001))
    ids = []
    for _ in range(3):
        status, result, _ = call_import(document(f"<Resources>{bad}</Resources>"))
        assert (status, result.get("status")) == (200, "partial")
        ids.append(result.get("import_id"))
        # (each result is over half the list's budget: two cannot both come whole)
        assert STATUS_LIST_BYTES // 2 < len(etree.tostring(result, encoding="utf-8")) < STATUS_LIST_BYTES
    # When the MIS lists its imports
    listed = call_status({"client_key": SAMPLE_KEY})
    # Then the newest carries its whole result and the older two a summary, with the errors they leave out
    assert [i.get("import_id") for i in listed.iter("import")] == ids[::-1]
    assert imports_of(listed) == [(None, None, None, 1_001, 1), ("1", "1001", "1", 0, 0), ("1", "1001", "1", 0, 0)]
    # And each, asked for by its id, comes whole
    for import_id in ids:
        one = call_status({"client_key": SAMPLE_KEY, "import_id": import_id})
        assert imports_of(one) == [(None, None, None, 1_001, 1)]


def test_an_import_too_large_for_the_list_comes_whole_by_its_id(clinic: Clinic) -> None:
    # Given two imports, each rejecting 1,001 resources whose 999-character ids are no integers (over 1 MiB)
    bad = "".join(f'<r id="{"x" * 998}{n % 10}" name="Врач" time_step="15"/>' for n in range(1_001))
    ids = [call_import(document(f"<Resources>{bad}</Resources>"))[1].get("import_id") for _ in range(2)]
    # When the MIS lists its imports; Then both come as summaries
    assert imports_of(call_status({"client_key": SAMPLE_KEY})) == [("1", "1001", "1", 0, 0)] * 2
    # And each, asked for by its id, comes whole
    for import_id in ids:
        one = call_status({"client_key": SAMPLE_KEY, "import_id": import_id})
        assert imports_of(one) == [(None, None, None, 1_001, 1)]
        assert len(etree.tostring(one, encoding="utf-8")) > STATUS_LIST_BYTES


def call_status(query: dict[str, str]) -> Any:
    from functions.mis_status.app import lambda_handler

    response = lambda_handler(api_event("GET", "/services/status.php", query=query), FakeContext())
    assert response["statusCode"] == 200, decoded(response)
    return etree.fromstring(decoded(response))
