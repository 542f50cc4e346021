"""Who may see the console: sign-in, sign-out, the session cookie, and the authorizer's decision.

Sessions live in the store (`store.sessions`: only a SHA-256 of each token is kept); the cookie
`mx_console` carries the token (Path `{prefix}/console`, HttpOnly, SameSite=Strict, Secure over https).
The API's REQUEST authorizer (`authorize`, through functions/console_authorizer) reads it for every
console route but the sign-in pages and the stylesheet, and hands the console function the session as
`requestContext.authorizer`; the console reads it with `viewer(event)` and never the session again.

Three ways in:

* operators in AWS: the Cognito user pool (CONSOLE_USER_POOL_ID / CONSOLE_USER_POOL_CLIENT_ID), user
  name and password, a new password when Cognito asks for one (`operators.Operators`);
* operators locally (no user pool configured): a one-time link, `make run` prints one and
  `mediexchange console link` makes another; it works once, for `console_link_minutes`;
* a clinic's integrator: the clinic's client key, sent in a POST body (never in a URL). An unknown,
  revoked or disabled clinic's key all get the same refusal. Guessing is bounded by the API stage's
  throttling (template.yaml: 100 requests/s, burst 200, for the whole API) and by the keys themselves
  (122 random bits): no lock-out per key, which would let anyone lock a clinic's integrator out.

What the console function (functions/console/app.py) calls; each returns an `Answer` to send (a
303 with its cookies, or the sign-in page again with `page_context`) and never raises for a refusal:

    sign_in_page_context(store, event) -> dict            GET  /console/sign-in
    sign_in_operator(store, event, form) -> Answer        POST /console/sign-in/operator (username, password,
                                                               and new_password when Cognito asks for one)
    redeem_link(store, event, token) -> Answer            GET  /console/sign-in/once/{token}
    sign_in_clinic(store, event, form) -> Answer          POST /console/sign-in/clinic (client_key)
    sign_out(store, event, viewer) -> Answer              POST /console/sign-out (after the CSRF check)
    viewer(event) -> Viewer                               every page behind the authorizer

`sign_in.html` renders `page_context` (keys: cognito, error, username, new_password; `error` is one of
ERRORS) inside the page plumbing's own context.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from mediexchange.config import Settings
from mediexchange.console.operators import Operators, Refusal, SignedIn
from mediexchange.store import Store

logger = Logger(service="mediexchange")

COOKIE = "mx_console"
OPERATOR, INTEGRATOR = "operator", "integrator"
LOCAL_OPERATOR = "local"  # who an operator signed in by a one-time link is
# What the sign-in page may be asked to say (sign_in.html words each in both languages).
ERRORS = (
    "refused",
    "new_password",
    "password_policy",
    "busy",
    "unknown_key",
    "link_used",
    "no_user_pool",
    "cross_site",
)
SEE_OTHER = 303


class NotSignedIn(Exception):
    """A console route reached without the authorizer's context: the template lacks the authorizer on it."""


@dataclass(frozen=True, slots=True)
class Viewer:
    role: str  # operator | integrator
    who: str  # the operator's user name, or clinic:<id>
    clinic_id: str  # the integrator's clinic; "" for an operator
    csrf: str  # every form of this session carries it back

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def may_see(self, clinic_id: str) -> bool:
        """An operator sees every clinic, an integrator only their own."""
        return self.is_operator or (bool(self.clinic_id) and hmac.compare_digest(self.clinic_id, clinic_id))

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), (sent or "").encode())


@dataclass(frozen=True, slots=True)
class Answer:
    """What a sign-in route answers: a redirect (303 to `location`, setting `cookies`), or, with
    `location` None, the sign-in page again with `page` as its context and `status`."""

    location: str | None = None
    cookies: tuple[str, ...] = ()
    page: dict[str, Any] = field(default_factory=dict)
    status: int = SEE_OTHER

    @property
    def headers(self) -> dict[str, list[str]]:
        """Multi-value headers for the answer (Set-Cookie may come more than once)."""
        found: dict[str, list[str]] = {"Cache-Control": ["no-store"]}
        if self.location is not None:
            found["Location"] = [self.location]
        if self.cookies:
            found["Set-Cookie"] = list(self.cookies)
        return found


# -- the request ------------------------------------------------------------------------------------


def prefix(event: Mapping[str, Any]) -> str:
    """What comes before /console in the browser's URL: the stage (`/live`) on the execute-api URL,
    nothing behind the custom domain (requestContext.path is the path as the browser sent it)."""
    path = str(event.get("path") or "")
    full = str((event.get("requestContext") or {}).get("path") or "")
    return full[: -len(path)] if path and full.endswith(path) else ""


def _headers(event: Mapping[str, Any], name: str) -> list[str]:
    """Every value of a header, whatever its case, from headers and multiValueHeaders alike."""
    wanted = name.lower()
    values: list[str] = []
    for header, many in (event.get("multiValueHeaders") or {}).items():
        if header.lower() == wanted:
            values.extend(str(v) for v in many or ())
    if not values:
        values = [str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted and v is not None]
    return values


def cookie_values(event: Mapping[str, Any], name: str = COOKIE) -> list[str]:
    """Every value the request's cookies give `name` (two are possible: one per cookie path)."""
    found = []
    for header in _headers(event, "cookie"):
        for pair in header.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key.strip() == name and value.strip():
                found.append(value.strip().strip('"'))
    return found


def _secure(event: Mapping[str, Any]) -> bool:
    """Whether the browser reached the API over https (API Gateway says so in X-Forwarded-Proto)."""
    return any(v.split(",")[0].strip().lower() == "https" for v in _headers(event, "x-forwarded-proto"))


def cookie(event: Mapping[str, Any], name: str, value: str, seconds: int) -> str:
    """Set-Cookie value for one of the console's cookies: its paths only, kept `seconds` (0: forgotten at
    once), out of scripts' and other sites' reach, and sent over https only when the request came so."""
    parts = [f"{name}={value}", f"Path={prefix(event)}/console", f"Max-Age={seconds}", "HttpOnly", "SameSite=Strict"]
    return "; ".join([*parts, "Secure"] if _secure(event) else parts)


def home(event: Mapping[str, Any], clinic_id: str = "") -> str:
    """Where a signed-in viewer lands: the clinics list, or an integrator's own clinic."""
    return f"{prefix(event)}/console/clinics/{clinic_id}/" if clinic_id else f"{prefix(event)}/console/"


def sign_in_url(event: Mapping[str, Any]) -> str:
    return f"{prefix(event)}/console/sign-in"


# -- signing in and out -------------------------------------------------------------------------------


_operators: dict[tuple[str, str], Operators] = {}


def operators(settings: Settings) -> Operators | None:
    """The user pool's client, made once per process; None when no user pool is configured (locally)."""
    if not (settings.console_user_pool_id and settings.console_user_pool_client_id):
        return None
    key = (settings.region, settings.console_user_pool_client_id)
    if key not in _operators:
        _operators[key] = Operators(settings.region, settings.console_user_pool_client_id)
    return _operators[key]


def sign_in_page_context(store: Store, event: Mapping[str, Any]) -> dict[str, Any]:
    """The sign-in page's own context: whether operators sign in with a password here (a user pool is
    configured) or by a one-time link (`make run` prints one)."""
    return {"cognito": operators(store.settings) is not None, "error": None, "username": "", "new_password": False}


def _cross_site(event: Mapping[str, Any]) -> bool:
    """A sign-in form posted from another site (the browser says so in Sec-Fetch-Site): refused, so no other
    site can sign a browser into a session of its choosing (the session cookie itself is SameSite=Strict)."""
    return any(v.strip().lower() == "cross-site" for v in _headers(event, "sec-fetch-site"))


def _again(event: Mapping[str, Any], store: Store, error: str, status: int, **page: Any) -> Answer:
    context = {**sign_in_page_context(store, event), "error": error, **page}
    return Answer(page=context, status=status)


def _signed_in(store: Store, event: Mapping[str, Any], role: str, who: str, clinic_id: str | None) -> Answer:
    seconds = store.settings.console_session_hours * 3600
    token, _ = store.sessions.create(role, who, clinic_id, seconds)
    logger.info("console change", extra={"who": who, "action": "sign-in", "clinic_id": clinic_id or ""})
    return Answer(location=home(event, clinic_id or ""), cookies=(cookie(event, COOKIE, token, seconds),))


def sign_in_operator(store: Store, event: Mapping[str, Any], form: Mapping[str, str]) -> Answer:
    """POST /console/sign-in/operator: Cognito's answer to the user name and password (and the new password
    it asked for). A refusal never says whether the user exists."""
    cognito = operators(store.settings)
    if cognito is None:
        return _again(event, store, "no_user_pool", 403)
    if _cross_site(event):
        return _again(event, store, "cross_site", 403)
    username = (form.get("username") or "").strip()
    password, new_password = form.get("password") or "", form.get("new_password") or ""
    outcome = cognito.sign_in(username, password, new_password)
    if isinstance(outcome, SignedIn):
        return _signed_in(store, event, OPERATOR, outcome.username, None)
    logger.info("console sign-in refused", extra={"action": "sign-in", "reason": outcome.value})
    status = {Refusal.NEW_PASSWORD: 200, Refusal.WEAK_PASSWORD: 400, Refusal.BUSY: 503}.get(outcome, 401)
    asks_new = outcome in (Refusal.NEW_PASSWORD, Refusal.WEAK_PASSWORD)
    return _again(event, store, outcome.value, status, username=username, new_password=asks_new)


def redeem_link(store: Store, event: Mapping[str, Any], token: str) -> Answer:
    """GET /console/sign-in/once/{token}: an operator session, the first time only. With a user pool
    configured (in AWS) operators sign in through it, and links are refused."""
    if operators(store.settings) is not None or not token or not store.sessions.redeem_link(token):
        logger.info("console sign-in refused", extra={"action": "sign-in", "reason": "link_used"})
        return _again(event, store, "link_used", 403)
    return _signed_in(store, event, OPERATOR, LOCAL_OPERATOR, None)


def one_time_url(store: Store, base_url: str) -> str:
    """A fresh one-time operator sign-in URL under `base_url` (the API's, without /console), good once
    for `console_link_minutes`. Refused by the console where a user pool is configured."""
    token = store.sessions.create_link(store.settings.console_link_minutes * 60)
    return f"{base_url.rstrip('/')}/console/sign-in/once/{token}"


def sign_in_clinic(store: Store, event: Mapping[str, Any], form: Mapping[str, str]) -> Answer:
    """POST /console/sign-in/clinic: an integrator session for the enabled clinic that owns the key."""
    from mediexchange.clients import authenticate
    from mediexchange.errors import UnknownClientKey

    if _cross_site(event):
        return _again(event, store, "cross_site", 403)
    try:
        clinic = authenticate(store, (form.get("client_key") or "").strip())
    except UnknownClientKey:
        logger.info("console sign-in refused", extra={"action": "sign-in", "reason": "unknown_key"})
        return _again(event, store, "unknown_key", 401)
    return _signed_in(store, event, INTEGRATOR, f"clinic:{clinic.clinic_id}", clinic.clinic_id)


def sign_out(store: Store, event: Mapping[str, Any], signed_in: Viewer | None = None) -> Answer:
    """POST /console/sign-out: the session is ended in the store, the cookie cleared, back to sign-in.
    `signed_in` is who the authorizer let through (the page's viewer), for the log."""
    for token in _tokens(cookie_values(event)):
        store.sessions.end(token)  # a token that names no session ends nothing
    who = signed_in.who if signed_in is not None else ""
    logger.info("console change", extra={"who": who, "action": "sign-out", "clinic_id": ""})
    return Answer(location=sign_in_url(event), cookies=(cookie(event, COOKIE, "", 0),))


# -- the authorizer and what it hands over ----------------------------------------------------------


def viewer(event: Mapping[str, Any]) -> Viewer:
    """The signed-in viewer, as the authorizer put them into the request (requestContext.authorizer)."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    role, who = str(context.get("role") or ""), str(context.get("who") or "")
    if role not in (OPERATOR, INTEGRATOR) or not who or not context.get("csrf"):
        raise NotSignedIn("no authorizer context on this console route")
    clinic_id = str(context.get("clinic_id") or "")
    if role == INTEGRATOR and not clinic_id:
        raise NotSignedIn("an integrator's session without a clinic")
    return Viewer(role, who, clinic_id, str(context["csrf"]))


def _console_resource(method_arn: str) -> str:
    """Every console method of the API's stage: arn:...:{api}/{stage}/*/console*."""
    api_and_stage = "/".join(method_arn.split("/")[:2])
    return f"{api_and_stage}/*/console*"


def _policy(effect: str, principal: str, method_arn: str) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": _console_resource(method_arn)}
    return {"principalId": principal, "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}


def authorize(store: Store, event: Mapping[str, Any]) -> dict[str, Any]:
    """The REQUEST authorizer's answer: Allow with the session as context (strings only, as API Gateway
    wants), or Deny when no cookie names a live session (API Gateway then answers ACCESS_DENIED, which the
    template makes a 303 to the sign-in page). A request without any Cookie header never gets here: API
    Gateway answers UNAUTHORIZED itself (its identity source is missing)."""
    method_arn = str(event.get("methodArn") or "")
    for token in _tokens(cookie_values(event)):
        session = store.sessions.find(token)
        if session is not None:
            answer = _policy("Allow", session.who, method_arn)
            answer["context"] = {
                "role": session.role,
                "who": session.who,
                "clinic_id": session.clinic_id or "",
                "csrf": session.csrf,
            }
            return answer
    return _policy("Deny", "anonymous", method_arn)


def _tokens(values: Iterable[str]) -> list[str]:
    """At most a few plausible tokens (a request cannot make the authorizer or a sign-out reach the table many
    times)."""
    return [v for v in dict.fromkeys(values) if 16 <= len(v) <= 128][:3]
