"""Clinics, their client keys (stored only as SHA-256 hashes), counters and the import lease."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from mediexchange.errors import BadRequest, ImportInProgress
from mediexchange.records import Clinic
from mediexchange.store.models import ClientKeyModel, ClinicModel

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


def create_clinic(name: str, timezone: str, client_key: str) -> Clinic:
    clinic_id = secrets.token_hex(6)
    now = int(time.time())
    _claim_key(client_key, clinic_id, now)
    ClinicModel(
        clinic_id, name=name, timezone=timezone, enabled=True, key_hashes={key_hash(client_key)}, created_at=now
    ).save(condition=ClinicModel.clinic_id.does_not_exist())
    return Clinic(clinic_id, name, timezone)


def _claim_key(client_key: str, clinic_id: str, now: int) -> None:
    try:
        ClientKeyModel(key_hash(client_key), clinic_id=clinic_id, created_at=now).save(
            condition=ClientKeyModel.key_hash.does_not_exist()
        )
    except PutError as exc:
        if _is_conditional_failure(exc):
            raise BadRequest("this client key is already in use") from None
        raise


def get_clinic(clinic_id: str) -> Clinic | None:
    try:
        return _clinic(ClinicModel.get(clinic_id, consistent_read=True))
    except DoesNotExist:
        return None


def list_clinics() -> list[tuple[Clinic, int]]:
    """Every clinic with its number of live keys (an administrator's command, not a request path)."""
    return sorted(((_clinic(m), len(m.key_hashes or ())) for m in ClinicModel.scan()), key=lambda pair: pair[0].name)


def clinic_for_key(client_key: str) -> Clinic | None:
    """The enabled clinic that owns a live key, or None; the key itself is never stored."""
    digest = key_hash(client_key)
    try:
        owner = ClientKeyModel.get(digest)
        clinic = ClinicModel.get(owner.clinic_id)
    except DoesNotExist:
        return None
    live = any(hmac.compare_digest(digest, known) for known in clinic.key_hashes or ())
    return _clinic(clinic) if live and clinic.enabled else None


def _require(clinic_id: str) -> ClinicModel:
    try:
        return ClinicModel.get(clinic_id, consistent_read=True)
    except DoesNotExist:
        raise BadRequest(f"no clinic {clinic_id}") from None


def disable_clinic(clinic_id: str) -> None:
    _require(clinic_id).update(actions=[ClinicModel.enabled.set(False)])


def rotate_key(clinic_id: str) -> str:
    """Issue a second live key; the old one keeps working until revoked."""
    clinic = _require(clinic_id)
    if len(clinic.key_hashes or ()) >= MAX_LIVE_KEYS:
        raise BadRequest(f"clinic {clinic_id} already has {MAX_LIVE_KEYS} live keys; revoke one first")
    client_key = new_client_key()
    _claim_key(client_key, clinic_id, int(time.time()))
    clinic.update(actions=[ClinicModel.key_hashes.add({key_hash(client_key)})])
    return client_key


def revoke_key(clinic_id: str, client_key: str) -> None:
    clinic = _require(clinic_id)
    digest = key_hash(client_key)
    if digest not in (clinic.key_hashes or set()):
        raise BadRequest(f"that key is not a live key of clinic {clinic_id}")
    clinic.update(actions=[ClinicModel.key_hashes.delete({digest})])
    ClientKeyModel(digest).delete(condition=ClientKeyModel.clinic_id == clinic_id)


def has_orders(clinic_id: str) -> bool:
    """Whether the portal ever created an order for the clinic (its order counter moved)."""
    return bool(ClinicModel.get(clinic_id, consistent_read=True).next_order_id)


def allocate_ids(clinic_id: str, counter: str, count: int) -> range:
    """Reserve `count` consecutive ids from one of the clinic's counters (atomic)."""
    clinic = ClinicModel(clinic_id)
    clinic.update(actions=[getattr(ClinicModel, counter).add(count)], condition=ClinicModel.clinic_id.exists())
    last = int(getattr(clinic, counter))
    return range(last - count + 1, last + 1)


def acquire_import_lease(clinic_id: str, owner: str, seconds: int, now: float | None = None) -> None:
    """Take the clinic's import lease, or raise ImportInProgress saying when to retry."""
    now = now if now is not None else time.time()
    try:
        ClinicModel(clinic_id).update(
            actions=[ClinicModel.lease_owner.set(owner), ClinicModel.lease_expires.set(int(now) + seconds)],
            condition=ClinicModel.clinic_id.exists()
            & (ClinicModel.lease_expires.does_not_exist() | (ClinicModel.lease_expires < int(now))),
        )
    except UpdateError as exc:
        if not _is_conditional_failure(exc):
            raise
        holder = ClinicModel.get(clinic_id, consistent_read=True)
        wait = max(1, int((holder.lease_expires or now) - now))
        raise ImportInProgress("another import of this clinic is running; retry later", retry_after=wait) from None


def release_import_lease(clinic_id: str, owner: str) -> None:
    try:
        ClinicModel(clinic_id).update(
            actions=[ClinicModel.lease_owner.remove(), ClinicModel.lease_expires.remove()],
            condition=ClinicModel.lease_owner == owner,
        )
    except UpdateError as exc:
        if not _is_conditional_failure(exc):  # already expired and taken by another import: not ours
            raise
