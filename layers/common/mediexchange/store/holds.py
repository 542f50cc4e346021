"""Holds: the time orders take on a resource, changed only together with the orders themselves.

A hold lives in the day item of its resource and local start date. Every change rewrites the day
items it touches under their version numbers, in one transaction with the order, so bookings and
MIS changes of one resource and day serialize; the loser reads again and decides again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from mediexchange.records import Order
from mediexchange.slots import Interval, local_interval
from mediexchange.store.backend import Backend, busy
from mediexchange.store.batch import put_request, write_all
from mediexchange.store.models import HoldDayModel
from mediexchange.sync import holds_slot

ONE_DAY = dt.timedelta(days=1)

DayKey = tuple[int, dt.date]  # (MIS resource id, local date)
Check = Callable[[dict[int, Interval]], None]


@dataclass(frozen=True, slots=True)
class Hold:
    order_id: int
    mis_resource_id: int
    day: dt.date  # local date of the start
    interval: Interval

    @property
    def key(self) -> DayKey:
        return self.mis_resource_id, self.day

    def stored(self) -> list[int]:
        """As the day item keeps it: [start, end] in unix seconds."""
        return [int(self.interval.start.timestamp()), int(self.interval.end.timestamp())]


def hold_of(order: Order, tz: ZoneInfo) -> Hold | None:
    """The time an order holds: none once rejected."""
    if not holds_slot(order.status):
        return None
    interval = local_interval(order.reception, order.duration, tz)
    return Hold(order.id, order.mw_resource_id, order.reception.date(), interval)


def expiry(day: dt.date, retention_days: int) -> int:
    """When a day's holds may go: `retention_days` after the day is over in every zone (and its
    evening holds past midnight are too)."""
    after = dt.datetime.combine(day + 2 * ONE_DAY, dt.time(), dt.UTC) + dt.timedelta(days=retention_days)
    return int(after.timestamp())


def _partition(clinic_id: str, mis_resource_id: int) -> str:
    return f"{clinic_id}#{mis_resource_id}"


def _intervals(model: HoldDayModel) -> dict[int, Interval]:
    return {
        int(order_id): Interval(dt.datetime.fromtimestamp(start, dt.UTC), dt.datetime.fromtimestamp(end, dt.UTC))
        for order_id, (start, end) in (model.holds or {}).items()
    }


class OrderChanged(Exception):
    """The order's own condition failed: someone changed it after it was read."""


class HoldDays:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.model = backend.tables.holds
        self.retention_days = backend.settings.order_retention_days

    def _read_day(self, clinic_id: str, key: DayKey) -> HoldDayModel:
        partition, day = _partition(clinic_id, key[0]), key[1].isoformat()
        try:
            return self.model.get(partition, day, consistent_read=True)
        except DoesNotExist:
            return self.model(partition, day, holds={}, version=0)

    def held(self, clinic_id: str, mis_resource_id: int, first_day: dt.date, last_day: dt.date) -> dict[int, Interval]:
        """{order id: interval} of every hold that can touch the given days, strongly consistent."""
        # From the day before: a hold that starts late in the evening reaches past midnight.
        condition = self.model.day.between((first_day - ONE_DAY).isoformat(), last_day.isoformat())
        found: dict[int, Interval] = {}
        for model in self.model.query(_partition(clinic_id, mis_resource_id), condition, consistent_read=True):
            found.update(_intervals(model))
        return found

    def commit(
        self,
        clinic_id: str,
        before: Hold | None,
        after: Hold | None,
        write_order: Callable[[TransactWrite], None],
        check: Check | None = None,
    ) -> None:
        """Write an order (by `write_order`, which may add items of its own without conditions) and move
        its hold, atomically.

        `check` sees the other holds around the new one on every attempt and may raise to refuse.
        Raises OrderChanged if the order's own condition failed.
        """
        keys = {h.key for h in (before, after) if h} | (
            {(after.mis_resource_id, after.day - ONE_DAY)} if after else set()
        )
        days = {key: self._read_day(clinic_id, key) for key in keys}
        for _ in range(self.backend.retry.conflict_attempts):
            if after is not None and check is not None:
                around = _intervals(days[(after.mis_resource_id, after.day - ONE_DAY)]) | _intervals(days[after.key])
                around.pop(after.order_id, None)
                check(around)
            seen = {key: int(model.version or 0) for key, model in days.items()}  # before _write_day moves it
            try:
                with TransactWrite(connection=self.backend.transactions()) as transaction:
                    write_order(transaction)
                    for key, model in days.items():
                        self._write_day(transaction, model, key, before, after)
            except TransactWriteError as exc:
                if exc.cause_response_code != "TransactionCanceledException":
                    raise
                # PynamoDB sends the items grouped by kind, not in the order added, so which reason is the
                # order's is not known: if a condition failed while every day is as read, it was the order's.
                failed = any(
                    r is not None and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons or ()
                )
                days = {key: self._read_day(clinic_id, key) for key in keys}
                if failed and all(int(days[key].version or 0) == version for key, version in seen.items()):
                    raise OrderChanged() from None
                continue  # a day changed under us, or another transaction held an item: again
            return
        raise busy()

    def _write_day(
        self, transaction: TransactWrite, model: HoldDayModel, key: DayKey, before: Hold | None, after: Hold | None
    ) -> None:
        """Rewrite the day if its holds change, else only check that it did not change since read."""
        seen = int(model.version or 0)
        unchanged = self.model.version == seen if seen else self.model.version.does_not_exist()
        holds = dict(model.holds or {})
        if before is not None and before.key == key:
            holds.pop(str(before.order_id), None)
        if after is not None and after.key == key:
            holds[str(after.order_id)] = after.stored()
        if holds == (model.holds or {}):
            transaction.condition_check(self.model, model.pk, model.day, condition=unchanged)
        else:
            model.holds, model.version = holds, seen + 1
            model.expires_at = expiry(key[1], self.retention_days)
            transaction.save(model, condition=unchanged)

    def add_all(self, clinic_id: str, holds: list[Hold]) -> None:
        """Holds of orders loaded in bulk (see Orders.load), written without conditions."""
        days: dict[DayKey, dict[str, list[int]]] = {}
        for hold in holds:
            day = days.setdefault(hold.key, {})
            day[str(hold.order_id)] = hold.stored()
        items = [
            put_request(
                self.model(
                    _partition(clinic_id, resource),
                    day.isoformat(),
                    holds=held,
                    version=1,
                    expires_at=expiry(day, self.retention_days),
                ).serialize()
            )
            for (resource, day), held in days.items()
        ]
        settings = self.backend.settings
        write_all(self.backend.bulk, settings.holds_table, items, settings.store_parallelism, self.backend.retry)
