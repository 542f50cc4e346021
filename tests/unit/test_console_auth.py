"""The console's sign-in (issue 13): Cognito operators (moto's cognito-idp), one-time links, integrators by
their clinic's key, sessions that end, the authorizer's decision, and how the local server plays it."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mediexchange import cli
from mediexchange.config import Settings
from mediexchange.console import auth
from mediexchange.console.auth import Answer, NotSignedIn, Viewer
from mediexchange.console.operators import Operators, Refusal
from mediexchange.records import Clinic
from mediexchange.store import Store
from mediexchange.store.sessions import token_hash

from devserver import template
from devserver.server import LocalApi, allows, authorizer_event, gateway_response
from functions.console_authorizer import app as authorizer_app
from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import FakeContext, items_got

TEMPORARY = "Temporary-Passw0rd!"
CHOSEN = "Chosen-Passw0rd-2026!"
METHOD_ARN = "arn:aws:execute-api:eu-central-1:123456789012:abc123/live/GET/console/clinics/x/board"


def event(
    method: str = "GET",
    path: str = "/console/",
    cookie: str | None = None,
    stage_path: str | None = None,
    https: bool = False,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A console request as API Gateway hands it over (REST proxy, or the authorizer's REQUEST event)."""
    headers = {"Host": "console.example"}
    if cookie is not None:
        headers["Cookie"] = cookie
    if https:
        headers["X-Forwarded-Proto"] = "https"
    context: dict[str, Any] = {"requestId": "r", "stage": "live", "path": stage_path or path}
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
    }


def token_of(answer: Answer) -> str:
    [cookie] = answer.cookies
    name, _, rest = cookie.partition("=")
    assert name == auth.COOKIE
    return rest.split(";")[0]


def stored_sessions() -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(Settings.from_env().sessions_table)
    return sorted(table.scan(ConsistentRead=True)["Items"], key=lambda item: str(item["created_at"]))


@pytest.fixture
def pool(store: Store) -> Iterator[tuple[Store, Any, str]]:
    """A user pool as template.yaml makes it (admin-created users, the console's app client) with one
    operator, ann, holding a temporary password; the store configured with it, as the console function is."""
    cognito = boto3.client("cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName="console",
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 14,
                "RequireLowercase": True,
                "RequireUppercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
            }
        },
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="console",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool_id, Username="ann", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    settings = dataclasses.replace(store.settings, console_user_pool_id=pool_id, console_user_pool_client_id=client_id)
    yield Store(settings), cognito, pool_id
    auth._operators.clear()


def sign_in_ann(configured: Store) -> Answer:
    first = auth.sign_in_operator(
        configured, event("POST", "/console/sign-in/operator"), {"username": "ann", "password": TEMPORARY}
    )
    assert first.page["error"] == "new_password"
    form = {"username": "ann", "password": TEMPORARY, "new_password": CHOSEN}
    return auth.sign_in_operator(configured, event("POST", "/console/sign-in/operator"), form)


# -- operators through Cognito ------------------------------------------------------------------------


def test_an_admin_created_operator_chooses_a_password_then_signs_in(pool: tuple[Store, Any, str]) -> None:
    configured, cognito, pool_id = pool
    # Given ann, created by an administrator with a temporary password
    # When she signs in with it
    asked = auth.sign_in_operator(
        configured, event("POST", "/console/sign-in/operator"), {"username": "ann", "password": TEMPORARY}
    )
    # Then the sign-in page asks for a new password (keeping her user name), and no session exists yet
    assert asked == Answer(
        page={"cognito": True, "error": "new_password", "username": "ann", "new_password": True}, status=200
    )
    assert stored_sessions() == []
    # When she sends the three fields
    form = {"username": "ann", "password": TEMPORARY, "new_password": CHOSEN}
    signed_in = auth.sign_in_operator(configured, event("POST", "/console/sign-in/operator"), form)
    # Then she lands on the clinics list with a session cookie for the console's paths only
    token = token_of(signed_in)
    assert signed_in.location == "/console/" and signed_in.status == 303
    assert signed_in.cookies == (f"mx_console={token}; Path=/console; Max-Age=28800; HttpOnly; SameSite=Strict",)
    assert signed_in.headers == {
        "Cache-Control": ["no-store"],
        "Location": ["/console/"],
        "Set-Cookie": list(signed_in.cookies),
    }
    # And the store holds the session under the token's hash only, for 8 hours
    [item] = stored_sessions()
    assert item["token_hash"] == token_hash(token) and token not in json.dumps(item, default=str)
    assert {k: item[k] for k in ("kind", "role", "who")} == {"kind": "session", "role": "operator", "who": "ann"}
    assert item["expires_at"] - item["created_at"] == 8 * 3600 and len(item["csrf"]) >= 16
    # And Cognito now knows her chosen password: the next sign-in is a single step
    again = auth.sign_in_operator(configured, event(), {"username": "ann", "password": CHOSEN})
    assert again.location == "/console/"
    assert cognito.admin_get_user(UserPoolId=pool_id, Username="ann")["UserStatus"] == "CONFIRMED"


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(pool: tuple[Store, Any, str]) -> None:
    configured, _, _ = pool
    sign_in_ann(configured)
    before = stored_sessions()
    # When ann mistypes her password, and someone tries a user that does not exist
    wrong = auth.sign_in_operator(configured, event(), {"username": "ann", "password": "Wrong-Passw0rd!!"})
    unknown = auth.sign_in_operator(configured, event(), {"username": "bob", "password": "Wrong-Passw0rd!!"})
    empty = auth.sign_in_operator(configured, event(), {"username": "ann", "password": ""})
    # Then all three get one answer (only the user name typed is kept in the form), and no session
    refused = {"cognito": True, "error": "refused", "new_password": False}
    assert wrong == Answer(page={**refused, "username": "ann"}, status=401)
    assert unknown == Answer(page={**refused, "username": "bob"}, status=401)
    assert empty == Answer(page={**refused, "username": "ann"}, status=401)
    assert stored_sessions() == before


def test_a_new_password_below_the_pools_policy_is_asked_for_again(pool: tuple[Store, Any, str]) -> None:
    configured, _, _ = pool
    form = {"username": "ann", "password": TEMPORARY, "new_password": "short"}
    answer = auth.sign_in_operator(configured, event(), form)
    assert answer == Answer(
        page={"cognito": True, "error": "password_policy", "username": "ann", "new_password": True}, status=400
    )
    assert stored_sessions() == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("TooManyRequestsException", Refusal.BUSY),
        ("PasswordResetRequiredException", Refusal.WRONG),
        ("UserNotConfirmedException", Refusal.WRONG),
        ("NotAuthorizedException", Refusal.WRONG),
    ],
)
def test_cognitos_other_refusals_are_answered_without_detail(code: str, expected: Refusal) -> None:
    client = boto3.client("cognito-idp", region_name="eu-central-1")
    with Stubber(client) as stub:
        stub.add_client_error("initiate_auth", service_error_code=code)
        assert Operators("eu-central-1", "client", client).sign_in("ann", "Some-Passw0rd!!") == expected
    with Stubber(client) as stub:  # a challenge this console does not configure (MFA) is no sign-in
        stub.add_response("initiate_auth", {"ChallengeName": "SMS_MFA", "Session": "s" * 20, "ChallengeParameters": {}})
        assert Operators("eu-central-1", "client", client).sign_in("ann", "Some-Passw0rd!!") == Refusal.WRONG


def test_without_a_user_pool_operators_cannot_sign_in_with_a_password(store: Store) -> None:
    answer = auth.sign_in_operator(store, event(), {"username": "ann", "password": TEMPORARY})
    assert answer == Answer(
        page={"cognito": False, "error": "no_user_pool", "username": "", "new_password": False}, status=403
    )
    assert auth.sign_in_page_context(store, event()) == {
        "cognito": False,
        "error": None,
        "username": "",
        "new_password": False,
    }


# -- one-time links (locally) ---------------------------------------------------------------------------


def test_a_one_time_link_signs_an_operator_in_once(store: Store) -> None:
    # Given a link, as `make run` prints it
    url = auth.one_time_url(store, "http://127.0.0.1:3000/")
    prefix = "http://127.0.0.1:3000/console/sign-in/once/"
    assert url.startswith(prefix)
    link = url.removeprefix(prefix)
    [item] = stored_sessions()
    assert item["kind"] == "sign_in_link" and item["token_hash"] == token_hash(link)
    assert item["expires_at"] - item["created_at"] == 10 * 60
    # When it is opened
    first = auth.redeem_link(store, event(path=f"/console/sign-in/once/{link}"), link)
    # Then an operator session starts, and the link is gone
    assert first.location == "/console/" and first.status == 303
    [session] = stored_sessions()
    assert (session["kind"], session["role"], session["who"]) == ("session", "operator", "local")
    assert session["token_hash"] == token_hash(token_of(first))
    # When it is opened again
    second = auth.redeem_link(store, event(path=f"/console/sign-in/once/{link}"), link)
    # Then it is refused, and nothing more is stored
    assert second == Answer(
        page={"cognito": False, "error": "link_used", "username": "", "new_password": False}, status=403
    )
    assert len(stored_sessions()) == 1


def test_an_expired_or_unknown_link_is_refused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    link = store.sessions.create_link(60)
    later = time.time() + 61
    monkeypatch.setattr("mediexchange.store.sessions.time.time", lambda: later)
    assert auth.redeem_link(store, event(), link).page["error"] == "link_used"
    assert auth.redeem_link(store, event(), "not-a-link-token-at-all").page["error"] == "link_used"
    assert [item["kind"] for item in stored_sessions()] == ["sign_in_link"]


def test_where_a_user_pool_is_configured_links_do_not_sign_in(pool: tuple[Store, Any, str]) -> None:
    configured, _, _ = pool
    link = configured.sessions.create_link(600)
    assert auth.redeem_link(configured, event(), link).page["error"] == "link_used"
    assert [item["kind"] for item in stored_sessions()] == ["sign_in_link"]


def test_the_cli_prints_a_fresh_link(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["console", "link", "--base-url", "http://127.0.0.1:4000"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    link = line.removeprefix("http://127.0.0.1:4000/console/sign-in/once/")
    assert link != line and store.sessions.redeem_link(link) is True


# -- integrators ----------------------------------------------------------------------------------------


def test_an_integrator_signs_in_with_the_clinics_key(
    store: Store, clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    auth.logger.setLevel("INFO")
    try:
        answer = auth.sign_in_clinic(store, event("POST", "/console/sign-in/clinic"), {"client_key": f" {SAMPLE_KEY} "})
    finally:
        auth.logger.setLevel("WARNING")
    # Then the integrator lands on their own clinic's page
    assert answer.location == f"/console/clinics/{clinic.clinic_id}/"
    [item] = stored_sessions()
    assert (item["role"], item["who"], item["clinic_id"]) == (
        "integrator",
        f"clinic:{clinic.clinic_id}",
        clinic.clinic_id,
    )
    assert item["token_hash"] == token_hash(token_of(answer))
    # And the change is logged with who made it, never with the key or the session's token
    [logged] = [r for r in caplog.records if r.getMessage() == "console change"]
    assert (logged.who, logged.action, logged.clinic_id) == (f"clinic:{clinic.clinic_id}", "sign-in", clinic.clinic_id)
    everything = repr([r.__dict__ for r in caplog.records])
    assert SAMPLE_KEY not in everything and token_of(answer) not in everything


def test_a_disabled_clinics_key_a_revoked_key_and_a_wrong_key_get_one_answer(store: Store, clinic: Clinic) -> None:
    # Given the sample clinic with a second key that is then revoked, and another clinic, disabled
    rotated = store.clinics.rotate_key(clinic.clinic_id)
    store.clinics.revoke_key(clinic.clinic_id, rotated)
    other = store.clinics.create("Closed", "Europe/Moscow", "6F9619FF-8B86-D011-B42D-00CF4FC964FF")
    store.clinics.disable(other.clinic_id)
    refused = Answer(page={"cognito": False, "error": "unknown_key", "username": "", "new_password": False}, status=401)
    # Then each is refused alike, and no session is made
    for key in ("6F9619FF-8B86-D011-B42D-00CF4FC964FF", rotated, "00000000-0000-0000-0000-000000000000", "", "\ud800"):
        assert auth.sign_in_clinic(store, event("POST"), {"client_key": key}) == refused, key
    assert stored_sessions() == []


def test_a_sign_in_form_posted_from_another_site_is_refused(pool: tuple[Store, Any, str], clinic: Clinic) -> None:
    configured, _, _ = pool
    posted = event("POST", "/console/sign-in/clinic")
    posted["multiValueHeaders"]["Sec-Fetch-Site"] = ["cross-site"]
    refused = Answer(page={"cognito": True, "error": "cross_site", "username": "", "new_password": False}, status=403)
    assert auth.sign_in_clinic(configured, posted, {"client_key": SAMPLE_KEY}) == refused
    assert auth.sign_in_operator(configured, posted, {"username": "ann", "password": TEMPORARY}) == refused
    assert stored_sessions() == []
    # And one from the console's own page is not
    posted["multiValueHeaders"]["Sec-Fetch-Site"] = ["same-origin"]
    assert (
        auth.sign_in_clinic(configured, posted, {"client_key": SAMPLE_KEY}).location
        == f"/console/clinics/{clinic.clinic_id}/"
    )


# -- sessions, the authorizer and the viewer ------------------------------------------------------------------


def test_the_authorizer_allows_a_live_session_with_its_context(store: Store, clinic: Clinic) -> None:
    token = token_of(auth.sign_in_clinic(store, event("POST"), {"client_key": SAMPLE_KEY}))
    [item] = stored_sessions()
    # When the browser sends its cookies (ours among others)
    answer = auth.authorize(store, event(cookie=f"mx_lang=ru; {auth.COOKIE}={token}; other=1"))
    # Then the whole console of this stage is allowed, with the session as strings
    assert answer == {
        "principalId": f"clinic:{clinic.clinic_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": "arn:aws:execute-api:eu-central-1:123456789012:abc123/live/*/console*",
                }
            ],
        },
        "context": {
            "role": "integrator",
            "who": f"clinic:{clinic.clinic_id}",
            "clinic_id": clinic.clinic_id,
            "csrf": item["csrf"],
        },
    }
    # And the handler answers the same through the function's entry point
    authorizer_app._store = store
    try:
        assert authorizer_app.lambda_handler(event(cookie=f"{auth.COOKIE}={token}"), FakeContext()) == answer
    finally:
        authorizer_app._store = None


@pytest.mark.parametrize(
    "cookie", ["mx_lang=ru", f"{auth.COOKIE}=", f"{auth.COOKIE}=not-a-session-token-of-ours", "garbage"]
)
def test_the_authorizer_denies_without_a_live_session(store: Store, cookie: str) -> None:
    answer = auth.authorize(store, event(cookie=cookie))
    assert answer == {
        "principalId": "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Deny",
                    "Resource": "arn:aws:execute-api:eu-central-1:123456789012:abc123/live/*/console*",
                }
            ],
        },
    }


def test_a_session_expires_after_its_hours(store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    token = token_of(auth.sign_in_clinic(store, event("POST"), {"client_key": SAMPLE_KEY}))
    now = time.time()
    monkeypatch.setattr("mediexchange.store.sessions.time.time", lambda: now + 8 * 3600 - 60)
    assert (
        auth.authorize(store, event(cookie=f"{auth.COOKIE}={token}"))["policyDocument"]["Statement"][0]["Effect"]
        == "Allow"
    )
    monkeypatch.setattr("mediexchange.store.sessions.time.time", lambda: now + 8 * 3600 + 1)
    # Then the cookie names no live session any more, though DynamoDB's TTL has not deleted it yet
    assert (
        auth.authorize(store, event(cookie=f"{auth.COOKIE}={token}"))["policyDocument"]["Statement"][0]["Effect"]
        == "Deny"
    )
    assert len(stored_sessions()) == 1


def test_signing_out_ends_the_session_and_clears_the_cookie(store: Store, clinic: Clinic) -> None:
    token = token_of(auth.sign_in_clinic(store, event("POST"), {"client_key": SAMPLE_KEY}))
    cookie = f"{auth.COOKIE}={token}"
    context = auth.authorize(store, event(cookie=cookie))["context"]
    # When the integrator signs out (on the execute-api URL, over https)
    answer = auth.sign_out(store, event("POST", "/console/sign-out", cookie, "/live/console/sign-out", True, context))
    # Then the session is gone, the cookie cleared on the same path, and the browser sent to sign in
    assert answer == Answer(
        location="/live/console/sign-in",
        cookies=("mx_console=; Path=/live/console; Max-Age=0; HttpOnly; SameSite=Strict; Secure",),
    )
    assert stored_sessions() == []
    assert auth.authorize(store, event(cookie=cookie))["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    # And signing out twice does no harm
    assert auth.sign_out(store, event("POST", "/console/sign-out", cookie)).location == "/console/sign-in"


def test_signing_out_ends_the_session_without_reading_it_first(store: Store, clinic: Clinic) -> None:
    # Given a signed-in integrator, and every read of the sessions table counted from then on
    token = token_of(auth.sign_in_clinic(store, event("POST"), {"client_key": SAMPLE_KEY}))
    viewer = auth.viewer(event(authorizer=auth.authorize(store, event(cookie=f"{auth.COOKIE}={token}"))["context"]))
    reads = items_got(store, store.settings.sessions_table)
    # When they sign out, their cookie sent with two made-up ones
    cookie = f"{auth.COOKIE}={token}; {auth.COOKIE}={'x' * 40}; {auth.COOKIE}=short"
    answer = auth.sign_out(store, event("POST", "/console/sign-out", cookie), viewer)
    # Then the session is gone, though the table was never read (ending a session that is not there is harmless)
    assert answer.location == "/console/sign-in"
    assert stored_sessions() == []
    assert reads == []


def test_the_cookie_follows_the_stage_prefix_and_https(store: Store, clinic: Clinic) -> None:
    behind_stage = event("POST", "/console/sign-in/clinic", stage_path="/live/console/sign-in/clinic", https=True)
    answer = auth.sign_in_clinic(store, behind_stage, {"client_key": SAMPLE_KEY})
    assert answer.location == f"/live/console/clinics/{clinic.clinic_id}/"
    assert answer.cookies[0].endswith("; Path=/live/console; Max-Age=28800; HttpOnly; SameSite=Strict; Secure")


def test_the_viewer_is_what_the_authorizer_handed_over() -> None:
    context = {
        "role": "integrator",
        "who": "clinic:c1",
        "clinic_id": "c1",
        "csrf": "x" * 22,
        "principalId": "clinic:c1",
        "integrationLatency": 3,
    }
    viewer = auth.viewer(event(authorizer=context))
    assert viewer == Viewer("integrator", "clinic:c1", "c1", "x" * 22)
    assert viewer.may_see("c1") and not viewer.may_see("c2") and not viewer.is_operator
    assert viewer.csrf_matches("x" * 22) and not viewer.csrf_matches("y" * 22) and not viewer.csrf_matches(None)
    operator = auth.viewer(event(authorizer={"role": "operator", "who": "ann", "clinic_id": "", "csrf": "z" * 22}))
    assert operator.is_operator and operator.may_see("c2") and operator.clinic_id == ""
    for missing in (
        {},
        {"role": "integrator", "who": "clinic:c1", "clinic_id": "", "csrf": "x"},
        {"role": "admin", "who": "x", "csrf": "x"},
    ):
        with pytest.raises(NotSignedIn):
            auth.viewer(event(authorizer=missing))
    with pytest.raises(NotSignedIn):
        auth.viewer(event())


# -- the local server plays API Gateway ------------------------------------------------------------------------


def test_the_template_guards_the_console_but_its_sign_in_and_stylesheet() -> None:
    console = {(r.method, r.path): r.authorizer for r in template.routes() if r.path.startswith("/console")}
    assert console == {
        ("GET", "/console"): "ConsoleAuthorizer",
        ("GET", "/console/{proxy+}"): "ConsoleAuthorizer",
        ("POST", "/console/{proxy+}"): "ConsoleAuthorizer",
        ("GET", "/console/sign-in"): None,
        ("GET", "/console/sign-in/{proxy+}"): None,
        ("POST", "/console/sign-in/{proxy+}"): None,
        ("GET", "/console/static/{proxy+}"): None,
    }
    [authorizer] = template.authorizers().values()
    assert authorizer.module == "functions.console_authorizer.app" and authorizer.identity_headers == ("Cookie",)
    api = template.resources("AWS::Serverless::Api")["MediExchangeApi"]["Properties"]
    assert api["Auth"]["Authorizers"]["ConsoleAuthorizer"]["Identity"]["ReauthorizeEvery"] == 0
    # And the portal keeps its API key, the MIS routes their openness
    assert all(r.api_key_required and r.authorizer is None for r in template.routes() if r.path.startswith("/portal/"))
    assert not any(r.api_key_required or r.authorizer for r in template.routes() if r.path.startswith("/services/"))


def test_operators_are_admin_created_users_of_a_protected_pool() -> None:
    [pool] = template.resources("AWS::Cognito::UserPool").values()
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["DeletionProtection"] == "ACTIVE" and pool["DeletionPolicy"] == "Retain"
    assert props["Policies"]["PasswordPolicy"]["MinimumLength"] >= 14
    [client] = template.resources("AWS::Cognito::UserPoolClient").values()
    assert (
        client["Properties"]["GenerateSecret"] is False
        and client["Properties"]["PreventUserExistenceErrors"] == "ENABLED"
    )
    assert client["Properties"]["ExplicitAuthFlows"] == ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    # And the authorizer may only read sessions
    authorizer = template.resources("AWS::Serverless::Function")["ConsoleAuthorizerFunction"]["Properties"]
    [policy] = authorizer["Policies"]
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::GetAtt": "SessionsTable.Arn"}}
    ]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/console", ("/console", None)),
        ("GET", "/console/", ("/console", None)),
        ("GET", "/console/clinics/c1/board", ("/console/{proxy+}", {"proxy": "clinics/c1/board"})),
        ("POST", "/console/sign-out", ("/console/{proxy+}", {"proxy": "sign-out"})),
        ("GET", "/console/sign-in", ("/console/sign-in", None)),
        ("GET", "/console/sign-in/once/abc", ("/console/sign-in/{proxy+}", {"proxy": "once/abc"})),
        ("POST", "/console/sign-in/clinic", ("/console/sign-in/{proxy+}", {"proxy": "clinic"})),
        ("GET", "/console/static/console.css", ("/console/static/{proxy+}", {"proxy": "console.css"})),
        ("POST", "/console/sign-in", None),  # the most specific resource has no POST: API Gateway's 403
        ("POST", "/console/static/console.css", None),
        ("GET", "/portal/clinics/c1/slots", ("/portal/clinics/{clinic_id}/slots", {"clinic_id": "c1"})),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, expected: tuple[str, dict[str, str] | None] | None
) -> None:
    found = LocalApi("unused").route_for(method, path)
    assert (None if found is None else (found[0].path, found[1] or None)) == expected


def test_the_gateway_responses_send_the_browser_to_sign_in() -> None:
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED"):
        response = gateway_response(kind)
        # The template's /live/console/sign-in, served at the local server's root
        assert (response.status_code, response.headers["Location"], response.headers["Cache-Control"]) == (
            303,
            "/console/sign-in",
            "no-store",
        )
    assert template.gateway_responses()["UNAUTHORIZED"].headers["Location"] == "/live/console/sign-in"


def test_a_policy_allows_only_what_it_names() -> None:
    allow = auth.authorize.__globals__["_policy"]("Allow", "p", METHOD_ARN)["policyDocument"]
    assert allows(allow, METHOD_ARN) and allows(
        allow, METHOD_ARN.replace("GET/console/clinics/x/board", "POST/console")
    )
    assert not allows(allow, METHOD_ARN.replace("console/clinics/x/board", "portal/clinics/x"))
    deny = auth.authorize.__globals__["_policy"]("Deny", "p", METHOD_ARN)["policyDocument"]
    assert not allows(deny, METHOD_ARN) and not allows(None, METHOD_ARN) and not allows({"Statement": []}, METHOD_ARN)


def test_the_authorizers_event_is_api_gateways_request_event() -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    request = Request(EnvironBuilder(path="/console/clinics/c1/", headers=[("Cookie", "mx_console=t")]).get_environ())
    [route] = [r for r in template.routes() if r.method == "GET" and r.path == "/console/{proxy+}"]
    built = authorizer_event(request, route, {"proxy": "clinics/c1/"})
    assert (
        built["type"] == "REQUEST"
        and built["methodArn"] == "arn:aws:execute-api:eu-central-1:000000000000:local/live/GET/console/clinics/c1/"
    )
    assert built["headers"]["Cookie"] == "mx_console=t" and built["pathParameters"] == {"proxy": "clinics/c1/"}
    assert built["resource"] == "/console/{proxy+}" and built["requestContext"]["path"] == "/console/clinics/c1/"
