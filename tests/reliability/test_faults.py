"""Faults: the store fails from the k-th write request of an import on, for every k and every kind of
failure. The import must answer an error, leave the clinic never poorer than before, keep every
order and its held time together, and converge to the clean result when sent again."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import boto3
from mediexchange.records import Clinic, Lane
from mediexchange.store import Store

from tests.reliability.faults import KINDS, Injector
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
