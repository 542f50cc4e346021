"""Orders: reading them, booking and changing them together with the time they hold and their history,
the export window, the orders waiting for the MIS, the orders of some days."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from mediexchange.records import ORDER_FIELDS, Codec, Order, OrderStatus
from mediexchange.slots import Interval, local_interval
from mediexchange.store.backend import Backend, guarded
from mediexchange.store.batch import Item, put_request, write_all
from mediexchange.store.history import BOOKED, CHANGED, MIS, PORTAL, History
from mediexchange.store.holds import Check, HoldDays, OrderChanged, hold_of
from mediexchange.store.models import ByReceptionIndex, OrderModel
from mediexchange.timeutil import from_local_text, local_text

STORED = tuple((name, f.codec) for name, f in ORDER_FIELDS if f.stored and name != "id")
MIS_CHANGED = tuple(name for name, f in ORDER_FIELDS if f.mis_changed)
WAITING_COUNTED = 1000  # waiting orders counted one by one; beyond, a clinic's page says "1000+"
T = TypeVar("T")


def _stored(codec: Codec, value: Any) -> Any:
    if codec is Codec.DATE:
        return value.isoformat()
    if codec is Codec.LOCAL_TIME:
        return local_text(value)
    if codec is Codec.STATUS:
        return value.value
    return value


def _status(value: Any) -> OrderStatus:
    return OrderStatus(int(value))


def _as_is(value: Any) -> Any:
    return value


# How a stored value (as a model holds it, or as the text of an item's {"N": ...} or {"S": ...}) is read.
_LOADERS: dict[Codec, Callable[[Any], Any]] = {
    Codec.DATE: dt.date.fromisoformat,
    Codec.LOCAL_TIME: from_local_text,
    Codec.STATUS: _status,
    Codec.INT: int,
    Codec.INSTANT: int,
    Codec.TEXT: _as_is,
}


def _read_ahead(pages: Iterator[T]) -> Iterator[T]:
    """The pages, each next one read while the caller works on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, pages, None)
        while (page := ahead.result()) is not None:
            ahead = pool.submit(next, pages, None)
            yield page


@guarded
class Orders:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.model: type[OrderModel] = backend.tables.orders
        self.holds = HoldDays(backend)
        self.history = History(backend)
        # Each stored field's item attribute type ("N", "S") and what an item lacking it (written before
        # the field existed) reads as: as the model declares them.
        attributes = self.model.get_attributes()
        self._item_fields: tuple[tuple[str, str, Callable[[Any], Any], Any], ...] = tuple(
            (name, attributes[name].attr_type, _LOADERS[codec], attributes[name].default) for name, codec in STORED
        )

    def _to_order(self, model: OrderModel) -> Order:
        values = {name: _LOADERS[codec](getattr(model, name)) for name, codec in STORED}
        return Order(id=int(model.order_id), **values)

    def _from_item(self, item: Item) -> Order:
        """An order from its item as a query's page holds it ({"N": "15"}, {"S": "..."}), without a model
        in between: making 10,000 PynamoDB models cost an export more than reading their items."""
        values = {
            name: default if (stored := item.get(name)) is None else load(stored[kind])
            for name, kind, load, default in self._item_fields
        }
        return Order(id=int(item["order_id"]["N"]), **values)

    def _to_model(self, clinic_id: str, order: Order, tz: ZoneInfo) -> OrderModel:
        values = {name: _stored(codec, getattr(order, name)) for name, codec in STORED}
        # A received order waits for the MIS's decision from the time it was written (see `change`).
        waiting = order.last_changed if order.status is OrderStatus.RECEIVED else None
        return self.model(clinic_id, order.id, expires_at=self._expiry(order, tz), waiting_since=waiting, **values)

    def _expiry(self, order: Order, tz: ZoneInfo) -> int:
        """When the order may go: `order_retention_days` after its visit or its last change, the later."""
        visit_ends = int(local_interval(order.reception, order.duration, tz).end.timestamp())
        return max(visit_ends, order.last_changed) + self.backend.settings.order_retention_days * 86400

    def get(self, clinic_id: str, order_id: int) -> Order | None:
        try:
            return self._to_order(self.model.get(clinic_id, order_id, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, clinic_id: str, order_ids: Iterable[int]) -> dict[int, Order]:
        keys = [(clinic_id, order_id) for order_id in set(order_ids)]
        return {int(m.order_id): self._to_order(m) for m in self.model.batch_get(keys, consistent_read=True)}

    def statuses(self, clinic_id: str, order_ids: Iterable[int]) -> dict[int, OrderStatus]:
        """{order id: status}, reading nothing else of the orders (the board shows hundreds at once)."""
        keys = [(clinic_id, order_id) for order_id in set(order_ids)]
        found = self.model.batch_get(keys, consistent_read=True, attributes_to_get=["order_id", "status"])
        return {int(m.order_id): OrderStatus(int(getattr(m, "status"))) for m in found}  # noqa: B009 - a field made from ORDER_FIELDS, unseen by mypy

    def book(self, clinic_id: str, order: Order, tz: ZoneInfo, check: Check | None = None) -> None:
        """Store a new order together with the time it holds; `check` sees the holds around it and
        may raise to refuse (of concurrent bookings of one slot, exactly one commits)."""
        model = self._to_model(clinic_id, order, tz)
        new = self.model.order_id.does_not_exist()
        event = self.history.order_event(clinic_id, order, BOOKED, PORTAL, time.time(), int(model.expires_at))

        def write(transaction: TransactWrite) -> None:
            transaction.save(model, condition=new)
            transaction.save(event)

        self.holds.commit(clinic_id, None, hold_of(order, tz), write, check)

    def change(
        self,
        clinic_id: str,
        before: Order,
        after: Order,
        tz: ZoneInfo,
        check: Check | None = None,
        import_id: str | None = None,
    ) -> bool:
        """Write an MIS change (carried by `import_id`), moving or freeing the time the order holds,
        unless the order changed since `before` was read (then False)."""
        model = self._to_model(clinic_id, after, tz)
        changed = (*MIS_CHANGED, "expires_at")
        actions: list[Action] = [getattr(self.model, name).set(getattr(model, name)) for name in changed]
        # It waits from its booking until the MIS decides (and anew if the MIS makes it received again).
        if after.status is not OrderStatus.RECEIVED:
            actions.append(self.model.waiting_since.remove())
        elif before.status is not OrderStatus.RECEIVED:
            actions.append(self.model.waiting_since.set(after.last_changed))
        unchanged = self.model.last_changed == before.last_changed
        event = self.history.order_event(clinic_id, after, CHANGED, MIS, time.time(), int(model.expires_at), import_id)

        def update(transaction: TransactWrite) -> None:
            transaction.update(model, actions=actions, condition=unchanged)
            transaction.save(event)

        old, new = hold_of(before, tz), hold_of(after, tz)
        try:
            if old == new:  # the time held stays: the order and its event alone, nothing to check around
                self.holds.commit(clinic_id, None, None, update)
            else:
                self.holds.commit(clinic_id, old, new, update, check)
        except OrderChanged:
            return False
        return True

    def changed_between(self, clinic_id: str, start: int, end: int | None, each: Callable[[Order], object]) -> int:
        """Hand `each` the clinic's orders whose last change lies in [start, end], oldest change first (then
        by id), as they are read: the next page is read while `each` takes this one's. Returns how many."""
        window = "last_changed >= :start" if end is None else "last_changed BETWEEN :start AND :end"
        values = {":clinic": {"S": clinic_id}, ":start": {"N": str(start)}}
        pages = self.backend.dynamodb.get_paginator("query").paginate(
            TableName=self.backend.settings.orders_table,
            IndexName=self.model.by_last_changed.Meta.index_name,
            KeyConditionExpression=f"clinic_id = :clinic AND {window}",
            ExpressionAttributeValues=values if end is None else {**values, ":end": {"N": str(end)}},
        )
        found = (self._from_item(item) for page in _read_ahead(iter(pages)) for item in page["Items"])
        count = 0
        # The index sorts by last change; the orders of one second, perhaps across two pages, go by id.
        for _, same_second in itertools.groupby(found, key=lambda order: order.last_changed):
            for order in sorted(same_second, key=lambda order: order.id):
                each(order)
                count += 1
        return count

    def waiting(self, clinic_id: str) -> tuple[int, int | None]:
        """How many of the clinic's orders wait for the MIS's decision, counted to one past WAITING_COUNTED
        (beyond, the answer is the same: its MIS stopped deciding), and since when the oldest has (unix
        seconds); from the sparse index, its keys only."""
        pages = self.backend.dynamodb.get_paginator("query").paginate(
            TableName=self.backend.settings.orders_table,
            IndexName=self.model.by_waiting.Meta.index_name,
            KeyConditionExpression="clinic_id = :clinic",
            ExpressionAttributeValues={":clinic": {"S": clinic_id}},
            ProjectionExpression="waiting_since",
            PaginationConfig={"MaxItems": WAITING_COUNTED + 1, "PageSize": WAITING_COUNTED + 1},
        )
        count, oldest = 0, None
        for page in pages:
            items = page["Items"]
            if items and oldest is None:
                oldest = int(items[0]["waiting_since"]["N"])  # the index sorts by it
            count += len(items)
        return count, oldest

    def on_days(self, clinic_id: str, first: dt.date, last: dt.date) -> list[Order]:
        """The clinic's orders whose visit starts on the local days first..last, by start then id."""
        # Local ISO text: every time of `last` sorts below the bare date of the day after.
        days = ByReceptionIndex.reception.between(first.isoformat(), (last + dt.timedelta(days=1)).isoformat())
        found = [self._to_order(m) for m in self.model.by_reception.query(clinic_id, days)]
        return sorted(found, key=lambda order: (order.reception, order.id))

    def held(self, clinic_id: str, mis_resource_id: int, first_day: dt.date, last_day: dt.date) -> dict[int, Interval]:
        """{order id: interval} of the time orders hold on a resource around the days; strongly consistent."""
        return self.holds.held(clinic_id, mis_resource_id, first_day, last_day)

    def load(self, clinic_id: str, orders: Sequence[Order], tz: ZoneInfo) -> None:
        """Orders made elsewhere (a clinic moving from the original portal, a benchmark's seed), written
        in bulk with their holds, without booking's checks. Their ids must come from the clinic's counter."""
        backend = self.backend
        items = [put_request(self._to_model(clinic_id, order, tz).serialize()) for order in orders]
        write_all(backend.bulk, backend.settings.orders_table, items, backend.settings.store_parallelism, backend.retry)
        self.holds.add_all(clinic_id, [h for h in (hold_of(o, tz) for o in orders) if h])
