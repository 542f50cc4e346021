"""The sample events (shared with `sam local invoke -e`) and the administrator's CLI."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from lxml import etree
from mediexchange import cli
from mediexchange.records import Clinic
from mediexchange.store import Store

from functions.mis_export.app import lambda_handler as export_handler
from functions.mis_import.app import lambda_handler as import_handler
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, decoded, load_event


def test_the_import_event_carries_the_projects_seed_sample() -> None:
    event = load_event("import-seed-form.json")
    form = parse_qs(base64.b64decode(event["body"]).decode())
    assert form["xml"][0].encode() == SAMPLE.read_bytes()


def test_the_sample_events_run_through_the_handlers(clinic: Clinic) -> None:
    imported = import_handler(load_event("import-seed-form.json"), FakeContext())
    assert imported["statusCode"] == 200
    assert etree.fromstring(decoded(imported)).find("Resources").get("written") == "70"
    exported = export_handler(load_event("export.json"), FakeContext())
    assert exported["statusCode"] == 200
    assert etree.fromstring(decoded(exported)).find("Orders") is not None


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_clinic_create_keeps_a_given_key_and_prints_it_last(
    store: Store, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = run_cli(capsys, "clinic", "create", "--name", "Клиника", "--client-key", SAMPLE_KEY)
    assert code == 0
    assert lines[-1] == SAMPLE_KEY
    clinic = store.clinics.for_key(SAMPLE_KEY)
    assert clinic is not None and clinic.name == "Клиника" and clinic.timezone == "Europe/Moscow"


def test_clinic_create_json_makes_a_new_key(store: Store, dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run_cli(capsys, "clinic", "create", "--name", "B", "--timezone", "Asia/Yekaterinburg", "--json")
    created = json.loads(lines[-1])
    assert code == 0 and len(lines) == 1
    clinic = store.clinics.for_key(created["client_key"])
    assert clinic is not None and clinic.clinic_id == created["clinic_id"] and clinic.timezone == "Asia/Yekaterinburg"


def test_clinic_create_refuses_a_key_in_use_and_a_bad_zone(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, "clinic", "create", "--name", "A", "--client-key", "K1")
    code, _, err = run_cli(capsys, "clinic", "create", "--name", "B", "--client-key", "K1")
    assert (code, err.strip()) == (2, "mediexchange: this client key is already in use")
    code, _, err = run_cli(capsys, "clinic", "create", "--name", "B", "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone" in err


def test_rotate_then_revoke_keeps_exactly_one_key_working(
    store: Store, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a clinic with key K1
    _, lines, _ = run_cli(capsys, "clinic", "create", "--name", "A", "--client-key", "K1", "--json")
    clinic_id = json.loads(lines[-1])["clinic_id"]
    # When a key is rotated in, both work
    _, lines, _ = run_cli(capsys, "clinic", "rotate-key", clinic_id)
    new_key = lines[-1]
    assert store.clinics.for_key("K1") and store.clinics.for_key(new_key)
    # And a third key is refused while two are live
    code, _, err = run_cli(capsys, "clinic", "rotate-key", clinic_id)
    assert code == 2 and "revoke one first" in err
    # When the old key is revoked, only the new one works
    assert run_cli(capsys, "clinic", "revoke-key", clinic_id, "K1")[0] == 0
    assert store.clinics.for_key("K1") is None
    assert store.clinics.for_key(new_key) is not None
    # And the list shows one live key
    _, lines, _ = run_cli(capsys, "clinic", "list")
    assert lines == [f"{clinic_id}\tenabled\t1 key(s)\tEurope/Moscow\tA"]


def test_disable_refuses_the_clinics_keys(store: Store, dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, lines, _ = run_cli(capsys, "clinic", "create", "--name", "A", "--client-key", "K1", "--json")
    clinic_id = json.loads(lines[-1])["clinic_id"]
    assert run_cli(capsys, "clinic", "disable", clinic_id)[0] == 0
    assert store.clinics.for_key("K1") is None
    assert run_cli(capsys, "clinic", "list")[1][0].split("\t")[1] == "disabled"


def test_commands_on_an_unknown_clinic_fail_cleanly(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "clinic", "disable", "nope")
    assert (code, err.strip()) == (2, "mediexchange: no clinic nope")
