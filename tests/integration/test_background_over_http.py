"""A document too big for the request goes through `make run`'s server: 202, then status.php to the end."""

from __future__ import annotations

import gzip
import time
from urllib.parse import urlencode

from lxml import etree

from tests.integration.conftest import LocalServer


def big_document(client_key: str, appointments: int) -> bytes:
    rows = "".join(
        f'<a tablename="SchedEvent" id="{n}" resource_id="{n % 20}" '
        f'ReceptionDateTime="{1 + n % 28:02d}.02.2031 {8 + n % 10:02d}:{n % 4 * 15:02d}:00" Duration="15" Title="Пациент {n}"/>'
        for n in range(appointments)
    )
    resources = "".join(f'<r id="{n}" name="Врач {n}" time_step="15"/>' for n in range(20))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><MediExchange ClientKey="{client_key}"><Resources>{resources}</Resources>'
        f'<Appointments SyncMode="full">{rows}</Appointments></MediExchange>'
    ).encode()


def test_a_big_gzipped_document_is_accepted_and_followed_to_its_result(server: LocalServer) -> None:
    clinic = server.create_clinic("Big clinic")
    body = gzip.compress(big_document(clinic["client_key"], 6000))
    # When the MIS sends it gzipped
    status, _, answer = server.request(
        "POST", "/services/import.php", body, {"Content-Type": "application/xml", "Content-Encoding": "gzip"}
    )
    # Then it is accepted for the background
    result = etree.fromstring(answer)
    assert (status, result.get("status")) == (202, "accepted")
    import_id = result.get("import_id")
    # And status.php follows it to its final ImportResult
    query = urlencode({"client_key": clinic["client_key"], "import_id": import_id})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status, _, answer = server.request("GET", f"/services/status.php?{query}")
        [entry] = etree.fromstring(answer)
        if entry.get("state") in ("done", "failed"):
            break
        time.sleep(0.5)
    assert entry.get("state") == "done"
    final = entry.find("ImportResult")
    assert final.get("import_id") == import_id
    assert final.get("status") == "ok"
    assert final.find("Appointments").attrib == {
        "mode": "full", "received": "6000", "written": "6000", "deleted": "0", "rejected": "0"
    }  # fmt: skip
