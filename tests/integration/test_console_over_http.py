"""The console's sign-in over real HTTP: `make run`'s server plays API Gateway's authorizer and its gateway
responses, the printed CONSOLE_URL signs an operator in once, an integrator sees only their own clinic."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlencode, urlsplit

from tests.integration.conftest import LocalServer

COOKIE = "mx_console"


def call(
    server: LocalServer, method: str, path: str, form: dict[str, str] | None = None, cookie: str | None = None
) -> tuple[int, http.client.HTTPMessage, str]:
    """One request, redirects not followed (a browser's view of each answer)."""
    host = urlsplit(server.url)
    connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=60)
    headers = {"Cookie": cookie} if cookie is not None else {}
    body = urlencode(form).encode() if form is not None else None
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def session_cookie(headers: http.client.HTTPMessage) -> str:
    """`mx_console=<token>` from the answer's Set-Cookie, checked for its attributes."""
    [cookie] = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith(f"{COOKIE}=")]
    pair, *attributes = [part.strip() for part in cookie.split(";")]
    assert attributes == ["Path=/console", "Max-Age=28800", "HttpOnly", "SameSite=Strict"]  # http locally: no Secure
    return pair


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page carries no csrf field"
    return match.group(1)


def test_without_a_session_the_console_sends_the_browser_to_sign_in(server: LocalServer) -> None:
    # No Cookie header at all: API Gateway's UNAUTHORIZED; a cookie naming no session: ACCESS_DENIED
    for cookie in (None, "mx_lang=ru", f"{COOKIE}=made-up-token-of-no-session"):
        for method, path in (
            ("GET", "/console"),
            ("GET", "/console/"),
            ("GET", "/console/clinics/x/board"),
            ("POST", "/console/clinics"),
        ):
            status, headers, _ = call(server, method, path, {} if method == "POST" else None, cookie)
            assert (status, headers["Location"], headers["Cache-Control"]) == (303, "/console/sign-in", "no-store"), (
                cookie,
                path,
            )


def test_the_printed_link_signs_an_operator_in_once_and_signing_out_ends_it(server: LocalServer) -> None:
    # Given the one-time link the server printed
    link = urlsplit(server.console_url)
    assert server.console_url.startswith(f"{server.url}/console/sign-in/once/")
    # When it is opened
    status, headers, _ = call(server, "GET", link.path)
    # Then the operator is signed in and sent to the clinics list
    assert (status, headers["Location"]) == (303, "/console/")
    cookie = session_cookie(headers)
    status, _, page = call(server, "GET", "/console/", cookie=cookie)
    assert status == 200 and 'data-page="clinics"' in page
    # And the link does not work a second time
    status, headers, page = call(server, "GET", link.path)
    assert status == 403 and "Set-Cookie" not in headers and 'data-page="sign-in"' in page
    # When the operator signs out (with the session's csrf)
    status, headers, _ = call(server, "POST", "/console/sign-out", {"csrf": csrf_of(page_of(server, cookie))}, cookie)
    assert (status, headers["Location"]) == (303, "/console/sign-in")
    assert f"{COOKIE}=; Path=/console; Max-Age=0" in (headers.get_all("Set-Cookie") or [""])[0]
    # Then the old cookie opens nothing
    status, headers, _ = call(server, "GET", "/console/", cookie=cookie)
    assert (status, headers["Location"]) == (303, "/console/sign-in")


def page_of(server: LocalServer, cookie: str) -> str:
    status, _, page = call(server, "GET", "/console/", cookie=cookie)
    assert status == 200
    return page


def test_a_fresh_link_from_the_cli_works(server: LocalServer) -> None:
    [url] = server.cli("console", "link", "--base-url", server.url)
    status, headers, _ = call(server, "GET", urlsplit(url).path)
    assert (status, headers["Location"]) == (303, "/console/")


def test_an_integrator_sees_only_their_own_clinic(server: LocalServer) -> None:
    # Given two clinics
    ours = server.create_clinic("Console own clinic")
    theirs = server.create_clinic("Console other clinic")
    # When ours's integrator signs in with the clinic's key (in the POST body)
    status, headers, _ = call(server, "POST", "/console/sign-in/clinic", {"client_key": ours["client_key"]})
    assert (status, headers["Location"]) == (303, f"/console/clinics/{ours['clinic_id']}/")
    cookie = session_cookie(headers)
    # Then their own clinic's page opens
    status, _, page = call(server, "GET", f"/console/clinics/{ours['clinic_id']}/", cookie=cookie)
    assert status == 200 and 'data-page="clinic"' in page
    # And every URL of the other clinic (and of one that does not exist) is a 404, as if it did not exist
    for clinic_id in (theirs["clinic_id"], "000000000000"):
        for path in ("/", "/board", "/orders", "/dry-run", "/settings", "/imports/20261130T000000-00000000"):
            status, _, _ = call(server, "GET", f"/console/clinics/{clinic_id}{path}", cookie=cookie)
            assert status == 404, (clinic_id, path)


def test_a_wrong_key_and_a_disabled_clinics_key_are_refused_alike(server: LocalServer) -> None:
    closed = server.create_clinic("Console closed clinic")
    server.cli("clinic", "disable", closed["clinic_id"])
    answers = []
    for key in (closed["client_key"], "00000000-0000-0000-0000-000000000000"):
        status, headers, page = call(server, "POST", "/console/sign-in/clinic", {"client_key": key})
        assert status == 401 and "Set-Cookie" not in headers and 'data-page="sign-in"' in page
        answers.append(page)
    assert answers[0] == answers[1]


def test_the_sign_in_page_and_stylesheet_need_no_session(server: LocalServer) -> None:
    status, _, page = call(server, "GET", "/console/sign-in")
    assert status == 200 and 'data-page="sign-in"' in page and 'name="client_key"' in page
    status, _, _ = call(server, "GET", "/console/static/console.css")
    assert status == 200
