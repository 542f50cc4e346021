"""What an import changes, decided without touching a store. Pure.

The store gives the content hashes of what it holds; these functions say what to write and what
to delete so that the stored set becomes what the document asks for, and what each order change does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any

from mediexchange.protocol.sections import APPOINTMENTS, RESOURCES, SCHEDULES, Section
from mediexchange.records import Document, Issue, Order, OrderChange, OrderStatus, SyncedRecord

# One encoder, made once (json.dumps with options builds a new one for every call).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical_json(content: Mapping[str, Any]) -> str:
    """A record's content in one canonical text: what is stored, and what its hash covers."""
    return _CANONICAL.encode(content)


def digest_of(canonical: str) -> str:
    """A stable fingerprint of canonical content: equal content, equal hash."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


_PLAIN = frozenset({int, str, float, bool, type(None)})  # exactly these types (an enum is not one of them)
_NAMES: dict[type, tuple[str, ...]] = {}


def _names(kind: type) -> tuple[str, ...]:
    """The fields of a record type, once per type."""
    if kind not in _NAMES:
        _NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return _NAMES[kind]


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dt.date):  # dates and date-times alike
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value):
        return [_encode(getattr(value, name)) for name in _names(type(value))]
    return value


def content(record: SyncedRecord) -> dict[str, Any]:
    """The canonical content of a record: every field but its line, nested records as lists."""
    return {name: _encode(getattr(record, name)) for name in _names(type(record)) if name != "line"}


# -- the canonical text of a record, written directly: canonical_json(content(record)), to the byte --------
#
# Every import hashes every record it is sent, and the hashes are stored: the text must never change. The
# plain types are written as the canonical encoder writes them (a str by the very function it uses); any
# other value goes the long way, through _encode and the encoder themselves.


def _json_date(value: dt.date) -> str:
    return encode_basestring(value.isoformat())


def _json_tuple(value: tuple[Any, ...]) -> str:
    return f"[{','.join(map(_json, value))}]"


_WRITE: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: "null",
    dt.date: _json_date,
    dt.datetime: _json_date,
    tuple: _json_tuple,
}


def _json(value: Any) -> str:
    """`value` as the canonical encoder writes `_encode(value)`."""
    write = _WRITE.get(type(value))
    if write is not None:
        return write(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"[{','.join(_json(getattr(value, name)) for name in _names(type(value)))}]"
    return _CANONICAL.encode(_encode(value))


_WRITERS: dict[type, Callable[[Any], str]] = {}


def _writer(kind: type) -> Callable[[Any], str]:
    """canonical_text for one record type, made once: one f-string of its keys (sorted by name, as the encoder
    sorts them) and its fields' values, each written by _json (half the time of joining the pairs in a loop)."""
    if kind not in _WRITERS:
        names = sorted(name for name in _names(kind) if name != "line")  # identifiers: safe in the source
        pairs = ",".join(f"{encode_basestring(name)}:{{_json(record.{name})}}" for name in names)
        _WRITERS[kind] = eval(f"lambda record: f'{{{{{pairs}}}}}'", {"_json": _json})  # noqa: S307
    return _WRITERS[kind]


def canonical_text(record: SyncedRecord) -> str:
    """canonical_json(content(record)), the same text, written a few times faster."""
    return _writer(type(record))(record)


@dataclass(frozen=True, slots=True)
class Desired:
    """A record as the import wants it stored: its key, its canonical content and that content's hash."""

    key: str
    canonical: str
    digest: str
    record: SyncedRecord


def desired(section: Section[Any], records: Iterable[SyncedRecord]) -> dict[str, Desired]:
    result = {}
    for record in records:
        key, text = section.key(record), canonical_text(record)
        result[key] = Desired(key, text, digest_of(text), record)
    return result


@dataclass(frozen=True, slots=True)
class Plan:
    """Keys whose items must be written (new or changed) and keys whose items must be deleted."""

    writes: tuple[str, ...]
    deletes: tuple[str, ...]


def plan_sync(
    desired: Mapping[str, str], stored: Mapping[str, str], replace_all: bool, keep: Set[str] = frozenset()
) -> Plan:
    """Compare desired and stored {key: content hash}; `replace_all` also deletes what was not sent,
    except the keys to `keep` (records sent but rejected: their stored versions stay)."""
    writes = tuple(key for key, digest in desired.items() if stored.get(key) != digest)
    deletes = tuple(key for key in stored if key not in desired and key not in keep) if replace_all else ()
    return Plan(writes, deletes)


# -- bucket digests ------------------------------------------------------------------------------------
#
# A section's records are bucketed into leaves by their key alone: the shard the store keeps them in
# (crc32 of the key, as it always was) and, within the shard, a 16-bit position (blake2b of the key) that
# the store puts in front of the sort key. A leaf is a range of positions in one shard, so the store can
# read one leaf with one query; how many leaves a section has is chosen per clinic and section from its
# size and kept with the digests (the positions never move, whatever the count). A leaf's digest is the
# sum, modulo 2**64, of a 64-bit hash of every record's key and content hash: it does not depend on the
# order of the records and can be updated record by record (add the new, subtract the old).

POSITIONS = 1 << 16  # positions per shard: the 4 hex digits in front of a stored sort key
RECORDS_PER_LEAF = 4  # what a section aims at; it is rebucketed when 4x off either way
MAX_LEAVES = 1 << 15  # 8 bytes each: a section's digests stay one item of 256 KB at most (DynamoDB: 400 KB)
DIGEST_MODULUS = 1 << 64


def shard_of(key: str, shards: int) -> int:
    """The partition a record is kept in among its section's `shards`."""
    return zlib.crc32(key.encode()) % shards


def position_of(key: str) -> int:
    """A record's place within its shard, 0 to POSITIONS - 1: what orders the leaves."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=2).digest(), "big")


def mix(key: str, content_hash: str) -> int:
    """What a record adds to its leaf's digest: its key and content hash together, 64 bits."""
    return int.from_bytes(hashlib.blake2b(f"{key}\0{content_hash}".encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class Buckets:
    """How a section's records fall into leaves: `per_shard` leaves (a power of two) in each shard."""

    shards: int
    per_shard: int

    @property
    def count(self) -> int:
        return self.shards * self.per_shard

    def leaf(self, key: str) -> int:
        return shard_of(key, self.shards) * self.per_shard + position_of(key) * self.per_shard // POSITIONS

    def span(self, leaf: int) -> tuple[int, int, int]:
        """(shard, first position, last position) of a leaf."""
        shard, index = divmod(leaf, self.per_shard)
        width = POSITIONS // self.per_shard
        return shard, index * width, (index + 1) * width - 1

    def suits(self, records: int) -> bool:
        """Whether a section of `records` records may keep these buckets (else it is rebucketed)."""
        per_leaf = records / self.count
        not_too_many = self.per_shard == 1 or per_leaf >= RECORDS_PER_LEAF / 4
        not_too_few = 2 * self.count > MAX_LEAVES or per_leaf <= 4 * RECORDS_PER_LEAF
        return not_too_many and not_too_few


def buckets_for(records: int, shards: int) -> Buckets:
    """Buckets for a section of `records` records: about RECORDS_PER_LEAF in a leaf, a power of two per shard."""
    wanted = max(1.0, records / (shards * RECORDS_PER_LEAF))
    per_shard = 1
    while per_shard * 2 <= min(wanted * 1.5, MAX_LEAVES // shards):  # the power of two nearest above 2/3 of it
        per_shard *= 2
    return Buckets(shards, per_shard)


def leaf_digests(hashes: Iterable[tuple[str, str]], buckets: Buckets) -> list[int]:
    """The digest of every leaf of a set of records given as (key, content hash)."""
    values = [0] * buckets.count
    for key, content_hash in hashes:
        leaf = buckets.leaf(key)
        values[leaf] = (values[leaf] + mix(key, content_hash)) % DIGEST_MODULUS
    return values


def leaves_of(keys: Iterable[str], buckets: Buckets) -> set[int]:
    return {buckets.leaf(key) for key in keys}


def after_plan(stored: Mapping[str, str], wanted: Mapping[str, str], plan: Plan) -> dict[str, str]:
    """{key: content hash} of the records read (`stored`) once the plan's writes and deletes are in."""
    result = dict(stored)
    for key in plan.deletes:
        result.pop(key, None)
    for key in plan.writes:
        result[key] = wanted[key]
    return result


def updated_digests(
    values: Sequence[int],
    buckets: Buckets,
    read_whole: Set[int],
    after: Mapping[str, str],
    before: Mapping[str, str],
) -> list[int]:
    """The leaves' digests once a plan is in, from what was read: a leaf in `read_whole` was read whole
    and `after` holds all of it as it will be; any other leaf changes by the records that differ between
    `before` (as read, by key) and `after` (an absent key adds nothing)."""
    new = list(values)
    for leaf in read_whole:
        new[leaf] = 0
    for key, content_hash in after.items():
        leaf = buckets.leaf(key)
        if leaf in read_whole:
            new[leaf] = (new[leaf] + mix(key, content_hash)) % DIGEST_MODULUS
        elif before.get(key) != content_hash:
            old = before.get(key)
            delta = mix(key, content_hash) - (mix(key, old) if old is not None else 0)
            new[leaf] = (new[leaf] + delta) % DIGEST_MODULUS
    for key, content_hash in before.items():
        leaf = buckets.leaf(key)
        if key not in after and leaf not in read_whole:
            new[leaf] = (new[leaf] - mix(key, content_hash)) % DIGEST_MODULUS
    return new


class OrderOutcome(StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    UNKNOWN = "unknown"
    REJECTED = "rejected"  # the change itself cannot apply (it moves the order to an unknown resource)


def decide_order_change(
    stored: Order | None, change: OrderChange, quoted: Collection[int] | None, now: int
) -> tuple[OrderOutcome, Order | None]:
    """What one MIS change does to a stored order, and the order as it would be afterwards.

    `quoted` is the change's LastChangedOn as unix seconds: both instants when the local time occurs
    twice (a clock change), None when the MIS sent none. Asking for what is stored is harmless. A
    change conflicts only with the portal's side: if the portal changed the order after the time the
    MIS quotes, the MIS decided on stale facts. Its own earlier changes never make a conflict, so an
    MIS that confirms and later rejects an order, quoting what it exported both times, gets both.
    """
    if stored is None:
        return OrderOutcome.UNKNOWN, None
    wanted = replace(
        stored,
        status=change.status,
        reception=change.reception if change.reception is not None else stored.reception,
        duration=change.duration if change.duration is not None else stored.duration,
        mw_resource_id=change.mw_resource_id if change.mw_resource_id is not None else stored.mw_resource_id,
    )
    if wanted == stored:
        return OrderOutcome.UNCHANGED, stored
    if quoted and stored.portal_changed > max(quoted):
        return OrderOutcome.CONFLICT, stored
    # The time of the change, never earlier than the order's last one (the export's window moves on).
    return OrderOutcome.UPDATED, replace(wanted, last_changed=max(now, stored.last_changed))


def holds_slot(status: OrderStatus) -> bool:
    """A received or accepted order holds its time; a rejected one frees it."""
    return status is not OrderStatus.REJECTED


def reference_warnings(document: Document, group_ids: Iterable[int], resource_ids: Iterable[int]) -> list[Issue]:
    """References to groups and resources that neither the document nor the store knows.

    `group_ids` / `resource_ids` are what the clinic will have after this import.
    """
    groups, resources = set(group_ids), set(resource_ids)
    warnings = [
        Issue("unknown_group", f"group_id {r.group_id} is not a known resource group", r.line, "Resources", str(r.id))
        for r in RESOURCES.of(document) or ()
        if r.group_id is not None and r.group_id not in groups
    ]
    by_resource: tuple[Section[Any], ...] = (SCHEDULES, APPOINTMENTS)
    for section in by_resource:
        for record in section.of(document) or ():
            if record.resource_id not in resources:
                message = f"resource_id {record.resource_id} is not a known resource"
                warnings.append(Issue("unknown_resource", message, record.line, section.name, section.key(record)))
    return warnings
