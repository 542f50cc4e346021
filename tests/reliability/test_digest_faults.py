"""Faults and the bucket digests: a crash at any write of an import, the digest and dirty-mark writes
included, never leaves a clean leaf whose digest lies. A file of its own so that `make test`'s workers
run it beside the other fault checks (pytest-xdist gives each worker whole files)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.reliability.faults import KINDS, Injector
from tests.reliability.figures import FULL, record
from tests.reliability.scenario import (
    BASELINE,
    book_orders,
    digest_lies,
    holds_match_orders,
    next_document,
    restore,
    snapshot_items,
    state_of,
    to_legacy_layout,
)
from tests.reliability.test_faults import the_import_is_given_up
from tests.unit.conftest import call_import


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
