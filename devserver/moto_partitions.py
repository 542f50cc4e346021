"""moto answers every query by sorting the whole table (O(n log n) per call): with 100,000 items one
query takes seconds, where DynamoDB reads one partition. This narrows base-table queries to their
partition, as DynamoDB does, so the local store keeps the performance shape of the real one. Results
are unchanged: the same items, in the same (range key) order, through moto's own query code."""

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
