"""Failures a client can cause or see, each with its HTTP status and protocol error code.

Every endpoint maps these to its own error body; anything else is a bug and answers 500 `internal`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediexchange.records import Issue


class ServiceError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, issues: Sequence[Issue] = (), retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.issues: tuple[Issue, ...] = tuple(issues) or (Issue(self.code, message),)
        self.retry_after = retry_after


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class MalformedXml(ServiceError):
    status, code = 400, "malformed_xml"


class InvalidRecords(ServiceError):
    status, code = 400, "invalid_record"


class MissingClientKey(ServiceError):
    status, code = 400, "missing_client_key"


class UnknownClientKey(ServiceError):
    status, code = 403, "unknown_client_key"

    def __init__(self) -> None:
        # One answer for unknown, revoked and disabled alike: nothing to learn by probing keys.
        super().__init__("no active clinic has this client_key")


class ImportInProgress(ServiceError):
    status, code = 409, "import_in_progress"


class TooLarge(ServiceError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class Internal(ServiceError):
    """A bug: the answer carries the request id, never the details."""

    status, code = 500, "internal"


class StoreUnavailable(ServiceError):
    """The store kept refusing (throttling, timeouts) after every retry; nothing is lost, retry later."""

    status, code = 503, "unavailable"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class InvalidRequest(ServiceError):
    status, code = 400, "invalid_request"


class SlotUnavailable(ServiceError):
    status, code = 409, "slot_unavailable"
