"""The export use case: a clinic's orders changed within a window, as a MediExchange document."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from mediexchange.clients import authenticate
from mediexchange.errors import BadRequest, MissingClientKey
from mediexchange.protocol.writing import ExportDocument, serialize
from mediexchange.store import Store
from mediexchange.timeutil import zone

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "windows-1251": "windows-1251", "cp1251": "windows-1251"}
# Longer than a change can take from its stamp to a consistent read of the export's index (a
# transaction's retries, DynamoDB's index lag): well under a minute in practice.
REACH_BACK_SECONDS = 120
_UNIX_SECONDS = re.compile(r"[+-]?[0-9]{1,12}")
logger = Logger(service="mediexchange")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    client_key: str
    start: int
    end: int | None
    encoding: str


def _seconds(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    if not _UNIX_SECONDS.fullmatch(raw):
        raise BadRequest(f"{name} must be unix seconds (an integer), got {raw!r}")
    return int(raw)


def parse_request(params: Mapping[str, str]) -> ExportRequest:
    """Check the export parameters; `end` missing or empty means everything from `start` on."""
    client_key = params.get("client_key", "").strip()
    if not client_key:
        raise MissingClientKey("the client_key parameter is required")
    start = _seconds(params, "start")
    if start is None:
        raise BadRequest("the start parameter is required (unix seconds)")
    end = _seconds(params, "end")
    if end is not None and end < start:
        raise BadRequest(f"end ({end}) is before start ({start})")
    requested = params.get("encoding", "").strip().lower() or "utf-8"
    if requested not in ENCODINGS:
        raise BadRequest(f"encoding must be utf-8 or windows-1251, got {requested!r}")
    return ExportRequest(client_key, start, end, ENCODINGS[requested])


@dataclass(frozen=True, slots=True)
class Export:
    """An export document: its bytes, their encoding, and the clinic it belongs to."""

    clinic_id: str
    body: bytes
    encoding: str

    def keep(self, store: Store) -> Callable[[bytes, str], str]:
        """How a document too large to answer with is stored for the MIS to fetch (a presigned URL)."""
        return functools.partial(store.exports.keep, f"orders/{self.clinic_id}")


def export(store: Store, params: Mapping[str, str]) -> Export:
    """The orders of the request's clinic changed in its window, as one MediExchange document."""
    request = parse_request(params)
    clinic = authenticate(store, request.client_key)
    # From a little before `start`: a change stamped before a poll but committed (or indexed) after it
    # is still carried by the next poll of a contiguous window. It may come twice; never not at all.
    start, asked_at = request.start - REACH_BACK_SECONDS, time.time()  # before the read: no later change is in it
    document = ExportDocument(request.client_key, zone(clinic.timezone), clinic.export_names)
    count = store.orders.changed_between(clinic.clinic_id, start, request.end, document.add)
    body = serialize(document.root, request.encoding)
    try:
        store.history.note_export(clinic.clinic_id, start, request.end, asked_at, count)
    except Exception:  # the history only tells the console what was sent: the MIS gets its answer anyway
        logger.exception("export call not noted in the history", extra={"clinic_id": clinic.clinic_id})
    return Export(clinic.clinic_id, body, request.encoding)
