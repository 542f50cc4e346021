"""Unit tests: the handlers and the store on moto's in-process DynamoDB, tables made from template.yaml."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from mediexchange.config import Settings
from mediexchange.records import Clinic, Order, OrderStatus
from mediexchange.store import Store
from mediexchange.store.models import SEEN_PREFIX
from mediexchange.web import use_store
from moto import mock_aws

from devserver.server import create_resources
from tests.conftest import SAMPLE_KEY


@pytest.fixture
def store() -> Iterator[Store]:
    """moto in-process with the template's tables, the documents bucket and the import queue; the store
    the handlers use, built as they build it."""
    with mock_aws():
        queue_url = create_resources(None)
        store = Store(Settings.from_env())
        assert queue_url == store.settings.import_queue_url  # tests/conftest.py names it in advance
        use_store(store)
        yield store
        use_store(None)


@pytest.fixture
def dynamodb(store: Store) -> Any:
    """A plain DynamoDB client of the same mock, for looking at every item (see `snapshot`)."""
    return boto3.client("dynamodb")


@pytest.fixture
def clinic(store: Store) -> Clinic:
    """The clinic of the seed sample, keeping the sample's own ClientKey."""
    return store.clinics.create("Sample clinic", "Europe/Moscow", SAMPLE_KEY)


def api_event(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as the API's binary media types deliver it (body base64)."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"requestId": "test-request", "stage": "live", "resourcePath": path, "httpMethod": method},
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


class FakeContext:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:test"
    aws_request_id = "test-request"

    def __init__(self, remaining_ms: int = 29_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def decoded(response: dict[str, Any]) -> bytes:
    body = response["body"] or ""
    return base64.b64decode(body) if response["isBase64Encoded"] else body.encode()


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    """A REST proxy answer's headers, single- and multi-valued alike."""
    multi = {name: ", ".join(values) for name, values in (response.get("multiValueHeaders") or {}).items()}
    return {**multi, **(response.get("headers") or {})}


def load_event(name: str) -> dict[str, Any]:
    from tests.conftest import ROOT

    return json.loads((ROOT / "events" / name).read_text())


def call_import(body: bytes, content_type: str = "application/xml", **headers: str) -> tuple[int, Any, dict[str, str]]:
    """POST a body to the import handler; returns status, the parsed XML answer and the headers."""
    from lxml import etree

    from functions.mis_import.app import lambda_handler

    all_headers = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    response = lambda_handler(api_event("POST", "/services/import.php", body, all_headers), FakeContext())
    return response["statusCode"], etree.fromstring(decoded(response)), headers_of(response)


def call_export(query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    from functions.mis_export.app import lambda_handler

    response = lambda_handler(api_event("GET", "/services/export.php", query=query), FakeContext())
    return response["statusCode"], decoded(response), headers_of(response)


def document(body: str, client_key: str = SAMPLE_KEY) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{client_key}">\n{body}\n</MediExchange>'.encode()


def snapshot(client: Any) -> dict[str, list[Any]]:
    """Every item of every table, in a stable order: to prove a request changed nothing.

    The import log is left out, and so is the clinic's note of its last imports (`seen_…`, written with
    the log): recording what became of a refused document is their purpose.
    """
    tables = [t for t in client.list_tables()["TableNames"] if t != Settings.from_env().imports_table]

    def unlogged(item: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in item.items() if not name.startswith(SEEN_PREFIX)}

    scans = {t: client.scan(TableName=t, ConsistentRead=True)["Items"] for t in tables}
    return {t: sorted(repr(unlogged(item)) for item in items) for t, items in scans.items()}


def call_portal(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    """Call the portal handler as API Gateway would after checking the API key."""
    from functions.portal.app import lambda_handler

    raw = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else (body or b"")
    headers = {"Content-Type": "application/json"} if raw else {}
    response = lambda_handler(api_event(method, path, raw, headers, query), FakeContext())
    return response["statusCode"], json.loads(decoded(response))


def call_status(query: dict[str, str]) -> tuple[int, Any]:
    from lxml import etree

    from functions.mis_status.app import lambda_handler

    response = lambda_handler(api_event("GET", "/services/status.php", query=query), FakeContext())
    return response["statusCode"], etree.fromstring(decoded(response))


def an_order(order_id: int = 1, last_changed: int = 1_900_000_000, **fields: Any) -> Order:
    """A patient's order as the portal books it: received, for Баева (MIS 393) on 20.03.2030 at 10:00,
    changed last (by the portal) at `last_changed`; `fields` replace any of that."""
    values: dict[str, Any] = {
        "id": order_id,
        "status": OrderStatus.RECEIVED,
        "order_date": dt.date(2030, 3, 17),
        "resource_id": 1,
        "mw_resource_id": 393,
        "resource_name": "Баева",
        "reception": dt.datetime(2030, 3, 20, 10, 0),
        "duration": 30,
        "last_changed": last_changed,
        "portal_changed": last_changed,
        "name1": "Иванов",
        "phone": "+7 900 000-00-00",
    }
    return Order(**{**values, **fields})


def items_got(store: Store, table: str) -> list[dict[str, str]]:
    """From now on, the key of every item the store gets from `table` (GetItem), as the store asks for it."""
    got: list[dict[str, str]] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == table:
            got.append({name: next(iter(value.values())) for name, value in params["Key"].items()})

    store.instrument("before-parameter-build.dynamodb.GetItem", note)
    return got
