"""Two places where moto's cost grows with the whole table, where DynamoDB's does not; patched for the
local store (`make run`, `make bench`) so it keeps the performance shape of the real one. Results
are unchanged: moto's own query and transaction code runs, on the same items.

moto answers every query by sorting the whole table (O(n log n) per call): with 100,000 items one
query takes seconds, where DynamoDB reads one partition. Base-table queries are narrowed to their
partition, in the same (range key) order."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from moto.dynamodb.models.table import Table

_partition = threading.local()
_query = Table.query
_all_items = Table.all_items
_signature = inspect.signature(_query)


def _partition_items(self: Table) -> list[Any]:
    wanted = getattr(_partition, "key", None)
    if wanted is not None and wanted[0] is self and self.range_key_attr:
        return sorted(self.items.get(wanted[1], {}).values(), key=lambda item: item.range_key)
    return _all_items(self)


def _partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    call = _signature.bind(self, *args, **kwargs)
    hash_key, index_name = call.arguments.get("hash_key"), call.arguments.get("index_name")
    if hash_key is None or index_name is not None:
        return _query(self, *args, **kwargs)
    _partition.key = (self, hash_key)
    try:
        return _query(self, *args, **kwargs)
    finally:
        _partition.key = None


def install() -> None:
    Table.query = _partition_query  # type: ignore[method-assign]
    Table.all_items = _partition_items  # type: ignore[method-assign]
    install_lean_transactions()


# moto backs up a transaction by deep-copying the whole table once per item of the transaction: with
# 10^5 items in a table, one 90-item transaction takes minutes. The stand-in below keeps moto's own
# transaction code and backs up only the items the transaction names, restoring them if it fails.

import copy as _copy  # noqa: E402 - grouped with what it serves

import moto.dynamodb.models as _dynamodb  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402


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
