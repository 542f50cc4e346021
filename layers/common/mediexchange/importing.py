"""The import use case: one MediExchange document applied to one clinic, all or nothing."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mediexchange.config import settings
from mediexchange.errors import UnknownClientKey
from mediexchange.protocol.reading import client_key_of, read_document
from mediexchange.protocol.xmlparse import parse_document
from mediexchange.records import Clinic, Document, ImportReport, Issue, OrdersReport, SectionReport, SyncMode
from mediexchange.store import clinics, orders
from mediexchange.store.batch import write_all
from mediexchange.store.models import RecordModel
from mediexchange.store.records import (
    Kind,
    SyncedRecord,
    delete_item,
    desired,
    identity_item,
    put_item,
    resource_identities,
    stored_hashes,
)
from mediexchange.sync import OrderOutcome, decide_order_change, plan_sync, reference_warnings
from mediexchange.timeutil import to_epoch, zone


def new_import_id(now: float) -> str:
    """Sortable by time, unique without coordination."""
    return f"{dt.datetime.fromtimestamp(now, dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


def authenticate(client_key: str) -> Clinic:
    clinic = clinics.clinic_for_key(client_key)
    if clinic is None:
        raise UnknownClientKey()
    return clinic


def import_document(data: bytes, fallback_encoding: str | None = None) -> tuple[Clinic, ImportReport]:
    """Validate the whole document, then apply it under the clinic's import lease."""
    root = parse_document(data, fallback_encoding)
    clinic = authenticate(client_key_of(root))
    document = read_document(root, zone(clinic.timezone))
    now = time.time()
    import_id = new_import_id(now)
    clinics.acquire_import_lease(clinic.clinic_id, import_id, settings.import_lease_seconds, now)
    try:
        return clinic, Importer(clinic, document, import_id).run()
    finally:
        clinics.release_import_lease(clinic.clinic_id, import_id)


@dataclass
class Importer:
    clinic: Clinic
    document: Document
    import_id: str
    writes: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    stored_keys: dict[Kind, set[str]] = field(default_factory=dict)

    def run(self) -> ImportReport:
        doc = self.document
        full = doc.sync_mode is SyncMode.FULL
        groups = self.plan(Kind.GROUPS, doc.groups, replace_all=True)
        resources = self.plan(Kind.RESOURCES, doc.resources, replace_all=True)
        schedules = self.plan(Kind.SCHEDULES, doc.schedules, replace_all=True)
        appointments = self.plan(Kind.APPOINTMENTS, doc.appointments, replace_all=full)
        warnings = list(doc.warnings) + self.reference_warnings()

        # Writes before deletes: a crash in between leaves more than before, never less,
        # and sending the document again converges.
        self.write_new_identities()
        write_all(RecordModel.Meta.table_name, self.writes)
        orders_report = self.apply_orders() if doc.orders is not None else None
        write_all(RecordModel.Meta.table_name, self.deletes)
        return ImportReport(
            self.import_id, groups, resources, schedules, appointments, doc.sync_mode, orders_report, tuple(warnings)
        )

    def plan(self, kind: Kind, records: Sequence[SyncedRecord] | None, replace_all: bool) -> SectionReport | None:
        if records is None:
            return None
        clinic_id = self.clinic.clinic_id
        wanted = desired(records)
        stored = stored_hashes(clinic_id, kind)
        self.stored_keys[kind] = set(stored)
        plan = plan_sync({key: w.digest for key, w in wanted.items()}, stored, replace_all)
        self.writes += [put_item(clinic_id, kind, wanted[key]) for key in plan.writes]
        self.deletes += [delete_item(clinic_id, kind, key) for key in plan.deletes]
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
        if not self.document.resources:
            return
        clinic_id = self.clinic.clinic_id
        known = resource_identities(clinic_id)
        new = sorted({r.id for r in self.document.resources} - set(known))
        if new:
            portal_ids = clinics.allocate_ids(clinic_id, "next_resource_id", len(new))
            items = [identity_item(clinic_id, mis, portal) for mis, portal in zip(new, portal_ids, strict=True)]
            write_all(RecordModel.Meta.table_name, items)

    def apply_orders(self) -> OrdersReport:
        changes = self.document.orders or ()
        clinic_id, tz = self.clinic.clinic_id, zone(self.clinic.timezone)
        stored = orders.get_orders(clinic_id, [c.id for c in changes])
        outcomes: dict[OrderOutcome, list[int]] = {outcome: [] for outcome in OrderOutcome}
        for change in changes:
            stamp = to_epoch(change.last_changed, tz)
            outcome, after = decide_order_change(stored.get(change.id), change, stamp, int(time.time()))
            before = stored.get(change.id)
            # A failed condition means the portal changed the order after we read it: the MIS's change is stale.
            if (
                outcome is OrderOutcome.UPDATED
                and before
                and after
                and not orders.apply_change(clinic_id, before, after)
            ):
                outcome = OrderOutcome.CONFLICT
            outcomes[outcome].append(change.id)
        return OrdersReport(
            received=len(changes),
            updated=tuple(outcomes[OrderOutcome.UPDATED]),
            unchanged=tuple(outcomes[OrderOutcome.UNCHANGED]),
            conflicts=tuple(outcomes[OrderOutcome.CONFLICT]),
            unknown=tuple(outcomes[OrderOutcome.UNKNOWN]),
        )
