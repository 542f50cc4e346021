"""The store's AWS clients: one botocore session makes them all (a session loads botocore's data once), and
the models and the transactions share one client, so an instrumented store sees each call once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import botocore.session
import pytest
from mediexchange import importing
from mediexchange.config import Settings
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE


def test_every_client_of_a_store_comes_from_one_botocore_session(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given botocore sessions are counted as they are made
    made: list[botocore.session.Session] = []
    original = botocore.session.Session.__init__

    def counted(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counted)
    # When a new store imports a document (models, transactions, raw and bulk calls, S3 and SQS)
    fresh = Store(Settings.from_env())
    received = importing.receive_document(fresh, SAMPLE.read_bytes())
    # Then it made one session, and every model's connection calls through the one client of its transactions
    assert received.report is not None and received.report.written > 0
    assert len(made) == 1
    clients = {id(model._get_connection().connection.client) for model in fresh._backend.tables.all()}
    assert clients == {id(fresh._backend.transactions().client)}


def test_an_instrumented_store_sees_each_call_once(store: Store, clinic: Clinic) -> None:
    # Given a handler counting every call of every client of the store
    calls: Counter[str] = Counter()
    store.instrument("before-call.*.*", lambda model, **_: calls.update([model.name]))
    # When a document is imported and its clinic read through a model
    importing.receive_document(store, SAMPLE.read_bytes())
    before = calls["GetItem"]
    assert store.clinics.get(clinic.clinic_id) is not None
    # Then the model's one GetItem is counted once, and the import's calls were all seen
    assert calls["GetItem"] == before + 1
    assert {"TransactWriteItems", "BatchWriteItem", "PutObject", "SendMessage", "Query"} <= set(calls)
