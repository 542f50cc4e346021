"""SPEC section 7: `make run`'s server enforces the limits the deployed stack has, and answers past them as AWS
does: API Gateway's 10 MB body, Lambda's 6 MB event and answer (after base64), API Gateway's 29 s integration
timeout. Over real HTTP: the import's own answers against `python -m devserver`, the gateway's against the same
LocalApi served in this process with handlers of this module behind it (no endpoint of the service may
answer 6 MB or take 29 s, by design)."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from lxml import etree
from mediexchange.config import MAX_REQUEST_BYTES, Settings
from mediexchange.protocol.sections import RESOURCES
from mediexchange.store import Store

from devserver import server as devserver
from devserver import template
from devserver.server import API_BODY_BYTES, LAMBDA_REQUEST_BYTES, LAMBDA_RESPONSE_BYTES, LocalApi, free_port
from devserver.template import Route
from tests.integration.conftest import LocalServer, local_server

XML = {"Content-Type": "application/xml"}
GROUPS = '<ResourceGroups><rg id="1" name="Терапия"/><rg id="2" name="Хирургия"/></ResourceGroups>'


def padded_document(client_key: str, size: int) -> bytes:
    """Two groups, then comments (the parser drops them) up to exactly `size` bytes."""
    start = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{client_key}">{GROUPS}'.encode()
    end = b"</MediExchange>"
    room = size - len(start) - len(end)
    comments = b"".join(b"<!--" + b" " * (min(room, 1_000_000) - 7) + b"-->" for _ in range(room // 1_000_000))
    rest = room - len(comments)
    tail = b"<!--" + b" " * (rest - 7) + b"-->" if rest >= 7 else b" " * rest
    document = start + comments + tail + end
    assert len(document) == size
    return document


def imports_of(server: LocalServer, client_key: str) -> list[Any]:
    status, _, answer = server.request("GET", "/services/status.php?" + urlencode({"client_key": client_key}))
    assert status == 200
    return list(etree.fromstring(answer))


def group_names(server: LocalServer, clinic_id: str) -> list[str]:
    status, _, answer = server.request(
        "GET", f"/portal/clinics/{clinic_id}", headers={"x-api-key": server.portal_api_key}
    )
    assert status == 200
    return [group["name"] for group in json.loads(answer)["groups"]]


# -- the import's own limit: what reaches the function, as sent -------------------------------------------


def test_an_import_just_over_the_raw_limit_gets_the_xml_413_and_gzipped_it_is_accepted(server: LocalServer) -> None:
    # Given a document one byte over the most that surely reaches the function as sent (4,669,440 bytes):
    # base64-encoded in its event it is still under Lambda's 6 MB, so the function itself answers
    clinic = server.create_clinic("Raw limit clinic")
    document = padded_document(clinic["client_key"], MAX_REQUEST_BYTES + 1)
    # When the MIS sends it as it is
    status, headers, answer = server.request("POST", "/services/import.php", document, XML)
    # Then it is the XML 413 too_large, naming the limit and what to do
    assert (status, headers["Content-Type"]) == (413, "application/xml; charset=utf-8")
    result = etree.fromstring(answer)
    assert (result.tag, result.get("status")) == ("ImportResult", "error")
    assert [(e.get("code"), e.text) for e in result.iter("Error")] == [
        (
            "too_large",
            "the request body is larger than 4669440 bytes, the most that reaches the service: "
            "send it gzipped (Content-Encoding: gzip), up to 52428800 bytes once inflated",
        )
    ]
    # And nothing was received or stored
    assert imports_of(server, clinic["client_key"]) == []
    assert group_names(server, clinic["clinic_id"]) == []
    # When it sends the same document gzipped
    status, _, answer = server.request(
        "POST", "/services/import.php", gzip.compress(document), {**XML, "Content-Encoding": "gzip"}
    )
    # Then it is applied
    result = etree.fromstring(answer)
    assert (status, result.get("status")) == (200, "ok")
    assert result.find("ResourceGroups").attrib == {"received": "2", "written": "2", "deleted": "0", "rejected": "0"}
    assert group_names(server, clinic["clinic_id"]) == ["Терапия", "Хирургия"]
    [logged] = imports_of(server, clinic["client_key"])
    assert (logged.get("import_id"), logged.get("state")) == (result.get("import_id"), "done")


# -- API Gateway and Lambda: requests ----------------------------------------------------------------------


def test_a_body_over_10_mb_is_refused_by_api_gateway_itself(server: LocalServer) -> None:
    # Given a document of the clinic one byte over API Gateway's 10 MB
    clinic = server.create_clinic("Ten megabyte clinic")
    document = padded_document(clinic["client_key"], API_BODY_BYTES + 1)
    # When it is posted
    status, headers, answer = server.request("POST", "/services/import.php", document, XML)
    # Then API Gateway answers, in its own plain text; the function never hears of it
    assert (status, headers["Content-Type"], answer) == (
        413,
        "text/plain; charset=utf-8",
        b"HTTP content length exceeded 10485760 bytes.",
    )
    assert imports_of(server, clinic["client_key"]) == []
    assert group_names(server, clinic["clinic_id"]) == []


def test_a_body_over_6_mb_once_base64_encoded_never_reaches_the_function(server: LocalServer) -> None:
    # Given a document of 4.8 MB: under API Gateway's 10 MB, but 6.4 MB in the event, as base64
    clinic = server.create_clinic("Six megabyte clinic")
    document = padded_document(clinic["client_key"], 4_800_000)
    assert len(base64.b64encode(document)) > LAMBDA_REQUEST_BYTES
    # When it is posted
    status, headers, answer = server.request("POST", "/services/import.php", document, XML)
    # Then Lambda refuses the invocation and API Gateway answers for it
    assert (status, headers["Content-Type"], headers["x-amzn-ErrorType"], answer) == (
        413,
        "application/json",
        "BadRequestException",
        b'{"message": "Request Too Long"}',
    )
    assert imports_of(server, clinic["client_key"]) == []
    # And gzipped, the same document goes through
    status, _, _ = server.request(
        "POST", "/services/import.php", gzip.compress(document), {**XML, "Content-Encoding": "gzip"}
    )
    assert status == 200
    assert group_names(server, clinic["clinic_id"]) == ["Терапия", "Хирургия"]


# -- API Gateway and Lambda: answers and time, with handlers of this module behind the local API -----------

SLOW_DONE = threading.Event()


def answer_of_size(event: dict[str, Any], _: Any) -> dict[str, Any]:
    """Answers `bytes` bytes of XML, base64-encoded as the service's functions answer."""
    size = int(event["queryStringParameters"]["bytes"])
    body = base64.b64encode(b"<a>" + b"x" * (size - 7) + b"</a>").decode()
    return {"statusCode": 200, "headers": {"Content-Type": "application/xml"}, "body": body, "isBase64Encoded": True}


def slow_answer(event: dict[str, Any], _: Any) -> dict[str, Any]:
    """Answers after `seconds` seconds, then says it finished."""
    time.sleep(float(event["queryStringParameters"]["seconds"]))
    SLOW_DONE.set()
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "done", "isBase64Encoded": False}


def failing_answer(_: dict[str, Any], __: Any) -> dict[str, Any]:
    raise RuntimeError("a bug")


def get(url: str) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read(), time.monotonic() - started


@pytest.fixture
def local_api() -> Iterator[tuple[str, LocalApi]]:
    """The local API Gateway on a free port, with this module's handlers routed under /test/."""
    api = LocalApi("unused", timeout=0.5)
    for path, handler in (
        ("/test/answer", "answer_of_size"),
        ("/test/slow", "slow_answer"),
        ("/test/fail", "failing_answer"),
    ):
        api.routes.append(Route("GET", path, __name__, handler, False))
    port = free_port()
    http = devserver.make_server("127.0.0.1", port, api, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}", api
    finally:
        http.shutdown()


def answer_json_size(size: int) -> int:
    """The bytes of the answer's JSON, as Lambda measures it, for an XML body of `size` bytes."""
    return len(json.dumps(answer_of_size({"queryStringParameters": {"bytes": str(size)}}, None)).encode())


def test_an_answer_over_6_mb_once_base64_encoded_is_a_502(local_api: tuple[str, LocalApi]) -> None:
    url, _ = local_api
    # Given the largest XML answer whose JSON, body base64-encoded, fits Lambda's 6,291,556 bytes (4.5 MiB), and
    # one a byte longer
    envelope = answer_json_size(7) - len(base64.b64encode(b"<a></a>"))
    fits = (LAMBDA_RESPONSE_BYTES - envelope) // 4 * 3
    assert answer_json_size(fits) <= LAMBDA_RESPONSE_BYTES < answer_json_size(fits + 1)
    # When each is asked for
    status, _, answer, _ = get(f"{url}/test/answer?bytes={fits}")
    # Then the one that fits arrives whole
    assert (status, len(answer), answer[:3]) == (200, fits, b"<a>")
    # And the longer one is Lambda's failure, answered by API Gateway
    status, headers, answer, _ = get(f"{url}/test/answer?bytes={fits + 1}")
    assert (status, headers["x-amzn-ErrorType"], answer) == (
        502,
        "InternalServerErrorException",
        b'{"message": "Internal server error"}',
    )


def test_a_function_that_raises_is_a_502(local_api: tuple[str, LocalApi]) -> None:
    url, _ = local_api
    status, headers, answer, _ = get(f"{url}/test/fail")
    assert (status, headers["Content-Type"], answer) == (
        502,
        "application/json",
        b'{"message": "Internal server error"}',
    )


def test_api_gateway_stops_waiting_at_its_timeout_and_the_function_runs_on(local_api: tuple[str, LocalApi]) -> None:
    # Given the integration timeout shortened to 0.5 s (29 s in AWS) and a function that takes 2 s
    url, api = local_api
    assert api.timeout == 0.5
    SLOW_DONE.clear()
    # When it is called
    status, headers, answer, elapsed = get(f"{url}/test/slow?seconds=2")
    # Then API Gateway answers 504 at its timeout, not when the function ends
    assert (status, headers["Content-Type"], answer) == (
        504,
        "application/json",
        b'{"message": "Endpoint request timed out"}',
    )
    assert 0.5 <= elapsed < 1.9
    assert not SLOW_DONE.is_set()
    # And the function still runs to its end
    assert SLOW_DONE.wait(5)


def test_a_function_past_its_own_timeout_is_a_502(
    local_api: tuple[str, LocalApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose own timeout (0.3 s here, 25 s in the template) is below the integration timeout
    url, api = local_api
    api.timeout = 29.0
    monkeypatch.setattr(template, "function_timeout", lambda module: 0.3)
    # When it takes longer
    status, headers, answer, elapsed = get(f"{url}/test/slow?seconds=1")
    # Then Lambda stops it and API Gateway answers 502
    assert (status, headers["x-amzn-ErrorType"], answer) == (
        502,
        "InternalServerErrorException",
        b'{"message": "Internal server error"}',
    )
    assert elapsed < 0.9


def test_the_template_gives_every_function_its_timeout() -> None:
    # Given the routes of template.yaml; Then the local server waits for each as long as Lambda would
    timeouts = {route.module: template.function_timeout(route.module) for route in LocalApi("unused").routes}
    assert set(timeouts) == {
        "functions.mis_import.app",
        "functions.mis_export.app",
        "functions.mis_status.app",
        "functions.portal.app",
        "functions.console.app",
    }
    assert all(0 < seconds < devserver.INTEGRATION_TIMEOUT_SECONDS for seconds in timeouts.values()), timeouts


# -- a real import past a short integration timeout ----------------------------------------------------------


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[LocalServer]:
    """`python -m devserver` with API Gateway's timeout shortened to 0.2 s."""
    with local_server(INTEGRATION_TIMEOUT_SECONDS="0.2") as started:
        yield started


def test_an_import_past_the_integration_timeout_is_a_504_and_is_still_applied(impatient_server: LocalServer) -> None:
    # Given API Gateway's timeout at 0.2 s and a document of 1,000 resources, which takes longer to apply
    server = impatient_server
    clinic = server.create_clinic("Impatient clinic")
    resources = "".join(f'<r id="{n}" name="Врач {n}" time_step="15"/>' for n in range(1000))
    document = f'<MediExchange ClientKey="{clinic["client_key"]}"><Resources>{resources}</Resources></MediExchange>'
    # When the MIS sends it
    status, _, answer = server.request("POST", "/services/import.php", document.encode(), XML)
    # Then the MIS gets API Gateway's 504, not the import's answer
    assert (status, answer) == (504, b'{"message": "Endpoint request timed out"}')
    # And the function ran on: in the store, the import is logged done and the resources are written (read
    # there: behind a 0.2 s gateway, status.php and the portal time out too)
    store = Store(Settings.from_env({"DYNAMODB_ENDPOINT_URL": server.dynamodb_url}))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        entries = store.imports.recent(clinic["clinic_id"])  # none yet while the function still reads
        if entries and entries[0].state in ("done", "failed"):
            break
        time.sleep(0.5)
    assert [(entry.state, entry.error_code) for entry in entries] == [("done", None)]
    assert sorted(r.id for r in store.records.all(clinic["clinic_id"], RESOURCES)) == list(range(1000))
