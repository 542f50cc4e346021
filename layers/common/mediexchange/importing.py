"""The import use case: one MediExchange document applied to one clinic, record by record."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger
from lxml import etree

from mediexchange.clients import KeyOwner, authenticate, owner_of
from mediexchange.errors import (
    MissingClientKey,
    NotFound,
    ServiceError,
    StillQueued,
    StoreUnavailable,
)
from mediexchange.ordering import OrderChanges, double_bookings
from mediexchange.protocol.attributes import local_name
from mediexchange.protocol.reading import MAX_REPORTED, by_line, client_key_of, read_document
from mediexchange.protocol.sections import (
    APPOINTMENTS,
    BY_NAME,
    GROUPS,
    ORDERS,
    RESOURCES,
    SECTIONS,
    SYNCED,
    Section,
)
from mediexchange.protocol.writing import DATETIME, error_result, import_result, serialize, status_document
from mediexchange.protocol.xmlparse import parse_document
from mediexchange.records import (
    Appointment,
    Clinic,
    Document,
    ImportReport,
    Issue,
    Lane,
    OrdersReport,
    Rejected,
    SectionReport,
)
from mediexchange.store import ImportEntry, Store, Ticket, Turn
from mediexchange.store.imports import OK, PARTIAL
from mediexchange.store.synced import ALL, MARK_LIFETIME, Digests, Mark, Read, SectionDigests
from mediexchange.sync import (
    DIGEST_MODULUS,
    Buckets,
    Desired,
    Plan,
    after_plan,
    buckets_for,
    desired,
    leaf_digests,
    mix,
    plan_sync,
    reference_warnings,
    updated_digests,
)
from mediexchange.timeutil import from_epoch, zone

logger = Logger(service="mediexchange")
T = TypeVar("T")


IMPORT_ID = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}-[0-9a-f]{8}")


def new_import_id(now: float) -> str:
    """Sortable by time, unique without coordination."""
    return f"{dt.datetime.fromtimestamp(now, dt.UTC):%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}"


def _sent(root: etree._Element) -> set[Section[Any] | None]:
    return {BY_NAME.get(local_name(element)) for element in root if isinstance(element.tag, str)}


def lane_of(root: etree._Element) -> Lane:
    """A document with Orders alone has the orders lane: it never waits behind a schedule import."""
    return Lane.ORDERS if _sent(root) == {ORDERS} else Lane.SYNC


def sections_of(root: etree._Element) -> tuple[str, ...]:
    """The names of the sections a document carries, in the order an import applies them."""
    sent = _sent(root)
    return tuple(section.name for section in SECTIONS if section in sent)


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a document at once: applied (200, with its report) or accepted for later (202)."""

    clinic: Clinic
    import_id: str
    report: ImportReport | None

    @property
    def status(self) -> int:
        return 200 if self.report is not None else 202


def receive_document(
    store: Store, data: bytes, charset: str | None = None, dry_run: bool = False, known: KeyOwner | None = None
) -> Received:
    """Read the document, queue it in its clinic's lane and apply it in its turn; if its turn does not
    come, or its writes would not finish, within the request's time budget, leave it to the worker (202).
    Every step is logged for status.php.

    A dry run reads and plans exactly the same, and writes nothing at all (not even the import log).
    `known`: the owner of the key a caller has already authenticated (from the document's start tag): if
    the document carries that key, its clinic is taken without looking the key up again."""
    root = parse_document(data, charset)
    clinic = owner_of(store, client_key_of(root), known)
    now = time.time()
    import_id = new_import_id(now)
    if dry_run:
        importer = Importer(store, clinic, read_document(root, zone(clinic.timezone)), import_id)
        importer.plan_all()
        return Received(clinic, import_id, importer.report(importer.order_changes(apply=False), dry_run=True))
    job = Job(store, clinic, Ticket(clinic.clinic_id, lane_of(root), import_id), list(sections_of(root)))
    # The document is read while it is kept and queued; nothing is logged or applied before both are done
    # (a failure to receive it answers first, as if it had never been read).
    with ThreadPoolExecutor(max_workers=1) as pool:
        receiving = pool.submit(store.imports.receive, job.ticket, data, charset, now)
        read: Document | Exception
        try:
            read = read_document(root, zone(clinic.timezone))
        except Exception as exc:
            read = exc
        del root  # the tree is several times the document's size; from here on the records are enough
        receiving.result()
    with logged(job):
        if isinstance(read, Exception):
            raise read
        report = job.run(read, wait_until=now + store.settings.import_time_budget, in_request=True)
    return Received(clinic, import_id, report)


def finish_received(
    store: Store, clinic_id: str, import_id: str, last_try: bool = False, wait_until: float | None = None
) -> ImportReport | None:
    """The worker's part: apply a received document its request did not finish. Safe to repeat (a
    finished one is skipped). Raises StillQueued if its turn did not come by `wait_until`.

    A failure leaves the import queued for the queue to deliver again, except on the `last_try`, when the
    import log records it as failed (the clinic sends the document again).
    """
    clinic = store.clinics.get(clinic_id)
    entry = store.imports.get(clinic_id, import_id)
    if entry is None or entry.finished or clinic is None:
        return None
    request_ends = entry.received_at + store.settings.import_request_seconds
    if not entry.background and time.time() < request_ends:  # its request may still be applying it

        def request_done() -> ImportEntry | None:
            now = store.imports.get(clinic_id, import_id)
            return now if now is None or now.background or now.finished else None

        until = request_ends if wait_until is None else min(request_ends, wait_until)
        entry = poll(request_done, until) or store.imports.get(clinic_id, import_id)
        if entry is None or entry.finished:
            return None
        if not entry.background and time.time() < request_ends:
            raise StillQueued(f"import {import_id} may still be applied by its request")
    data, charset = store.imports.document(clinic_id, import_id)
    job = Job(store, clinic, Ticket(clinic_id, entry.lane, import_id))
    with logged(job, final=last_try):
        # The queue delivers a lane's messages in the order they were sent, the lane applies its imports in id
        # order, and two imports received at once may have crossed between the two: an older import whose
        # message waits behind this one's would never get its turn. So its worker applies the older ones first
        # (each left alone while its own request may still apply it; a finished one is skipped).
        for older in store.imports.queued(clinic_id, entry.lane):
            if older >= import_id:
                break
            finish_received(store, clinic_id, older, wait_until=wait_until)
        root = parse_document(data, charset)
        job.sections.extend(sections_of(root))
        document = read_document(root, zone(clinic.timezone))
        del root  # as in receive_document: the records are enough
        return job.run(document, wait_until=wait_until, in_request=False)


def poll(check: Callable[[], T | None], until: float | None) -> T | None:
    """`check()` again and again, pausing longer each time, until it answers or `until` passes (with one
    last look then)."""
    pause = 0.05
    while (answer := check()) is None:
        left = float("inf") if until is None else until - time.time()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, 1.0)
    return answer


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt at one received import of a clinic, in its lane's queue."""

    store: Store
    clinic: Clinic
    ticket: Ticket
    # The names of the sections its document carries, once parsed: its finish notes them on the clinic.
    sections: list[str] = field(default_factory=list)

    @property
    def ids(self) -> dict[str, str]:
        return {"clinic_id": self.ticket.clinic_id, "import_id": self.ticket.import_id}

    def run(self, document: Document, wait_until: float | None, in_request: bool) -> ImportReport | None:
        """Apply the document in its turn and log the result. None if it finished elsewhere, or (in a
        request) if its turn or its writes would not finish by `wait_until`: the worker then applies it."""
        turn = self.wait_for_turn(wait_until)
        if turn is Turn.GONE:
            return None
        if turn is Turn.WAIT:
            if in_request:
                self.store.imports.hand_over(self.ticket)
                return None
            raise StillQueued(f"import {self.ticket.import_id} is still behind older imports of its clinic")
        with self.holding_lease():
            importer = Importer(self.store, self.clinic, document, self.ticket.import_id)
            importer.plan_all()
            estimate = importer.estimated_seconds()
            deferred = in_request and estimate > 0 and time.time() + estimate > (wait_until or float("inf"))
            planned = {"writes": len(importer.writes), "deletes": len(importer.deletes), "lane": self.ticket.lane}
            logger.info("import planned", extra={**planned, "estimate_s": round(estimate, 2), "deferred": deferred})
            if deferred:
                self.store.imports.release(self.ticket, background=True)
                return None
            report = importer.apply()
            result = serialize(import_result(report))
            self.store.imports.finish(
                self.ticket,
                result,
                sections=self.sections,
                outcome=PARTIAL if report.errors else OK,  # as the answer's status says
                errors=rejected_records(report),
                warnings=len(report.warnings),
            )
        return report

    def wait_for_turn(self, until: float | None) -> Turn:
        """Poll the lane until this import's turn comes, it is gone, or `until` passes."""

        def turn() -> Turn | None:
            taken = self.store.imports.take_turn(self.ticket)
            return None if taken is Turn.WAIT else taken

        return poll(turn, until) or Turn.WAIT

    @contextmanager
    def holding_lease(self) -> Iterator[None]:
        """Renew the lane's lease every third of its length while the import works: a long import keeps it,
        a crashed one frees the lane within one lease length."""
        stop = threading.Event()
        every = self.store.settings.import_lease_seconds / 3

        def renew() -> None:
            while not stop.wait(every):
                try:
                    if not self.store.imports.renew(self.ticket):
                        logger.error("import lease lost to another import", extra=self.ids)
                        return
                except ServiceError:
                    logger.warning("import lease not renewed, trying again", extra=self.ids)

        renewer = threading.Thread(target=renew, name=f"lease-{self.ticket.holder}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()


def rejected_records(report: ImportReport) -> int:
    """Records an import rejected: each is one Error of its answer, but the answer lists at most so many."""
    orders = report.orders.rejected if report.orders else 0
    return sum(section.rejected for section in report.sections.values()) + orders


def import_status(store: Store, params: Mapping[str, str]) -> bytes:
    """status.php: the clinic's recent imports, or one of them, with their answers once finished."""
    client_key = params.get("client_key", "").strip()
    if not client_key:
        raise MissingClientKey("the client_key parameter is required")
    clinic = authenticate(store, client_key)
    tz = zone(clinic.timezone)
    wanted = params.get("import_id", "").strip()
    if wanted:
        # Only an id this service could have made is looked up (a DynamoDB key has a bounded length).
        entry = store.imports.get(clinic.clinic_id, wanted) if IMPORT_ID.fullmatch(wanted) else None
        if entry is None:
            raise NotFound(f"no import {wanted} for this clinic")
        entries = [entry]
    else:
        entries = store.imports.recent(clinic.clinic_id)
    rows = [(e.import_id, from_epoch(e.received_at, tz).strftime(DATETIME), e.state, e.result) for e in entries]
    return serialize(status_document(rows))


@contextmanager
def logged(job: Job, final: bool = True) -> Iterator[None]:
    """Record how an import ended in the import log, whatever happened; the log never hides the error.

    With `final` false (the worker, which will be retried) passing failures leave the import queued.
    """
    try:
        yield
    except ServiceError as exc:
        if final or not isinstance(exc, StillQueued | StoreUnavailable):
            _finish(job, serialize(error_result("ImportResult", exc.code, exc.issues)), exc.code, len(exc.issues))
        elif isinstance(exc, StoreUnavailable):
            _release(job)
        raise
    except Exception:
        if final:
            message = "internal error; the document is kept, send it again or ask support"
            _finish(job, serialize(error_result("ImportResult", "internal", [Issue("", message)])), "internal", 1)
        else:
            _release(job)
        raise


def _finish(job: Job, result: bytes, error_code: str, errors: int) -> None:
    try:
        job.store.imports.finish(job.ticket, result, error_code, sections=job.sections, errors=errors)
    except Exception:
        logger.warning("import log not updated", extra=job.ids)


def _release(job: Job) -> None:
    """Let the next delivery, or the next import, go on without waiting for the lease to run out."""
    try:
        job.store.imports.release(job.ticket)
    except Exception:
        logger.warning("import lease not released", extra=job.ids)


def _digests_by_leaf(hashes: Mapping[str, str], leaf_of: Mapping[str, int], buckets: Buckets) -> list[int]:
    """leaf_digests, with every record's leaf already known."""
    values = [0] * buckets.count
    for key, content_hash in hashes.items():
        leaf = leaf_of[key]
        values[leaf] = (values[leaf] + mix(key, content_hash)) % DIGEST_MODULUS
    return values


def within_room(added: Sequence[Issue], listed: Sequence[Issue], overflow_code: str) -> list[Issue]:
    """The issues an import adds to those the reader listed, in line order, as many as leave the total
    at MAX_REPORTED, then one saying how many more there were."""
    room = max(0, MAX_REPORTED - sum(issue.line is not None for issue in listed))
    ordered = sorted(added, key=by_line)
    if len(ordered) <= room:
        return ordered
    return [*ordered[:room], Issue(overflow_code, f"and {len(ordered) - room} more not listed")]


@dataclass
class DigestPlan:
    """What an import does to one section's digests: the leaves it marks dirty before writing (None:
    all of them), the leaves it read whole (None: the whole section), and the digests it commits once
    every write and delete is in (None: they stay as stored)."""

    section: Section[Any]
    stored: SectionDigests | None
    touched: set[int] | None
    covered: set[int] | None
    new: SectionDigests | None


@dataclass
class Importer:
    store: Store
    clinic: Clinic
    document: Document
    import_id: str
    writes: list[tuple[Section[Any], Desired]] = field(default_factory=list)
    deletes: list[tuple[Section[Any], str]] = field(default_factory=list)
    keys_after: dict[Section[Any], set[str]] = field(default_factory=dict)  # of replaced sections
    written_appointments: list[Appointment] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    rejections: list[Issue] = field(default_factory=list)  # order changes that cannot apply
    reports: dict[str, SectionReport] = field(default_factory=dict)
    digests: Digests = field(default_factory=Digests)
    digest_plans: list[DigestPlan] = field(default_factory=list)
    legacy_copies: list[tuple[Section[Any], list[str]]] = field(default_factory=list)  # old layout, kept
    legacy_deletes: list[tuple[Section[Any], str]] = field(default_factory=list)  # old layout, rewritten

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.clinic.timezone)

    def plan_all(self) -> None:
        """What each synced section sent must write and delete, from the stored digests and hashes."""
        sent = [(section, records) for section in SYNCED if (records := section.of(self.document)) is not None]
        if sent:
            self.digests = self.store.records.digests(self.clinic.clinic_id)
        # A section without digests, or marked dirty throughout, is read whole whatever the document holds: its
        # reads go out at once, while the document's records are hashed (one section at a time, each read
        # store_parallelism queries at once).
        with ThreadPoolExecutor(max_workers=1) as pool:
            reads = {
                section: pool.submit(self.store.records.read_all, self.clinic.clinic_id, section)
                for section, _ in sent
                if self.reads_whole(section)
            }
            for section, records in sent:
                replace_all = section.replaces(self.document.sync_mode)
                self.reports[section.name] = self.plan(section, records, replace_all, reads.get(section))
        self.warnings += self.reference_warnings()

    def reads_whole(self, section: Section[Any]) -> bool:
        """Whether a section is read whole before anything is compared: it has no digests yet, or a dirty
        mark names every leaf of it (or leaves of other buckets)."""
        return section.code not in self.digests.sections or self.digests.dirty(section.code) is None

    def estimated_seconds(self) -> float:
        # An order change is a few single-item writes, about as dear as a batch of 25 items.
        work = len(self.writes) + len(self.deletes) + 25 * len(ORDERS.of(self.document) or ())
        return work / self.store.settings.write_items_per_second

    def apply(self) -> ImportReport:
        """Write what the plan found changed, then order changes, then deletes (see plan_all)."""
        clinic_id = self.clinic.clinic_id
        # Leaves are marked dirty before any of their records change, and their digests written only once
        # every write and delete is in: a stale digest never hides a needed write (see commit_digests).
        own = self.mark_dirty()
        # Writes before deletes: a crash in between leaves more than before, never less,
        # and sending the document again converges.
        self.write_new_identities()
        self.store.records.write(clinic_id, self.writes)
        for section, keys in self.legacy_copies:
            self.store.records.copy_legacy(clinic_id, section, keys)
        orders_report = self.order_changes(apply=True)
        self.store.records.delete(clinic_id, self.deletes)
        self.store.records.delete_legacy(clinic_id, self.legacy_deletes)
        self.commit_digests(own)
        if APPOINTMENTS.of(self.document) is not None:
            self.store.clinics.note_appointments_sync(clinic_id, int(time.time()))
        if self.store.clinics.has_orders(clinic_id):  # no order ever booked, no held time to overlap
            self.warnings += double_bookings(self.store, clinic_id, self.written_appointments, self.tz)
        return self.report(orders_report)

    def report(self, orders: OrdersReport | None, dry_run: bool = False) -> ImportReport:
        doc = self.document
        # The reader lists at most MAX_REPORTED of each; what the import adds is held to the same bound,
        # so no answer (nor its copy in the import log) outgrows what Lambda and DynamoDB can carry.
        added = within_room(self.warnings, doc.warnings, "more_warnings")
        warnings = tuple(sorted((*doc.warnings, *added), key=by_line))
        errors = (*doc.errors, *within_room(self.rejections, doc.errors, "invalid_record"))
        return ImportReport(self.import_id, self.reports, doc.sync_mode, orders, warnings, errors, dry_run)

    def order_changes(self, apply: bool) -> OrdersReport | None:
        """The document's order changes decided, and applied unless this is a dry run."""
        changes = ORDERS.of(self.document)
        if changes is None:
            return None
        read = self.document.rejected.get(ORDERS.name, Rejected())
        ordering = OrderChanges(self.store, self.clinic, self.import_id)
        report = ordering.decide(changes, read, apply)
        self.warnings += ordering.warnings
        self.rejections += ordering.rejections
        return report

    def plan(
        self, section: Section[Any], records: Sequence[Any], replace_all: bool, reading: Future[Read] | None = None
    ) -> SectionReport:
        """Compare the document with the stored digests, read only the leaves that differ or are dirty
        (every record if the section has no digests yet, or is to be rebucketed), and plan from those.
        `reading`: the whole section's read, already under way if `reads_whole` says so."""
        clinic_id, records_store = self.clinic.clinic_id, self.store.records
        wanted = desired(section, records)
        sent = {key: w.digest for key, w in wanted.items()}
        rejected = self.document.rejected.get(section.name, Rejected())
        stored_digests = self.digests.sections.get(section.code)
        dirty = self.digests.dirty(section.code)
        whole: set[int] | None  # the leaves read whole; None: the whole section
        if self.reads_whole(section):
            whole = None
        else:
            assert stored_digests is not None and dirty is not None  # as reads_whole found
            whole = None if replace_all and not stored_digests.buckets.suits(len(sent)) else set(dirty)
        buckets = stored_digests.buckets if stored_digests is not None else None
        by_key: dict[str, str] = {}  # read record by record (a diff's records in clean leaves)
        if whole is None:
            read = reading.result() if reading is not None else records_store.read_all(clinic_id, section)
            considered = sent
        else:
            assert stored_digests is not None and buckets is not None
            leaf_of = {key: buckets.leaf(key) for key in sent}
            if replace_all:
                values = _digests_by_leaf(sent, leaf_of, buckets)
                differing = {leaf for leaf, value in enumerate(values) if value != stored_digests.values[leaf]}
                by_key, holding_more = self.read_by_key(section, sent, leaf_of, differing - whole, stored_digests)
                whole |= holding_more
                by_key = {key: digest for key, digest in by_key.items() if leaf_of[key] not in holding_more}
                planned = differing | whole
                considered = {key: digest for key, digest in sent.items() if leaf_of[key] in planned}
            else:
                considered = sent
                by_key_keys = [key for key in sent if leaf_of[key] not in whole]
                by_key = records_store.hashes_of(clinic_id, section, by_key_keys) if by_key_keys else {}
                whole &= {leaf_of[key] for key in sent}  # a diff re-reads only the dirty leaves it touches
            read = records_store.read_leaves(clinic_id, section, buckets, whole)
        stored = {**read.merged(), **by_key}
        # A rejected record without a readable key could be any stored one: delete nothing this time.
        deleting = replace_all and not rejected.unkeyed
        plan = plan_sync(considered, stored, deleting, rejected.keys)
        if replace_all:  # every stored key of a leaf that differs was read; the others are the document's
            self.keys_after[section] = set(wanted) | (set(stored) - set(plan.deletes))
        self.writes += [(section, wanted[key]) for key in plan.writes]
        self.deletes += [(section, key) for key in plan.deletes if key in read.hashes or key in by_key]
        self.migrate(section, wanted, read.hashes, read.legacy, plan.writes, plan.deletes)
        if section is APPOINTMENTS:
            self.written_appointments += [wanted[key].record for key in plan.writes]  # type: ignore[misc]
        after = after_plan(stored, sent, plan)
        plan_digests = self.digest_plan(section, stored_digests, whole, after, by_key, plan, bool(read.legacy))
        self.digest_plans.append(plan_digests)
        return SectionReport(rejected.received, len(plan.writes), len(plan.deletes), rejected.count)

    def read_by_key(
        self,
        section: Section[Any],
        sent: Mapping[str, str],
        leaf_of: Mapping[str, int],
        leaves: set[int],
        stored: SectionDigests,
    ) -> tuple[dict[str, str], set[int]]:
        """Read the stored hashes of the records the document sends in clean leaves that differ (100 keys a
        call), and say which of those leaves hold records the document did not send: a leaf whose digest is
        more than that of the sent records found has more, and is read whole (to find what to delete)."""
        keys = [key for key in sent if leaf_of[key] in leaves]
        found = self.store.records.hashes_of(self.clinic.clinic_id, section, keys) if keys else {}
        rest = {leaf: stored.values[leaf] for leaf in leaves}
        for key, content_hash in found.items():
            rest[leaf_of[key]] = (rest[leaf_of[key]] - mix(key, content_hash)) % DIGEST_MODULUS
        return found, {leaf for leaf, value in rest.items() if value}

    def migrate(
        self,
        section: Section[Any],
        wanted: Mapping[str, Desired],
        current: Mapping[str, str],
        legacy: Mapping[str, str],
        writes: Sequence[str],
        deletes: Sequence[str],
    ) -> None:
        """Items of the old layout (read only when the section has no digests yet) are written again in the
        new one (from the document if it sent them, else copied as they are) and then deleted."""
        if not legacy:
            return
        planned = set(writes) | set(deletes) | set(current)
        again = [key for key in legacy if key not in planned and key in wanted]
        copied = [key for key in legacy if key not in planned and key not in wanted]
        self.writes += [(section, wanted[key]) for key in again]
        if copied:
            self.legacy_copies.append((section, copied))
        self.legacy_deletes += [(section, key) for key in legacy]

    def digest_plan(
        self,
        section: Section[Any],
        stored: SectionDigests | None,
        whole: set[int] | None,
        after: Mapping[str, str],
        by_key: Mapping[str, str],
        plan: Plan,
        rewritten: bool,
    ) -> DigestPlan:
        """The section's digests once the plan is in, and the leaves its writes and deletes touch
        (`rewritten`: items of the old layout are written again too)."""
        changed = [*plan.writes, *plan.deletes]
        if whole is None:  # the whole section was read: `after` is all of it
            shards = self.store.records.shards(section)
            buckets = stored.buckets if stored is not None and stored.buckets.suits(len(after)) else None
            buckets = buckets or buckets_for(len(after), shards)
            values = leaf_digests(after.items(), buckets)
            touched: set[int] | None = None if stored is not None and (changed or rewritten) else set()
        else:
            assert stored is not None
            buckets = stored.buckets
            values = updated_digests(stored.values, buckets, whole, after, by_key)
            touched = {buckets.leaf(key) for key in changed}
        new = None
        if stored is None or buckets != stored.buckets or tuple(values) != stored.values:
            version = 1 if stored is None else stored.version + 1
            new = SectionDigests(buckets, tuple(values), version)
        return DigestPlan(section, stored, touched, whole, new)

    def mark_dirty(self) -> Mark | None:
        """One mark naming every leaf this import will write or delete records of, in sections that have
        digests (a section without them is read whole by the next import anyway)."""
        leaves: dict[str, tuple[int, set[int]]] = {}
        for plan in self.digest_plans:
            if plan.stored is None:
                continue
            if plan.touched is None:
                leaves[plan.section.code] = (ALL, set())
            elif plan.touched:
                leaves[plan.section.code] = (plan.stored.buckets.count, plan.touched)
        return self.store.records.mark(self.clinic.clinic_id, self.import_id, leaves) if leaves else None

    def commit_digests(self, own: Mark | None) -> None:
        """Every write and delete is in: write the new digests, then clear this import's own mark, and the
        marks of earlier imports that can no longer be writing whose leaves this import read whole."""
        clinic_id = self.clinic.clinic_id
        committed = True
        covered: dict[str, set[int] | None] = {}
        for plan in self.digest_plans:
            if plan.new is not None:
                after = plan.stored.version if plan.stored is not None else None
                if not self.store.records.commit(clinic_id, plan.section, plan.new, after):
                    logger.warning("digests changed by another import; their leaves stay dirty", extra={})
                    committed = False
                    continue
            if plan.stored is not None and (plan.new is None or plan.new.buckets == plan.stored.buckets):
                covered[plan.section.code] = plan.covered
        if not committed:
            return
        now = time.time()

        def clearable(mark: Mark) -> bool:
            if now - mark.at < MARK_LIFETIME:
                return False
            for code, (count, leaves) in mark.leaves.items():
                if code not in covered:
                    return False
                read = covered[code]
                stored = self.digests.sections.get(code)
                if read is not None and (stored is None or count != stored.buckets.count or not leaves <= read):
                    return False
            return True

        cleared = [mark for mark in self.digests.marks if clearable(mark)]
        self.store.records.unmark(clinic_id, [own, *cleared] if own is not None else cleared)

    def known_ids(self, section: Section[Any]) -> set[int]:
        """Ids the clinic has once this import is done."""
        if section not in self.keys_after:
            self.keys_after[section] = set(self.store.records.hashes(self.clinic.clinic_id, section))
        return {int(key) for key in self.keys_after[section]}

    def reference_warnings(self) -> list[Issue]:
        doc = self.document
        groups = self.known_ids(GROUPS) if RESOURCES.of(doc) else set()
        needs_resources = any(section.of(doc) for section in SYNCED if section.when is not None)
        resources = self.known_ids(RESOURCES) if needs_resources else set()
        return reference_warnings(doc, groups, resources)

    def write_new_identities(self) -> None:
        """Give every resource seen for the first time its stable portal id (in the document's order)."""
        resources = RESOURCES.of(self.document)
        if resources:
            self.store.records.assign_resource_ids(self.clinic.clinic_id, [r.id for r in resources])
