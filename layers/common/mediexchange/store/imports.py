"""The import log (status.php), the raw documents (S3, kept for the configured days), the clinic's import
queue and the worker's messages (SQS FIFO).

Each clinic has a queue per lane (records.Lane) on its item: the ids of the imports received and not
finished. The oldest applies first, under the lane's lease; the lease renews while the import works,
so a crashed import frees its lane within one lease length. Every import also has a worker message
from the moment it is received, so an import whose request ended early is never stranded.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from mediexchange.errors import ImportQueueFull
from mediexchange.records import Lane
from mediexchange.store.backend import Backend, busy, guarded
from mediexchange.store.models import ClinicModel, ImportModel, SeenAttribute, seen_attribute

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
OK, PARTIAL, ERROR = "ok", "partial", "error"  # how a finished import went
RECENT = 20  # imports status.php lists
MAX_QUEUED = 100  # imports of one lane waiting at once; more means the MIS is sending in a loop


class Turn(Enum):
    TAKEN = "taken"  # this import holds its lane's lease and applies now
    WAIT = "wait"  # an older import, or a live lease, is ahead of it
    GONE = "gone"  # no longer queued: it finished (applied elsewhere, or failed)


@dataclass(frozen=True, slots=True)
class ImportEntry:
    import_id: str
    received_at: int
    state: str
    lane: Lane
    background: bool  # its request handed it to the worker
    error_code: str | None
    result: bytes | None  # ImportResult XML
    outcome: str | None  # once finished: ok | partial | error
    errors: int  # records rejected (or the failure's issues)
    warnings: int
    size: int  # bytes of the document as received
    sections: tuple[str, ...]  # the sections the document carried, by name

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One attempt at applying one import. The lease names the attempt, not the import, so the worker
    taking over from a request that died waits for that request's lease to run out."""

    clinic_id: str
    lane: Lane
    import_id: str
    attempt: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def holder(self) -> str:
        return f"{self.import_id}/{self.attempt}"


def document_key(clinic_id: str, import_id: str) -> str:
    return f"documents/{clinic_id}/{import_id}.xml"


def _entry(model: ImportModel) -> ImportEntry:
    result = gzip.decompress(model.result) if model.result else None
    return ImportEntry(
        model.import_id,
        int(model.received_at),
        model.state,
        Lane(model.lane),
        bool(model.background),
        model.error_code,
        result,
        model.outcome,
        int(model.errors or 0),
        int(model.warnings or 0),
        int(model.size),
        tuple(model.sections or ()),
    )


def _lane(model: type[ClinicModel], lane: Lane) -> tuple[UnicodeSetAttribute, UnicodeAttribute, NumberAttribute]:
    """The clinic item's attributes for one lane: its queue, its lease's holder and the lease's end."""
    return getattr(model, f"{lane}_queue"), getattr(model, f"{lane}_lease"), getattr(model, f"{lane}_lease_expires")


def _cancelled(exc: TransactWriteError | UpdateError) -> bool:
    """A condition of the write failed (as opposed to the store failing)."""
    return exc.cause_response_code in ("ConditionalCheckFailedException", "TransactionCanceledException")


@guarded
class ImportLog:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.settings = backend.settings
        self.model = backend.tables.imports
        self.clinics = backend.tables.clinics

    def receive(self, ticket: Ticket, data: bytes, charset: str | None, now: float) -> None:
        """Keep the raw document, give the worker its message, then queue it in its lane: nothing is
        answered before all three, and in this order each step's failure strands nothing."""
        clinic_id, import_id = ticket.clinic_id, ticket.import_id
        content_type = f"application/xml; charset={charset}" if charset else "application/xml"
        key = document_key(clinic_id, import_id)
        self.backend.s3.put_object(Bucket=self.settings.documents_bucket, Key=key, Body=data, ContentType=content_type)
        self.backend.sqs.send_message(
            QueueUrl=self.settings.import_queue_url,
            MessageBody=json.dumps({"clinic_id": clinic_id, "import_id": import_id}),
            MessageGroupId=f"{clinic_id}/{ticket.lane}",  # the queue delivers a lane's messages in order, one at a time
            MessageDeduplicationId=import_id,
        )
        expires = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(days=self.settings.retention_days)
        entry = self.model(
            clinic_id, import_id, received_at=int(now), state=QUEUED, lane=ticket.lane, size=len(data), expires=expires
        )
        queue, _, _ = _lane(self.clinics, ticket.lane)
        room = size(queue) < MAX_QUEUED  # type: ignore[no-untyped-call]
        try:
            with TransactWrite(connection=self.backend.transactions()) as transaction:
                transaction.save(entry, condition=self.model.import_id.does_not_exist())
                transaction.update(
                    self.clinics(clinic_id),
                    actions=[queue.add({import_id})],
                    condition=self.clinics.clinic_id.exists() & (queue.does_not_exist() | room),
                )
        except TransactWriteError as exc:
            if not _cancelled(exc):
                raise
            raise ImportQueueFull(
                f"{MAX_QUEUED} imports of this clinic are already waiting; send this one again once they are done",
                retry_after=self.settings.import_lease_seconds,
            ) from None

    def take_turn(self, ticket: Ticket, now: float | None = None) -> Turn:
        """Take the lane's lease for this attempt if its import is the oldest queued and no other attempt
        holds a live lease."""
        now = time.time() if now is None else now
        queue, lease, lease_expires = _lane(self.clinics, ticket.lane)
        waiting = self.queued(ticket.clinic_id, ticket.lane)
        if ticket.import_id not in waiting:
            return Turn.GONE
        if waiting[0] != ticket.import_id:
            return Turn.WAIT
        until = int(now) + self.settings.import_lease_seconds
        try:
            with TransactWrite(connection=self.backend.transactions()) as transaction:
                transaction.update(
                    self.clinics(ticket.clinic_id),
                    actions=[lease.set(ticket.holder), lease_expires.set(until)],
                    condition=queue.contains(ticket.import_id)
                    & (lease.does_not_exist() | (lease == ticket.holder) | (lease_expires < int(now))),
                )
                transaction.update(
                    self.model(ticket.clinic_id, ticket.import_id),
                    actions=[self.model.state.set(RUNNING)],
                    condition=self.model.import_id.exists(),
                )
        except TransactWriteError as exc:
            if not _cancelled(exc):
                raise
            return Turn.WAIT
        return Turn.TAKEN

    def queued(self, clinic_id: str, lane: Lane) -> list[str]:
        """The imports of a clinic's lane received and not finished, oldest first (their ids sort by time)."""
        queue, _, _ = _lane(self.clinics, lane)
        return sorted(getattr(self.clinics.get(clinic_id, consistent_read=True), queue.attr_name) or ())

    def renew(self, ticket: Ticket, now: float | None = None) -> bool:
        """Extend this attempt's lease by a lease length; False if it is no longer this attempt's."""
        now = time.time() if now is None else now
        _, lease, lease_expires = _lane(self.clinics, ticket.lane)
        try:
            self.clinics(ticket.clinic_id).update(
                actions=[lease_expires.set(int(now) + self.settings.import_lease_seconds)],
                condition=lease == ticket.holder,
            )
        except UpdateError as exc:
            if not _cancelled(exc):
                raise
            return False
        return True

    def release(self, ticket: Ticket, background: bool = False) -> None:
        """Give up the lease if this attempt holds it, leaving the import queued; `background` hands it to
        the worker (its request answers 202)."""
        self._give_up_lease(ticket)
        if background:
            self.hand_over(ticket)
        else:
            self._log_state(ticket, [self.model.state.set(QUEUED)])

    def hand_over(self, ticket: Ticket) -> None:
        """Leave a queued import to the worker: its request answers 202 without ever having held the lease."""
        self._log_state(ticket, [self.model.state.set(QUEUED), self.model.background.set(True)])

    def _log_state(self, ticket: Ticket, actions: list[Action]) -> None:
        entry = self.model(ticket.clinic_id, ticket.import_id)
        entry.update(actions=actions, condition=self.model.import_id.exists())

    def _give_up_lease(self, ticket: Ticket) -> None:
        _, lease, lease_expires = _lane(self.clinics, ticket.lane)
        try:
            release: list[Action] = [lease.remove(), lease_expires.remove()]
            self.clinics(ticket.clinic_id).update(actions=release, condition=lease == ticket.holder)
        except UpdateError as exc:
            if not _cancelled(exc):  # not held, or run out and taken: nothing of ours to give up
                raise

    def finish(
        self,
        ticket: Ticket,
        result: bytes,
        error_code: str | None = None,
        *,
        sections: Sequence[str] = (),
        outcome: str | None = None,
        errors: int = 0,
        warnings: int = 0,
    ) -> None:
        """Log how an import ended (done with its ImportResult, or failed with the error it answered) and
        take it out of its lane's queue, with the lease if this attempt holds it. A done import must have
        held the lease to the end: if it ran out and passed on, the finish is refused (StoreUnavailable).

        The clinic item notes it, in the same write, as its last import and as the last import of each of
        the `sections` it carried; `outcome` (ok | partial | error) defaults to what `error_code` says."""
        queue, lease, lease_expires = _lane(self.clinics, ticket.lane)
        outcome = outcome or (ERROR if error_code else OK)
        log: list[Action] = [
            self.model.state.set(FAILED if error_code else DONE),
            self.model.error_code.set(error_code) if error_code else self.model.error_code.remove(),
            self.model.result.set(gzip.compress(result)),
            self.model.outcome.set(outcome),
            self.model.errors.set(errors),
            self.model.warnings.set(warnings),
            self.model.sections.set(list(sections)),
        ]
        seen = SeenAttribute(at=int(time.time()), import_id=ticket.import_id, outcome=outcome)  # type: ignore[no-untyped-call]
        noted = [getattr(self.clinics, seen_attribute(name)) for name in sections]
        dequeue: list[Action] = [
            queue.delete({ticket.import_id}),
            *(attribute.set(seen) for attribute in (self.clinics.seen_import, *noted)),
        ]
        held: Condition = self.clinics.clinic_id.exists()
        if error_code:  # a failure may come before the import's turn, so without the lease
            self._give_up_lease(ticket)
        else:
            dequeue, held = [*dequeue, lease.remove(), lease_expires.remove()], lease == ticket.holder
        try:
            with TransactWrite(connection=self.backend.transactions()) as transaction:
                entry = self.model(ticket.clinic_id, ticket.import_id)
                transaction.update(entry, actions=log, condition=self.model.import_id.exists())
                transaction.update(self.clinics(ticket.clinic_id), actions=dequeue, condition=held)
        except TransactWriteError as exc:
            if not _cancelled(exc):
                raise
            raise busy() from None  # applied again by whoever retries: imports are idempotent

    def document(self, clinic_id: str, import_id: str) -> tuple[bytes, str | None]:
        """A kept document and the charset its request named."""
        key = document_key(clinic_id, import_id)
        response = self.backend.s3.get_object(Bucket=self.settings.documents_bucket, Key=key)
        _, _, charset = str(response.get("ContentType", "")).partition("charset=")
        return bytes(response["Body"].read()), charset or None

    def get(self, clinic_id: str, import_id: str) -> ImportEntry | None:
        try:
            return _entry(self.model.get(clinic_id, import_id, consistent_read=True))
        except DoesNotExist:
            return None

    def recent(self, clinic_id: str, limit: int = RECENT) -> list[ImportEntry]:
        """The clinic's latest imports, newest first."""
        return [_entry(m) for m in self.model.query(clinic_id, scan_index_forward=False, limit=limit)]

    def document_url(self, clinic_id: str, import_id: str, disposition: str) -> str:
        """A short-lived URL that fetches a kept document as it is, answered with `disposition` (its
        Content-Disposition): the document itself is signed for, so nothing is copied and reading it is all
        the signer's role needs."""
        from mediexchange.store.exports import URL_SECONDS  # every presigned link lives as long

        params = {
            "Bucket": self.settings.documents_bucket,
            "Key": document_key(clinic_id, import_id),
            "ResponseContentDisposition": disposition,
            "ResponseCacheControl": "private, no-store",
        }
        url = self.backend.s3_presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=URL_SECONDS)
        return str(url)

    def kept_document(self, clinic_id: str, import_id: str) -> tuple[bytes, str | None] | None:
        """A kept document and the charset its request named, or None once it is gone (documents are kept
        for the settings' retention days). S3 answers NoSuchKey for a gone one only to a role that may list
        documents/ (template.yaml grants the console that); to any other, AccessDenied, which is raised."""
        try:
            return self.document(clinic_id, import_id)
        except self.backend.s3.exceptions.NoSuchKey:
            return None
