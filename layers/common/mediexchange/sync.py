"""What an import changes, decided without touching a store. Pure.

The store gives the content hashes of what it holds; these functions say what to write and what
to delete so that the stored set becomes what the document asks for, and what each order change does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Set
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from mediexchange.protocol.sections import APPOINTMENTS, RESOURCES, SCHEDULES, Section
from mediexchange.records import Document, Issue, Order, OrderChange, OrderStatus, SyncedRecord


def canonical_json(content: Mapping[str, Any]) -> str:
    """A record's content in one canonical text: what is stored, and what its hash covers."""
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def digest_of(canonical: str) -> str:
    """A stable fingerprint of canonical content: equal content, equal hash."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.date):  # dates and date-times alike
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value):
        return [_encode(getattr(value, f.name)) for f in dataclasses.fields(value)]
    return value


def content(record: SyncedRecord) -> dict[str, Any]:
    """The canonical content of a record: every field but its line, nested records as lists."""
    return {f.name: _encode(getattr(record, f.name)) for f in dataclasses.fields(record) if f.name != "line"}


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
        key, text = section.key(record), canonical_json(content(record))
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
