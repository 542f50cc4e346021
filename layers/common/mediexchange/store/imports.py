"""The import log (status.php), the raw documents (S3, kept for the configured days) and the queue of
imports finished in the background (SQS)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from mediexchange.store.backend import Backend, guarded
from mediexchange.store.models import ImportModel

RUNNING, DONE, FAILED = "running", "done", "failed"
RECENT = 20  # imports status.php lists


@dataclass(frozen=True, slots=True)
class ImportEntry:
    import_id: str
    received_at: int
    state: str
    error_code: str | None
    result: bytes | None  # ImportResult XML

    @property
    def running(self) -> bool:
        """Received and not finished yet (queued for the worker, or being applied)."""
        return self.state == RUNNING


def document_key(clinic_id: str, import_id: str) -> str:
    return f"documents/{clinic_id}/{import_id}.xml"


def _entry(model: ImportModel) -> ImportEntry:
    result = gzip.decompress(model.result) if model.result else None
    return ImportEntry(model.import_id, int(model.received_at), model.state, model.error_code, result)


@guarded
class ImportLog:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.settings = backend.settings
        self.model = backend.tables.imports

    def receive(self, clinic_id: str, import_id: str, data: bytes, charset: str | None, now: float) -> None:
        """Keep the raw document durably, then log it as running: nothing is answered before both."""
        content_type = f"application/xml; charset={charset}" if charset else "application/xml"
        key = document_key(clinic_id, import_id)
        self.backend.s3.put_object(Bucket=self.settings.documents_bucket, Key=key, Body=data, ContentType=content_type)
        expires = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(days=self.settings.retention_days)
        self.model(clinic_id, import_id, received_at=int(now), state=RUNNING, size=len(data), expires=expires).save()

    def document(self, clinic_id: str, import_id: str) -> tuple[bytes, str | None]:
        """A kept document and the charset its request named."""
        key = document_key(clinic_id, import_id)
        response = self.backend.s3.get_object(Bucket=self.settings.documents_bucket, Key=key)
        _, _, charset = str(response.get("ContentType", "")).partition("charset=")
        return bytes(response["Body"].read()), charset or None

    def finish(self, clinic_id: str, import_id: str, result: bytes, error_code: str | None = None) -> None:
        """Log how an import ended: done with its ImportResult, or failed with the error it answered."""
        self.model(clinic_id, import_id).update(
            actions=[
                self.model.state.set(FAILED if error_code else DONE),
                self.model.error_code.set(error_code) if error_code else self.model.error_code.remove(),
                self.model.result.set(gzip.compress(result)),
            ],
            condition=self.model.import_id.exists(),
        )

    def get(self, clinic_id: str, import_id: str) -> ImportEntry | None:
        try:
            return _entry(self.model.get(clinic_id, import_id, consistent_read=True))
        except DoesNotExist:
            return None

    def recent(self, clinic_id: str) -> list[ImportEntry]:
        """The clinic's latest imports, newest first."""
        return [_entry(m) for m in self.model.query(clinic_id, scan_index_forward=False, limit=RECENT)]

    def enqueue(self, clinic_id: str, import_id: str) -> None:
        """Hand a kept document to the worker (an SQS message: the queue retries, then dead-letters)."""
        body = json.dumps({"clinic_id": clinic_id, "import_id": import_id})
        self.backend.sqs.send_message(QueueUrl=self.settings.import_queue_url, MessageBody=body)
