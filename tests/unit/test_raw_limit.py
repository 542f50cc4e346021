"""Imports within the real limit (issue 11, item 3): Lambda's 6 MB event holds the body base64-encoded, so at most
MAX_REQUEST_BYTES (4,669,440) reach the function as sent. Over it, import.php answers the XML 413 too_large, naming
the limit and saying to send it gzipped; gzipped, a document may inflate to max_document_bytes (50 MiB)."""

from __future__ import annotations

import gzip
import os
from typing import Any

from mediexchange.config import EVENT_ENVELOPE_BYTES, LAMBDA_PAYLOAD_BYTES, MAX_REQUEST_BYTES
from mediexchange.protocol.sections import GROUPS
from mediexchange.records import Clinic, Group
from mediexchange.store import Store

from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import call_import, snapshot

TOO_LARGE = (
    "the request body is larger than 4669440 bytes, the most that reaches the service: "
    "send it gzipped (Content-Encoding: gzip), up to 52428800 bytes once inflated"
)


def error_of(result: Any) -> dict[str, str | None]:
    [error] = result.iter("Error")
    return {**error.attrib, "text": error.text}


def document_of_size(size: int) -> bytes:
    """One group, then a comment (the parser drops it) up to exactly `size` bytes."""
    start = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">'.encode()
    start += '<ResourceGroups><rg id="1" name="Терапия"/></ResourceGroups>'.encode()
    end = b"</MediExchange>"
    body = start + b"<!--" + b" " * (size - len(start) - len(end) - 7) + b"-->" + end
    assert len(body) == size
    return body


def test_the_limit_is_what_fits_lambdas_6_mb_after_base64_with_room_for_the_envelope() -> None:
    assert MAX_REQUEST_BYTES == (LAMBDA_PAYLOAD_BYTES - EVENT_ENVELOPE_BYTES) // 4 * 3 == 4_669_440
    assert len(b"=" * ((MAX_REQUEST_BYTES + 2) // 3 * 4)) + EVENT_ENVELOPE_BYTES <= LAMBDA_PAYLOAD_BYTES


def test_a_body_of_exactly_the_limit_is_imported(store: Store, clinic: Clinic) -> None:
    # Given a document of exactly 4,669,440 bytes; When it is imported as it is
    status, result, _ = call_import(document_of_size(MAX_REQUEST_BYTES))
    # Then it is applied
    assert (status, result.get("status")) == (200, "ok"), error_of(result)
    assert store.records.all(clinic.clinic_id, GROUPS) == [Group(1, "Терапия")]


def test_a_body_a_byte_over_the_limit_is_413_saying_send_it_gzipped(clinic: Clinic, dynamodb: Any) -> None:
    # Given a document one byte longer
    body = document_of_size(MAX_REQUEST_BYTES + 1)
    before = snapshot(dynamodb)
    # When it is imported as it is, with and without its Content-Length
    for headers in ({}, {"content_length": str(len(body))}):
        status, result, _ = call_import(body, **headers)
        # Then it is the XML 413, naming the limit and what to do, and nothing changed
        assert (status, result.tag, result.get("status")) == (413, "ImportResult", "error")
        assert error_of(result) == {"code": "too_large", "text": TOO_LARGE}
    assert snapshot(dynamodb) == before


def test_a_declared_length_over_the_limit_is_refused_before_reading(clinic: Clinic) -> None:
    status, result, _ = call_import(b"<tiny/>", content_length=str(MAX_REQUEST_BYTES + 1))
    assert (status, error_of(result)) == (413, {"code": "too_large", "text": TOO_LARGE})


def test_the_same_document_gzipped_is_imported(store: Store, clinic: Clinic) -> None:
    # Given the document a byte over the limit, gzipped
    body = gzip.compress(document_of_size(MAX_REQUEST_BYTES + 1))
    # When it is imported; Then it is applied
    status, result, _ = call_import(body, content_encoding="gzip")
    assert (status, result.get("status")) == (200, "ok"), error_of(result)
    assert store.records.all(clinic.clinic_id, GROUPS) == [Group(1, "Терапия")]


def test_a_gzip_body_over_the_limit_as_sent_is_413_too(clinic: Clinic) -> None:
    # Given a gzip body that is itself over the limit (incompressible bytes)
    body = gzip.compress(os.urandom(MAX_REQUEST_BYTES))
    assert len(body) > MAX_REQUEST_BYTES
    # When it is posted; Then it is refused for its size as sent
    status, result, _ = call_import(body, content_encoding="gzip")
    assert (status, error_of(result)) == (
        413,
        {
            "code": "too_large",
            "text": "the gzipped request body is larger than 4669440 bytes, the most that reaches the service",
        },
    )
