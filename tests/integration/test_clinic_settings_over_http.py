"""`clinic set` with the real CLI against `make run`'s server: a clinic's export switches from the seed sample's
spelling (the default) to the seed table's, over real HTTP (SPEC sections 4 and 6, r2)."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlencode

from lxml import etree

from tests.integration.conftest import MEDIEXCHANGE, LocalServer
from tests.integration.test_portal_over_http import book, mis_document, setup_clinic

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


def export_one(server: LocalServer, client_key: str) -> etree._Element:
    status, _, body = server.request("GET", "/services/export.php?" + urlencode({"client_key": client_key, "start": 0}))
    assert status == 200, body
    [row] = etree.fromstring(body).iter("o")
    return row


def test_an_administrator_switches_a_clinics_export_to_the_table_spelling(server: LocalServer) -> None:
    # Given a clinic (made by the CLI) whose patient booked 09:30 through the portal
    clinic, resource_id = setup_clinic(server, "Spelling clinic")
    key = clinic["client_key"]
    status, order = book(server, clinic, resource_id, "09:30", "Кузнецова", phone="+79120000001")
    assert status == 201, order
    # When its MIS exports: the sample's spelling, the default
    sample = export_one(server, key)
    assert list(sample.attrib) == SAMPLE_NAMES
    assert (sample.get("ID"), sample.get("Status"), sample.get("MW_Resource_ID"), sample.get("Resource_ID")) == (
        str(order["id"]), "0", "77", str(resource_id)
    )  # fmt: skip
    assert (sample.get("Name1"), sample.get("Phone"), sample.get("Duration")) == ("Кузнецова", "+79120000001", "30")
    # And the MIS sending that element back as it read it gets it read whole: no Error, no warning, unchanged
    echo = mis_document(key, "<Orders>" + etree.tostring(sample, encoding="unicode").strip() + "</Orders>")
    status, _, body = server.request("POST", "/services/import.php", echo, {"Content-Type": "application/xml"})
    result = etree.fromstring(body)
    assert (status, result.get("status"), [child.tag for child in result]) == (200, "ok", ["Orders"])
    assert dict(result.find("Orders").attrib) == {
        "received": "1", "updated": "0", "unchanged": "1", "conflicts": "0", "unknown": "0", "rejected": "0"
    }  # fmt: skip
    # When the administrator switches the clinic to the table's spelling (and sets its staleness)
    lines = server.cli("clinic", "set", clinic["clinic_id"], "--export-names", "table", "--stale-after", "0.5")
    # Then the command prints the clinic's settings after the change
    assert lines == [
        f"clinic_id: {clinic['clinic_id']}",
        "name: Spelling clinic",
        "timezone: Europe/Moscow",
        "export_names: table",
        "stale_after_hours: 0.5",
    ]
    # And the next export writes the table's names, in the same order, with the very same values
    table = export_one(server, key)
    assert list(table.attrib) == TABLE_NAMES
    assert list(table.attrib.values()) == list(sample.attrib.values())
    # And `clinic set` without an option is refused with one clear line, the clinic left as it is
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": server.dynamodb_url}
    done = subprocess.run(
        [MEDIEXCHANGE, "clinic", "set", clinic["clinic_id"]], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (
        2, "", ["mediexchange: clinic set needs at least one of --timezone, --export-names, --stale-after"]
    )  # fmt: skip
    assert list(export_one(server, key).attrib) == TABLE_NAMES
