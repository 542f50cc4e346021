"""dry_run=1: the same ImportResult an import would give, and nothing written at all."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_from_bytes

import boto3
from mediexchange import importing
from mediexchange.clients import KeyOwner
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, api_event, call_import, call_status, decoded, document, snapshot


def dry_run_import(body: bytes, content_type: str = "application/xml", query: dict[str, str] | None = None) -> Any:
    from lxml import etree

    from functions.mis_import.app import lambda_handler

    event = api_event("POST", "/services/import.php", body, {"Content-Type": content_type}, query)
    response = lambda_handler(event, FakeContext())
    return response["statusCode"], etree.fromstring(decoded(response))


def counts(result: Any) -> dict[str, dict[str, str]]:
    return {c.tag: dict(c.attrib) for c in result if c.tag not in ("Warnings", "Error")}


def documents_kept(store: Store) -> int:
    listed = boto3.client("s3").list_objects_v2(Bucket=store.settings.documents_bucket)
    return int(listed.get("KeyCount", 0))


def test_a_dry_run_answers_what_the_import_would_do_and_writes_nothing(
    store: Store, clinic: Clinic, dynamodb: Any
) -> None:
    # Given a clinic with nothing stored
    before, kept = snapshot(dynamodb), documents_kept(store)
    # When the sample is sent as a dry run (query string)
    status, result = dry_run_import(SAMPLE.read_bytes(), query={"dry_run": "1"})
    # Then the answer is the import's, marked dry_run, and nothing at all was written, not even the log
    assert (status, result.get("status"), result.get("dry_run")) == (200, "ok", "1")
    assert counts(result)["Resources"] == {"received": "70", "written": "70", "deleted": "0", "rejected": "0"}
    assert snapshot(dynamodb) == before and documents_kept(store) == kept
    assert call_status({"client_key": SAMPLE_KEY})[1].findall("import") == []
    # And the real import then does exactly what the dry run said
    real_status, real, _ = call_import(SAMPLE.read_bytes())
    assert real_status == 200 and real.get("dry_run") is None
    assert counts(real) == counts(result)


def test_a_dry_run_as_a_form_field_reports_rejections_and_deletions(
    store: Store, clinic: Clinic, dynamodb: Any
) -> None:
    # Given the sample imported
    assert call_import(SAMPLE.read_bytes())[0] == 200
    before = snapshot(dynamodb)
    # When a document replacing the groups with one good and one bad group is tried as a form post
    document = f'<MediExchange ClientKey="{SAMPLE_KEY}"><ResourceGroups><rg id="1" name="A"/><rg id="x" name="B"/></ResourceGroups></MediExchange>'
    form = b"xml=" + quote_from_bytes(document.encode()).encode() + b"&dry_run=1"
    status, result = dry_run_import(form, "application/x-www-form-urlencoded")
    # Then it says what would happen: one written, the rejected one listed, nothing deleted (its key is
    # unreadable, so deletions are suspended), and the store is as it was
    assert (status, result.get("status"), result.get("dry_run")) == (200, "partial", "1")
    assert counts(result)["ResourceGroups"] == {"received": "2", "written": "1", "deleted": "0", "rejected": "1"}
    assert [w.get("code") for w in result.find("Warnings")] == ["deletions_suspended"]
    assert snapshot(dynamodb) == before


def test_a_known_key_owner_is_used_only_for_the_key_the_document_carries(store: Store, clinic: Clinic) -> None:
    # Given another clinic, handed on as the owner of its own key
    other_key = "0F0F0F0F-1111-2222-3333-444455556666"
    other = KeyOwner(other_key, store.clinics.create("Other clinic", "Europe/Moscow", other_key))
    # When a document carrying the sample's key is dry-run with it, and one carrying the other's key
    sample = importing.receive_document(store, SAMPLE.read_bytes(), dry_run=True, known=other)
    theirs = importing.receive_document(store, document("", other_key), dry_run=True, known=other)
    # Then the sample's document is the sample clinic's, its key looked up; the other's is the other clinic's
    assert (sample.clinic, theirs.clinic) == (clinic, other.clinic)
