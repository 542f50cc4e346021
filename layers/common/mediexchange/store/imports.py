"""The import log (status.php) and the raw documents, kept for the configured number of days."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from pynamodb.exceptions import DoesNotExist

from mediexchange.config import settings
from mediexchange.store.models import ImportModel

RUNNING, DONE, FAILED = "running", "done", "failed"
RECENT = 20  # imports status.php lists


@dataclass(frozen=True, slots=True)
class ImportEntry:
    import_id: str
    received_at: int
    state: str
    http_status: int | None
    result: bytes | None  # ImportResult XML


@lru_cache(maxsize=1)
def s3_client() -> Any:
    endpoint = settings.endpoint_url  # the local store (moto's server) serves S3 as well
    return boto3.client(
        "s3", region_name=settings.region, endpoint_url=endpoint, config=Config(retries={"mode": "standard"})
    )


def document_key(clinic_id: str, import_id: str) -> str:
    return f"documents/{clinic_id}/{import_id}.xml"


def receive(clinic_id: str, import_id: str, data: bytes, charset: str | None, now: float) -> None:
    """Keep the raw document durably, then log it as running: nothing is answered before both."""
    content_type = f"application/xml; charset={charset}" if charset else "application/xml"
    key = document_key(clinic_id, import_id)
    s3_client().put_object(Bucket=settings.documents_bucket, Key=key, Body=data, ContentType=content_type)
    expires = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(days=settings.retention_days)
    ImportModel(clinic_id, import_id, received_at=int(now), state=RUNNING, size=len(data), expires=expires).save()


def document(clinic_id: str, import_id: str) -> tuple[bytes, str | None]:
    """A kept document and the charset its request named."""
    response = s3_client().get_object(Bucket=settings.documents_bucket, Key=document_key(clinic_id, import_id))
    _, _, charset = str(response.get("ContentType", "")).partition("charset=")
    return bytes(response["Body"].read()), charset or None


def finish(clinic_id: str, import_id: str, http_status: int, result: bytes) -> None:
    state = DONE if http_status == 200 else FAILED
    ImportModel(clinic_id, import_id).update(
        actions=[
            ImportModel.state.set(state),
            ImportModel.http_status.set(http_status),
            ImportModel.result.set(gzip.compress(result)),
        ],
        condition=ImportModel.import_id.exists(),
    )


def _entry(model: ImportModel) -> ImportEntry:
    result = gzip.decompress(model.result) if model.result else None
    status = int(model.http_status) if model.http_status is not None else None
    return ImportEntry(model.import_id, int(model.received_at), model.state, status, result)


def get(clinic_id: str, import_id: str) -> ImportEntry | None:
    try:
        return _entry(ImportModel.get(clinic_id, import_id, consistent_read=True))
    except DoesNotExist:
        return None


def recent(clinic_id: str) -> list[ImportEntry]:
    """The clinic's latest imports, newest first."""
    return [_entry(m) for m in ImportModel.query(clinic_id, scan_index_forward=False, limit=RECENT)]


@lru_cache(maxsize=1)
def sqs_client() -> Any:
    return boto3.client("sqs", region_name=settings.region, endpoint_url=settings.endpoint_url)


def enqueue(clinic_id: str, import_id: str) -> None:
    """Hand a kept document to the worker (an SQS message: the queue retries, then dead-letters)."""
    body = json.dumps({"clinic_id": clinic_id, "import_id": import_id})
    sqs_client().send_message(QueueUrl=settings.import_queue_url, MessageBody=body)
