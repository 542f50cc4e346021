"""The fault injector: a botocore `before-call` handler failing the store's writes from the k-th on."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError
from mediexchange.store import Store

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
