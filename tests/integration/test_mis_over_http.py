"""A clinic's MIS against `make run`'s server: the README's walk-through, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

from lxml import etree

from devserver.server import free_port
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.integration.conftest import MEDIEXCHANGE, LocalServer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def counts(body: bytes) -> dict[str, dict[str, str]]:
    return {c.tag: dict(c.attrib) for c in etree.fromstring(body) if c.tag not in ("Error", "Warnings")}


def test_seed_sample_in_and_orders_out(server: LocalServer) -> None:
    # Given a clinic created with the CLI, keeping the sample's own ClientKey
    server.create_clinic("Sample clinic", SAMPLE_KEY)
    form = b"xml=" + quote_from_bytes(SAMPLE.read_bytes()).encode()
    # When the MIS posts the sample as the original portal took it
    status, headers, body = server.request("POST", "/services/import.php", form, FORM)
    # Then every section is counted and the orders are unknown
    assert status == 200, body
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert counts(body) == {
        "ResourceGroups": {"received": "11", "written": "11", "deleted": "0", "rejected": "0"},
        "Resources": {"received": "70", "written": "70", "deleted": "0", "rejected": "0"},
        "Schedules": {"received": "43", "written": "43", "deleted": "0", "rejected": "0"},
        "Appointments": {"mode": "full", "received": "1", "written": "1", "deleted": "0", "rejected": "0"},
        "Orders": {
            "received": "2",
            "updated": "0",
            "unchanged": "0",
            "conflicts": "0",
            "unknown": "2",
            "rejected": "0",
        },
    }
    # When it sends the same document again, as raw windows-1251 XML
    text = SAMPLE.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="windows-1251"')
    status, _, body = server.request(
        "POST", "/services/import.php", text.encode("cp1251"), {"Content-Type": "text/xml"}
    )
    # Then nothing is written
    assert status == 200
    assert {c["written"] for name, c in counts(body).items() if name != "Orders"} == {"0"}
    # And the orders export answers, by GET and by POST form, in windows-1251 when asked
    query = urlencode({"client_key": SAMPLE_KEY, "start": "0", "encoding": "windows-1251"})
    status, headers, body = server.request("GET", f"/services/export.php?{query}")
    assert status == 200 and headers["Content-Type"] == "application/xml; charset=windows-1251"
    assert etree.fromstring(body).get("ClientKey") == SAMPLE_KEY
    status, _, body = server.request("POST", "/services/export.php", query.encode(), FORM)
    assert status == 200 and etree.fromstring(body).find("Orders") is not None


def test_a_document_with_bad_records_is_applied_partially_over_http(server: LocalServer) -> None:
    # Given a clinic, and a document with a good and a bad resource and a section sent twice in another
    clinic = server.create_clinic("Partial clinic")

    def post(body: str) -> tuple[int, dict[str, str], bytes]:
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{clinic["client_key"]}">\n{body}\n</MediExchange>'
        return server.request("POST", "/services/import.php", xml.encode(), {"Content-Type": "application/xml"})

    # When the MIS posts resources of which one is bad
    status, headers, body = post(
        '<Resources>\n<r id="1" name="A" time_step="30"/>\n<r id="2" name="B" time_step="0"/>\n</Resources>'
    )
    # Then the answer is 200, partial, with the bad record as an Error and the good one written
    assert (status, headers["Content-Type"]) == (200, "application/xml; charset=utf-8")
    result = etree.fromstring(body)
    assert result.get("status") == "partial"
    assert [({**e.attrib}, e.text) for e in result.findall("Error")] == [
        (
            {"code": "invalid_record", "line": "5", "section": "Resources", "id": "2", "attribute": "time_step"},
            "attribute time_step must be from 1 to 1440, got 0",
        )
    ]
    assert counts(body) == {"Resources": {"received": "2", "written": "1", "deleted": "0", "rejected": "1"}}
    # When a document sends a section twice; Then it is refused whole with 400
    status, _, body = post("<Resources/>\n<Resources/>")
    assert (status, etree.fromstring(body).get("status")) == (400, "error")
    _, view = json_get(server, f"/portal/clinics/{clinic['clinic_id']}")
    assert [r["mw_resource_id"] for r in view["resources"]] == [1]


def json_get(server: LocalServer, path: str) -> tuple[int, Any]:
    status, _, raw = server.request("GET", path, headers={"x-api-key": server.portal_api_key})
    return status, json.loads(raw)


def test_errors_over_http_are_xml_with_the_right_status(server: LocalServer) -> None:
    status, _, body = server.request(
        "POST", "/services/import.php", b"<MediExchange ClientKey='nobody'/>", {"Content-Type": "application/xml"}
    )
    assert status == 403 and etree.fromstring(body).find("Error").get("code") == "unknown_client_key"
    status, _, body = server.request("GET", "/services/export.php?client_key=nobody")
    root = etree.fromstring(body)
    assert (status, root.tag, root.find("Error").get("code")) == (400, "ExportResult", "bad_request")


def test_unknown_paths_get_api_gateways_answer(server: LocalServer) -> None:
    assert server.request("GET", "/services/nothing.php")[::2] == (403, b'{"message":"Missing Authentication Token"}')
    assert server.request("DELETE", "/services/import.php")[0] == 403


def test_cli_lists_what_it_created(server: LocalServer) -> None:
    created = server.create_clinic("Listed clinic")
    assert any(line.startswith(created["clinic_id"] + "\tenabled") for line in server.cli("clinic", "list"))


def test_the_cli_works_from_a_newcomers_shell_whatever_its_aws_settings(server: LocalServer) -> None:
    # Given a shell set up for another region and a profile this machine does not have
    shell = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_PROFILE": "no-such-profile"}
    # When the README's command runs against make run's store; Then it creates the clinic
    created = json.loads(server.cli("clinic", "create", "--name", "Newcomer", "--json", env=shell)[-1])
    assert any(line.startswith(created["clinic_id"]) for line in server.cli("clinic", "list", env=shell))


def test_a_cli_failure_is_one_clear_line_never_a_traceback() -> None:
    # Given no store where DYNAMODB_ENDPOINT_URL points
    env = {**os.environ, "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    # When the administrator lists clinics
    done = subprocess.run([MEDIEXCHANGE, "clinic", "list"], env=env, capture_output=True, text=True, timeout=120)
    # Then the command fails with one line that says what happened
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("mediexchange: the store cannot be reached; nothing accepted was lost, try again later (")
    assert "EndpointConnectionError" in line and "Traceback" not in done.stderr
