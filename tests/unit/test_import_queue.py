"""The clinic's import queue (SPEC §3 "Queued, not refused"): one import at a time per lane, in the order
received, never 409; Orders alone never wait behind a schedule; a lease that renews while an import works."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from mediexchange.importing import Importer
from mediexchange.protocol.sections import RESOURCES
from mediexchange.records import Clinic, Lane
from mediexchange.store import Store, Ticket, Turn
from mediexchange.store.imports import MAX_QUEUED

from functions.import_worker.app import lambda_handler as worker
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, call_import, call_status, document

OLDER = "20000101T000000.000000-00000000"  # an import received before any the tests send
ONE_RESOURCE = document('<Resources><r id="7" name="Petrova" time_step="30"/></Resources>')


def settings(store: Store, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    changed = dataclasses.replace(store.settings, **changes)
    monkeypatch.setattr(store, "settings", changed)
    monkeypatch.setattr(store.imports, "settings", changed)


def receive_older(store: Store, clinic: Clinic) -> Ticket:
    """An import received before the test's, now applying: it holds its lane's lease."""
    older = Ticket(clinic.clinic_id, Lane.SYNC, OLDER)
    store.imports.receive(older, ONE_RESOURCE, None, time.time())
    assert store.imports.take_turn(older) is Turn.TAKEN
    return older


def finish(store: Store, ticket: Ticket) -> None:
    store.imports.finish(ticket, b"<ImportResult status='ok'/>")


def finish_older_after(store: Store, older: Ticket, seconds: float) -> threading.Thread:
    def finish_later() -> None:
        time.sleep(seconds)
        finish(store, older)

    thread = threading.Thread(target=finish_later)
    thread.start()
    return thread


def states() -> list[tuple[str, str]]:
    status, root = call_status({"client_key": SAMPLE_KEY})
    assert status == 200
    return [(entry.get("import_id"), entry.get("state")) for entry in root]


def messages(store: Store) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    received = sqs.receive_message(
        QueueUrl=store.settings.import_queue_url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
    )
    return [
        {"body": m["Body"], "messageId": m["MessageId"], "group": m["Attributes"]["MessageGroupId"]}
        for m in received.get("Messages", [])
    ]


def clinic_item(store: Store, clinic: Clinic) -> dict[str, Any]:
    key = {"clinic_id": {"S": clinic.clinic_id}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(
        TableName=store.settings.clinics_table, Key=key, ConsistentRead=True
    )["Item"]
    return item


def queue_of(store: Store, clinic: Clinic, lane: Lane) -> set[str]:
    return set(clinic_item(store, clinic).get(f"{lane}_queue", {}).get("SS", []))


@pytest.fixture
def short_budget(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    settings(store, monkeypatch, import_time_budget=0.5)


def test_an_import_behind_a_running_one_waits_for_it_and_applies_in_its_turn(store: Store, clinic: Clinic) -> None:
    # Given an older import of the clinic is applying and finishes in 0.3 s
    finishing = finish_older_after(store, receive_older(store, clinic), 0.3)
    # When the sample arrives meanwhile
    started = time.monotonic()
    status, result, _ = call_import(SAMPLE.read_bytes())
    finishing.join()
    # Then it waited for the older one, then applied: 200, not 409
    assert (status, result.get("status")) == (200, "ok")
    assert time.monotonic() - started >= 0.3
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 70
    assert queue_of(store, clinic, Lane.SYNC) == set()


def test_an_import_whose_turn_does_not_come_in_time_is_queued_202_and_the_worker_applies_it_after(
    store: Store, clinic: Clinic, short_budget: None
) -> None:
    # Given an older import of the clinic is applying
    older = receive_older(store, clinic)
    # When the sample arrives and the older one is still applying when the request's budget runs out
    status, result, _ = call_import(SAMPLE.read_bytes())
    import_id = result.get("import_id")
    # Then it is accepted (202), queued behind the older one, and nothing of it is written yet
    assert (status, result.attrib) == (202, {"status": "accepted", "import_id": import_id})
    assert states() == [(import_id, "queued"), (OLDER, "running")]
    assert store.records.all(clinic.clinic_id, RESOURCES) == []
    # When the worker gets its message while the older one still runs
    [_, message] = sorted(messages(store), key=lambda m: m["body"])  # the older one's, then this one's
    assert message["group"] == f"{clinic.clinic_id}/sync"
    answer = worker({"Records": [message]}, FakeContext(remaining_ms=600))
    # Then it gives the message back for later and the import stays queued
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert states()[0] == (import_id, "queued")
    # When the older import finishes and the message comes again
    finish(store, older)
    assert worker({"Records": [message]}, FakeContext()) == {"batchItemFailures": []}
    # Then the worker applied it, in its turn
    assert states() == [(import_id, "done"), (OLDER, "done")]
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 70
    assert queue_of(store, clinic, Lane.SYNC) == set()


def test_imports_of_one_clinic_apply_in_the_order_received(
    store: Store, clinic: Clinic, short_budget: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an older import applying, and three documents queued behind it, each naming resource 7 differently
    older = receive_older(store, clinic)
    sent = []
    for name in ("First", "Second", "Third"):
        status, result, _ = call_import(document(f'<Resources><r id="7" name="{name}" time_step="30"/></Resources>'))
        assert status == 202
        sent.append(result.get("import_id"))
    finish(store, older)
    applied: list[str] = []
    apply = Importer.apply

    def recording(importer: Importer) -> Any:
        applied.append(importer.import_id)
        return apply(importer)

    monkeypatch.setattr(Importer, "apply", recording)
    # When the worker gets their messages newest first (it may, across redeliveries)
    by_id = {m["body"]: m for m in messages(store)}
    newest_first = sorted((m for m in by_id.values() if OLDER not in m["body"]), key=lambda m: m["body"], reverse=True)
    for _ in range(3):
        for message in newest_first:
            worker({"Records": [message]}, FakeContext(remaining_ms=400))
    # Then they applied oldest first, one at a time, and the last one received is what is stored
    assert applied == sent
    [resource] = store.records.all(clinic.clinic_id, RESOURCES)
    assert resource.name == "Third"


def test_an_orders_only_document_never_waits_behind_a_schedule_import(
    store: Store, clinic: Clinic, short_budget: None
) -> None:
    # Given a long schedule import of the clinic is applying
    receive_older(store, clinic)
    # When the MIS sends an order change alone
    change = '<Orders><o id="1" status="1" LastChangedOn="01.07.2010 12:11:02"/></Orders>'
    status, result, _ = call_import(document(change))
    # Then it applies at once in the orders lane (order 1 is unknown: reported, not created)
    assert (status, result.get("status")) == (200, "ok")
    assert result.find("Orders").get("unknown") == "1"
    assert [m["group"] for m in messages(store)] == [f"{clinic.clinic_id}/sync", f"{clinic.clinic_id}/orders"]
    # And a document with Orders and a schedule section waits in the sync lane
    assert call_import(document('<Resources><r id="7" name="Petrova" time_step="30"/></Resources>' + change))[0] == 202


def test_the_lease_renews_while_a_long_import_works(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given leases of 1 s and an import whose writes take 2.5 s
    settings(store, monkeypatch, import_lease_seconds=1, import_time_budget=60.0)
    apply = Importer.apply

    def slow(importer: Importer) -> Any:
        time.sleep(2.5)
        return apply(importer)

    monkeypatch.setattr(Importer, "apply", slow)
    results: list[int] = []
    running = threading.Thread(target=lambda: results.append(call_import(SAMPLE.read_bytes())[0]))
    running.start()
    # When the lane's lease is looked at while it works
    started = int(time.time())
    leases = []
    while running.is_alive():
        item = clinic_item(store, clinic)
        if "sync_lease" in item:
            leases.append((item["sync_lease"]["S"], int(item["sync_lease_expires"]["N"])))
        time.sleep(0.2)
    running.join()
    # Then the import held it throughout, renewed well past the 1 s it was taken for, and finished
    assert results == [200]
    [(import_id, state)] = states()
    assert state == "done"
    assert len(leases) >= 8 and {holder.split("/")[0] for holder, _ in leases} == {import_id}
    assert max(expires for _, expires in leases) >= started + 3
    assert "sync_lease" not in clinic_item(store, clinic)


def test_a_crashed_import_frees_its_lane_within_a_lease_and_the_worker_finishes_it(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given leases of 1 s, and an import whose request died while applying (its lease is left behind)
    settings(store, monkeypatch, import_lease_seconds=1, import_request_seconds=1)
    receive_older(store, clinic)
    # When its worker message comes, and the lease has run out
    [message] = messages(store)
    left_until = int(clinic_item(store, clinic)["sync_lease_expires"]["N"])
    answer = worker({"Records": [message]}, FakeContext(remaining_ms=10_000))
    # Then the worker waited out the request and the lease, and applied the import
    assert answer == {"batchItemFailures": []}
    assert time.time() >= left_until
    assert states() == [(OLDER, "done")]
    assert [r.name for r in store.records.all(clinic.clinic_id, RESOURCES)] == ["Petrova"]


def test_the_worker_leaves_an_import_to_its_live_request(store: Store, clinic: Clinic) -> None:
    # Given an import just received, whose request is still applying it
    store.imports.receive(Ticket(clinic.clinic_id, Lane.SYNC, OLDER), ONE_RESOURCE, None, time.time())
    # When its message comes before the request is over
    [message] = messages(store)
    answer = worker({"Records": [message]}, FakeContext(remaining_ms=600))
    # Then the worker gives the message back for later and leaves the import alone
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert states() == [(OLDER, "queued")]
    assert store.records.all(clinic.clinic_id, RESOURCES) == []


def test_a_worker_whose_import_crossed_an_older_one_applies_the_older_first(store: Store, clinic: Clinic) -> None:
    # Given two imports handed to the worker whose messages were sent in the other order than their ids
    # (received at once: the newer one's message went out first)
    newer = Ticket(clinic.clinic_id, Lane.SYNC, "20000101T000001.000000-00000000")
    older = Ticket(clinic.clinic_id, Lane.SYNC, OLDER)
    renamed = document('<Resources><r id="7" name="Sidorova" time_step="30"/></Resources>')
    store.imports.receive(newer, renamed, None, time.time())
    store.imports.receive(older, ONE_RESOURCE, None, time.time())
    for ticket in (newer, older):
        store.imports.hand_over(ticket)
    # When the queue delivers the newer one's message first
    message = next(m for m in messages(store) if newer.import_id in m["body"])
    answer = worker({"Records": [message]}, FakeContext())
    # Then the worker applied the older import, then the newer one: both done, the newer one's data stored
    assert answer == {"batchItemFailures": []}
    assert states() == [(newer.import_id, "done"), (OLDER, "done")]
    [resource] = store.records.all(clinic.clinic_id, RESOURCES)
    assert resource.name == "Sidorova"
    assert queue_of(store, clinic, Lane.SYNC) == set()


def test_a_request_leaves_its_finished_import_alone(store: Store, clinic: Clinic) -> None:
    # Given an import that finished (by the worker) while its request still waited for its turn
    older = receive_older(store, clinic)
    finish(store, older)
    # Then taking a turn for it says it is gone, and the lane is free for the next
    assert store.imports.take_turn(older) is Turn.GONE
    assert call_import(SAMPLE.read_bytes())[0] == 200


def test_the_last_try_of_a_queued_import_that_never_got_its_turn_marks_it_failed(
    store: Store, clinic: Clinic, short_budget: None
) -> None:
    # Given an import queued behind one that never finishes
    receive_older(store, clinic)
    status, result, _ = call_import(SAMPLE.read_bytes())
    assert status == 202
    message = next(m for m in messages(store) if result.get("import_id") in m["body"])
    # When the queue's last delivery finds it still behind
    last = {**message, "attributes": {"ApproximateReceiveCount": "3"}}
    answer = worker({"Records": [last]}, FakeContext(remaining_ms=400))
    # Then the import log says it failed, it leaves the queue, and the one ahead keeps its place
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    status, root = call_status({"client_key": SAMPLE_KEY, "import_id": result.get("import_id")})
    [entry] = root
    assert (entry.get("state"), entry.find("ImportResult/Error").get("code")) == ("failed", "unavailable")
    assert queue_of(store, clinic, Lane.SYNC) == {OLDER}


def test_a_full_queue_answers_503_and_keeps_nothing_queued(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given as many imports waiting in the clinic's lane as a lane holds
    receive_older(store, clinic)
    for n in range(1, MAX_QUEUED):
        waiting = Ticket(clinic.clinic_id, Lane.SYNC, f"20000101T000000.{n:06d}-00000000")
        store.imports.receive(waiting, b"", None, time.time())
    # When one more arrives
    status, result, headers = call_import(SAMPLE.read_bytes())
    # Then it is refused as unavailable, with a time to retry, naming why
    assert (status, result.find("Error").get("code")) == (503, "unavailable")
    assert f"{MAX_QUEUED} imports of this clinic are already waiting" in result.find("Error").text
    assert int(headers["Retry-After"]) > 0
    assert len(queue_of(store, clinic, Lane.SYNC)) == MAX_QUEUED


@pytest.fixture(autouse=True)
def no_stray_threads() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() <= before  # every lease renewer stopped
