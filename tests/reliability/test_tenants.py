"""Keys and tenants: two clinics whose ids all overlap never see or change each other's data through any
endpoint; revoked and disabled keys look unknown; no secret or patient field reaches a log line."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from mediexchange.store import Store

from tests.reliability.figures import record
from tests.unit.conftest import call_export, call_import, call_portal, document

DAY = dt.date.today() + dt.timedelta(days=4)
SETUP = (
    '<Resources><r id="1" name="{name}" time_step="30"/></Resources>'
    f'<Schedules><s id="1" date="{DAY:%d.%m.%Y}" resource_id="1"><time_rules w_start="9:00" w_end="11:00"/></s></Schedules>'
)
KEYS = {"a": "KEY-OF-CLINIC-A-5b1f", "b": "KEY-OF-CLINIC-B-93c2"}
PATIENTS = {
    "a": ("Алексеева", "+7 900 111-11-11", "alekseeva@example.ru"),
    "b": ("Борисов", "+7 900 222-22-22", "borisov@example.ru"),
}


@pytest.fixture
def two_clinics(store: Store, dynamodb: Any) -> dict[str, Any]:
    """Clinics a and b: the same MIS resource id 1, portal resource id 1 and order id 1 in each."""
    made = {}
    for side in "ab":
        clinic = store.clinics.create(f"Clinic {side}", "Europe/Moscow", KEYS[side])
        assert call_import(document(SETUP.format(name=f"Doctor {side}"), KEYS[side]))[0] == 200
        name, phone, email = PATIENTS[side]
        booking = {
            "resource_id": 1,
            "reception_datetime": f"{DAY}T09:00",
            "name1": name,
            "phone": phone,
            "email": email,
        }
        status, order = call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", booking)
        assert status == 201 and order["id"] == 1
        made[side] = (clinic, order)
    return made


def exported(side: str) -> list[dict[str, str]]:
    status, body, _ = call_export({"client_key": KEYS[side], "start": "0"})
    assert status == 200
    return [dict(o.attrib) for o in etree.fromstring(body).iter("o")]


def test_no_endpoint_crosses_clinics(two_clinics: dict[str, Any]) -> None:
    (a, order_a), (b, _) = two_clinics["a"], two_clinics["b"]
    checks = 0
    # import: a's key rejects "order 1" - only a's order changes
    stamp = dt.datetime.fromisoformat(order_a["last_changed"]).strftime("%d.%m.%Y %H:%M:%S")
    call_import(document(f'<Orders><o id="1" status="3" LastChangedOn="{stamp}"/></Orders>', KEYS["a"]))
    assert [o["Status"] for o in exported("a")] == ["3"] and [o["Status"] for o in exported("b")] == ["0"]
    checks += 2
    # export: each key sees its own patient only
    assert [o["Name1"] for o in exported("a")] == ["Алексеева"]
    assert [o["Name1"] for o in exported("b")] == ["Борисов"]
    checks += 2
    # portal clinic view, slots, order, booking: each clinic's own
    for side, clinic in (("a", a), ("b", b)):
        _, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
        assert [r["name"] for r in view["resources"]] == [f"Doctor {side}"]
        _, order = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/orders/1")
        assert order["name1"] == PATIENTS[side][0]
        checks += 2
    _, slots_a = call_portal(
        "GET", f"/portal/clinics/{a.clinic_id}/slots", query={"resource_id": "1", "from": str(DAY), "to": str(DAY)}
    )
    _, slots_b = call_portal(
        "GET", f"/portal/clinics/{b.clinic_id}/slots", query={"resource_id": "1", "from": str(DAY), "to": str(DAY)}
    )
    assert slots_a["slots"][0]["start"][11:16] == "09:00"  # a's order was rejected: free again
    assert slots_b["slots"][0]["start"][11:16] == "09:30"  # b's order still holds 09:00
    checks += 2
    status, _ = call_portal(
        "POST",
        f"/portal/clinics/{a.clinic_id}/orders",
        {"resource_id": 1, "reception_datetime": f"{DAY}T10:00", "name1": "Новиков", "phone": "+79001234567"},
    )
    assert status == 201 and len(exported("b")) == 1
    checks += 1
    record("tenants", tenant_checks_passed=checks)


def test_revoked_and_disabled_keys_look_exactly_unknown(store: Store, two_clinics: dict[str, Any]) -> None:
    (a, _), (b, _) = two_clinics["a"], two_clinics["b"]
    unknown = call_export({"client_key": "NO-SUCH-KEY", "start": "0"})
    new_key = store.clinics.rotate_key(a.clinic_id)
    store.clinics.revoke_key(a.clinic_id, KEYS["a"])
    store.clinics.disable(b.clinic_id)
    for key in (KEYS["a"], KEYS["b"]):
        assert call_export({"client_key": key, "start": "0"})[:2] == unknown[:2]
        assert call_import(document("", key))[1].find("Error").attrib == {"code": "unknown_client_key"}
    assert call_export({"client_key": new_key, "start": "0"})[0] == 200
    record("tenants", tenant_checks_passed=5)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every line the service logs, at every level, formatted as in production (JSON)."""
    logger = logging.getLogger("mediexchange")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.handlers[0].formatter)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_no_key_or_patient_field_reaches_the_logs(
    two_clinics: dict[str, Any], logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    (a, order_a), _ = two_clinics["a"], two_clinics["b"]
    # Whole requests, good and bad, with keys and patient data in them, and one that hits a bug
    exported("a")
    call_import(
        document('<Resources><r id="1" name="Алексеева +7 900 111-11-11" time_step="x"/></Resources>', KEYS["a"])
    )
    call_import(b"<MediExchange ClientKey='KEY-OF-CLINIC-A-5b1f'><broken", "application/xml")
    call_portal(
        "POST",
        f"/portal/clinics/{a.clinic_id}/orders",
        {"resource_id": 1, "reception_datetime": "bad", "name1": "Алексеева", "phone": "+7 900 111-11-11"},
    )
    call_portal("GET", f"/portal/clinics/{a.clinic_id}/orders/{order_a['id']}")

    def bug(*_: Any) -> None:
        raise RuntimeError(f"bug while holding {KEYS['a']} and {PATIENTS['a'][2]}")

    monkeypatch.setattr("mediexchange.exporting.authenticate", bug)
    assert call_export({"client_key": KEYS["a"], "start": "0"})[0] == 500
    text = logs.getvalue()
    assert '"level":"ERROR"' in text and '"level":"INFO"' in text  # the requests did log, the bug too
    secrets = [*KEYS.values(), *(field for patient in PATIENTS.values() for field in patient)]
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    record("tenants", log_lines_searched=text.count("\n"), secrets_in_logs=len(leaked))
