"""The import use case: one MediExchange document applied to one clinic, all or nothing."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from mediexchange.config import settings
from mediexchange.errors import (
    ImportInProgress,
    MissingClientKey,
    NotFound,
    ServiceError,
    StoreUnavailable,
    UnknownClientKey,
)
from mediexchange.protocol import writing
from mediexchange.protocol.reading import by_line, client_key_of, read_document
from mediexchange.protocol.writing import DATETIME, error_result, import_result, serialize
from mediexchange.protocol.xmlparse import parse_document
from mediexchange.records import (
    Appointment,
    Clinic,
    Document,
    ImportReport,
    Issue,
    Order,
    OrderChange,
    OrdersReport,
    Resource,
    SectionReport,
    SyncMode,
)
from mediexchange.slots import Interval, local_interval
from mediexchange.store import clinics, holds, imports, orders
from mediexchange.store.batch import write_all
from mediexchange.store.models import RecordModel
from mediexchange.store.records import (
    Desired,
    Kind,
    SyncedRecord,
    assign_portal_ids,
    delete_item,
    desired,
    put_item,
    resource_identities,
    stored_hashes,
    stored_hashes_of,
    stored_records,
)
from mediexchange.sync import OrderOutcome, decide_order_change, plan_sync, reference_warnings
from mediexchange.timeutil import from_epoch, to_epoch, zone

logger = Logger(service="mediexchange")


def new_import_id(now: float) -> str:
    """Sortable by time, unique without coordination."""
    return f"{dt.datetime.fromtimestamp(now, dt.UTC):%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}"


def authenticate(client_key: str) -> Clinic:
    clinic = clinics.clinic_for_key(client_key)
    if clinic is None:
        raise UnknownClientKey()
    return clinic


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a document at once: applied (200, with its report) or accepted for later (202)."""

    clinic: Clinic
    import_id: str
    report: ImportReport | None

    @property
    def status(self) -> int:
        return 200 if self.report is not None else 202


def receive_document(data: bytes, charset: str | None = None) -> Received:
    """Validate the whole document and apply it under the clinic's lease, or, if its writes would not
    finish within the request's time budget, keep it for the worker. Every step is logged for status.php."""
    root = parse_document(data, charset)
    clinic = authenticate(client_key_of(root))
    now = time.time()
    import_id = new_import_id(now)
    imports.receive(clinic.clinic_id, import_id, data, charset, now)
    with logged(clinic.clinic_id, import_id):
        document = read_document(root, zone(clinic.timezone))
        del root  # the tree is several times the document's size; from here on the records are enough
        report = run_import(clinic, document, import_id, deadline=now + settings.import_time_budget)
        if report is None:
            imports.enqueue(clinic.clinic_id, import_id)
        else:
            imports.finish(clinic.clinic_id, import_id, 200, serialize(import_result(report)))
    return Received(clinic, import_id, report)


def finish_received(clinic_id: str, import_id: str, last_try: bool = False) -> ImportReport | None:
    """The worker's part: apply a document accepted with 202. Safe to repeat (a finished one is skipped).

    A failure leaves the import running for the queue to retry, except on the `last_try`, when the
    import log records it as failed (the clinic sends the document again).
    """
    entry = imports.get(clinic_id, import_id)
    clinic = clinics.get_clinic(clinic_id)
    if entry is None or entry.state != imports.RUNNING or clinic is None:
        return None
    data, charset = imports.document(clinic_id, import_id)
    with logged(clinic_id, import_id, final=last_try):
        document = read_document(parse_document(data, charset), zone(clinic.timezone))
        report = run_import(clinic, document, import_id, deadline=None)
        if report is not None:
            imports.finish(clinic_id, import_id, 200, serialize(import_result(report)))
    return report


def run_import(clinic: Clinic, document: Document, import_id: str, deadline: float | None) -> ImportReport | None:
    """Apply a document under the clinic's lease; None if it would not finish by `deadline`."""
    clinics.acquire_import_lease(clinic.clinic_id, import_id, settings.import_lease_seconds)
    try:
        importer = Importer(clinic, document, import_id)
        importer.plan_all()
        estimate = importer.estimated_seconds()
        deferred = deadline is not None and estimate > 0 and time.time() + estimate > deadline
        planned = {"writes": len(importer.writes), "deletes": len(importer.deletes), "estimate_s": round(estimate, 2)}
        logger.info("import planned", extra={**planned, "deferred": deferred})
        if deferred:
            return None
        return importer.apply()
    finally:
        clinics.release_import_lease(clinic.clinic_id, import_id)


def import_status(params: Mapping[str, str]) -> bytes:
    """status.php: the clinic's recent imports, or one of them, with their answers once finished."""
    client_key = params.get("client_key", "").strip()
    if not client_key:
        raise MissingClientKey("the client_key parameter is required")
    clinic = authenticate(client_key)
    tz = zone(clinic.timezone)
    wanted = params.get("import_id", "").strip()
    if wanted:
        entry = imports.get(clinic.clinic_id, wanted)
        if entry is None:
            raise NotFound(f"no import {wanted} for this clinic")
        entries = [entry]
    else:
        entries = imports.recent(clinic.clinic_id)
    rows = [(e.import_id, from_epoch(e.received_at, tz).strftime(DATETIME), e.state, e.result) for e in entries]
    return serialize(writing.import_status(rows))


@contextmanager
def logged(clinic_id: str, import_id: str, final: bool = True) -> Iterator[None]:
    """Record how an import ended in the import log, whatever happened; the log never hides the error.

    With `final` false (the worker, which will be retried) passing failures leave the import running.
    """
    try:
        yield
    except ServiceError as exc:
        if final or not isinstance(exc, ImportInProgress | StoreUnavailable):
            _finish(clinic_id, import_id, exc.status, serialize(error_result("ImportResult", exc.code, exc.issues)))
        raise
    except Exception:
        if final:
            message = "internal error; the document is kept, send it again or ask support"
            _finish(
                clinic_id, import_id, 500, serialize(error_result("ImportResult", "internal", [Issue("", message)]))
            )
        raise


def _finish(clinic_id: str, import_id: str, status: int, result: bytes) -> None:
    try:
        imports.finish(clinic_id, import_id, status, result)
    except Exception:
        logger.warning("import log not updated", extra={"clinic_id": clinic_id, "import_id": import_id})


@dataclass
class Importer:
    clinic: Clinic
    document: Document
    import_id: str
    writes: list[tuple[Kind, Desired]] = field(default_factory=list)
    deletes: list[tuple[Kind, str]] = field(default_factory=list)
    stored_keys: dict[Kind, set[str]] = field(default_factory=dict)
    written_appointments: list[Appointment] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    reports: dict[Kind, SectionReport | None] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.clinic.timezone)

    def plan_all(self) -> None:
        doc = self.document
        self.reports = {
            Kind.GROUPS: self.plan(Kind.GROUPS, doc.groups, replace_all=True),
            Kind.RESOURCES: self.plan(Kind.RESOURCES, doc.resources, replace_all=True),
            Kind.SCHEDULES: self.plan(Kind.SCHEDULES, doc.schedules, replace_all=True),
            Kind.APPOINTMENTS: self.plan(
                Kind.APPOINTMENTS, doc.appointments, replace_all=doc.sync_mode is SyncMode.FULL
            ),
        }
        self.warnings += self.reference_warnings()

    def estimated_seconds(self) -> float:
        # An order change is a few single-item writes, about as dear as a batch of 25 items.
        work = len(self.writes) + len(self.deletes) + 25 * len(self.document.orders or ())
        return work / settings.write_items_per_second

    def apply(self) -> ImportReport:
        """Write what the plan found changed, then order changes, then deletes (see plan_all)."""
        doc = self.document
        # Writes before deletes: a crash in between leaves more than before, never less,
        # and sending the document again converges.
        self.write_new_identities()
        clinic_id, table = self.clinic.clinic_id, RecordModel.Meta.table_name
        # Items are made as the batches go out: a big clinic's 10^5 items never sit in memory at once.
        write_all(table, (put_item(clinic_id, kind, wanted) for kind, wanted in self.writes))
        orders_report = self.apply_order_changes(doc.orders) if doc.orders is not None else None
        write_all(table, (delete_item(clinic_id, kind, key) for kind, key in self.deletes))
        if clinics.has_orders(self.clinic.clinic_id):  # no order ever booked, no held time to overlap
            self.warnings += appointment_overlaps(self.clinic.clinic_id, self.written_appointments, self.tz)
        warnings = tuple(sorted((*doc.warnings, *self.warnings), key=by_line))
        r = self.reports
        return ImportReport(
            self.import_id,
            r[Kind.GROUPS],
            r[Kind.RESOURCES],
            r[Kind.SCHEDULES],
            r[Kind.APPOINTMENTS],
            doc.sync_mode,
            orders_report,
            warnings,
        )

    def plan(self, kind: Kind, records: Sequence[SyncedRecord] | None, replace_all: bool) -> SectionReport | None:
        if records is None:
            return None
        clinic_id = self.clinic.clinic_id
        wanted = desired(records)
        # Replacing needs every stored key; adding and updating needs only those of the records sent.
        stored = stored_hashes(clinic_id, kind) if replace_all else stored_hashes_of(clinic_id, kind, wanted)
        if replace_all:
            self.stored_keys[kind] = set(stored)
        plan = plan_sync({key: w.digest for key, w in wanted.items()}, stored, replace_all)
        self.writes += [(kind, wanted[key]) for key in plan.writes]
        self.deletes += [(kind, key) for key in plan.deletes]
        self.written_appointments += [r for key in plan.writes if isinstance(r := wanted[key].record, Appointment)]
        return SectionReport(len(records), len(plan.writes), len(plan.deletes))

    def known_ids(self, kind: Kind, sent: Sequence[SyncedRecord] | None) -> set[int]:
        """Ids the clinic has once this import is done."""
        if sent is not None:
            return {int(r.id) for r in sent}
        if kind not in self.stored_keys:
            self.stored_keys[kind] = set(stored_hashes(self.clinic.clinic_id, kind))
        return {int(key) for key in self.stored_keys[kind]}

    def reference_warnings(self) -> list[Issue]:
        doc = self.document
        groups = self.known_ids(Kind.GROUPS, doc.groups) if doc.resources else set()
        needs_resources = bool(doc.schedules or doc.appointments)
        resources = self.known_ids(Kind.RESOURCES, doc.resources) if needs_resources else set()
        return reference_warnings(doc, groups, resources)

    def write_new_identities(self) -> None:
        """Give every resource seen for the first time its stable portal id."""
        if self.document.resources:
            known = resource_identities(self.clinic.clinic_id)
            new = [r.id for r in self.document.resources if r.id not in known]  # in the document's order
            assign_portal_ids(self.clinic.clinic_id, new)

    def apply_order_changes(self, changes: Sequence[OrderChange]) -> OrdersReport:
        clinic_id, tz = self.clinic.clinic_id, self.tz
        stored = orders.get_orders(clinic_id, [c.id for c in changes])
        outcomes: dict[OrderOutcome, list[int]] = {outcome: [] for outcome in OrderOutcome}
        for change in changes:
            before = stored.get(change.id)
            outcome, after = decide_order_change(before, change, to_epoch(change.last_changed, tz), int(time.time()))
            if outcome is OrderOutcome.UPDATED and before and after:
                outcome = self.apply_order_change(change, before, after)
            outcomes[outcome].append(change.id)
        return OrdersReport(
            received=len(changes),
            updated=tuple(outcomes[OrderOutcome.UPDATED]),
            unchanged=tuple(outcomes[OrderOutcome.UNCHANGED]),
            conflicts=tuple(outcomes[OrderOutcome.CONFLICT]),
            unknown=tuple(outcomes[OrderOutcome.UNKNOWN]),
        )

    def apply_order_change(self, change: OrderChange, before: Order, after: Order) -> OrderOutcome:
        if after.mw_resource_id != before.mw_resource_id:
            after = self.on_resource(after)
        overlaps: list[Issue] = []

        def note_overlaps(around: dict[int, Interval]) -> None:
            # The MIS's word wins for its own schedule: the move applies and the clinic is told.
            overlaps[:] = [
                order_overlap(after, other, change.line, self.tz) for other in overlapping(after, around, self.tz)
            ]

        if not orders.apply_change(self.clinic.clinic_id, before, after, self.tz, note_overlaps):
            # The portal changed the order after we read it: the MIS's change is stale.
            return OrderOutcome.CONFLICT
        self.warnings += overlaps
        return OrderOutcome.UPDATED

    def on_resource(self, order: Order) -> Order:
        """An order the MIS moved to another resource takes that resource's portal id and name."""
        clinic_id = self.clinic.clinic_id
        portal_id = resource_identities(clinic_id).get(order.mw_resource_id, order.resource_id)
        names = {r.id: r.name for r in stored_records(clinic_id, Kind.RESOURCES) if isinstance(r, Resource)}
        return replace(order, resource_id=portal_id, resource_name=names.get(order.mw_resource_id, order.resource_name))


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


def appointment_overlaps(clinic_id: str, appointments: Sequence[Appointment], tz: ZoneInfo) -> list[Issue]:
    """A warning for every new or changed appointment on time a portal order holds: a double booking."""
    if not appointments:
        return []
    by_resource: dict[int, list[Appointment]] = {}
    for appointment in appointments:
        by_resource.setdefault(appointment.resource_id, []).append(appointment)

    def of_resource(resource_id: int, booked: list[Appointment]) -> list[Issue]:
        days = [a.start.date() for a in booked]
        held = holds.held(clinic_id, resource_id, min(days), max(days))
        found = []
        for appointment in booked:
            busy = local_interval(appointment.start, appointment.duration, tz)
            for order_id, interval in sorted(held.items()):
                if busy.overlaps(interval):
                    message = (
                        f"appointment {appointment.key} ({describe(busy, tz)}) overlaps portal order {order_id} "
                        f"({describe(interval, tz)}) on resource {resource_id}"
                    )
                    found.append(Issue("overlaps_order", message, appointment.line, "Appointments", appointment.key))
        return found

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [issue for issues in pool.map(lambda item: of_resource(*item), by_resource.items()) for issue in issues]
