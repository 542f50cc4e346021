"""What happened to an order, for the console: one event per write of the order (booked by the portal,
changed by the MIS), put in the same transaction as the write itself, and one item per export call of
a clinic. That an order was exported is derived from the two, so an export of 20,000 orders writes one
item, not 20,000.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mediexchange.records import Order, OrderStatus
from mediexchange.store.backend import Backend, guarded
from mediexchange.store.models import HistoryModel
from mediexchange.timeutil import from_local_text, local_text

BOOKED, CHANGED, EXPORTED = "booked", "changed", "exported"
PORTAL, MIS = "portal", "mis"
PAGE = 25  # export calls read at a time: the first one after a change is nearly always the one


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """The order as one event left it (an export: the version the MIS was sent)."""

    at: float  # unix seconds
    kind: str  # booked | changed | exported
    by: str  # portal (booked) | mis (changed by an import; exported: fetched by the MIS)
    status: OrderStatus
    reception: dt.datetime  # local
    duration: int
    resource_name: str
    mw_resource_id: int
    import_id: str | None  # the import that carried an MIS change


@dataclass(frozen=True, slots=True)
class _Version:
    event: OrderEvent
    last_changed: int


@dataclass(frozen=True, slots=True)
class _ExportCall:
    at: float
    start: int
    end: int | None

    def covers(self, last_changed: int) -> bool:
        return self.start <= last_changed and (self.end is None or last_changed <= self.end)


def _sk(at: float) -> str:
    """Sorts by time; the random part keeps two items of one millisecond apart."""
    return f"{round(at * 1000):013d}#{secrets.token_hex(2)}"


def _at(sk: str) -> float:
    return int(sk.partition("#")[0]) / 1000


def _order_pk(clinic_id: str, order_id: int) -> str:
    return f"{clinic_id}#{order_id}"


def _exports_pk(clinic_id: str) -> str:
    return f"{clinic_id}#exports"


@guarded
class History:
    def __init__(self, backend: Backend) -> None:
        self.model = backend.tables.history
        self.retention_days = backend.settings.retention_days

    def order_event(
        self, clinic_id: str, order: Order, kind: str, by: str, at: float, expires_at: int, import_id: str | None = None
    ) -> HistoryModel:
        """The event item of an order write, for the caller to put in the write's own transaction
        (store.orders); it goes when the order goes (`expires_at`)."""
        return self.model(
            _order_pk(clinic_id, order.id),
            _sk(at),
            expires_at=expires_at,
            kind=kind,
            by=by,
            status=order.status.value,
            reception=local_text(order.reception),
            duration=order.duration,
            resource_name=order.resource_name,
            mw_resource_id=order.mw_resource_id,
            last_changed=order.last_changed,
            import_id=import_id,
        )

    def note_export(self, clinic_id: str, start: int, end: int | None, at: float, count: int) -> None:
        """An export call at `at` answered `count` orders changed within [start, end] (end None: open);
        kept for `retention_days`, as the import log is."""
        expires_at = int(at) + self.retention_days * 86400
        self.model(_exports_pk(clinic_id), _sk(at), expires_at=expires_at, start=start, end=end, answered=count).save()

    def of_order(self, clinic_id: str, order_id: int) -> list[OrderEvent]:
        """The order's events, oldest first, with an "exported" event after each version an export call
        carried: the first call at or after the version (and before the next one) whose window covers it."""
        versions = [_version(m) for m in self.model.query(_order_pk(clinic_id, order_id), consistent_read=True)]
        events: list[OrderEvent] = []
        for n, version in enumerate(versions):
            events.append(version.event)
            following = versions[n + 1].event.at if n + 1 < len(versions) else None
            calls = self._export_calls(clinic_id, version.event.at, following)
            call = next((c for c in calls if c.covers(version.last_changed)), None)
            if call is not None:
                events.append(replace(version.event, at=call.at, kind=EXPORTED, by=MIS, import_id=None))
        return events

    def _export_calls(self, clinic_id: str, since: float, until: float | None) -> Iterable[_ExportCall]:
        """The clinic's export calls from `since` to before `until`, oldest first, a page at a time as asked."""
        sk = self.model.sk
        low = f"{round(since * 1000):013d}"
        condition = sk >= low if until is None else sk.between(low, f"{round(until * 1000):013d}")
        for m in self.model.query(_exports_pk(clinic_id), condition, page_size=PAGE):
            yield _ExportCall(_at(m.sk), int(m.start), int(m.end) if m.end is not None else None)


def _version(model: HistoryModel) -> _Version:
    event = OrderEvent(
        _at(model.sk),
        str(model.kind),
        str(model.by),
        OrderStatus(int(model.status)),
        from_local_text(str(model.reception)),
        int(model.duration),
        str(model.resource_name),
        int(model.mw_resource_id),
        model.import_id,
    )
    return _Version(event, int(model.last_changed))
