"""Orders: reading them, applying an MIS change under optimistic concurrency, the export window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.transactions import TransactWrite

from mediexchange.records import Order, OrderStatus
from mediexchange.slots import Interval
from mediexchange.store import holds
from mediexchange.store.models import OrderModel

# Fields an MIS may change; patient fields are never taken from an MIS.
MIS_FIELDS = ("status", "reception", "duration", "mw_resource_id", "resource_id", "resource_name", "last_changed")


def to_order(model: OrderModel) -> Order:
    return Order(
        id=int(model.order_id),
        status=OrderStatus(int(model.status)),
        order_date=dt.date.fromisoformat(model.order_date),
        resource_id=int(model.resource_id),
        mw_resource_id=int(model.mw_resource_id),
        resource_name=model.resource_name,
        reception=dt.datetime.fromisoformat(model.reception),
        duration=int(model.duration),
        last_changed=int(model.last_changed),
        user_id=model.user_id,
        user_name=model.user_name,
        name1=model.name1,
        name2=model.name2,
        name3=model.name3,
        aim=model.aim,
        phone=model.phone,
        city=model.city,
        address=model.address,
        email=model.email,
        comment=model.comment,
    )


def to_model(clinic_id: str, order: Order) -> OrderModel:
    return OrderModel(
        clinic_id,
        order.id,
        status=order.status.value,
        order_date=order.order_date.isoformat(),
        resource_id=order.resource_id,
        mw_resource_id=order.mw_resource_id,
        resource_name=order.resource_name,
        reception=order.reception.isoformat(),
        duration=order.duration,
        last_changed=order.last_changed,
        user_id=order.user_id,
        user_name=order.user_name,
        name1=order.name1,
        name2=order.name2,
        name3=order.name3,
        aim=order.aim,
        phone=order.phone,
        city=order.city,
        address=order.address,
        email=order.email,
        comment=order.comment,
    )


def save_new_order(
    clinic_id: str, order: Order, tz: ZoneInfo, check: Callable[[dict[int, Interval]], None] | None = None
) -> None:
    """Store a new order together with the time it holds; `check` may refuse (see holds.commit)."""
    model = to_model(clinic_id, order)
    new = OrderModel.order_id.does_not_exist()
    holds.commit(clinic_id, None, holds.hold_of(order, tz), lambda t: t.save(model, condition=new), check)


def get_order(clinic_id: str, order_id: int) -> Order | None:
    try:
        return to_order(OrderModel.get(clinic_id, order_id, consistent_read=True))
    except DoesNotExist:
        return None


def get_orders(clinic_id: str, order_ids: Iterable[int]) -> dict[int, Order]:
    keys = [(clinic_id, order_id) for order_id in set(order_ids)]
    return {int(m.order_id): to_order(m) for m in OrderModel.batch_get(keys, consistent_read=True)}


def apply_change(
    clinic_id: str,
    before: Order,
    after: Order,
    tz: ZoneInfo,
    check: Callable[[dict[int, Interval]], None] | None = None,
) -> bool:
    """Write an MIS change, moving or freeing the time the order holds, unless the order changed
    since `before` was read (then False)."""
    model = to_model(clinic_id, after)
    actions = [getattr(OrderModel, name).set(getattr(model, name)) for name in MIS_FIELDS]
    unchanged = OrderModel.last_changed == before.last_changed
    old, new = holds.hold_of(before, tz), holds.hold_of(after, tz)
    try:
        if old == new:
            model.update(actions=actions, condition=unchanged)
        else:

            def update(transaction: TransactWrite) -> None:
                transaction.update(model, actions=actions, condition=unchanged)

            holds.commit(clinic_id, old, new, update, check)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    except holds.OrderChanged:
        return False
    return True


def changed_between(clinic_id: str, start: int, end: int | None) -> Iterator[Order]:
    """The clinic's orders whose last change lies in [start, end], oldest change first."""
    condition = OrderModel.last_changed >= start if end is None else OrderModel.last_changed.between(start, end)
    models = OrderModel.by_last_changed.query(clinic_id, condition)
    for model in models:
        yield to_order(model)
