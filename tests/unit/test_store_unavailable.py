"""A store that stays unavailable: the import answers 503 with Retry-After, not 500, and keeps its promise."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from lxml import etree
from mediexchange import importing
from mediexchange.errors import StoreUnavailable
from mediexchange.protocol.sections import RESOURCES
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, call_portal


def test_store_refusing_writes_is_503_and_the_lease_is_released(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the store refuses every batch write
    def refuse(*_: Any, **__: Any) -> int:
        raise StoreUnavailable("the store is busy", retry_after=5)

    monkeypatch.setattr(store.records, "write", refuse)
    # When the sample is imported
    status, result, headers = call_import(SAMPLE.read_bytes())
    # Then the MIS is told to come back, and the next import is not locked out
    assert (status, result.find("Error").get("code"), headers["Retry-After"]) == (503, "unavailable", "5")
    monkeypatch.undo()
    status, _, _ = call_import(SAMPLE.read_bytes())
    assert status == 200
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 70


def test_a_bug_answers_500_with_the_request_id_and_no_trace(clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("secret detail")

    monkeypatch.setattr(importing, "read_document", broken)
    status, result, _ = call_import(SAMPLE.read_bytes())
    error = result.find("Error")
    assert (status, error.get("code")) == (500, "internal")
    assert error.text == "internal error; quote request id test-request to support"


def test_a_throttled_read_answers_503_on_every_endpoint(store: Store, clinic: Clinic) -> None:
    # Given the store throttles every single-item read (each request's clinic lookup is one)
    def throttle(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, model.name)

    store.instrument("before-call.dynamodb.GetItem", throttle)
    # When the MIS exports and the portal reads the clinic
    status, body, headers = call_export({"client_key": SAMPLE_KEY, "start": "0"})
    portal_status, answer = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    # Then both are told the store is busy and to come back, each in its own language
    assert (status, etree.fromstring(body).find("Error").get("code"), headers["Retry-After"]) == (
        503,
        "unavailable",
        "5",
    )
    assert (portal_status, answer["error"]["code"]) == (503, "unavailable")
