"""What a run costs in DynamoDB request units, counted from the calls the store makes.

`Units` is a pair of botocore handlers (`before-parameter-build.*.*` and `after-call.*.*`, registered
with `store.instrument`): for every call it keeps the items read (Query and Scan pages, GetItem,
BatchGetItem) and the items written (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems), with their sizes as DynamoDB counts them. moto answers no real ConsumedCapacity
(it returns constants), so the units are worked out here by DynamoDB's published rules:

* a write costs 1 WRU per started KB of the item, a transactional write twice that;
* a Query page costs 1 RRU per started 4 KB of all the items it read (strongly consistent; half
  for an eventually consistent read, such as any index query), GetItem and BatchGetItem the same per
  item; a projection does not make a read cheaper: DynamoDB charges the whole item.

Because of the last rule a Records read projected to its key and hash (`sk, h`) is charged at the
full size of the item, taken from `sizes` (the average size of each section's items as the store
makes them from the document, by section code); a delete is charged at the size of the item it
deletes, taken the same way. Items of other tables come back whole and are charged as they come.
An UpdateItem is charged at the size of its key and new values (a lower bound: DynamoDB charges the
larger of the item before and after).
"""

from __future__ import annotations

import base64
import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

READ_UNIT = 4096  # bytes a strongly consistent read unit covers
WRITE_UNIT = 1024  # bytes a write unit covers


def value_size(value: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value in its wire form ({"S": ...}, {"N": ...}, ...)."""
    [(kind, data)] = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = sum(ch.isdigit() for ch in str(data))
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(data)) if isinstance(data, str) else len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in data)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(member) for name, member in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """Attribute names and values, as DynamoDB sizes an item."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def section_of(key_value: str) -> str:
    """The section code of a Records partition key (`clinic#S#12`, `clinic#RID`); "" for other keys."""
    parts = key_value.split("#")
    return parts[1] if len(parts) > 1 else ""


@dataclass
class Tally:
    """Units and items of one (table, section, kind) where kind is read, write or delete."""

    items: int = 0
    units: float = 0.0
    calls: int = 0


@dataclass
class Units:
    """Counts what each DynamoDB call reads and writes, and every call of every service."""

    records_table: str
    sizes: Mapping[str, float] = field(default_factory=dict)  # section code -> average item size
    tallies: dict[tuple[str, str, str], Tally] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    active: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the handlers ---------------------------------------------------------------------------------

    def before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        with self.lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1
        if model.service_model.service_name == "dynamodb":
            # The call's own parameters, named and typed as its JSON body is: parsing the serialized body
            # again cost a second of CPU in the big clinic's writers' threads, inside the measured time.
            context["bench_params"] = params

    def after(self, model: Any, parsed: Mapping[str, Any], context: Mapping[str, Any], **_: Any) -> None:
        body = context.get("bench_params")
        if not self.active or body is None or "Error" in parsed:
            return
        with self.lock:
            self._count(model.name, body, parsed)

    # -- counting ---------------------------------------------------------------------------------------

    def _add(self, table: str, section: str, kind: str, items: int, units: float) -> None:
        tally = self.tallies.setdefault((table, section, kind), Tally())
        tally.items += items
        tally.units += units
        tally.calls += 1

    def _full_size(self, table: str, section: str, item: Mapping[str, Any], projected: bool) -> float:
        if table == self.records_table and projected and section in self.sizes:
            return self.sizes[section]
        return item_size(item)

    def _read_section(self, table: str, body: Mapping[str, Any], items: list[Mapping[str, Any]]) -> str:
        if table != self.records_table:
            return ""
        if items and "pk" in items[0]:
            return section_of(items[0]["pk"]["S"])
        for value in body.get("ExpressionAttributeValues", {}).values():
            if "S" in value and "#" in value["S"]:
                return section_of(value["S"])
        return ""

    def _count(self, operation: str, body: Mapping[str, Any], parsed: Mapping[str, Any]) -> None:
        if operation in ("Query", "Scan"):
            table, items = body["TableName"], list(parsed.get("Items", []))
            section = self._read_section(table, body, items)
            projected = "ProjectionExpression" in body or "AttributesToGet" in body
            size = sum(self._full_size(table, section, item, projected) for item in items)
            factor = 1.0 if body.get("ConsistentRead") and "IndexName" not in body else 0.5
            scanned = int(parsed.get("ScannedCount", len(items)))
            self._add(table, section, "read", scanned, factor * max(1, math.ceil(size / READ_UNIT)))
        elif operation == "GetItem":
            table, item = body["TableName"], parsed.get("Item")
            section = section_of(next(iter(body["Key"].values())).get("S", "")) if table == self.records_table else ""
            factor = 1.0 if body.get("ConsistentRead") else 0.5
            size = self._full_size(table, section, item, "ProjectionExpression" in body) if item else 0
            self._add(table, section, "read", 1 if item else 0, factor * max(1, math.ceil(size / READ_UNIT)))
        elif operation == "BatchGetItem":
            for table, found in parsed.get("Responses", {}).items():
                asked = body["RequestItems"][table]
                factor = 1.0 if asked.get("ConsistentRead") else 0.5
                projected = "ProjectionExpression" in asked
                by_section: dict[str, list[float]] = {}
                for item in found:
                    key = asked["Keys"][0] if "pk" not in item else item
                    section = section_of(key["pk"]["S"]) if table == self.records_table and "pk" in key else ""
                    size = self._full_size(table, section, item, projected)
                    by_section.setdefault(section, []).append(factor * max(1, math.ceil(size / READ_UNIT)))
                for section, units in by_section.items():
                    self._add(table, section, "read", len(units), sum(units))
        elif operation == "BatchWriteItem":
            left = parsed.get("UnprocessedItems", {})
            for table, requests in body["RequestItems"].items():
                done = len(requests) - len(left.get(table, []))
                for request in requests[:done]:  # the unprocessed ones come back whole; their count is enough
                    self._write(table, request, transactional=False)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            kind = {"PutItem": "PutRequest", "UpdateItem": "Update", "DeleteItem": "DeleteRequest"}[operation]
            self._write(body["TableName"], {kind: body}, transactional=False)
        elif operation == "TransactWriteItems":
            for entry in body["TransactItems"]:
                [(kind, request)] = entry.items()
                self._write(request["TableName"], {kind: request}, transactional=True)

    def _write(self, table: str, request: Mapping[str, Any], transactional: bool) -> None:
        factor = 2.0 if transactional else 1.0
        [(kind, data)] = request.items()
        if kind in ("PutRequest", "Put"):
            item = data["Item"]
            section = section_of(item["pk"]["S"]) if table == self.records_table and "pk" in item else ""
            self._add(table, section, "write", 1, factor * max(1, math.ceil(item_size(item) / WRITE_UNIT)))
        elif kind in ("DeleteRequest", "Delete"):
            key = data["Key"]
            section = section_of(key["pk"]["S"]) if table == self.records_table and "pk" in key else ""
            size = self.sizes.get(section, item_size(key))
            self._add(table, section, "delete", 1, factor * max(1, math.ceil(size / WRITE_UNIT)))
        elif kind == "Update":
            size = item_size(data["Key"]) + item_size(data.get("ExpressionAttributeValues", {}))
            self._add(table, "", "write", 1, factor * max(1, math.ceil(size / WRITE_UNIT)))
        elif kind == "ConditionCheck":
            self._add(table, "", "read", 0, factor)  # a condition check is a transactional read of the item

    # -- what was counted -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.tallies.clear()
            self.calls.clear()

    def summary(self) -> dict[str, Any]:
        """JSON-ready: every tally as [table, section, kind, items, units, calls], and the call counts."""
        with self.lock:
            rows = [[*key, t.items, t.units, t.calls] for key, t in sorted(self.tallies.items())]
            return {"tallies": rows, "calls": dict(self.calls)}


@dataclass(frozen=True)
class Cost:
    """What something costs, from a Units summary: read and write units, items read, S3 PUTs, SQS sends."""

    rru: float = 0.0
    wru: float = 0.0
    items_read: float = 0.0
    s3_puts: float = 0.0
    sqs_sends: float = 0.0

    @staticmethod
    def of(
        summary: Mapping[str, Any],
        records_table: str = "",
        sections: frozenset[str] | None = None,
        kinds: frozenset[str] = frozenset({"read", "write", "delete"}),
    ) -> Cost:
        """The summary's units; with `sections`, only the Records items of those section codes (no other
        table's, no S3 or SQS): the part of an import that is about those sections."""
        rru = wru = items = 0.0
        for table, section, kind, count, units, _ in summary["tallies"]:
            if kind not in kinds or (sections is not None and (table != records_table or section not in sections)):
                continue
            if kind == "read":
                rru += units
                items += count
            else:
                wru += units
        calls = summary["calls"] if sections is None else {}
        return Cost(rru, wru, items, calls.get("s3.PutObject", 0), calls.get("sqs.SendMessage", 0))

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.rru + other.rru,
            self.wru + other.wru,
            self.items_read + other.items_read,
            self.s3_puts + other.s3_puts,
            self.sqs_sends + other.sqs_sends,
        )

    def __sub__(self, other: Cost) -> Cost:
        return self + other * -1.0

    def __mul__(self, times: float) -> Cost:
        return Cost(
            self.rru * times, self.wru * times, self.items_read * times, self.s3_puts * times, self.sqs_sends * times
        )
