"""The administration the CLI has, as pages for operators only (to an integrator they do not exist):
a clinic's settings, its keys (rotate, revoke), disabling it, creating a clinic.

A new key is shown once, on the answer to the POST that made it, and never again: the store keeps
only its hash, and neither the key nor anything the key opens is ever logged. Every change is
logged with who made it, and nothing else.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response

from mediexchange.console.pages import Form, Page, read_form
from mediexchange.errors import AdminError
from mediexchange.keys import new_client_key
from mediexchange.records import Clinic, ExportNames, hours_from_text, hours_text
from mediexchange.store import Store
from mediexchange.timeutil import DEFAULT_TIMEZONE

logger = Logger(service="mediexchange")

BAD_REQUEST = 400
LONGEST_NAME = 200


def _changed(page: Page, action: str, clinic_id: str) -> None:
    """The one log line of a change: who, what, which clinic (never a key, never patient data)."""
    who = page.viewer.who if page.viewer is not None else ""
    logger.info("console change", extra={"who": who, "action": action, "clinic_id": clinic_id})


def _operator_form(page: Page, store: Store, clinic_id: str) -> tuple[Page, Clinic, Form]:
    """An operator's POST about a clinic, its CSRF value checked (404 for anyone else, 403 without it)."""
    page.require_operator()
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    form = read_form(page.event)
    page.require_csrf(form)
    return page, page.clinic, form


# -- settings --------------------------------------------------------------------------------------


def _hours(raw: str) -> float:
    """stale_after_hours as typed, checked as `mediexchange clinic set --stale-after` checks it."""
    hours = hours_from_text(raw)
    if hours is None:
        raise AdminError(f"stale_after_hours must be a positive number of hours, got {raw!r}")
    return hours


def _settings(
    page: Page,
    store: Store,
    clinic: Clinic,
    status: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    saved: bool = False,
) -> Response[str]:
    values = {
        "timezone": clinic.timezone,
        "export_names": clinic.export_names.value,
        "stale_after_hours": hours_text(clinic.stale_after_hours),
        **(typed or {}),
    }
    return page.render(
        "admin_settings.html",
        status=status,
        clinic=clinic,
        keys=store.clinics.keys(clinic.clinic_id),
        values=values,
        export_names=[names.value for names in ExportNames],
        error=error,
        saved=saved,
    )


def settings_page(page: Page, store: Store, clinic_id: str) -> Response[str]:
    page.require_operator()
    page = page.for_clinic(store, clinic_id)
    assert page.clinic is not None
    saved = (page.event.query_string_parameters or {}).get("saved") == "1"
    return _settings(page, store, page.clinic, saved=saved)


def save_settings(page: Page, store: Store, clinic_id: str) -> Response[str]:
    """Check every field before changing anything (as `clinic set` does); a refusal changes nothing."""
    page, clinic, form = _operator_form(page, store, clinic_id)
    typed = {name: form.get(name).strip() for name in ("timezone", "export_names", "stale_after_hours")}
    try:
        names = typed["export_names"]
        if names and names not in {n.value for n in ExportNames}:
            raise AdminError(f"export_names must be one of {', '.join(n.value for n in ExportNames)}, got {names!r}")
        hours = _hours(typed["stale_after_hours"]) if typed["stale_after_hours"] else None
        store.clinics.update_settings(
            clinic.clinic_id,
            timezone=typed["timezone"] or None,
            export_names=ExportNames(names) if names else None,
            stale_after_hours=hours,
        )
    except AdminError as exc:
        return _settings(page, store, clinic, BAD_REQUEST, exc.message, typed)
    _changed(page, "settings", clinic.clinic_id)
    return page.redirect(f"/console/clinics/{clinic.clinic_id}/settings", saved=1)


# -- keys and disabling ----------------------------------------------------------------------------


def rotate_key(page: Page, store: Store, clinic_id: str) -> Response[str]:
    """Issue a second live key and show it, this once."""
    page, clinic, _ = _operator_form(page, store, clinic_id)
    try:
        client_key = store.clinics.rotate_key(clinic.clinic_id)
    except AdminError as exc:
        return _settings(page, store, clinic, BAD_REQUEST, exc.message)
    _changed(page, "rotate key", clinic.clinic_id)
    return page.render("admin_new_key.html", clinic=clinic, client_key=client_key, created=False)


def revoke_key(page: Page, store: Store, clinic_id: str, key_id: str) -> Response[str]:
    page, clinic, _ = _operator_form(page, store, clinic_id)
    try:
        store.clinics.revoke_key_id(clinic.clinic_id, key_id)
    except AdminError as exc:
        return _settings(page, store, clinic, BAD_REQUEST, exc.message)
    _changed(page, "revoke key", clinic.clinic_id)
    return page.redirect(f"/console/clinics/{clinic.clinic_id}/settings", saved=1)


def disable(page: Page, store: Store, clinic_id: str) -> Response[str]:
    page, clinic, _ = _operator_form(page, store, clinic_id)
    store.clinics.disable(clinic.clinic_id)
    _changed(page, "disable", clinic.clinic_id)
    return page.redirect(f"/console/clinics/{clinic.clinic_id}/settings", saved=1)


# -- a new clinic ----------------------------------------------------------------------------------


def create_clinic(page: Page, store: Store) -> Response[str]:
    """POST /console/clinics (name, timezone): the clinic and its first key, shown this once."""
    page.require_operator()
    form = read_form(page.event)
    page.require_csrf(form)
    name, timezone = form.get("name").strip(), form.get("timezone").strip() or DEFAULT_TIMEZONE
    try:
        if not name:
            raise AdminError("a clinic needs a name")
        if len(name) > LONGEST_NAME:
            raise AdminError(f"a clinic's name is at most {LONGEST_NAME} characters")
        client_key = new_client_key()
        clinic = store.clinics.create(name, timezone, client_key)
    except AdminError as exc:
        typed = {"name": name, "timezone": timezone}
        return page.render("admin_create.html", status=BAD_REQUEST, error=exc.message, values=typed)
    _changed(page, "create", clinic.clinic_id)
    page = page.with_clinic(clinic)
    return page.render("admin_new_key.html", clinic=clinic, client_key=client_key, created=True)
