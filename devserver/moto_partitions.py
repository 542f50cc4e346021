"""Where moto's cost grows with the whole table, where DynamoDB's does not, and where it is slow per item;
patched for the local store (`make run`, `make bench`) so it keeps the performance shape of the real
one. Results are unchanged: moto's own query and transaction code runs, on the same items.

moto answers every query by sorting the whole table (O(n log n) per call): with 100,000 items one
query takes seconds, where DynamoDB reads one partition. Base-table queries are narrowed to their
partition, in the same (range key) order; queries of an index partitioned as its table (the orders'
by_last_changed) to what their page can hold, since moto walks the whole partition for every page:
the 12 pages of an export of 20,000 orders took 13 s. A base-table query with a range of its sort key
(one leaf of an import's digests) is narrowed to that range before it is sorted. Transactions and Query
answers: see below."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

_partition = threading.local()
_query = Table.query
_all_items = Table.all_items
_signature = inspect.signature(_query)


def _partition_items(self: Table) -> list[Any]:
    wanted = getattr(_partition, "key", None)
    if wanted is None or wanted[0] is not self or not self.range_key_attr:
        return _all_items(self)
    _, hash_key, past = wanted[:3]
    items = self.items.get(hash_key, {}).values()
    if past is None:  # a base-table query: the partition, in range key order as moto's own
        comparison, bounds = wanted[3] if len(wanted) > 3 else (None, [])
        if comparison == "BETWEEN" and bounds and all(bound.type == "S" for bound in bounds):
            # The key condition's range first (moto applies it again to what is returned): a query of a
            # few items of a big partition (one leaf of digests) sorts those, not the partition. Strings
            # compare as moto compares them (by code point, which is UTF-8's byte order).
            first, last = bounds[0].value, bounds[1].value
            items = [
                i
                for i in items
                if i.range_key is not None and i.range_key.type == "S" and first <= i.range_key.value <= last
            ]
        return sorted(items, key=lambda item: item.range_key)
    # An index query: what moto's page needs of the partition. The index's items (those with its range
    # attribute) the key condition matches, from the page's start key on in the index's order, as far as
    # one page goes (past moto's 1 MB, and every item tied with the last): moto would otherwise walk the
    # whole partition on every page, quadratic in the pages of a long query. moto still picks the page.
    name, comparison, bounds, start, forward = past
    first = None if start is None else start.cast_value
    keyed = []
    for item in items:
        value = item.attrs.get(name)
        if value is None:
            continue  # not in the index
        key = value.cast_value
        if first is None or (key >= first if forward else key <= first):
            keyed.append((key, value, item))
    keyed.sort(key=lambda entry: entry[0], reverse=not forward)
    page: list[Any] = []
    size, last = 0, None
    for key, value, item in keyed:
        if last is not None and key != last:
            break  # past moto's 1 MB, with every item tied with the one that passed it
        if comparison is not None and not value.compare(comparison, bounds):
            continue
        page.append(item)
        # Items tied with the start key may lie before it (moto skips them): they count for nothing here.
        size += 0 if key == first else item.size()
        if size > RESULT_SIZE_LIMIT and last is None:
            last = key
    return page


def _index_keys(self: Table, index_name: str) -> tuple[str, str] | None:
    """An index's hash and range attribute, if it has one of each and its hash is the table's."""
    for index in self.all_indexes():
        if index.name == index_name:
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            if hashes == [self.hash_key_attr] and len(ranges) == 1:
                return hashes[0], ranges[0]
    return None


def _partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    call = _signature.bind(self, *args, **kwargs)
    hash_key, index_name = call.arguments.get("hash_key"), call.arguments.get("index_name")
    past = None
    if index_name is not None:
        # An index partitioned as the table is (the orders' by_last_changed) is narrowed the same way.
        keys = _index_keys(self, index_name)
        if keys is None:
            return _query(self, *args, **kwargs)
        conditions = call.arguments.get("range_key_conditions") or []
        if call.arguments.get("filter_kwargs") or len(conditions) > 1:
            return _query(self, *args, **kwargs)
        start = (call.arguments.get("exclusive_start_key") or {}).get(keys[1])
        comparison, bounds = call.arguments.get("range_comparison"), call.arguments.get("range_objs")
        forward = call.arguments.get("scan_index_forward", True)
        past = (keys[1], comparison, bounds, DynamoType(start) if start else None, forward)
    if hash_key is None:
        return _query(self, *args, **kwargs)
    if past is None:
        range_key = (call.arguments.get("range_comparison"), call.arguments.get("range_objs"))
        _partition.key = (self, hash_key, past, range_key)
    else:
        _partition.key = (self, hash_key, past)
    try:
        return _query(self, *args, **kwargs)
    finally:
        _partition.key = None


def install() -> None:
    Table.query = _partition_query  # type: ignore[method-assign]
    Table.all_items = _partition_items  # type: ignore[method-assign]
    install_lean_transactions()
    install_plain_query_answers()


# moto backs up a transaction by deep-copying the whole table once per item of the transaction: with
# 10^5 items in a table, one 90-item transaction takes minutes. The stand-in below keeps moto's own
# transaction code and backs up only the items the transaction names, restoring them if it fails.

import copy as _copy  # noqa: E402 - grouped with what it serves

import moto.dynamodb.models as _dynamodb  # noqa: E402


class _NoTableCopies:
    """The `copy` module as moto's transaction code sees it: tables are not copied (see below)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else _copy.deepcopy(value, memo)


_transact = _dynamodb.DynamoDBBackend.transact_write_items


def _item_key(table: Table, operation: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    key = operation.get("Key") or {
        name: operation["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
    }
    hash_key = DynamoType(key[table.hash_key_attr])
    return hash_key, DynamoType(key[table.range_key_attr]) if table.range_key_attr else None


def _lean_transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
    saved = []
    for entry in transact_items:
        operation = next(iter(entry.values()))
        table = self.tables.get(operation.get("TableName"))
        if table is not None:
            hash_key, range_key = _item_key(table, operation)
            current = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, _copy.deepcopy(current)))
    try:
        _transact(self, transact_items)
    except Exception:
        for table, hash_key, range_key, before in reversed(saved):
            holder = table.items[hash_key] if range_key is not None else table.items
            slot = range_key if range_key is not None else hash_key
            if before is None:
                holder.pop(slot, None)
            else:
                holder[slot] = before
        raise


def install_lean_transactions() -> None:
    setattr(_dynamodb, "copy", _NoTableCopies())  # noqa: B010 - moto imports the module as `copy`
    _dynamodb.DynamoDBBackend.transact_write_items = _lean_transact  # type: ignore[method-assign]


# moto writes every answer through a generic, model-driven serializer that costs about 0.3 ms per
# attribute: a Query answer of 20,000 orders took 30 s to write, where DynamoDB answers in one. A Query's
# answer is plain DynamoDB JSON, so it is written as JSON directly (binary values base64, as on the wire).

import base64 as _base64  # noqa: E402 - grouped with what it serves
import json as _json  # noqa: E402

from moto.dynamodb.responses import DynamoHandler, DynamoResult  # noqa: E402

_handler_query = DynamoHandler.query


def _base64_bytes(value: Any) -> str:
    if isinstance(value, bytes):
        return _base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def _plain_query(self: DynamoHandler) -> Any:
    answer = _handler_query(self)
    return _json.dumps(answer.result, default=_base64_bytes) if isinstance(answer, DynamoResult) else answer


def install_plain_query_answers() -> None:
    DynamoHandler.query = _plain_query  # type: ignore[method-assign]
