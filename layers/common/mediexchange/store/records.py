"""What the MIS syncs, as items of the Records table: keys, content, hashes, and reading them back."""

from __future__ import annotations

import datetime as dt
import json
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from mediexchange.config import settings
from mediexchange.errors import StoreUnavailable
from mediexchange.records import Appointment, Group, Resource, Schedule, Window
from mediexchange.store.batch import MAX_ATTEMPTS, backoff, delete_request, dynamodb_client, put_request
from mediexchange.store.models import ClinicModel, RecordModel, ResourceIdentityModel
from mediexchange.sync import canonical_json, digest_of

SyncedRecord = Group | Resource | Schedule | Appointment


class Kind(Enum):
    """A kind of synced record: its key prefix and how many partitions a clinic's items spread over.

    Groups and resources are few; schedules and appointments of a big clinic run to 10^5 items, and
    one partition takes at most 1,000 writes a second, so they spread over many.
    """

    GROUPS = ("G", 1)
    RESOURCES = ("R", 1)
    SCHEDULES = ("S", 32)
    APPOINTMENTS = ("A", 32)

    def __init__(self, prefix: str, shards: int) -> None:
        self.prefix = prefix
        self.shards = shards

    def partition(self, clinic_id: str, record_key: str) -> str:
        shard = zlib.crc32(record_key.encode()) % self.shards
        return f"{clinic_id}#{self.prefix}#{shard}"

    def partitions(self, clinic_id: str) -> list[str]:
        return [f"{clinic_id}#{self.prefix}#{shard}" for shard in range(self.shards)]


def record_key(record: SyncedRecord) -> str:
    return record.key if isinstance(record, Appointment) else str(record.id)


def content(record: SyncedRecord) -> dict[str, Any]:
    """The canonical content of a record: what is stored and what its hash covers."""
    if isinstance(record, Group):
        return {"id": record.id, "name": record.name, "pos": record.pos}
    if isinstance(record, Resource):
        return {
            "id": record.id,
            "name": record.name,
            "time_step": record.time_step,
            "group_id": record.group_id,
            "pos": record.pos,
        }
    if isinstance(record, Schedule):
        return {
            "id": record.id,
            "date": record.date.isoformat(),
            "resource_id": record.resource_id,
            "windows": [[w.start, w.end, w.break_start, w.break_end] for w in record.windows],
        }
    return {
        "tablename": record.tablename,
        "id": record.id,
        "resource_id": record.resource_id,
        "start": record.start.isoformat(),
        "duration": record.duration,
        "title": record.title,
    }


def from_content(kind: Kind, data: dict[str, Any]) -> SyncedRecord:
    if kind is Kind.GROUPS:
        return Group(data["id"], data["name"], data["pos"])
    if kind is Kind.RESOURCES:
        return Resource(data["id"], data["name"], data["time_step"], data["group_id"], data["pos"])
    if kind is Kind.SCHEDULES:
        windows = tuple(Window(*w) for w in data["windows"])
        return Schedule(data["id"], dt.date.fromisoformat(data["date"]), data["resource_id"], windows)
    return Appointment(
        data["tablename"],
        data["id"],
        data["resource_id"],
        dt.datetime.fromisoformat(data["start"]),
        data["duration"],
        data["title"],
    )


@dataclass(frozen=True, slots=True)
class Desired:
    """A record as the import wants it stored: its key, its canonical content and that content's hash."""

    key: str
    canonical: str
    digest: str
    record: SyncedRecord


def desired(records: Iterable[SyncedRecord]) -> dict[str, Desired]:
    result = {}
    for record in records:
        key, text = record_key(record), canonical_json(content(record))
        result[key] = Desired(key, text, digest_of(text), record)
    return result


def put_item(clinic_id: str, kind: Kind, wanted: Desired) -> dict[str, Any]:
    """The item of a record, in DynamoDB's own form (the layout of RecordModel), ready for a batch."""
    record = wanted.record
    item = {
        "pk": {"S": kind.partition(clinic_id, wanted.key)},
        "sk": {"S": wanted.key},
        "h": {"S": wanted.digest},
        "d": {"S": wanted.canonical},
    }
    if isinstance(record, Schedule | Appointment):
        # Schedules and appointments of a resource share the index; the kind prefix keeps them apart.
        when = record.date.isoformat() if isinstance(record, Schedule) else record.start.isoformat()
        item["rk"] = {"S": f"{clinic_id}#{record.resource_id}"}
        item["at"] = {"S": f"{kind.prefix}#{when}"}
    return put_request(item)


def delete_item(clinic_id: str, kind: Kind, key: str) -> dict[str, Any]:
    return delete_request({"pk": {"S": kind.partition(clinic_id, key)}, "sk": {"S": key}})


def _query(partition: str, projection: str) -> Iterator[dict[str, Any]]:
    paginator = dynamodb_client().get_paginator("query")
    for page in paginator.paginate(
        TableName=RecordModel.Meta.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
        ProjectionExpression=projection,
        ConsistentRead=True,
    ):
        yield from page["Items"]


def _query_all(clinic_id: str, kind: Kind, projection: str) -> list[dict[str, Any]]:
    partitions = kind.partitions(clinic_id)
    if len(partitions) == 1:
        return list(_query(partitions[0], projection))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return [item for items in pool.map(lambda p: list(_query(p, projection)), partitions) for item in items]


def stored_hashes(clinic_id: str, kind: Kind) -> dict[str, str]:
    """{record key: content hash} of everything of a kind the clinic has; strongly consistent."""
    return {item["sk"]["S"]: item["h"]["S"] for item in _query_all(clinic_id, kind, "sk, h")}


def stored_hashes_of(clinic_id: str, kind: Kind, keys: Iterable[str]) -> dict[str, str]:
    """{record key: content hash} of just the given records: a diff reads what it sends, not the clinic."""
    table = RecordModel.Meta.table_name
    wanted = [{"pk": {"S": kind.partition(clinic_id, key)}, "sk": {"S": key}} for key in keys]
    chunks = [wanted[i : i + BATCH_GET_SIZE] for i in range(0, len(wanted), BATCH_GET_SIZE)]

    def fetch(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {table: {"Keys": chunk, "ProjectionExpression": "sk, h", "ConsistentRead": True}}
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(backoff(attempt))
            response = dynamodb_client().batch_get_item(RequestItems=request)
            found += response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise StoreUnavailable("the store is busy; try again later", retry_after=5)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {item["sk"]["S"]: item["h"]["S"] for items in pool.map(fetch, chunks) for item in items}


def stored_records(clinic_id: str, kind: Kind) -> list[SyncedRecord]:
    return [from_content(kind, json.loads(item["d"]["S"])) for item in _query_all(clinic_id, kind, "d")]


def resource_identities(clinic_id: str) -> dict[int, int]:
    """{MIS resource id: portal resource id} of every resource the clinic ever imported."""
    return {int(i.sk): int(i.portal_id) for i in ResourceIdentityModel.query(f"{clinic_id}#RID", consistent_read=True)}


BATCH_GET_SIZE = 100  # DynamoDB's limit per BatchGetItem
IDS_PER_TRANSACTION = 90  # DynamoDB takes 100 items in one transaction; one is the counter


def assign_portal_ids(clinic_id: str, mis_ids: Sequence[int]) -> None:
    """Give resources seen for the first time their portal ids: the counter and the ids move together,
    so a failure half-way neither burns ids nor leaves a resource without one."""
    for start in range(0, len(mis_ids), IDS_PER_TRANSACTION):
        chunk = mis_ids[start : start + IDS_PER_TRANSACTION]
        for _ in range(8):
            seen = int(ClinicModel.get(clinic_id, consistent_read=True).next_resource_id or 0)
            try:
                with TransactWrite(connection=Connection(region=settings.region, host=settings.endpoint_url)) as write:
                    write.update(
                        ClinicModel(clinic_id),
                        actions=[ClinicModel.next_resource_id.set(seen + len(chunk))],
                        condition=ClinicModel.next_resource_id == seen,
                    )
                    for offset, mis_id in enumerate(chunk, start=1):
                        identity = ResourceIdentityModel(f"{clinic_id}#RID", str(mis_id), portal_id=seen + offset)
                        write.save(identity, condition=ResourceIdentityModel.sk.does_not_exist())
                break
            except TransactWriteError as exc:
                if exc.cause_response_code != "TransactionCanceledException":
                    raise
        else:
            raise StoreUnavailable("the clinic's resource ids kept changing; try again", retry_after=1)


def of_resource(clinic_id: str, kind: Kind, mis_resource_id: int, first: str, last: str) -> list[SyncedRecord]:
    """Schedules (by ISO date) or appointments (by ISO start) of one resource, from `first` to `last`.

    The index is eventually consistent: a booking may not yet see an appointment imported a moment
    ago, which the import then reports as an overlap.
    """
    condition = RecordModel.at.between(f"{kind.prefix}#{first}", f"{kind.prefix}#{last}")
    items = RecordModel.by_resource.query(f"{clinic_id}#{mis_resource_id}", condition)
    return [from_content(kind, json.loads(item.d)) for item in items]
