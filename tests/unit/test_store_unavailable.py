"""A store that stays unavailable: the import answers 503 with Retry-After, not 500, and keeps its promise."""

from __future__ import annotations

from typing import Any

import pytest
from mediexchange import importing
from mediexchange.errors import StoreUnavailable
from mediexchange.protocol.sections import RESOURCES
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE
from tests.unit.conftest import call_import


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
