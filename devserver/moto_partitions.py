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
import weakref
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
    _, hash_key, past, other, range_key = wanted
    # The partition: of the table, or of an index whose partition key is another attribute (by_resource).
    items = self.items.get(hash_key, {}).values() if other is None else _grouped(self, other).get(hash_key, ())
    if past is None:  # a base-table query: the partition, in range key order as moto's own
        comparison, bounds = range_key
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
    """An index's hash and range attribute, if it has one of each."""
    for index in self.all_indexes():
        if index.name == index_name:
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            if len(hashes) == 1 and len(ranges) == 1:
                return hashes[0], ranges[0]
    return None


# An index whose partition key is not the table's (the records' by_resource, rk = clinic#resource): moto
# sorts the whole table for each of its queries (5-15 s with the big clinic's 115,000 records; the board
# asks for 25 resources at once). Its items are grouped by that key once per version of the table (every
# put, delete, update or transaction makes a new one), so between writes a query finds its partition by a
# dict lookup; moto's own query code still runs on those items.
_versions: weakref.WeakKeyDictionary[Table, int] = weakref.WeakKeyDictionary()
_groups: weakref.WeakKeyDictionary[Table, tuple[int, str, dict[Any, list[Any]]]] = weakref.WeakKeyDictionary()
_grouping = threading.Lock()


def _changed(table: Table) -> None:
    with _grouping:
        _versions[table] = _versions.get(table, 0) + 1


def _grouped(table: Table, attribute: str) -> dict[Any, list[Any]]:
    with _grouping:
        version = _versions.get(table, 0)
        cached = _groups.get(table)
        if cached is not None and cached[:2] == (version, attribute):
            return cached[2]
        groups: dict[Any, list[Any]] = {}
        for partition in list(table.items.values()):
            for item in list(partition.values()) if isinstance(partition, dict) else [partition]:
                value = item.attrs.get(attribute)
                if value is not None:
                    groups.setdefault(value, []).append(item)
        _groups[table] = (version, attribute, groups)
        return groups


def _partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    call = _signature.bind(self, *args, **kwargs)
    hash_key, index_name = call.arguments.get("hash_key"), call.arguments.get("index_name")
    past, other = None, None
    if index_name is not None:
        # An index partitioned as the table is (the orders' by_last_changed) is narrowed the same way;
        # one partitioned by another attribute is narrowed to its items with that value.
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
        other = keys[0] if keys[0] != self.hash_key_attr else None
    if hash_key is None:
        return _query(self, *args, **kwargs)
    # A base-table query's key condition narrows the partition before it is sorted (see _partition_items).
    range_key = (call.arguments.get("range_comparison"), call.arguments.get("range_objs")) if past is None else None
    _partition.key = (self, hash_key, past, other, range_key)
    try:
        return _query(self, *args, **kwargs)
    finally:
        _partition.key = None


_put_item, _delete_item = Table.put_item, Table.delete_item


def _counted_put(self: Table, *args: Any, **kwargs: Any) -> Any:
    _changed(self)
    return _put_item(self, *args, **kwargs)


def _counted_delete(self: Table, *args: Any, **kwargs: Any) -> Any:
    _changed(self)
    return _delete_item(self, *args, **kwargs)


def install() -> None:
    Table.query = _partition_query  # type: ignore[method-assign]
    Table.all_items = _partition_items  # type: ignore[method-assign]
    Table.put_item = _counted_put  # type: ignore[method-assign]
    Table.delete_item = _counted_delete  # type: ignore[method-assign]
    install_counted_updates()
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
            _changed(table)
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


# An update changes an item in place (the index's partition key among its attributes, maybe).

_update_item = _dynamodb.DynamoDBBackend.update_item


def _counted_update(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
    _changed(self.get_table(table_name))
    return _update_item(self, table_name, *args, **kwargs)


def install_counted_updates() -> None:
    _dynamodb.DynamoDBBackend.update_item = _counted_update  # type: ignore[method-assign]
