"""MIS changes to the orders the portal created (SPEC section 3, Orders), and the double bookings an
import of busy time reveals. Part of the import use case."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from zoneinfo import ZoneInfo

from mediexchange.protocol.sections import ORDERS
from mediexchange.protocol.writing import xml_value
from mediexchange.records import (
    EXPORTED_ORDER_FIELDS,
    Appointment,
    Clinic,
    Issue,
    Order,
    OrderChange,
    OrdersReport,
    OrderStatus,
    Rejected,
)
from mediexchange.slots import Interval, Overlapping, local_interval
from mediexchange.store import Store
from mediexchange.sync import OrderOutcome, decide_order_change
from mediexchange.timeutil import epochs_of, zone

EXPORTED_BY_NAME = {f.xml.lower(): (name, f) for name, f in EXPORTED_ORDER_FIELDS}  # any spelling, lower-cased


@dataclass
class OrderChanges:
    store: Store
    clinic: Clinic
    import_id: str | None = None  # the import carrying the changes, noted in each order's history
    warnings: list[Issue] = field(default_factory=list)
    rejections: list[Issue] = field(default_factory=list)  # changes that cannot apply

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.clinic.timezone)

    @cached_property
    def resources(self) -> dict[int, tuple[int, str]]:
        """{MIS resource id: (portal id, name)} of the clinic's resources, read once, when an order moves."""
        listed = self.store.records.resources_with_ids(self.clinic.clinic_id)
        return {resource.id: (portal_id, resource.name) for portal_id, resource in listed}

    def decide(self, changes: Sequence[OrderChange], read: Rejected, apply: bool) -> OrdersReport:
        """Decide each change, in the order received, against the order as the changes before it left
        it; carry out those that update it unless `apply` is false (a dry run)."""
        clinic_id, tz = self.clinic.clinic_id, self.tz
        stored = self.store.orders.get_many(clinic_id, [c.id for c in changes])
        outcomes: dict[OrderOutcome, list[int]] = {outcome: [] for outcome in OrderOutcome}
        for change in changes:
            before = stored.get(change.id)
            quoted = epochs_of(change.last_changed, tz) if change.last_changed else None
            outcome, after = decide_order_change(before, change, quoted, int(time.time()))
            if before is not None:
                self.warnings += ignored_attributes(change, before, tz)
            if outcome is OrderOutcome.UPDATED and before and after:
                outcome, after = self.moved(change, before, after)
            if outcome is OrderOutcome.UPDATED and before and after:
                outcome = self.write(change, before, after) if apply else outcome
                stored[change.id] = after
            outcomes[outcome].append(change.id)
        return OrdersReport(
            received=read.received,
            rejected=read.count + len(outcomes[OrderOutcome.REJECTED]),
            updated=tuple(outcomes[OrderOutcome.UPDATED]),
            unchanged=tuple(outcomes[OrderOutcome.UNCHANGED]),
            conflicts=tuple(outcomes[OrderOutcome.CONFLICT]),
            unknown=tuple(outcomes[OrderOutcome.UNKNOWN]),
        )

    def moved(self, change: OrderChange, before: Order, after: Order) -> tuple[OrderOutcome, Order]:
        """An order the MIS moved to another resource takes that resource's portal id and name; a move
        to a resource the clinic never sent rejects the change (the order stays as it was)."""
        if after.mw_resource_id == before.mw_resource_id:
            return OrderOutcome.UPDATED, after
        resource = self.resources.get(after.mw_resource_id)
        if resource is None:
            message = (
                f"mw_resource_id {after.mw_resource_id} is not a resource of this clinic; the change is not applied"
            )
            issue = Issue("unknown_resource", message, change.line, ORDERS.name, str(change.id), "mw_resource_id")
            self.rejections.append(issue)
            return OrderOutcome.REJECTED, before
        portal_id, name = resource
        return OrderOutcome.UPDATED, replace(after, resource_id=portal_id, resource_name=name)

    def write(self, change: OrderChange, before: Order, after: Order) -> OrderOutcome:
        overlaps: list[Issue] = []

        def note_overlaps(around: dict[int, Interval]) -> None:
            # The MIS's word wins for its own schedule: the move applies and the clinic is told.
            overlaps[:] = [
                order_overlap(after, other, change.line, self.tz) for other in overlapping(after, around, self.tz)
            ]

        if not self.store.orders.change(self.clinic.clinic_id, before, after, self.tz, note_overlaps, self.import_id):
            # The portal changed the order after we read it: the MIS's change is stale.
            return OrderOutcome.CONFLICT
        self.warnings += overlaps
        return OrderOutcome.UPDATED


def ignored_attributes(change: OrderChange, stored: Order, tz: ZoneInfo) -> list[Issue]:
    """A warning naming the attributes of the export an MIS sent back changed: it cannot change them
    (patient fields, the portal's resource id and name, type, order date), so they are ignored."""
    moved = change.mw_resource_id is not None and change.mw_resource_id != stored.mw_resource_id
    differing = []
    for spelled, value in change.echoed:
        name, order_field = EXPORTED_BY_NAME[spelled.lower()]
        if moved and name in ("resource_id", "resource_name"):
            continue  # they follow the move
        if value != xml_value(order_field.codec, getattr(stored, name), tz).strip():
            differing.append(spelled)
    if not differing:
        return []
    message = f"an MIS cannot change {', '.join(differing)} of an order; ignored"
    return [Issue("ignored_attribute", message, change.line, ORDERS.name, str(change.id), differing[0])]


def describe(interval: Interval, tz: ZoneInfo) -> str:
    start, end = interval.start.astimezone(tz), interval.end.astimezone(tz)
    return f"{start:%d.%m.%Y %H:%M}-{end:%H:%M}"


def overlapping(order: Order, around: dict[int, Interval], tz: ZoneInfo) -> list[int]:
    mine = local_interval(order.reception, order.duration, tz)
    return sorted(order_id for order_id, interval in around.items() if mine.overlaps(interval))


def order_overlap(order: Order, other_id: int, line: int, tz: ZoneInfo) -> Issue:
    mine = describe(local_interval(order.reception, order.duration, tz), tz)
    message = (
        f"order {order.id} moved to {mine} on resource {order.mw_resource_id}, time order {other_id} already holds"
    )
    return Issue("overlaps_order", message, line, "Orders", str(order.id))


Clash = tuple[int, Appointment, Interval, int, Interval]


def double_bookings(store: Store, clinic_id: str, appointments: Sequence[Appointment], tz: ZoneInfo) -> list[Issue]:
    """A warning for every new or changed appointment on time a portal order holds: a double booking."""
    if not appointments:
        return []
    by_resource: dict[int, list[Appointment]] = {}
    for appointment in appointments:
        by_resource.setdefault(appointment.resource_id, []).append(appointment)

    # (resource, appointment, its time, order, the order's time) of each overlap
    def clashes_of(resource_id: int, booked: list[Appointment]) -> list[Clash]:
        days = [a.start.date() for a in booked]
        held = Overlapping(store.orders.held(clinic_id, resource_id, min(days), max(days)))
        return [
            (resource_id, appointment, busy, order_id, interval)
            for appointment in booked
            for busy in [local_interval(appointment.start, appointment.duration, tz)]
            for order_id, interval in held.of(busy)
        ]

    with ThreadPoolExecutor(max_workers=store.settings.store_parallelism) as pool:
        clashes = [clash for found in pool.map(lambda item: clashes_of(*item), by_resource.items()) for clash in found]
    # The MIS's own record of an order it accepted (same resource, start and duration) is the normal
    # confirmation, not a double booking: the statuses of those orders, all resources' at once.
    exact = {order_id for _, _, busy, order_id, interval in clashes if busy == interval}
    statuses = store.orders.statuses(clinic_id, exact) if exact else {}
    return [
        Issue(
            "overlaps_order",
            f"appointment {appointment.key} ({describe(busy, tz)}) overlaps portal order {order_id} "
            f"({describe(interval, tz)}) on resource {resource_id}",
            appointment.line,
            "Appointments",
            appointment.key,
        )
        for resource_id, appointment, busy, order_id, interval in clashes
        if not (busy == interval and statuses.get(order_id) is OrderStatus.ACCEPTED)
    ]
