"""Faults: the store fails from the k-th write request of an import on, for every k and every kind of
failure. The import must answer an error, leave the clinic never poorer than before, keep every
order and its held time together, and converge to the clean result when sent again."""

from __future__ import annotations

import json
import threading
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError
from mediexchange.records import Clinic, Lane
from mediexchange.store import Store

from tests.reliability.figures import FULL, record
from tests.reliability.scenario import (
    BASELINE,
    book_orders,
    digest_lies,
    holds_match_orders,
    never_poorer,
    next_document,
    restore,
    snapshot_items,
    state_of,
    the_worker_catches_up,
    to_legacy_layout,
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


def the_import_is_given_up(store: Store, dynamodb: Any) -> None:
    """The failed import is never applied again (its worker's retries ran out): its lanes are freed and its
    worker message is gone, so whatever the clinic sends next applies at once over what it left."""
    settings = store.settings
    for item in dynamodb.scan(TableName=settings.clinics_table, ConsistentRead=True)["Items"]:
        lanes = [f"{lane}_{part}" for lane in Lane for part in ("queue", "lease", "lease_expires")]
        dynamodb.update_item(
            TableName=settings.clinics_table,
            Key={"clinic_id": item["clinic_id"]},
            UpdateExpression="REMOVE " + ", ".join(f"#a{n}" for n in range(len(lanes))),
            ExpressionAttributeNames={f"#a{n}": name for n, name in enumerate(lanes)},
        )
    sqs = boto3.client("sqs", region_name=settings.region)
    while messages := sqs.receive_message(QueueUrl=settings.import_queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=settings.import_queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.parametrize("layout", ["digests", "legacy"])
def test_after_a_crash_at_any_write_the_original_or_the_new_document_converges_exactly(
    store: Store, clinic: Clinic, dynamodb: Any, injector: Injector, layout: str
) -> None:
    """The bucket digests' promise: a crash at any write of an import, the digest and dirty-mark writes
    included, never leaves a clean leaf whose digest is not that of its records; so sending the ORIGINAL
    document back (whose digests the crashed import may have half left behind) restores exactly its
    records, and the new document exactly its own. `legacy`: the same from a stack written before the
    digests (the crashed import is the one rewriting every item in the new layout)."""
    # Given a clinic with the baseline imported and four patients booked (in the layout of `layout`)
    assert call_import(BASELINE)[0] == 200
    booked = book_orders(store, clinic)
    order_ids = [o["id"] for o in booked] + [9999]
    document = next_document(booked, ZoneInfo(clinic.timezone))
    baseline = snapshot_items(dynamodb)
    if layout == "legacy":
        baseline = to_legacy_layout(baseline, store.settings.records_table)
        restore(dynamodb, baseline)
    original = state_of(store, clinic, order_ids).records
    injector.arm(None)
    # And the records of the new document, with the number of write requests its import makes
    assert call_import(document)[0] == 200
    new, total_writes = state_of(store, clinic, order_ids).records, injector.writes
    assert new != original and digest_lies(store, clinic) == []

    # Quick (make test): one failure kind, the two sending orders taken in turn, and the legacy layout at
    # every third write; full (make reliability): every kind, write and order.
    kinds = KINDS if FULL else ("error",)
    step = 1 if FULL or layout == "digests" else 3
    both_orders = ((BASELINE, document), (document, BASELINE))
    faults = checked = lies = 0
    for kind in kinds:
        for k in range(1, total_writes + 1, step):
            for first, second in both_orders if FULL else both_orders[k % 2 : k % 2 + 1]:
                restore(dynamodb, baseline)
                # When the store fails from the k-th write request of the new document's import on
                injector.arm(k, kind)
                status, _, _ = call_import(document)
                faults += injector.injected
                injector.arm(None)
                assert status in (500, 503), (layout, kind, k, status)
                # Then no clean leaf's digest differs from its records
                found = digest_lies(store, clinic)
                lies += len(found)
                assert found == [], (layout, kind, k, found)
                # And, the failed import given up, each document sent after it leaves exactly its records
                the_import_is_given_up(store, dynamodb)
                for sent in (first, second):
                    assert call_import(sent)[0] == 200, (layout, kind, k)
                    wanted = original if sent is BASELINE else new
                    assert state_of(store, clinic, order_ids).records == wanted, (layout, kind, k, sent is BASELINE)
                    assert digest_lies(store, clinic) == [], (layout, kind, k)
                    checked += 1
                assert holds_match_orders(store, clinic, order_ids)
    record(
        f"faults, digests ({layout})",
        faults_injected=faults,
        states_checked=checked,
        digests_lying=lies,
        write_requests_per_import=total_writes,
    )
