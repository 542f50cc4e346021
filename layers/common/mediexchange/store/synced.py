"""What the MIS syncs, as items of the Records table: keys, content, hashes, digests, and reading them back.

The item layout lives here and nowhere else. A section's records are kept as the table of sections
says (`protocol.sections`): few in one partition, or many spread over 32 and found by resource and
time through the `by_resource` index.

A record's sort key is its position within its shard (4 hex digits, `sync.position_of`), '#', and its
key (its SHA-256 if that would pass DynamoDB's 1,024 bytes; the key is then in `k`); the item carries
`v` = 1 to say so. Items written before the digests (sort key = the record key,
no `v`) are still read, and an import rewrites them in the new layout (see `importing`). Beside the
records, in the partition `clinic#DG`: one digest item per section (sort key: the section code) holding
the digest of every leaf (`sync.Buckets`), and the dirty marks of imports under way (`mark#...`). In the
partition `clinic#RID`: the portal's stable id of each MIS resource (sort key: the MIS id) and, written in
the same transaction, the MIS id of each portal id (sort key: `p#` and the portal id), by which the portal
finds one resource without reading them all. Identities written before those (none carry `p#` items) are
still found, and the next import that sends Resources adds what they lack, then puts the mark `#p` that
says none lacks one (read with the identities: an import never reads the `p#` items again).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import time
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from mediexchange.protocol.sections import RESOURCES, Section, Storage
from mediexchange.records import Resource, SyncedRecord
from mediexchange.store.backend import Backend, busy, guarded
from mediexchange.store.batch import Item, delete_request, get_all, put_request, write_all
from mediexchange.sync import Buckets, Desired, desired, position_of, shard_of

SHARDS = {Storage.FEW: 1, Storage.BY_RESOURCE: 32}
# DynamoDB takes 100 items in one transaction: the counter, and each id's identity and its portal id's item.
IDS_PER_TRANSACTION = 49
IDENTITIES = "RID"  # the portal's resource ids: partition clinic#RID
PORTAL_ID = "p#"  # of the sort keys there: the item of a portal id (MIS ids sort before "p": "-" and digits)
# The mark that every identity there has its p# item (sorting before the MIS ids: read with them): new
# identities are written with theirs, those from before are given theirs once, and then it is put.
INDEXED = "#p"
DIGESTS = "DG"  # a clinic's digests and dirty marks: partition clinic#DG
MARK = "mark#"
# A dirty mark of another import is cleared only once it is older than any attempt at an import can run
# (the worker's Lambda timeout is 900 s): its writes can no longer be under way.
MARK_LIFETIME = 1800
ALL = -1  # a mark's leaf count meaning "every leaf of the section"


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


def _shards(section: Section[Any]) -> int:
    return SHARDS[section.storage]


def _partition(clinic_id: str, section: Section[Any], record_key: str) -> str:
    return f"{clinic_id}#{section.code}#{shard_of(record_key, _shards(section))}"


def _partitions(clinic_id: str, section: Section[Any]) -> list[str]:
    return [f"{clinic_id}#{section.code}#{shard}" for shard in range(_shards(section))]


MAX_SORT_KEY = 1024  # bytes, DynamoDB's limit


def _sort_key(record_key: str) -> str:
    """Position, '#', record key; a key too long for that (the protocol allows keys of 1,024 bytes) is
    replaced by its SHA-256 and kept whole in `k`."""
    sort_key = f"{position_of(record_key):04x}#{record_key}"
    if len(sort_key) * 4 > MAX_SORT_KEY and len(sort_key.encode()) > MAX_SORT_KEY:
        return f"{position_of(record_key):04x}#{hashlib.sha256(record_key.encode()).hexdigest()}"
    return sort_key


def _item(clinic_id: str, section: Section[Any], wanted: Desired) -> Item:
    """The item of a record in DynamoDB's own form (the layout of RecordModel), ready for a batch."""
    item = {
        "pk": {"S": _partition(clinic_id, section, wanted.key)},
        "sk": {"S": _sort_key(wanted.key)},
        "h": {"S": wanted.digest},
        "d": {"S": wanted.canonical},
        "v": {"N": "1"},
    }
    if item["sk"]["S"][5:] != wanted.key:
        item["k"] = {"S": wanted.key}
    if section.when is not None:
        # Schedules and appointments of a resource share the index; the kind code keeps them apart.
        item["rk"] = {"S": f"{clinic_id}#{wanted.record.resource_id}"}  # type: ignore[union-attr]
        item["at"] = {"S": f"{section.code}#{section.when(wanted.record).isoformat()}"}
    return item


def _key(clinic_id: str, section: Section[Any], record_key: str) -> Item:
    return {"pk": {"S": _partition(clinic_id, section, record_key)}, "sk": {"S": _sort_key(record_key)}}


def _legacy_key(clinic_id: str, section: Section[Any], record_key: str) -> Item:
    """The key of an item written before the digests: the record key is the whole sort key."""
    return {"pk": {"S": _partition(clinic_id, section, record_key)}, "sk": {"S": record_key}}


def _record_key(item: Item) -> tuple[str, bool]:
    """(record key, whether the item is in the old layout)."""
    sort_key = item["sk"]["S"]
    if "v" not in item:
        return sort_key, True
    return (item["k"]["S"] if "k" in item else sort_key[5:]), False


def _moved(item: Item) -> Item:
    """An item of the old layout in the new one."""
    key = item["sk"]["S"]
    moved = {**item, "sk": {"S": _sort_key(key)}, "v": {"N": "1"}}
    if moved["sk"]["S"][5:] != key:
        moved["k"] = {"S": key}
    return moved


@dataclass
class Read:
    """Records of a section as read: {key: content hash}, of the items in the layout with positions and of
    those in the old layout (a key may be in both after an import stopped half-way through rewriting it)."""

    hashes: dict[str, str] = field(default_factory=dict)
    legacy: dict[str, str] = field(default_factory=dict)

    def add(self, items: Iterable[Item]) -> Read:
        for item in items:
            key, legacy = _record_key(item)
            (self.legacy if legacy else self.hashes)[key] = item["h"]["S"]
        return self

    def merged(self) -> dict[str, str]:
        """{key: content hash}, the item with positions where there are two."""
        return {**self.legacy, **self.hashes}


@dataclass(frozen=True)
class SectionDigests:
    """The stored digests of a section: its buckets, every leaf's digest, and the item's version."""

    buckets: Buckets
    values: tuple[int, ...]
    version: int


@dataclass(frozen=True)
class Mark:
    """A dirty mark: an import may be writing these leaves. {section code: (leaf count, leaves)}."""

    sort_key: str
    at: int
    leaves: Mapping[str, tuple[int, frozenset[int]]]


@dataclass(frozen=True)
class Digests:
    """What the clinic's digest partition holds: the digests of each section and the dirty marks."""

    sections: Mapping[str, SectionDigests] = field(default_factory=dict)
    marks: Sequence[Mark] = ()

    def dirty(self, code: str) -> set[int] | None:
        """The leaves of a section some mark names; None if a mark names them all (or other buckets)."""
        stored = self.sections.get(code)
        leaves: set[int] = set()
        for mark in self.marks:
            if code in mark.leaves:
                count, named = mark.leaves[code]
                if stored is None or count != stored.buckets.count:
                    return None
                leaves |= named
        return leaves


def _pack(values: Sequence[int], width: int) -> bytes:
    return b"".join(value.to_bytes(width, "big") for value in values)


def _unpack(data: bytes, width: int) -> list[int]:
    return [int.from_bytes(data[i : i + width], "big") for i in range(0, len(data), width)]


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

    def delete_legacy(self, clinic_id: str, deletes: Iterable[tuple[Section[Any], str]]) -> int:
        """Delete items of the old layout (sort key = record key)."""
        requests = (delete_request(_legacy_key(clinic_id, section, key)) for section, key in deletes)
        return write_all(self.backend.bulk, self.table, requests, self.parallelism, self.backend.retry)

    def copy_legacy(self, clinic_id: str, section: Section[Any], keys: Sequence[str]) -> int:
        """Write items of the old layout again in the new one, as they are (records the import keeps
        without having their content: rejected ones, or those a diff did not send)."""
        wanted = [_legacy_key(clinic_id, section, key) for key in keys]
        items = get_all(self.backend.bulk, self.table, wanted, None, self.parallelism, self.backend.retry)
        moved = (_moved(item) for item in items)
        requests = (put_request(item) for item in moved)
        return write_all(self.backend.bulk, self.table, requests, self.parallelism, self.backend.retry)

    def _query(self, partition: str, projection: str, between: tuple[str, str] | None = None) -> list[Item]:
        paginator = self.backend.dynamodb.get_paginator("query")
        condition, values = "pk = :pk", {":pk": {"S": partition}}
        if between is not None:
            condition += " AND sk BETWEEN :first AND :last"
            values |= {":first": {"S": between[0]}, ":last": {"S": between[1]}}
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
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

    def read_all(self, clinic_id: str, section: Section[Any]) -> Read:
        """Every stored record's key and content hash, in either layout; strongly consistent."""
        return Read().add(self._query_all(clinic_id, section, "sk, h, v, k"))

    def read_leaves(self, clinic_id: str, section: Section[Any], buckets: Buckets, leaves: Iterable[int]) -> Read:
        """The keys and content hashes of the records of the given leaves: one query each."""

        def leaf(number: int) -> list[Item]:
            shard, first, last = buckets.span(number)
            # Every sort key of a position p is "pppp#..."; '$' follows '#'.
            return self._query(f"{clinic_id}#{section.code}#{shard}", "sk, h, v, k", (f"{first:04x}#", f"{last:04x}$"))

        numbers = sorted(leaves)
        if len(numbers) <= 1:
            return Read().add(item for number in numbers for item in leaf(number))
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            return Read().add(item for items in pool.map(leaf, numbers) for item in items)

    def hashes(self, clinic_id: str, section: Section[Any]) -> dict[str, str]:
        """{record key: content hash} of everything of a section the clinic has; strongly consistent."""
        return self.read_all(clinic_id, section).merged()

    def hashes_of(self, clinic_id: str, section: Section[Any], keys: Iterable[str]) -> dict[str, str]:
        """{record key: content hash} of just the given records, as kept once the section has digests."""
        wanted = [_key(clinic_id, section, key) for key in keys]
        items = get_all(self.backend.bulk, self.table, wanted, "sk, h, v, k", self.parallelism, self.backend.retry)
        return Read().add(items).hashes

    def all(self, clinic_id: str, section: Section[Any]) -> list[Any]:
        """Every stored record of a section, in no particular order (once, in whichever layout)."""
        found: dict[str, tuple[bool, str]] = {}
        for item in self._query_all(clinic_id, section, "sk, v, k, d"):
            key, legacy = _record_key(item)
            if not legacy or key not in found:
                found[key] = (legacy, item["d"]["S"])
        return [from_content(section, json.loads(data)) for _, data in found.values()]

    # -- digests and dirty marks ---------------------------------------------------------------------

    def digests(self, clinic_id: str) -> Digests:
        """The clinic's digests and dirty marks: one strongly consistent query."""
        sections, marks = {}, []
        for item in self._query(f"{clinic_id}#{DIGESTS}", "sk, s, n, x, ver, t, m"):
            sort_key = item["sk"]["S"]
            if sort_key.startswith(MARK):
                named = json.loads(item["m"]["S"])
                leaves = {code: (int(count), frozenset(numbers)) for code, (count, numbers) in named.items()}
                marks.append(Mark(sort_key, int(item["t"]["N"]), leaves))
            else:
                buckets = Buckets(int(item["s"]["N"]), int(item["n"]["N"]))
                values = tuple(_unpack(item["x"]["B"], 8))
                assert len(values) == buckets.count, f"digests of {sort_key} do not match their buckets"
                sections[sort_key] = SectionDigests(buckets, values, int(item["ver"]["N"]))
        return Digests(sections, marks)

    def mark(self, clinic_id: str, import_id: str, leaves: Mapping[str, tuple[int, Iterable[int]]]) -> Mark:
        """Mark leaves dirty before their records are written or deleted: {section code: (leaf count or
        ALL, leaves)}. A failed mark leaves nothing behind that matters (nothing was written yet)."""
        named = {code: (count, sorted(numbers)) for code, (count, numbers) in leaves.items()}
        mark = Mark(f"{MARK}{import_id}#{secrets.token_hex(4)}", int(time.time()), {})
        self.backend.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"{clinic_id}#{DIGESTS}"},
                "sk": {"S": mark.sort_key},
                "t": {"N": str(mark.at)},
                "m": {"S": json.dumps(named, separators=(",", ":"))},
            },
        )
        return mark

    def commit(self, clinic_id: str, section: Section[Any], digests: SectionDigests, after: int | None) -> bool:
        """Write a section's digests once every write and delete of its leaves is in; only if the stored
        digests are still those of version `after` (None: there were none). False if they were not."""
        condition = "attribute_not_exists(pk)" if after is None else "ver = :after"
        values = {} if after is None else {":after": {"N": str(after)}}
        try:
            self.backend.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"{clinic_id}#{DIGESTS}"},
                    "sk": {"S": section.code},
                    "s": {"N": str(digests.buckets.shards)},
                    "n": {"N": str(digests.buckets.per_shard)},
                    "x": {"B": _pack(digests.values, 8)},
                    "ver": {"N": str(digests.version)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unmark(self, clinic_id: str, marks: Iterable[Mark]) -> None:
        for mark in marks:
            key = {"pk": {"S": f"{clinic_id}#{DIGESTS}"}, "sk": {"S": mark.sort_key}}
            self.backend.dynamodb.delete_item(TableName=self.table, Key=key)

    def shards(self, section: Section[Any]) -> int:
        return _shards(section)

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

    def _identities(self, clinic_id: str) -> tuple[dict[int, int], bool]:
        """({MIS resource id: portal id} of every identity, whether every one has its `p#` item): one
        strongly consistent query of the identities and the mark that says so, never of the `p#` items."""
        paginator = self.backend.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk < :p",  # the mark and the identities, before the p# items
            ExpressionAttributeValues={":pk": {"S": f"{clinic_id}#{IDENTITIES}"}, ":p": {"S": PORTAL_ID}},
            ProjectionExpression="sk, portal_id",
            ConsistentRead=True,
        )
        items = [item for page in pages for item in page["Items"]]
        portal_ids = {int(i["sk"]["S"]): int(i["portal_id"]["N"]) for i in items if i["sk"]["S"] != INDEXED}
        return portal_ids, len(items) > len(portal_ids)

    def resource_ids(self, clinic_id: str) -> dict[int, int]:
        """{MIS resource id: portal resource id} of every resource the clinic ever imported."""
        return self._identities(clinic_id)[0]

    def resources_with_ids(self, clinic_id: str) -> list[tuple[int, Resource]]:
        """The clinic's current resources, each with its portal id, in no particular order."""
        portal_ids = self.resource_ids(clinic_id)
        return [(portal_ids[r.id], r) for r in self.all(clinic_id, RESOURCES) if r.id in portal_ids]

    def _get(self, key: Item, projection: str) -> Item | None:
        """One item's projected attributes, strongly consistent; None if there is no such item."""
        asked = {"TableName": self.table, "Key": key, "ProjectionExpression": projection, "ConsistentRead": True}
        item: Item | None = self.backend.dynamodb.get_item(**asked).get("Item")
        return item

    def _mis_id(self, clinic_id: str, portal_id: int) -> int | None:
        """The MIS id of a portal id: its `p#` item; without one, none if the mark says every identity has
        its item, else (identities written before those) the identity found by a query."""
        partition = {"S": f"{clinic_id}#{IDENTITIES}"}
        found = self._get({"pk": partition, "sk": {"S": f"{PORTAL_ID}{portal_id}"}}, "mis_id")
        if found is not None:
            return int(found["mis_id"]["N"])
        if self._get({"pk": partition, "sk": {"S": INDEXED}}, "sk") is not None:
            return None
        paginator = self.backend.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk < :p",
            FilterExpression="portal_id = :id",
            ExpressionAttributeValues={":pk": partition, ":p": {"S": PORTAL_ID}, ":id": {"N": str(portal_id)}},
            ProjectionExpression="sk",
            ConsistentRead=True,
        )
        return next((int(i["sk"]["S"]) for page in pages for i in page["Items"]), None)

    def resource(self, clinic_id: str, portal_id: int) -> Resource | None:
        """The clinic's current resource of a portal id (None if it has none, or the MIS dropped it): two
        GetItems, where `resources_with_ids` reads every resource and every identity of the clinic."""
        mis_id = self._mis_id(clinic_id, portal_id)
        if mis_id is None:
            return None
        key = str(mis_id)
        for wanted in (_key(clinic_id, RESOURCES, key), _legacy_key(clinic_id, RESOURCES, key)):
            item = self._get(wanted, "d")
            if item is not None:  # the layout with positions first, as `all` prefers it
                return typing.cast(Resource, from_content(RESOURCES, json.loads(item["d"]["S"])))
        return None

    def assign_resource_ids(self, clinic_id: str, mis_ids: Sequence[int]) -> None:
        """Give every resource of `mis_ids` (those of an import, in its order) seen for the first time its
        portal id; and the `p#` items identities written before those lack (each only ever says what its
        identity says, so it is put as it is). A new identity, its `p#` item and the counter move together
        in one transaction, so a failure half-way neither burns ids nor leaves a resource without one."""
        known, complete = self._identities(clinic_id)
        new = list(dict.fromkeys(mis_id for mis_id in mis_ids if mis_id not in known))
        if not complete:  # once per clinic: its p# items are read and completed, then marked complete
            partition = f"{clinic_id}#{IDENTITIES}"
            indexed = {int(i["sk"]["S"][len(PORTAL_ID) :]) for i in self._query(partition, "sk", (PORTAL_ID, "p$"))}
            missing = [(mis_id, portal_id) for mis_id, portal_id in known.items() if portal_id not in indexed]
            requests = (put_request(self._portal_id_item(clinic_id, *pair)) for pair in missing)
            write_all(self.backend.bulk, self.table, requests, self.parallelism, self.backend.retry)
            self.backend.dynamodb.put_item(TableName=self.table, Item={"pk": {"S": partition}, "sk": {"S": INDEXED}})
        clinics, identities, portal_ids = self.tables.clinics, self.tables.identities, self.tables.portal_ids
        for start in range(0, len(new), IDS_PER_TRANSACTION):
            chunk = new[start : start + IDS_PER_TRANSACTION]
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
                            partition = f"{clinic_id}#{IDENTITIES}"
                            identity = identities(partition, str(mis_id), portal_id=seen + offset)
                            write.save(identity, condition=identities.sk.does_not_exist())
                            by_portal_id = portal_ids(partition, f"{PORTAL_ID}{seen + offset}", mis_id=mis_id)
                            write.save(by_portal_id, condition=portal_ids.sk.does_not_exist())
                    break
                except TransactWriteError as exc:
                    if exc.cause_response_code != "TransactionCanceledException":
                        raise
            else:
                raise busy()

    @staticmethod
    def _portal_id_item(clinic_id: str, mis_id: int, portal_id: int) -> Item:
        return {
            "pk": {"S": f"{clinic_id}#{IDENTITIES}"},
            "sk": {"S": f"{PORTAL_ID}{portal_id}"},
            "mis_id": {"N": str(mis_id)},
        }

    def items_of(self, clinic_id: str, section: Section[Any], records: Iterable[SyncedRecord]) -> Iterator[Item]:
        """The items the records would be stored as (for a benchmark's raw baseline of the same writes)."""
        for wanted in desired(section, records).values():
            yield _item(clinic_id, section, wanted)
