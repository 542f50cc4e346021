"""Faults: the store fails from the k-th write request of an import on, for every k and every kind of
failure. The import must answer an error, leave the clinic never poorer than before, keep every
order and its held time together, and converge to the clean result when sent again."""

from __future__ import annotations

import json
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.reliability.figures import FULL, record
from tests.reliability.scenario import (
    BASELINE,
    book_orders,
    holds_match_orders,
    never_poorer,
    next_document,
    restore,
    snapshot_items,
    state_of,
    the_worker_catches_up,
)
from tests.unit.conftest import call_import

WRITES = frozenset({"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
KINDS = ("error", "timeout", "throttling", "unprocessed")


class Injector:
    """A botocore `before-call` handler on every client of the store: counts the write requests that
    reach the store and, once armed, fails every one from the k-th on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arm(None)

    def arm(self, fail_from: int | None, kind: str = "error") -> None:
        with self.lock:
            self.fail_from, self.kind = fail_from, kind
            self.writes = self.injected = 0

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        operation = model.name
        if operation not in WRITES:
            return None
        with self.lock:
            self.writes += 1
            failing = self.fail_from is not None and self.writes >= self.fail_from
            self.injected += failing
        return self.fail(operation, params) if failing else None

    def fail(self, operation: str, params: dict[str, Any]) -> Any:
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url="https://dynamodb.local")
        if self.kind == "unprocessed" and operation == "BatchWriteItem":
            # Answered without reaching the store: nothing written, everything left (never drains).
            sent = json.loads(params["body"])["RequestItems"]
            return AWSResponse("https://dynamodb.local", 200, {}, None), {"UnprocessedItems": sent}
        code = "InternalServerError" if self.kind == "error" else "ProvisionedThroughputExceededException"
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.fixture
def injector(store: Store, monkeypatch: pytest.MonkeyPatch) -> Injector:
    monkeypatch.setattr("time.sleep", lambda _: None)  # backoff would only slow the harness down
    injector = Injector()
    store.instrument("before-call.*.*", injector)
    return injector


def test_a_failed_import_never_leaves_less_and_a_resend_converges(
    store: Store, clinic: Clinic, dynamodb: Any, injector: Injector
) -> None:
    # Given a clinic with a realistic state: the baseline imported and four patients booked
    assert call_import(BASELINE)[0] == 200
    booked = book_orders(store, clinic)
    order_ids = [o["id"] for o in booked] + [9999]
    document = next_document(booked, ZoneInfo(clinic.timezone))
    baseline = snapshot_items(dynamodb)
    before = state_of(store, clinic, order_ids)
    injector.arm(None)  # counting from here: the next import's write requests

    # And the clean result of the next import, with the number of write requests it makes
    status, result, _ = call_import(document)
    assert status == 200, result
    clean, total_writes = state_of(store, clinic, order_ids), injector.writes
    assert clean != before and total_writes >= 8

    kinds = KINDS if FULL else ("throttling",)
    points = range(1, total_writes + 1) if FULL else range(1, total_writes + 1, 3)
    faults = checked = lost = 0
    for kind in kinds:
        for k in points:
            restore(dynamodb, baseline)
            # When the store fails from the k-th write request on
            injector.arm(k, kind)
            status, result, _ = call_import(document)
            faults += injector.injected
            injector.arm(None)
            # Then the answer is an error, the clinic is never poorer, orders and holds agree
            assert status in (500, 503), (kind, k, status)
            problems = never_poorer(state_of(store, clinic, order_ids), before, clean)
            lost += len(problems)
            assert problems == [], (kind, k, problems)
            assert holds_match_orders(store, clinic, order_ids), (kind, k)
            # And once the worker has caught up, sending the document again reaches the clean state
            the_worker_catches_up(store, dynamodb)
            assert call_import(document)[0] == 200, (kind, k)
            assert state_of(store, clinic, order_ids) == clean, (kind, k)
            assert holds_match_orders(store, clinic, order_ids)
            checked += 2
    record(
        "faults", faults_injected=faults, states_checked=checked, data_lost=lost, write_requests_per_import=total_writes
    )
