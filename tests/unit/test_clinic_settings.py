"""A clinic's settings (SPEC sections 4, 5 and 6, r2): the export's attribute spelling, the time after which
busy time is stale, the time zone; kept in the Clinics table and changed with `clinic set`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange import cli
from mediexchange.errors import AdminError
from mediexchange.protocol.sections import ORDER_ECHOED
from mediexchange.records import EXPORTED_ORDER_FIELDS, Clinic, ExportNames, Order, OrderStatus
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_export, call_import, document, snapshot

# SPEC section 4: the seed sample's spelling (the default) and the seed table's.
SAMPLE_NAMES = [
    "ID", "Status", "user_id", "user_name", "order_date", "MW_Resource_ID", "Resource_Name", "Resource_ID",
    "Reception_Datetime", "Duration", "Type", "Name1", "Name2", "Name3", "Aim", "Phone", "City", "Address", "Email",
    "Comment", "LastChangedOn",
]  # fmt: skip
TABLE_NAMES = [
    "id", "status", "user_id", "user_name", "order_date", "mw_resource_id", "resource_name", "resource_id",
    "reception_datetime", "duration", "type", "name1", "name2", "name3", "aim", "phone", "city", "address", "email",
    "comment", "LastChangedOn",
]  # fmt: skip
# The values of ORDER (below) in the export's order, whichever the spelling.
VALUES = [
    "7", "0", "42", "Регистратура", "01.02.2024", "369", "Нестеров О. П.", "1", "05.02.2024 17:00:00", "30", "3",
    "Иванов", "Иван", "Иванович", "консультация", "+7 900 000-00-00", "Екатеринбург", "ул. Ленина, 1",
    "patient@example.org", 'Боль в "спине" & <колене>', "15.11.2023 01:13:20",
]  # fmt: skip
STORED_AT = 1_700_000_000  # 14.11.2023 22:13:20 UTC, 15.11.2023 01:13:20 in Moscow
ORDER = Order(
    id=7,
    status=OrderStatus.RECEIVED,
    user_id="42",
    user_name="Регистратура",
    order_date=dt.date(2024, 2, 1),
    mw_resource_id=369,
    resource_name="Нестеров О. П.",
    resource_id=1,
    reception=dt.datetime(2024, 2, 5, 17, 0),
    duration=30,
    name1="Иванов",
    name2="Иван",
    name3="Иванович",
    aim="консультация",
    phone="+7 900 000-00-00",
    city="Екатеринбург",
    address="ул. Ленина, 1",
    email="patient@example.org",
    comment='Боль в "спине" & <колене>',
    last_changed=STORED_AT,
)


def saved(store: Store, clinic: Clinic) -> None:
    store.orders.book(clinic.clinic_id, ORDER, ZoneInfo(clinic.timezone))


def exported_rows(client_key: str = SAMPLE_KEY) -> list[etree._Element]:
    status, body, _ = call_export({"client_key": client_key, "start": "0"})
    assert status == 200, body
    return list(etree.fromstring(body).iter("o"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# -- the two spellings, declared once ----------------------------------------------------------------------


def test_the_order_declaration_holds_both_spellings_in_the_seeds_order() -> None:
    # Given the one declaration of an order's fields; Then each spelling is the SPEC's list, in its order
    assert [ExportNames.SAMPLE.of(f) for _, f in EXPORTED_ORDER_FIELDS] == SAMPLE_NAMES
    assert [ExportNames.TABLE.of(f) for _, f in EXPORTED_ORDER_FIELDS] == TABLE_NAMES
    # And the two differ only in case, so the import (names in any case) reads either
    assert [name.lower() for name in SAMPLE_NAMES] == [name.lower() for name in TABLE_NAMES]
    assert {name.lower() for name in SAMPLE_NAMES} - ORDER_ECHOED == {
        "id", "status", "lastchangedon", "reception_datetime", "duration", "mw_resource_id"
    }  # fmt: skip


def test_the_sample_spelling_is_the_one_the_seed_samples_orders_use() -> None:
    # Given the orders of the seed sample (an MIS echoing the original export; they carry no Comment)
    orders = etree.parse(str(SAMPLE)).getroot().find("Orders")
    # Then their attribute names are the sample spelling, in its order
    assert [list(o.attrib) for o in orders] == [[name for name in SAMPLE_NAMES if name != "Comment"]] * 2


# -- the export ---------------------------------------------------------------------------------------------


def test_a_clinic_exports_the_sample_spelling_by_default(store: Store, clinic: Clinic) -> None:
    # Given a clinic whose settings were never changed, with order 7
    saved(store, clinic)
    # When its MIS exports
    [row] = exported_rows()
    # Then the attributes are the sample's names, in order, with the order's values
    assert list(row.attrib.items()) == list(zip(SAMPLE_NAMES, VALUES, strict=True))


def test_a_clinic_switched_to_the_table_spelling_exports_lower_case_names(store: Store, clinic: Clinic) -> None:
    # Given order 7, and the clinic switched to the table's spelling
    saved(store, clinic)
    store.clinics.update_settings(clinic.clinic_id, export_names=ExportNames.TABLE)
    # When its MIS exports
    [row] = exported_rows()
    # Then the attributes are the table's names, in order, with the same values
    assert list(row.attrib.items()) == list(zip(TABLE_NAMES, VALUES, strict=True))


def test_the_spelling_is_the_clinics_own(store: Store, clinic: Clinic) -> None:
    # Given two clinics with the same order, only the second switched to the table's spelling
    other = store.clinics.create("Other", "Europe/Moscow", "OTHER-KEY")
    saved(store, clinic)
    saved(store, other)
    store.clinics.update_settings(other.clinic_id, export_names=ExportNames.TABLE)
    # Then each exports in its own spelling
    assert [list(row.attrib) for row in exported_rows()] == [SAMPLE_NAMES]
    assert [list(row.attrib) for row in exported_rows("OTHER-KEY")] == [TABLE_NAMES]


@pytest.mark.parametrize("names", list(ExportNames))
def test_an_exported_order_echoed_back_warns_nothing_and_changes_nothing(
    store: Store, clinic: Clinic, dynamodb: Any, names: ExportNames
) -> None:
    # Given order 7 exported in the clinic's spelling
    saved(store, clinic)
    store.clinics.update_settings(clinic.clinic_id, export_names=names)
    [row] = exported_rows()
    assert list(row.attrib) == (SAMPLE_NAMES if names is ExportNames.SAMPLE else TABLE_NAMES)
    before = snapshot(dynamodb)
    # When the MIS sends the exported element back exactly as it read it
    echoed = etree.tostring(row, encoding="unicode").strip()
    status, result, _ = call_import(document(f"<Orders>\n{echoed}\n</Orders>"))
    # Then it is read whole: no Error, no warning (no attribute unknown), the order unchanged
    assert (status, result.get("status")) == (200, "ok")
    assert [child.tag for child in result] == ["Orders"]
    assert dict(result.find("Orders").attrib) == {
        "received": "1", "updated": "0", "unchanged": "1", "conflicts": "0", "unknown": "0", "rejected": "0"
    }  # fmt: skip
    # And nothing stored changed
    assert snapshot(dynamodb) == before
    assert store.orders.get_many(clinic.clinic_id, [7])[7] == ORDER


# -- the settings in the Clinics table ------------------------------------------------------------------------


def test_a_clinic_without_stored_settings_has_the_defaults(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given a clinic whose item holds no settings (as every clinic made before they existed)
    item = dynamodb.get_item(TableName=store.settings.clinics_table, Key={"clinic_id": {"S": clinic.clinic_id}})
    assert {"export_names", "stale_after_hours"} & set(item["Item"]) == set()
    # Then it reads as the sample spelling and stale after 3 hours, however it is found
    expected = Clinic(clinic.clinic_id, "Sample clinic", "Europe/Moscow", True, ExportNames.SAMPLE, 3.0)
    assert (clinic, store.clinics.get(clinic.clinic_id), store.clinics.for_key(SAMPLE_KEY)) == (expected,) * 3
    assert store.clinics.list() == [(expected, 1)]


def test_update_settings_changes_only_what_is_given_and_keeps_it(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # When only the staleness is changed
    changed = store.clinics.update_settings(clinic.clinic_id, stale_after_hours=0.5)
    # Then the clinic has it, the rest as it was, and reads so afterwards
    expected = Clinic(clinic.clinic_id, "Sample clinic", "Europe/Moscow", True, ExportNames.SAMPLE, 0.5)
    assert (changed, store.clinics.get(clinic.clinic_id)) == (expected, expected)
    # When the time zone and the spelling are changed
    changed = store.clinics.update_settings(
        clinic.clinic_id, timezone="Asia/Yekaterinburg", export_names=ExportNames.TABLE
    )
    # Then both are kept along with the earlier staleness, and the key still finds the clinic
    expected = Clinic(clinic.clinic_id, "Sample clinic", "Asia/Yekaterinburg", True, ExportNames.TABLE, 0.5)
    assert (changed, store.clinics.get(clinic.clinic_id), store.clinics.for_key(SAMPLE_KEY)) == (expected,) * 3
    item = dynamodb.get_item(TableName=store.settings.clinics_table, Key={"clinic_id": {"S": clinic.clinic_id}})
    assert (item["Item"]["export_names"], item["Item"]["stale_after_hours"]) == ({"S": "table"}, {"N": "0.5"})


def test_update_settings_refuses_an_unknown_clinic_and_bad_values(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    before = snapshot(dynamodb)
    with pytest.raises(AdminError) as unknown:
        store.clinics.update_settings("nope", export_names=ExportNames.TABLE)
    assert str(unknown.value) == "no clinic nope"
    with pytest.raises(AdminError) as zone:
        store.clinics.update_settings(clinic.clinic_id, timezone="Mars/Olympus")
    assert str(zone.value) == "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Moscow)"
    for hours in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(AdminError) as bad:
            store.clinics.update_settings(clinic.clinic_id, stale_after_hours=hours)
        assert str(bad.value) == f"stale_after_hours must be a positive number of hours, got {hours}"
    # And nothing was written, no clinic made
    assert snapshot(dynamodb) == before


def test_the_time_zone_set_later_is_the_one_the_export_writes(store: Store, clinic: Clinic) -> None:
    # Given order 7, last changed at 22:13:20 UTC
    saved(store, clinic)
    # When the clinic's zone becomes Yekaterinburg (UTC+5)
    store.clinics.update_settings(clinic.clinic_id, timezone="Asia/Yekaterinburg")
    # Then the export writes the change in Yekaterinburg time
    [row] = exported_rows()
    assert row.get("LastChangedOn") == "15.11.2023 03:13:20"


# -- the CLI: clinic set -------------------------------------------------------------------------------------


def test_clinic_set_changes_every_setting_and_prints_them(
    store: Store, clinic: Clinic, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the administrator sets all three
    code, lines, err = run_cli(
        capsys, "clinic", "set", clinic.clinic_id,
        "--timezone", "Asia/Yekaterinburg", "--export-names", "table", "--stale-after", "1.5",
    )  # fmt: skip
    # Then it prints the clinic's settings after the change, one `name: value` a line
    assert (code, err) == (0, "")
    assert lines == [
        f"clinic_id: {clinic.clinic_id}",
        "name: Sample clinic",
        "timezone: Asia/Yekaterinburg",
        "export_names: table",
        "stale_after_hours: 1.5",
    ]
    # And the store has them
    assert store.clinics.get(clinic.clinic_id) == Clinic(
        clinic.clinic_id, "Sample clinic", "Asia/Yekaterinburg", True, ExportNames.TABLE, 1.5
    )


def test_clinic_set_with_one_option_keeps_the_others(
    store: Store, clinic: Clinic, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a clinic switched to the table's spelling
    assert run_cli(capsys, "clinic", "set", clinic.clinic_id, "--export-names", "table")[0] == 0
    # When only the staleness is set, in whole hours
    code, lines, _ = run_cli(capsys, "clinic", "set", clinic.clinic_id, "--stale-after", "6")
    # Then the spelling stays, and whole hours print without a fraction
    assert (code, lines[2:]) == (0, ["timezone: Europe/Moscow", "export_names: table", "stale_after_hours: 6"])
    # When switched back to the sample's spelling, the export writes it again
    saved(store, clinic)
    code, lines, _ = run_cli(capsys, "clinic", "set", clinic.clinic_id, "--export-names", "sample")
    assert (code, lines[3:]) == (0, ["export_names: sample", "stale_after_hours: 6"])
    assert [list(row.attrib) for row in exported_rows()] == [SAMPLE_NAMES]


BAD_SETS = [
    pytest.param([], "mediexchange: clinic set needs at least one of --timezone, --export-names, --stale-after", id="no option"),
    pytest.param(["--timezone", "Mars/Olympus"], "mediexchange: unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Moscow)", id="unknown zone"),
    pytest.param(["--stale-after", "0"], "mediexchange: --stale-after must be a positive number of hours, got '0'", id="zero hours"),
    pytest.param(["--stale-after", "-2"], "mediexchange: --stale-after must be a positive number of hours, got '-2'", id="negative hours"),
    pytest.param(["--stale-after", "three"], "mediexchange: --stale-after must be a positive number of hours, got 'three'", id="not a number"),
    pytest.param(["--stale-after", "nan"], "mediexchange: --stale-after must be a positive number of hours, got 'nan'", id="nan"),
    pytest.param(["--stale-after", "inf"], "mediexchange: --stale-after must be a positive number of hours, got 'inf'", id="infinite"),
    pytest.param(["--export-names", "table", "--stale-after", "0"], "mediexchange: --stale-after must be a positive number of hours, got '0'", id="one bad option of two"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "message"), BAD_SETS)
def test_clinic_set_refuses_bad_options_and_changes_nothing(
    store: Store, clinic: Clinic, dynamodb: Any, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    before = snapshot(dynamodb)
    code, lines, err = run_cli(capsys, "clinic", "set", clinic.clinic_id, *options)
    assert (code, lines, err.splitlines()) == (2, [], [message])
    assert snapshot(dynamodb) == before


def test_clinic_set_on_an_unknown_clinic_fails_cleanly(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_cli(capsys, "clinic", "set", "nope", "--export-names", "table")
    assert (code, lines, err.splitlines()) == (2, [], ["mediexchange: no clinic nope"])


def test_clinic_set_refuses_an_unknown_spelling(clinic: Clinic, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["clinic", "set", clinic.clinic_id, "--export-names", "upper"])
    assert exit_.value.code == 2
    assert "argument --export-names: invalid choice: 'upper' (choose from" in capsys.readouterr().err


def test_clinic_list_and_create_json_keep_their_format(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a clinic made with --json
    code, lines, _ = run_cli(capsys, "clinic", "create", "--name", "A", "--client-key", "K1", "--json")
    created = json.loads(lines[-1])
    assert (code, len(lines)) == (0, 1)
    assert created == {"clinic_id": created["clinic_id"], "name": "A", "timezone": "Europe/Moscow", "client_key": "K1"}
    # When its settings change
    run_cli(capsys, "clinic", "set", created["clinic_id"], "--timezone", "Asia/Yekaterinburg", "--stale-after", "2")
    # Then the list's line is as before, with the new zone
    _, lines, _ = run_cli(capsys, "clinic", "list")
    assert lines == [f"{created['clinic_id']}\tenabled\t1 key(s)\tAsia/Yekaterinburg\tA"]
