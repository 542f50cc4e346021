"""Faults: the store fails from the k-th write request of an import on, for every k and every kind of
failure. The import must answer an error, leave the clinic never poorer than before, keep every
order and its held time together, and converge to the clean result when sent again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import botocore.client
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from mediexchange.records import Clinic

from tests.reliability.figures import FULL, record
from tests.reliability.scenario import (
    BASELINE,
    book_orders,
    clear_lease,
    holds_match_orders,
    never_poorer,
    next_document,
    restore,
    snapshot_items,
    state_of,
)
from tests.unit.conftest import call_import

WRITES = frozenset({"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
KINDS = ("error", "timeout", "throttling", "unprocessed")


class Injector:
    """Counts the write requests that reach the store and fails every one from the k-th on."""

    def __init__(self, fail_from: int | None, kind: str = "error") -> None:
        self.fail_from, self.kind = fail_from, kind
        self.writes = self.injected = 0
        self.lock = threading.Lock()

    def __call__(self, call: Callable[..., Any], client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in WRITES:
            with self.lock:
                self.writes += 1
                failing = self.fail_from is not None and self.writes >= self.fail_from
                self.injected += failing
            if failing:
                return self.fail(operation, params)
        return call(client, operation, params)

    def fail(self, operation: str, params: dict[str, Any]) -> Any:
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url="https://dynamodb.local")
        if self.kind == "unprocessed" and operation == "BatchWriteItem":
            return {"UnprocessedItems": params["RequestItems"]}  # never drains
        code = "InternalServerError" if self.kind == "error" else "ProvisionedThroughputExceededException"
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Callable[[Injector], None]:
    original = botocore.client.BaseClient._make_api_call
    monkeypatch.setattr("time.sleep", lambda _: None)  # backoff would only slow the harness down

    def install(injector: Injector) -> None:
        monkeypatch.setattr(
            botocore.client.BaseClient,
            "_make_api_call",
            lambda client, op, params: injector(original, client, op, params),
        )

    return install


def test_a_failed_import_never_leaves_less_and_a_resend_converges(
    clinic: Clinic, dynamodb: Any, inject: Callable[[Injector], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clinic with a realistic state: the baseline imported and four patients booked
    assert call_import(BASELINE)[0] == 200
    booked = book_orders(clinic)
    order_ids = [o["id"] for o in booked] + [9999]
    document = next_document(booked, ZoneInfo(clinic.timezone))
    baseline = snapshot_items(dynamodb)
    before = state_of(clinic, order_ids)

    # And the clean result of the next import, with the number of write requests it makes
    counter = Injector(None)
    inject(counter)
    status, result, _ = call_import(document)
    assert status == 200, result
    clean, total_writes = state_of(clinic, order_ids), counter.writes
    assert clean != before and total_writes >= 8

    kinds = KINDS if FULL else ("throttling",)
    points = range(1, total_writes + 1) if FULL else range(1, total_writes + 1, 3)
    faults = checked = lost = 0
    for kind in kinds:
        for k in points:
            restore(dynamodb, baseline)
            # When the store fails from the k-th write request on
            injector = Injector(k, kind)
            inject(injector)
            status, result, _ = call_import(document)
            monkeypatch.undo()
            monkeypatch.setattr("time.sleep", lambda _: None)
            faults += injector.injected
            # Then the answer is an error, the clinic is never poorer, orders and holds agree
            assert status in (500, 503), (kind, k, status)
            problems = never_poorer(state_of(clinic, order_ids), before, clean)
            lost += len(problems)
            assert problems == [], (kind, k, problems)
            assert holds_match_orders(clinic, order_ids), (kind, k)
            # And once the lease runs out, sending the document again reaches the clean state
            clear_lease(clinic)
            assert call_import(document)[0] == 200, (kind, k)
            assert state_of(clinic, order_ids) == clean, (kind, k)
            assert holds_match_orders(clinic, order_ids)
            checked += 2
    record(
        "faults", faults_injected=faults, states_checked=checked, data_lost=lost, write_requests_per_import=total_writes
    )
