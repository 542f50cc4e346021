"""Documents kept for the background (202), the worker that finishes them, and status.php."""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

import boto3
import pytest
from mediexchange.protocol.sections import RESOURCES
from mediexchange.records import Clinic
from mediexchange.store import Store

from functions.import_worker.app import lambda_handler as worker
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, call_import, call_status, document


@pytest.fixture
def no_time_budget(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every import that writes anything is too big for the request."""
    monkeypatch.setattr(store, "settings", dataclasses.replace(store.settings, import_time_budget=0.0))


def queued_messages(store: Store) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    received = sqs.receive_message(QueueUrl=store.settings.import_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [{"body": m["Body"], "messageId": m["MessageId"]} for m in received.get("Messages", [])]


def statuses(query: dict[str, str]) -> list[dict[str, Any]]:
    status, root = call_status(query)
    assert status == 200, root
    return [{**i.attrib, "result": i.find("ImportResult")} for i in root]


def test_a_big_import_is_kept_answered_202_and_finished_by_the_worker(
    store: Store, clinic: Clinic, no_time_budget: None
) -> None:
    # Given the sample gzipped, too big for the request's time budget
    status, result, _ = call_import(gzip.compress(SAMPLE.read_bytes()), "application/xml", content_encoding="gzip")
    # Then the answer is 202 with an import id, once the raw document is kept
    assert status == 202 and result.attrib == {"status": "accepted", "import_id": result.get("import_id")}
    import_id = result.get("import_id")
    assert store.imports.document(clinic.clinic_id, import_id) == (SAMPLE.read_bytes(), None)
    assert store.records.all(clinic.clinic_id, RESOURCES) == []
    [entry] = statuses({"client_key": SAMPLE_KEY})
    assert (entry["import_id"], entry["state"], entry["result"]) == (import_id, "queued", None)
    # When the worker takes the queued job
    [message] = queued_messages(store)
    assert json.loads(message["body"]) == {"clinic_id": clinic.clinic_id, "import_id": import_id}
    worker({"Records": [message]}, FakeContext())
    # Then the import is applied and status.php shows its ImportResult
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 70
    [entry] = statuses({"client_key": SAMPLE_KEY, "import_id": import_id})
    assert entry["state"] == "done"
    assert entry["result"].get("status") == "ok" and entry["result"].find("Resources").get("written") == "70"
    # And the same message again (SQS delivers at least once) changes nothing
    worker({"Records": [message]}, FakeContext())
    assert statuses({"client_key": SAMPLE_KEY, "import_id": import_id})[0]["state"] == "done"


def test_a_big_import_with_a_rejected_record_finishes_partial_in_the_background(
    store: Store, clinic: Clinic, no_time_budget: None
) -> None:
    # Given the sample with resource 391 (line 18) given time_step 0, too big for the request's time budget
    text = SAMPLE.read_text(encoding="utf-8")
    broken = text.replace('<r id="391" name="Баранов" time_step="30"', '<r id="391" name="Баранов" time_step="0"')
    assert broken != text
    status, result, _ = call_import(broken.encode())
    assert status == 202
    # When the worker takes the queued job
    [message] = queued_messages(store)
    worker({"Records": [message]}, FakeContext())
    # Then status.php shows the import done, partially: the one Error, and everything else applied
    [entry] = statuses({"client_key": SAMPLE_KEY, "import_id": result.get("import_id")})
    final = entry["result"]
    assert (entry["state"], final.get("status")) == ("done", "partial")
    assert [({**e.attrib}, e.text) for e in final.findall("Error")] == [
        (
            {"code": "invalid_record", "line": "18", "section": "Resources", "id": "391", "attribute": "time_step"},
            "attribute time_step must be from 1 to 1440, got 0",
        )
    ]
    assert dict(final.find("Resources").attrib) == {"received": "70", "written": "69", "deleted": "0", "rejected": "1"}
    assert 391 not in {r.id for r in store.records.all(clinic.clinic_id, RESOURCES)}
    assert len(store.records.all(clinic.clinic_id, RESOURCES)) == 69


def test_an_import_that_writes_nothing_stays_synchronous(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample without its order changes, imported
    without_orders = SAMPLE.read_bytes().split(b"<Orders>")[0] + b"</MediExchange>"
    assert call_import(without_orders)[0] == 200
    monkeypatch.setattr(store, "settings", dataclasses.replace(store.settings, import_time_budget=0.0))
    # When it is sent again with no time budget at all; Then it plans no writes and answers at once
    status, result, _ = call_import(without_orders)
    assert status == 200 and result.find("Resources").get("written") == "0"


def test_status_lists_every_import_newest_first_with_its_answer(store: Store, clinic: Clinic) -> None:
    # Given a good import, one with a rejected record and one refused as a whole (a section twice)
    call_import(SAMPLE.read_bytes())
    call_import(document('<Resources>\n<r id="1" name="" time_step="30"/>\n</Resources>'))
    call_import(document("<Resources/>\n<Resources/>"))
    # Then status.php lists all three, newest first, each with the answer the MIS got
    entries = statuses({"client_key": SAMPLE_KEY})
    assert [(e["state"], e["result"].get("status")) for e in entries] == [
        ("failed", "error"),
        ("done", "partial"),
        ("done", "ok"),
    ]
    assert [e["result"].find("Error").get("code") for e in entries[:2]] == ["bad_request", "invalid_record"]
    assert entries[2]["result"].find("Resources").get("written") == "70"
    assert all(len(e["received_at"]) == 19 for e in entries)  # DD.MM.YYYY HH:MM:SS, clinic time


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "missing_client_key"),
        ({"client_key": "nobody"}, 403, "unknown_client_key"),
        ({"client_key": SAMPLE_KEY, "import_id": "20200101T000000.000000-00000000"}, 404, "not_found"),
    ],
)
def test_status_errors(clinic: Clinic, query: dict[str, str], status: int, code: str) -> None:
    got, root = call_status(query)
    assert (got, root.tag, root.get("status"), root.find("Error").get("code")) == (
        status,
        "ImportStatus",
        "error",
        code,
    )


def test_one_clinic_cannot_read_anothers_imports(store: Store, clinic: Clinic) -> None:
    call_import(SAMPLE.read_bytes())
    [entry] = statuses({"client_key": SAMPLE_KEY})
    store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    assert statuses({"client_key": "OTHER-KEY"}) == []
    assert call_status({"client_key": "OTHER-KEY", "import_id": entry["import_id"]})[0] == 404
