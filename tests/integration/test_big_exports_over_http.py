"""SPEC r2 section 4, "Any size": an export of 20,000 orders (11 MB of XML, 14.6 MB after base64, over
Lambda's 6 MB) reaches an MIS that accepts gzip and one that does not, over real HTTP against `make run`."""

from __future__ import annotations

import datetime as dt
import gzip
import math
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.config import Settings
from mediexchange.records import Order, OrderStatus
from mediexchange.store import Store
from mediexchange.web import INLINE_BODY_BYTES, LAMBDA_RESPONSE_BYTES

from tests.integration.conftest import LocalServer

ORDERS = 20_000
FIRST_CHANGE = 1_900_000_000
MOSCOW = ZoneInfo("Europe/Moscow")
# The sample's spelling, in the seed's order: what the export writes for each order.
ATTRIBUTES = (
    "ID", "Status", "user_id", "user_name", "order_date", "MW_Resource_ID", "Resource_Name", "Resource_ID",
    "Reception_Datetime", "Duration", "Type", "Name1", "Name2", "Name3", "Aim", "Phone", "City", "Address",
    "Email", "Comment", "LastChangedOn",
)  # fmt: skip


@dataclass(frozen=True)
class BigClinic:
    client_key: str
    clinic_id: str
    orders: list[Order]


def a_patient_order(n: int, order_id: int) -> Order:
    """Order n of the clinic: Cyrillic, quotes, ampersands and line breaks, as patients type them."""
    return Order(
        id=order_id,
        status=OrderStatus.RECEIVED,
        user_id=f"u{n}",
        user_name=f"Пользователь {n}",
        order_date=dt.date(2031, 3, 1),
        mw_resource_id=400 + n % 70,
        resource_name=f"Врач «{n % 70}» & Co",
        resource_id=n % 70 + 1,
        reception=dt.datetime(2031, 3, 3, 8) + dt.timedelta(days=n % 31, minutes=15 * (n // 31 % 44)),
        duration=15,
        name1="Смирнова",
        name2=f"Анна-{n}",
        name3="Петровна",
        aim="Консультация",
        phone=f"+7 912 {n:07d}",
        city="Москва",
        address=f'ул. "Ленина", д. {n % 200}, кв. <{n % 90}>',
        email=f"patient{n}@example.ru",
        comment=f"Первичный приём\nнаправление № {n}",
        last_changed=FIRST_CHANGE + n,
        portal_changed=FIRST_CHANGE + n,
    )


def exported(order: Order) -> list[tuple[str, str]]:
    """What the export must say of a stored order, written out by hand from the SPEC."""
    values = [
        str(order.id), "0", order.user_id, order.user_name, order.order_date.strftime("%d.%m.%Y"),
        str(order.mw_resource_id), order.resource_name, str(order.resource_id),
        order.reception.strftime("%d.%m.%Y %H:%M:%S"), str(order.duration), "3", order.name1, order.name2,
        order.name3, order.aim, order.phone, order.city, order.address, order.email, order.comment,
        dt.datetime.fromtimestamp(order.last_changed, MOSCOW).strftime("%d.%m.%Y %H:%M:%S"),
    ]  # fmt: skip
    return list(zip(ATTRIBUTES, values, strict=True))


@pytest.fixture(scope="module")
def big_clinic(server: LocalServer) -> Iterator[BigClinic]:
    """A clinic created with the CLI, holding 20,000 orders loaded in bulk through the store (as a clinic
    moving from the original portal would be), against the local server's store."""
    created = server.create_clinic("Большая клиника")
    store = Store(Settings.from_env({"DYNAMODB_ENDPOINT_URL": server.dynamodb_url}))
    ids = store.clinics.reserve_order_ids(created["clinic_id"], ORDERS)
    orders = [a_patient_order(n, order_id) for n, order_id in enumerate(ids, start=1)]
    store.orders.load(created["clinic_id"], orders, MOSCOW)
    yield BigClinic(created["client_key"], created["clinic_id"], orders)


def lambda_payload(body: bytes) -> int:
    """The characters a body takes in Lambda's answer: base64, as the API's binary media types make it."""
    return 4 * math.ceil(len(body) / 3)


def orders_of(document: bytes) -> list[list[tuple[str, str]]]:
    return [list(o.attrib.items()) for o in etree.fromstring(document).iter("o")]


class RecordedRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's own redirect handling (what a plain HTTP client does), noting each hop it follows."""

    def __init__(self) -> None:
        self.hops: list[tuple[int, str, bytes]] = []

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        self.hops.append((code, newurl, fp.read()))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def export_path(clinic: BigClinic) -> str:
    return f"/services/export.php?client_key={clinic.client_key}&start=0"


def test_an_mis_that_accepts_gzip_gets_20000_orders_in_one_compressed_answer(
    server: LocalServer, big_clinic: BigClinic
) -> None:
    # Given a clinic with 20,000 orders
    # When its MIS exports everything from start=0, accepting gzip
    status, headers, body = server.request("GET", export_path(big_clinic), headers={"Accept-Encoding": "gzip"})
    # Then one answer carries them all, gzip-compressed, within Lambda's limit after base64
    assert status == 200, body[:500]
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert headers["Vary"] == "Accept-Encoding"
    assert len(body) <= INLINE_BODY_BYTES
    assert lambda_payload(body) < LAMBDA_RESPONSE_BYTES
    document = gzip.decompress(body)
    # (the document itself would not have fitted: over the limit raw and after base64)
    assert len(document) > INLINE_BODY_BYTES
    assert lambda_payload(document) > LAMBDA_RESPONSE_BYTES
    # And the orders read back are exactly those stored, oldest change first
    assert orders_of(document) == [exported(order) for order in big_clinic.orders]


def test_an_mis_that_does_not_accept_gzip_is_redirected_to_the_whole_document(
    server: LocalServer, big_clinic: BigClinic
) -> None:
    # Given a clinic with 20,000 orders, and a plain HTTP client that follows redirects
    redirects = RecordedRedirects()
    client = urllib.request.build_opener(redirects)
    request = urllib.request.Request(server.url + export_path(big_clinic), headers={"Accept-Encoding": "identity"})
    # When its MIS exports everything from start=0, accepting no compression
    with client.open(request, timeout=120) as response:
        status, headers, document = response.status, response.headers, response.read()
        final_url: Any = response.url
    # Then the export answers 302 with an empty body, to a presigned URL of the local store's S3
    [(code, location, first_body)] = redirects.hops
    assert (code, first_body) == (302, b"")
    prefix = f"{server.dynamodb_url}/mediexchange-documents/exports/orders/{big_clinic.clinic_id}/"
    assert location.startswith(prefix)
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    # And the client, following it, gets the whole document as it is, not compressed
    assert (status, final_url) == (200, location)
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert headers.get("Content-Encoding") is None
    assert lambda_payload(document) > LAMBDA_RESPONSE_BYTES  # what Lambda could not have answered with
    # And the orders read back are exactly those stored, oldest change first
    assert orders_of(document) == [exported(order) for order in big_clinic.orders]


def test_the_same_window_answers_the_same_orders_either_way(server: LocalServer, big_clinic: BigClinic) -> None:
    # Given a window of the big clinic small enough to fit one answer (1,000 orders: about 550 KB)
    start, end = FIRST_CHANGE + 1 + 120, FIRST_CHANGE + 1000
    path = f"/services/export.php?client_key={big_clinic.client_key}&start={start}&end={end}"
    # When one client accepts gzip and another does not
    status, headers, compressed = server.request("GET", path, headers={"Accept-Encoding": "gzip, deflate"})
    plain_status, plain_headers, plain = server.request("GET", path, headers={"Accept-Encoding": "identity"})
    # Then the first gets it compressed and the second as it is, both in the answer itself
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert (plain_status, plain_headers.get("Content-Encoding"), plain_headers.get("Location")) == (200, None, None)
    assert gzip.decompress(compressed) == plain
    # And they carry the window's orders (reaching back 120 s before start: order 1 on)
    assert orders_of(plain) == [exported(order) for order in big_clinic.orders[:1000]]
    assert len(plain) < INLINE_BODY_BYTES
