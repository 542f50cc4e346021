"""What can go wrong, as plain exceptions. None of them knows HTTP: `web` alone maps them to answers.

`code` is the protocol's error code (SPEC section 3), the same in XML and JSON answers.
Anything that is not a ServiceError is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediexchange.records import Issue


class ServiceError(Exception):
    code: str = "bad_request"

    def __init__(self, message: str, issues: Sequence[Issue] = (), retry_after: int | None = None) -> None:
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


class NotFound(ServiceError):
    code = "not_found"


# -- the state of the store ------------------------------------------------------------------------


class ImportInProgress(ServiceError):
    """Another import holds the clinic's lease; `retry_after` says when it runs out."""

    code = "import_in_progress"


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
