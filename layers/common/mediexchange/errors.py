"""What can go wrong, as plain exceptions. None of them knows HTTP: `web` alone maps them to answers.

`code` is the protocol's error code (SPEC section 3), the same in XML and JSON answers.
Anything that is not a ServiceError is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediexchange.records import NOT_TYPED_IN_LINES, Issue

MAX_MESSAGE = 1000  # characters: request data quoted in a message never makes an answer large


def printable(message: str) -> str:
    """A message fit for every answer (XML 1.0 in UTF-8 or windows-1251, JSON) and every terminal, however
    much request data it quotes: at most MAX_MESSAGE characters of it, and each control character or code
    point XML cannot carry written as its escape (\\x01, \\ud800), so the client still sees what it sent."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return NOT_TYPED_IN_LINES.sub(lambda found: ascii(found.group())[1:-1], message)


class ServiceError(Exception):
    code: str = "bad_request"

    def __init__(self, message: str, issues: Sequence[Issue] = (), retry_after: int | None = None) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message
        self.issues: tuple[Issue, ...] = tuple(issues) or (Issue(self.code, message),)
        self.retry_after = retry_after


# -- the request as a whole ------------------------------------------------------------------------


class BadRequest(ServiceError):
    code = "bad_request"


class MalformedXml(BadRequest):
    code = "malformed_xml"


class DocumentRefused(BadRequest):
    """The document as a whole cannot be applied (a section twice, an unreadable SyncMode); nothing is."""


class MissingClientKey(BadRequest):
    code = "missing_client_key"


class InvalidRequest(BadRequest):
    """A portal request with a bad field."""

    code = "invalid_request"


class TooLarge(ServiceError):
    code = "too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


# -- who asks and what they ask for ----------------------------------------------------------------


class UnknownClientKey(ServiceError):
    code = "unknown_client_key"

    def __init__(self) -> None:
        # One answer for unknown, revoked and disabled alike: nothing to learn by probing keys.
        super().__init__("no active clinic has this client_key")


class Forbidden(ServiceError):
    """A console form without its session's CSRF value: not this session's own page posted it."""

    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


# -- the state of the store ------------------------------------------------------------------------


class ImportQueueFull(ServiceError):
    """Too many imports of the clinic wait already: the store keeps up, the MIS is sending in a loop."""

    code = "unavailable"


class StillQueued(ServiceError):
    """The worker waited and an import's turn did not come: older imports of its clinic are applying."""

    code = "unavailable"


class SlotUnavailable(ServiceError):
    code = "slot_unavailable"


class SyncStale(ServiceError):
    """The clinic's MIS has not sent its busy time for longer than the clinic allows: nothing is booked."""

    code = "sync_stale"


class StoreUnavailable(ServiceError):
    """The store kept refusing (throttling, timeouts) after every retry; nothing is lost, retry later."""

    code = "unavailable"


class Internal(ServiceError):
    """A bug: the answer carries the request id, never the details."""

    code = "internal"


# -- administration (the CLI) ----------------------------------------------------------------------


class AdminError(ServiceError):
    """An administrator's command that cannot be carried out (no such clinic, key in use, ...)."""

    code = "admin"
