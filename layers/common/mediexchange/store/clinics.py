"""Clinics, their client keys (stored only as SHA-256 hashes), counters and the import lease."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from mediexchange.errors import AdminError, ImportInProgress
from mediexchange.records import Clinic
from mediexchange.store.backend import Backend, guarded
from mediexchange.store.models import ClinicModel

MAX_LIVE_KEYS = 2  # the current key and the one being rotated out


def key_hash(client_key: str) -> str:
    return hashlib.sha256(client_key.encode()).hexdigest()


def new_client_key() -> str:
    """A key in the shape the original portal issued: an upper-case GUID."""
    return str(uuid.uuid4()).upper()


def _clinic(model: ClinicModel) -> Clinic:
    return Clinic(model.clinic_id, model.name, model.timezone, bool(model.enabled))


def _is_conditional_failure(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


@guarded
class Clinics:
    def __init__(self, backend: Backend) -> None:
        self.model = backend.tables.clinics
        self.keys = backend.tables.client_keys

    def create(self, name: str, timezone: str, client_key: str) -> Clinic:
        clinic_id = secrets.token_hex(6)
        now = int(time.time())
        self._claim_key(client_key, clinic_id, now)
        self.model(
            clinic_id, name=name, timezone=timezone, enabled=True, key_hashes={key_hash(client_key)}, created_at=now
        ).save(condition=self.model.clinic_id.does_not_exist())
        return Clinic(clinic_id, name, timezone)

    def _claim_key(self, client_key: str, clinic_id: str, now: int) -> None:
        try:
            self.keys(key_hash(client_key), clinic_id=clinic_id, created_at=now).save(
                condition=self.keys.key_hash.does_not_exist()
            )
        except PutError as exc:
            if _is_conditional_failure(exc):
                raise AdminError("this client key is already in use") from None
            raise

    def get(self, clinic_id: str) -> Clinic | None:
        try:
            return _clinic(self.model.get(clinic_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list(self) -> list[tuple[Clinic, int]]:
        """Every clinic with its number of live keys (an administrator's command, not a request path)."""
        return sorted(((_clinic(m), len(m.key_hashes or ())) for m in self.model.scan()), key=lambda pair: pair[0].name)

    def for_key(self, client_key: str) -> Clinic | None:
        """The enabled clinic that owns a live key, or None; the key itself is never stored."""
        digest = key_hash(client_key)
        try:
            owner = self.keys.get(digest)
            clinic = self.model.get(owner.clinic_id)
        except DoesNotExist:
            return None
        live = any(hmac.compare_digest(digest, known) for known in clinic.key_hashes or ())
        return _clinic(clinic) if live and clinic.enabled else None

    def _require(self, clinic_id: str) -> ClinicModel:
        try:
            return self.model.get(clinic_id, consistent_read=True)
        except DoesNotExist:
            raise AdminError(f"no clinic {clinic_id}") from None

    def disable(self, clinic_id: str) -> None:
        self._require(clinic_id).update(actions=[self.model.enabled.set(False)])

    def rotate_key(self, clinic_id: str) -> str:
        """Issue a second live key; the old one keeps working until revoked."""
        clinic = self._require(clinic_id)
        if len(clinic.key_hashes or ()) >= MAX_LIVE_KEYS:
            raise AdminError(f"clinic {clinic_id} already has {MAX_LIVE_KEYS} live keys; revoke one first")
        client_key = new_client_key()
        self._claim_key(client_key, clinic_id, int(time.time()))
        clinic.update(actions=[self.model.key_hashes.add({key_hash(client_key)})])
        return client_key

    def revoke_key(self, clinic_id: str, client_key: str) -> None:
        clinic = self._require(clinic_id)
        digest = key_hash(client_key)
        if digest not in (clinic.key_hashes or set()):
            raise AdminError(f"that key is not a live key of clinic {clinic_id}")
        clinic.update(actions=[self.model.key_hashes.delete({digest})])
        self.keys(digest).delete(condition=self.keys.clinic_id == clinic_id)

    def has_orders(self, clinic_id: str) -> bool:
        """Whether the portal ever created an order for the clinic (its order counter moved)."""
        return bool(self.model.get(clinic_id, consistent_read=True).next_order_id)

    def reserve_order_ids(self, clinic_id: str, count: int = 1) -> range:
        """New order ids of the clinic: unique and increasing (an atomic counter)."""
        clinic = self.model(clinic_id)
        clinic.update(actions=[self.model.next_order_id.add(count)], condition=self.model.clinic_id.exists())
        last = int(clinic.next_order_id)
        return range(last - count + 1, last + 1)

    def acquire_import_lease(self, clinic_id: str, owner: str, seconds: int, now: float | None = None) -> None:
        """Take the clinic's import lease, or raise ImportInProgress saying when to retry."""
        now = now if now is not None else time.time()
        model = self.model
        try:
            model(clinic_id).update(
                actions=[model.lease_owner.set(owner), model.lease_expires.set(int(now) + seconds)],
                condition=model.clinic_id.exists()
                & (model.lease_expires.does_not_exist() | (model.lease_expires < int(now))),
            )
        except UpdateError as exc:
            if not _is_conditional_failure(exc):
                raise
            holder = model.get(clinic_id, consistent_read=True)
            wait = max(1, int((holder.lease_expires or now) - now))
            raise ImportInProgress("another import of this clinic is running; retry later", retry_after=wait) from None

    def release_import_lease(self, clinic_id: str, owner: str) -> None:
        try:
            self.model(clinic_id).update(
                actions=[self.model.lease_owner.remove(), self.model.lease_expires.remove()],
                condition=self.model.lease_owner == owner,
            )
        except UpdateError as exc:
            if not _is_conditional_failure(exc):  # already expired and taken by another import: not ours
                raise
