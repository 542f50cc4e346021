"""What the MIS syncs, as items of the Records table: keys, content, hashes, and reading them back.

The item layout lives here and nowhere else. A section's records are kept as the table of sections
says (`protocol.sections`): few in one partition, or many spread over 32 and found by resource and
time through the `by_resource` index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from mediexchange.protocol.sections import RESOURCES, Section, Storage
from mediexchange.records import Resource, SyncedRecord
from mediexchange.store.backend import Backend, busy, guarded
from mediexchange.store.batch import Item, delete_request, get_all, put_request, write_all
from mediexchange.sync import Desired, desired

SHARDS = {Storage.FEW: 1, Storage.BY_RESOURCE: 32}
IDS_PER_TRANSACTION = 90  # DynamoDB takes 100 items in one transaction; one is the counter


_FIELD_TYPES: dict[Any, dict[str, Any]] = {}


def _field_types(record_type: Any) -> dict[str, Any]:
    """The fields' types of a record type, resolved once (annotations are strings until resolved)."""
    if record_type not in _FIELD_TYPES:
        _FIELD_TYPES[record_type] = typing.get_type_hints(record_type)
    return _FIELD_TYPES[record_type]


def _decode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if typing.get_origin(kind) is tuple:  # tuple[Window, ...]
        inner = typing.get_args(kind)[0]
        return tuple(_decode(inner, v) for v in value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):  # a Window, as a list of its fields
        types = _field_types(kind)
        return kind(*(_decode(types[f.name], v) for f, v in zip(dataclasses.fields(kind), value, strict=False)))
    return value


def from_content(section: Section[Any], data: Mapping[str, Any]) -> Any:
    types = _field_types(section.record)
    return section.record(**{name: _decode(types[name], value) for name, value in data.items()})


def _partition(clinic_id: str, section: Section[Any], record_key: str) -> str:
    shard = zlib.crc32(record_key.encode()) % SHARDS[section.storage]
    return f"{clinic_id}#{section.code}#{shard}"


def _partitions(clinic_id: str, section: Section[Any]) -> list[str]:
    return [f"{clinic_id}#{section.code}#{shard}" for shard in range(SHARDS[section.storage])]


def _item(clinic_id: str, section: Section[Any], wanted: Desired) -> Item:
    """The item of a record in DynamoDB's own form (the layout of RecordModel), ready for a batch."""
    item = {
        "pk": {"S": _partition(clinic_id, section, wanted.key)},
        "sk": {"S": wanted.key},
        "h": {"S": wanted.digest},
        "d": {"S": wanted.canonical},
    }
    if section.when is not None:
        # Schedules and appointments of a resource share the index; the kind code keeps them apart.
        item["rk"] = {"S": f"{clinic_id}#{wanted.record.resource_id}"}  # type: ignore[union-attr]
        item["at"] = {"S": f"{section.code}#{section.when(wanted.record).isoformat()}"}
    return item


def _key(clinic_id: str, section: Section[Any], record_key: str) -> Item:
    return {"pk": {"S": _partition(clinic_id, section, record_key)}, "sk": {"S": record_key}}


@guarded
class SyncedRecords:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.tables = backend.tables
        self.table = backend.settings.records_table
        self.parallelism = backend.settings.store_parallelism

    def write(self, clinic_id: str, writes: Iterable[tuple[Section[Any], Desired]]) -> int:
        """Put every record (items made as the batches go out); returns the BatchWriteItem calls made."""
        requests = (put_request(_item(clinic_id, section, wanted)) for section, wanted in writes)
        return write_all(self.backend.bulk, self.table, requests, self.parallelism, self.backend.retry)

    def delete(self, clinic_id: str, deletes: Iterable[tuple[Section[Any], str]]) -> int:
        requests = (delete_request(_key(clinic_id, section, key)) for section, key in deletes)
        return write_all(self.backend.bulk, self.table, requests, self.parallelism, self.backend.retry)

    def _query(self, partition: str, projection: str) -> list[Item]:
        paginator = self.backend.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ProjectionExpression=projection,
            ConsistentRead=True,
        )
        return [item for page in pages for item in page["Items"]]

    def _query_all(self, clinic_id: str, section: Section[Any], projection: str) -> list[Item]:
        partitions = _partitions(clinic_id, section)
        if len(partitions) == 1:
            return self._query(partitions[0], projection)
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            return [item for items in pool.map(lambda p: self._query(p, projection), partitions) for item in items]

    def hashes(self, clinic_id: str, section: Section[Any]) -> dict[str, str]:
        """{record key: content hash} of everything of a section the clinic has; strongly consistent."""
        return {item["sk"]["S"]: item["h"]["S"] for item in self._query_all(clinic_id, section, "sk, h")}

    def hashes_of(self, clinic_id: str, section: Section[Any], keys: Iterable[str]) -> dict[str, str]:
        """{record key: content hash} of just the given records: a diff reads what it sends, not the clinic."""
        wanted = [_key(clinic_id, section, key) for key in keys]
        items = get_all(self.backend.bulk, self.table, wanted, "sk, h", self.parallelism, self.backend.retry)
        return {item["sk"]["S"]: item["h"]["S"] for item in items}

    def all(self, clinic_id: str, section: Section[Any]) -> list[Any]:
        """Every stored record of a section, in no particular order."""
        items = self._query_all(clinic_id, section, "d")
        return [from_content(section, json.loads(item["d"]["S"])) for item in items]

    def of_resource(
        self, clinic_id: str, section: Section[Any], mis_resource_id: int, first: str, last: str
    ) -> list[Any]:
        """Schedules (by ISO date) or appointments (by ISO start) of one resource, from `first` to `last`.

        The index is eventually consistent: a booking may not yet see an appointment imported a moment
        ago, which the import then reports as an overlap.
        """
        model = self.tables.records
        condition = model.at.between(f"{section.code}#{first}", f"{section.code}#{last}")
        items = model.by_resource.query(f"{clinic_id}#{mis_resource_id}", condition)
        return [from_content(section, json.loads(item.d)) for item in items]

    # -- the portal's stable resource ids ----------------------------------------------------------

    def resource_ids(self, clinic_id: str) -> dict[int, int]:
        """{MIS resource id: portal resource id} of every resource the clinic ever imported."""
        model = self.tables.identities
        return {int(i.sk): int(i.portal_id) for i in model.query(f"{clinic_id}#RID", consistent_read=True)}

    def resources_with_ids(self, clinic_id: str) -> list[tuple[int, Resource]]:
        """The clinic's current resources, each with its portal id, in no particular order."""
        portal_ids = self.resource_ids(clinic_id)
        return [(portal_ids[r.id], r) for r in self.all(clinic_id, RESOURCES) if r.id in portal_ids]

    def assign_resource_ids(self, clinic_id: str, mis_ids: Sequence[int]) -> None:
        """Give resources seen for the first time their portal ids: the counter and the ids move together,
        so a failure half-way neither burns ids nor leaves a resource without one."""
        clinics, identities = self.tables.clinics, self.tables.identities
        for start in range(0, len(mis_ids), IDS_PER_TRANSACTION):
            chunk = mis_ids[start : start + IDS_PER_TRANSACTION]
            for _ in range(self.backend.retry.conflict_attempts):
                seen = int(clinics.get(clinic_id, consistent_read=True).next_resource_id or 0)
                try:
                    with TransactWrite(connection=self.backend.transactions()) as write:
                        write.update(
                            clinics(clinic_id),
                            actions=[clinics.next_resource_id.set(seen + len(chunk))],
                            condition=clinics.next_resource_id == seen,
                        )
                        for offset, mis_id in enumerate(chunk, start=1):
                            identity = identities(f"{clinic_id}#RID", str(mis_id), portal_id=seen + offset)
                            write.save(identity, condition=identities.sk.does_not_exist())
                    break
                except TransactWriteError as exc:
                    if exc.cause_response_code != "TransactionCanceledException":
                        raise
            else:
                raise busy()

    def items_of(self, clinic_id: str, section: Section[Any], records: Iterable[SyncedRecord]) -> Iterator[Item]:
        """The items the records would be stored as (for a benchmark's raw baseline of the same writes)."""
        for wanted in desired(section, records).values():
            yield _item(clinic_id, section, wanted)
