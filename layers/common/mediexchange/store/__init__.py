"""The store: everything the use cases keep, behind one object. DynamoDB (through PynamoDB and boto3),
S3 for raw documents and answers too large to send, SQS for background imports; no item layout or
client leaves this package.

    store = Store(Settings.from_env())
    store.clinics.for_key(key); store.records.hashes(clinic_id, SCHEDULES); store.orders.change(...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediexchange.config import Settings
from mediexchange.store.backend import RETRY, Backend, RetryPolicy
from mediexchange.store.clinics import ClinicOverview, Clinics, KeyInfo, SectionSeen
from mediexchange.store.exports import Exports
from mediexchange.store.history import History, OrderEvent
from mediexchange.store.imports import ImportEntry, ImportLog, Ticket, Turn
from mediexchange.store.models import describe
from mediexchange.store.orders import WAITING_COUNTED, Orders
from mediexchange.store.sessions import Session, Sessions
from mediexchange.store.synced import SyncedRecords

__all__ = [
    "WAITING_COUNTED",
    "ClinicOverview",
    "ImportEntry",
    "KeyInfo",
    "OrderEvent",
    "SectionSeen",
    "Session",
    "Store",
    "Ticket",
    "Turn",
]


class Store:
    def __init__(self, settings: Settings, retry: RetryPolicy = RETRY) -> None:
        self.settings = settings
        self._backend = Backend(settings, retry)
        self.clinics = Clinics(self._backend)
        self.records = SyncedRecords(self._backend)
        self.orders = Orders(self._backend)
        self.imports = ImportLog(self._backend)
        self.exports = Exports(self._backend)  # answers too large to send: S3, presigned URLs
        self.sessions = Sessions(self._backend)  # the console's sign-ins
        self.history = History(self._backend)  # what happened to each order (written by self.orders)

    def schema(self) -> dict[str, dict[str, Any]]:
        """{table name: keys, indexes, key attribute types} as the store's models expect them."""
        return describe(self._backend.tables)

    def instrument(self, event: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler (`before-call.dynamodb.BatchWriteItem`, `before-call.*.*`, ...)
        on every client the store uses: how tests inject faults and the benchmark counts calls."""
        self._backend.instrument(event, handler)
