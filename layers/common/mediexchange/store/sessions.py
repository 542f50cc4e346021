"""The console's sessions and one-time sign-in links. A token lives only in the cookie or the link; the
store keeps its SHA-256, so a read of the table signs nobody in."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from pynamodb.exceptions import DeleteError, DoesNotExist

from mediexchange.store.backend import Backend, guarded

SESSION, SIGN_IN_LINK = "session", "sign_in_link"


@dataclass(frozen=True, slots=True)
class Session:
    role: str  # operator | integrator
    who: str  # the operator's user name, or clinic:<id>
    clinic_id: str | None  # an integrator's clinic
    csrf: str  # what every form of the session must carry back
    expires_at: int  # unix seconds


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@guarded
class Sessions:
    def __init__(self, backend: Backend) -> None:
        self.model = backend.tables.sessions

    def create(self, role: str, who: str, clinic_id: str | None, seconds: int) -> tuple[str, Session]:
        """A new session lasting `seconds`: its token (for the cookie) and the session."""
        token, now = new_token(), int(time.time())
        session = Session(role, who, clinic_id, secrets.token_urlsafe(16), now + seconds)
        item = self.model(
            token_hash(token),
            kind=SESSION,
            role=role,
            who=who,
            clinic_id=clinic_id,
            csrf=session.csrf,
            created_at=now,
            expires_at=session.expires_at,
        )
        item.save(condition=self.model.token_hash.does_not_exist())
        return token, session

    def find(self, token: str) -> Session | None:
        """The live session a token names; None if there is none or it has expired (DynamoDB's TTL
        deletes expired items only within days, so the expiry is checked here)."""
        try:
            item = self.model.get(token_hash(token), consistent_read=True)
        except DoesNotExist:
            return None
        if item.kind != SESSION or item.expires_at <= time.time() or not item.role or not item.who or not item.csrf:
            return None
        return Session(item.role, item.who, item.clinic_id, item.csrf, int(item.expires_at))

    def end(self, token: str) -> None:
        """Sign out: the session is gone (also if it never existed)."""
        try:
            self.model(token_hash(token)).delete(condition=self.model.kind == SESSION)  # never a link by its token
        except DeleteError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def create_link(self, seconds: int) -> str:
        """A one-time operator sign-in link's token, valid for `seconds`."""
        token, now = new_token(), int(time.time())
        item = self.model(token_hash(token), kind=SIGN_IN_LINK, created_at=now, expires_at=now + seconds)
        item.save(condition=self.model.token_hash.does_not_exist())
        return token

    def redeem_link(self, token: str) -> bool:
        """Use up a one-time link: true exactly once, for a link not yet expired; false if used, expired,
        or never issued. The delete is conditional, so of two redemptions at once only one succeeds."""
        condition = (self.model.kind == SIGN_IN_LINK) & (self.model.expires_at > int(time.time()))
        try:
            self.model(token_hash(token)).delete(condition=condition)
        except DeleteError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
