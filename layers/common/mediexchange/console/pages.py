"""The console's page plumbing: templates, the page's context (who looks, in which language, under which
URL prefix, in which clinic's zone), HTML answers with their security headers, forms and their CSRF check,
who may see which clinic, and the resolver that answers errors with a page.

A route builds its `Page` from the request and renders a template with it:

    page = pages.Page.of(app.current_event)
    page = page.for_clinic(store(), clinic_id)      # 404 page unless the viewer may see that clinic
    return page.render("clinic.html", overview=...)

Templates get `page`, `t` (the label in the page's language: `{{ t("Imports", "Импорты") }}`) and `url`
(a link under the page's prefix: `{{ url("/console/clinics/" ~ id ~ "/") }}`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from mediexchange.console.auth import Answer, NotSignedIn, Viewer, cookie, cookie_values, prefix
from mediexchange.console.auth import viewer as viewer_of
from mediexchange.errors import Forbidden, NotFound, ServiceError, UnsupportedMediaType
from mediexchange.records import Clinic
from mediexchange.store import Store
from mediexchange.timeutil import from_epoch, zone
from mediexchange.uploads import FORM, MULTIPART, form_parts, media_type, raw_body
from mediexchange.web import html_resolver, http_status, weighted

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

LANGUAGES = ("en", "ru")
LANGUAGE_COOKIE = "mx_lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
HTML = "text/html; charset=utf-8"
SEE_OTHER = 303
# Pages are the viewer's own and change with every import: never kept by a browser or a proxy.
NO_STORE = "no-store"
SECURITY_HEADERS = {
    # Everything from this origin only; no inline script or style (the stylesheet is a file).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
TIME_FORMAT = "%d.%m.%Y %H:%M"

environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def not_found() -> NotFound:
    """The one answer for a page that does not exist and for a clinic the viewer may not see: a 404 never
    confirms that a clinic exists."""
    return NotFound("there is no such page")


def may_see(viewer: Viewer | None, clinic_id: str) -> bool:
    """An operator sees every clinic, an integrator only their own, anyone else none."""
    return viewer is not None and viewer.may_see(clinic_id)


def _header(event: BaseProxyEvent, name: str) -> str:
    return str(event.headers.get(name) or "")


def language_of(event: BaseProxyEvent) -> tuple[str, bool]:
    """The page's language and whether the request chose it (`?lang=`, which the answer keeps in a cookie):
    `?lang=ru|en`, else the cookie, else the first of ru/en in Accept-Language by weight, else English."""
    asked = ((event.query_string_parameters or {}).get("lang") or "").strip().lower()
    if asked in LANGUAGES:
        return asked, True
    for kept in cookie_values(event.raw_event, LANGUAGE_COOKIE):
        if kept in LANGUAGES:
            return kept, False
    ranked = [
        (-weight, position, primary)
        for position, (tag, weight) in enumerate(weighted(_header(event, "accept-language")))
        if (primary := tag.split("-")[0]) in LANGUAGES and weight > 0
    ]
    return (min(ranked)[2], False) if ranked else ("en", False)


@dataclass(frozen=True)
class Form:
    """A submitted form's fields: bytes as sent, and a multipart part's charset (None if it names none)."""

    parts: Mapping[str, tuple[bytes, str | None]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """A field as text (browsers send a UTF-8 page's forms in UTF-8)."""
        found = self.parts.get(name)
        return found[0].decode("utf-8", "replace") if found is not None else default

    def data(self, name: str) -> tuple[bytes, str | None] | None:
        """A field as sent (a file's bytes and its charset)."""
        return self.parts.get(name)

    def fields(self) -> dict[str, str]:
        """Every field as text."""
        return {name: self.get(name) for name in self.parts}


def read_form(event: BaseProxyEvent) -> Form:
    """The request's form (url-encoded or multipart), within the service's size limits."""
    if not event.body:
        return Form()
    kind, _ = media_type(event)
    if kind not in (FORM, MULTIPART):
        raise UnsupportedMediaType(f"send the form as {FORM} or {MULTIPART}, not {kind or 'untyped'}")
    return Form(form_parts(event, kind, raw_body(event)))


@dataclass(frozen=True)
class Page:
    """What every page knows of its request: who looks, in which language, under which prefix, and the
    clinic it is about (whose zone every time on the page is shown in)."""

    event: BaseProxyEvent
    viewer: Viewer | None
    language: str = "en"
    prefix: str = ""
    language_chosen: bool = False  # ?lang= was given: the answer keeps it in a cookie
    clinic: Clinic | None = None
    now: float = field(default_factory=time.time)

    @classmethod
    def of(cls, event: BaseProxyEvent, signed_in: bool = True) -> Page:
        """The page of a request; `signed_in` pages (every one behind the authorizer) know their viewer."""
        language, chosen = language_of(event)
        viewer = viewer_of(event.raw_event) if signed_in else None
        return cls(event, viewer, language, prefix(event.raw_event), chosen)

    @classmethod
    def lenient(cls, event: BaseProxyEvent) -> Page:
        """The page of any request, signed in or not (an error page must render whatever went wrong)."""
        try:
            return cls.of(event)
        except NotSignedIn:
            return cls.of(event, signed_in=False)

    # -- who looks ---------------------------------------------------------------------------------

    @property
    def is_operator(self) -> bool:
        return self.viewer is not None and self.viewer.is_operator

    @property
    def csrf(self) -> str:
        return self.viewer.csrf if self.viewer is not None else ""

    def require_operator(self) -> None:
        """An operator's page: to anyone else it does not exist."""
        if not self.is_operator:
            raise not_found()

    def require_sight_of(self, clinic_id: str) -> None:
        """A page about a clinic the viewer may see: to anyone else it does not exist, whether it does or not."""
        if not may_see(self.viewer, clinic_id):
            raise not_found()

    def for_clinic(self, store: Store, clinic_id: str) -> Page:
        """This page about a clinic the viewer may see (else the 404 page, whether it exists or not)."""
        self.require_sight_of(clinic_id)
        clinic = store.clinics.get(clinic_id)
        if clinic is None:
            raise not_found()
        return dataclasses.replace(self, clinic=clinic)

    def with_clinic(self, clinic: Clinic) -> Page:
        return dataclasses.replace(self, clinic=clinic)

    def require_csrf(self, form: Form) -> None:
        """A form posted by this session's own page (its hidden `csrf` field), else the 403 page."""
        if self.viewer is None or not self.viewer.csrf_matches(form.get("csrf")):
            raise Forbidden("this form has expired or did not come from the console; reload the page and try again")

    # -- words, links and times --------------------------------------------------------------------

    def t(self, en: str, ru: str) -> str:
        """The label in the page's language."""
        return ru if self.language == "ru" else en

    def url(self, path: str, **query: object) -> str:
        """A link to a console path (`/console/...`) under the request's prefix; None values are left out."""
        given = {name: str(value) for name, value in query.items() if value is not None}
        return f"{self.prefix}{path}" + (f"?{urlencode(given)}" if given else "")

    def here(self, **query: object) -> str:
        """This page again with some of its query parameters changed (None drops one)."""
        current: dict[str, object] = dict(self.event.query_string_parameters or {})
        current.update(query)
        return self.url(self.event.path, **current)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.clinic.timezone) if self.clinic is not None else ZoneInfo("UTC")

    @property
    def zone_name(self) -> str:
        return self.clinic.timezone if self.clinic is not None else "UTC"

    def local(self, at: float) -> dt.datetime:
        """An instant as the clinic's wall-clock time."""
        return from_epoch(int(at), self.tz)

    def time(self, at: float | None, fmt: str = TIME_FORMAT) -> str:
        """An instant in the clinic's zone (the page names the zone once); "—" for none."""
        return "—" if at is None else self.local(at).strftime(fmt)

    def age(self, at: float | None) -> str:
        """How long ago an instant was, in words of the page's language."""
        if at is None:
            return self.t("never", "никогда")
        seconds = max(0, int(self.now - at))
        if seconds < 60:
            return self.t("just now", "только что")
        minutes = seconds // 60
        if minutes < 120:
            return self.t(f"{minutes} min ago", f"{minutes} мин назад")
        hours = minutes // 60
        if hours < 48:
            return self.t(f"{hours} h ago", f"{hours} ч назад")
        return self.t(f"{hours // 24} d ago", f"{hours // 24} дн. назад")

    def duration(self, seconds: float) -> str:
        """A length of time, roughly (the oldest waiting order's wait)."""
        minutes = max(0, int(seconds)) // 60
        hours, rest = divmod(minutes, 60)
        if minutes < 60:
            return self.t(f"{minutes} min", f"{minutes} мин")
        if hours < 3 and rest:
            return self.t(f"{hours} h {rest} min", f"{hours} ч {rest} мин")
        if hours < 48:
            return self.t(f"{hours} h", f"{hours} ч")
        return self.t(f"{hours // 24} d", f"{hours // 24} дн.")

    def size(self, count: int) -> str:
        """A number of bytes, readably."""
        if count < 1024:
            return self.t(f"{count} B", f"{count} Б")
        value, unit = count / 1024, 0
        while value >= 1024 and unit < 2:
            value, unit = value / 1024, unit + 1
        shown = f"{value:.1f}"
        return self.t(f"{shown} {('KB', 'MB', 'GB')[unit]}", f"{shown.replace('.', ',')} {('КБ', 'МБ', 'ГБ')[unit]}")

    # -- answers -----------------------------------------------------------------------------------

    def headers(self) -> dict[str, str | list[str]]:
        found: dict[str, str | list[str]] = {**SECURITY_HEADERS, "Cache-Control": NO_STORE}
        if self.language_chosen:
            found["Set-Cookie"] = [
                cookie(self.event.raw_event, LANGUAGE_COOKIE, self.language, LANGUAGE_COOKIE_SECONDS)
            ]
        return found

    def render(self, template: str, status: int = 200, **values: Any) -> Response[str]:
        """The template as an HTML page: never cached, framed or referred from."""
        body = environment.get_template(template).render(page=self, t=self.t, url=self.url, **values)
        headers = {**self.headers(), "Vary": "Accept-Encoding, Cookie"}
        return Response(status, HTML, body, headers, compress=True)

    def redirect(self, path: str, **query: object) -> Response[str]:
        """303 See Other to a console path (after a POST, the browser fetches the answer with GET)."""
        return Response(SEE_OTHER, None, "", {**self.headers(), "Location": self.url(path, **query)})


def answer(page: Page, given: Answer) -> Response[str]:
    """What a sign-in route answers (console.auth): its redirect with its cookies, or the sign-in page again."""
    if given.location is None:
        return page.render("sign_in.html", status=given.status, **given.page)
    return Response(given.status, None, "", {**SECURITY_HEADERS, **given.headers})


# -- errors as pages ---------------------------------------------------------------------------------


def error_page(exc: ServiceError, event: BaseProxyEvent) -> Response[str]:
    """The page an error answers with, at the status the service gives that error everywhere."""
    page = Page.lenient(event)
    response = page.render("error.html", status=http_status(exc), code=exc.code, message=exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def resolver() -> APIGatewayRestResolver:
    """The console's resolver: routes answer pages, errors answer the error page."""
    return html_resolver(error_page)


STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
STATIC_SECONDS = 3600


def static_file(name: str) -> Response[str]:
    """A file of the console's static folder (the stylesheet), cached for an hour."""
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        raise not_found()
    headers = {"Cache-Control": f"public, max-age={STATIC_SECONDS}", "X-Content-Type-Options": "nosniff"}
    return Response(200, kind, path.read_text("utf-8"), headers, compress=True)
