"""Clinics, their client keys (stored only as SHA-256 hashes), counters and settings."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action

from mediexchange.errors import AdminError
from mediexchange.keys import GUID, canonical_client_key, new_client_key
from mediexchange.records import DEFAULT_STALE_AFTER_HOURS, Clinic, ExportNames, Lane
from mediexchange.store.backend import Backend, guarded
from mediexchange.store.models import SEEN_SECTIONS, ClinicModel, SeenAttribute, seen_attribute
from mediexchange.timeutil import is_valid_zone

MAX_LIVE_KEYS = 2  # the current key and the one being rotated out
KEY_ID_LENGTH = 12  # hex characters of a key's hash that name it to an operator


@dataclass(frozen=True, slots=True)
class SectionSeen:
    """A finished import: when (unix seconds), which, and its outcome (ok | partial | error)."""

    at: int
    import_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class ClinicOverview:
    """A clinic at a glance: live keys, imports waiting per lane, the last import of each section."""

    clinic: Clinic
    keys: int
    queued: dict[Lane, int]
    last: dict[str, SectionSeen]  # by section name (protocol.sections), only those ever imported
    last_import: SectionSeen | None  # the latest finished import of any lane


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str  # the first KEY_ID_LENGTH hex characters of the key's SHA-256
    created_at: int  # unix seconds


def _legacy_forms(client_key: str) -> list[str]:
    """The spellings of a GUID key other than its canonical one that a key issued before keys were
    made canonical was likely stored in (lower case, braces): the key as given first."""
    if not GUID.fullmatch(client_key):
        return []
    canonical = canonical_client_key(client_key)
    forms = [client_key, canonical.lower(), f"{{{canonical}}}", f"{{{canonical.lower()}}}"]
    return [form for form in dict.fromkeys(forms) if form != canonical]


def key_hash(client_key: str) -> str:
    """The SHA-256 of a key exactly as given (callers pass the canonical form, see `canonical_client_key`)."""
    return hashlib.sha256(client_key.encode()).hexdigest()


def _clinic(model: ClinicModel) -> Clinic:
    """The clinic an item holds; a setting the item lacks (a clinic made before it existed) is the default."""
    return Clinic(
        model.clinic_id,
        model.name,
        model.timezone,
        bool(model.enabled),
        ExportNames(model.export_names) if model.export_names else ExportNames.SAMPLE,
        float(model.stale_after_hours) if model.stale_after_hours is not None else DEFAULT_STALE_AFTER_HOURS,
        int(model.appointments_synced_at) if model.appointments_synced_at is not None else None,
    )


def _seen(value: SeenAttribute | None) -> SectionSeen | None:
    return SectionSeen(int(value.at), value.import_id, value.outcome) if value is not None else None


def _overview(model: ClinicModel) -> ClinicOverview:
    seen = {name: _seen(getattr(model, seen_attribute(name))) for name in SEEN_SECTIONS}
    return ClinicOverview(
        _clinic(model),
        len(model.key_hashes or ()),
        {lane: len(getattr(model, f"{lane}_queue") or ()) for lane in Lane},
        {name: last for name, last in seen.items() if last is not None},
        _seen(model.seen_import),
    )


def _check_zone(timezone: str) -> None:
    if not is_valid_zone(timezone):
        raise AdminError(f"unknown time zone {timezone!r} (use an IANA name such as Europe/Moscow)")


def _is_conditional_failure(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


@guarded
class Clinics:
    def __init__(self, backend: Backend) -> None:
        self.model = backend.tables.clinics
        self.key_model = backend.tables.client_keys

    def create(self, name: str, timezone: str, client_key: str) -> Clinic:
        _check_zone(timezone)
        clinic_id = secrets.token_hex(6)
        now = int(time.time())
        digest = self._claim_key(client_key, clinic_id, now)
        self.model(clinic_id, name=name, timezone=timezone, enabled=True, key_hashes={digest}, created_at=now).save(
            condition=self.model.clinic_id.does_not_exist()
        )
        return Clinic(clinic_id, name, timezone)

    def _claim_key(self, client_key: str, clinic_id: str, now: int) -> str:
        """Record that the key, in its canonical form, is the clinic's, and return its hash; refuse a
        key in use already, also when a clinic holds it in another spelling of the same GUID."""
        if any(self._owner(form) is not None for form in _legacy_forms(client_key)):
            raise AdminError("this client key is already in use")
        digest = key_hash(canonical_client_key(client_key))
        try:
            key = self.key_model(digest, clinic_id=clinic_id, created_at=now)
            key.save(condition=self.key_model.key_hash.does_not_exist())
        except PutError as exc:
            if _is_conditional_failure(exc):
                raise AdminError("this client key is already in use") from None
            raise
        return digest

    def get(self, clinic_id: str) -> Clinic | None:
        try:
            return _clinic(self.model.get(clinic_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list(self) -> list[tuple[Clinic, int]]:
        """Every clinic with its number of live keys (an administrator's command, not a request path)."""
        return sorted(((_clinic(m), len(m.key_hashes or ())) for m in self.model.scan()), key=lambda pair: pair[0].name)

    def overview(self) -> builtins.list[ClinicOverview]:
        """Every clinic at a glance, by name (one scan of the clinics table)."""
        return sorted((_overview(m) for m in self.model.scan()), key=lambda o: (o.clinic.name, o.clinic.clinic_id))

    def overview_of(self, clinic_id: str) -> ClinicOverview | None:
        try:
            return _overview(self.model.get(clinic_id, consistent_read=True))
        except DoesNotExist:
            return None

    def for_key(self, client_key: str) -> Clinic | None:
        """The enabled clinic that owns a live key, or None; the key itself is never stored.

        A GUID key is looked up in its canonical form first, then exactly as given: a key stored
        before keys were made canonical (a lower-case GUID, say) keeps working as it was sent.
        """
        for candidate in dict.fromkeys((canonical_client_key(client_key), client_key)):
            clinic = self._owner(candidate)
            if clinic is not None and clinic.enabled:
                return _clinic(clinic)
        return None

    def _owner(self, client_key: str) -> ClinicModel | None:
        """The clinic (enabled or not) for which this exact key is live, or None."""
        digest = key_hash(client_key)
        try:
            owner = self.key_model.get(digest)
            clinic = self.model.get(owner.clinic_id)
        except DoesNotExist:
            return None
        live = any(hmac.compare_digest(digest, known) for known in clinic.key_hashes or ())
        return clinic if live else None

    def _require(self, clinic_id: str) -> ClinicModel:
        try:
            return self.model.get(clinic_id, consistent_read=True)
        except DoesNotExist:
            raise AdminError(f"no clinic {clinic_id}") from None

    def disable(self, clinic_id: str) -> None:
        self._require(clinic_id).update(actions=[self.model.enabled.set(False)])

    def update_settings(
        self,
        clinic_id: str,
        timezone: str | None = None,
        export_names: ExportNames | None = None,
        stale_after_hours: float | None = None,
    ) -> Clinic:
        """Change the settings given (None: keep it) and return the clinic as it is now."""
        if timezone is not None:
            _check_zone(timezone)
        if stale_after_hours is not None and not (math.isfinite(stale_after_hours) and stale_after_hours > 0):
            raise AdminError(f"stale_after_hours must be a positive number of hours, got {stale_after_hours}")
        clinic = self._require(clinic_id)
        actions: list[Action] = []
        if timezone is not None:
            actions.append(self.model.timezone.set(timezone))
        if export_names is not None:
            actions.append(self.model.export_names.set(ExportNames(export_names).value))
        if stale_after_hours is not None:
            actions.append(self.model.stale_after_hours.set(stale_after_hours))
        if actions:
            try:
                clinic.update(actions=actions, condition=self.model.clinic_id.exists())
            except UpdateError as exc:
                if _is_conditional_failure(exc):
                    raise AdminError(f"no clinic {clinic_id}") from None
                raise
        return _clinic(clinic)

    def rotate_key(self, clinic_id: str) -> str:
        """Issue a second live key; the old one keeps working until revoked."""
        clinic = self._require(clinic_id)
        if len(clinic.key_hashes or ()) >= MAX_LIVE_KEYS:
            raise AdminError(f"clinic {clinic_id} already has {MAX_LIVE_KEYS} live keys; revoke one first")
        client_key = canonical_client_key(new_client_key())
        digest = self._claim_key(client_key, clinic_id, int(time.time()))
        clinic.update(actions=[self.model.key_hashes.add({digest})])
        return client_key

    def revoke_key(self, clinic_id: str, client_key: str) -> None:
        """Stop accepting a key, named in any spelling of its GUID (or exactly as stored before keys
        were made canonical)."""
        clinic = self._require(clinic_id)
        live = clinic.key_hashes or set()
        candidates = dict.fromkeys((canonical_client_key(client_key), client_key))
        digest = next((key_hash(key) for key in candidates if key_hash(key) in live), None)
        if digest is None:
            raise AdminError(f"that key is not a live key of clinic {clinic_id}")
        clinic.update(actions=[self.model.key_hashes.delete({digest})])
        self.key_model(digest).delete(condition=self.key_model.clinic_id == clinic_id)

    def keys(self, clinic_id: str) -> builtins.list[KeyInfo]:
        """The clinic's live keys, oldest first, named by the start of their hash."""
        digests = self._require(clinic_id).key_hashes or set()
        found = {m.key_hash: int(m.created_at) for m in self.key_model.batch_get(builtins.list(digests))}
        infos = [KeyInfo(digest[:KEY_ID_LENGTH], found.get(digest, 0)) for digest in digests]
        return sorted(infos, key=lambda k: (k.created_at, k.key_id))

    def revoke_key_id(self, clinic_id: str, key_id: str) -> None:
        """Stop accepting the key whose hash starts with `key_id` (see `keys`); refuses the clinic's
        last live key, which would lock its MIS out (disable the clinic for that)."""
        digests = self._require(clinic_id).key_hashes or set()
        matching = [d for d in digests if len(key_id) == KEY_ID_LENGTH and d.startswith(key_id.lower())]
        if len(matching) != 1:
            raise AdminError(f"no live key {key_id} of clinic {clinic_id}")
        [digest] = matching
        live = self.model.key_hashes
        others = size(live) > 1  # type: ignore[no-untyped-call]
        try:
            self.model(clinic_id).update(actions=[live.delete({digest})], condition=live.contains(digest) & others)
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                message = f"key {key_id} is the last live key of clinic {clinic_id}; it cannot be revoked"
                raise AdminError(message) from None
            raise
        self.key_model(digest).delete(condition=self.key_model.clinic_id == clinic_id)

    def has_orders(self, clinic_id: str) -> bool:
        """Whether the portal ever created an order for the clinic (its order counter moved)."""
        return bool(self.model.get(clinic_id, consistent_read=True).next_order_id)

    def reserve_order_ids(self, clinic_id: str, count: int = 1) -> range:
        """New order ids of the clinic: unique and increasing (an atomic counter)."""
        clinic = self.model(clinic_id)
        clinic.update(actions=[self.model.next_order_id.add(count)], condition=self.model.clinic_id.exists())
        last = int(clinic.next_order_id)
        return range(last - count + 1, last + 1)

    def note_appointments_sync(self, clinic_id: str, at: int) -> None:
        """The MIS sent its busy time (an import with Appointments applied) at `at`, unix seconds."""
        self.model(clinic_id).update(
            actions=[self.model.appointments_synced_at.set(at)], condition=self.model.clinic_id.exists()
        )
