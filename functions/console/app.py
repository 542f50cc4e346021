"""The console (issue 13): server-rendered pages for the portal's operators and the clinics' integrators.

Every route but the sign-in pages and the stylesheet sits behind the API's console authorizer, which puts
the session into requestContext.authorizer (mediexchange.console.auth.viewer). Errors answer as pages
(mediexchange.console.pages.error_page) at the statuses every other function gives them.
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from mediexchange.console import admin, auth, board, clinics, orders, receipts
from mediexchange.console.pages import Page, answer, read_form, resolver, static_file
from mediexchange.web import handler_for, store

app = resolver()


def page() -> Page:
    return Page.of(app.current_event)


# -- signing in and out (no authorizer on these but sign-out) ---------------------------------------


@app.get("/console/sign-in")
def sign_in() -> Response[str]:
    event = app.current_event
    return Page.of(event, signed_in=False).render("sign_in.html", **auth.sign_in_page_context(store(), event.raw_event))


@app.post("/console/sign-in/operator")
def sign_in_operator() -> Response[str]:
    event = app.current_event
    form = read_form(event).fields()
    return answer(Page.of(event, signed_in=False), auth.sign_in_operator(store(), event.raw_event, form))


@app.get("/console/sign-in/once/<token>")
def sign_in_once(token: str) -> Response[str]:
    event = app.current_event
    return answer(Page.of(event, signed_in=False), auth.redeem_link(store(), event.raw_event, token))


@app.post("/console/sign-in/clinic")
def sign_in_clinic() -> Response[str]:
    event = app.current_event
    form = read_form(event).fields()
    return answer(Page.of(event, signed_in=False), auth.sign_in_clinic(store(), event.raw_event, form))


@app.post("/console/sign-out")
def sign_out() -> Response[str]:
    current = page()
    current.require_csrf(read_form(app.current_event))
    return answer(current, auth.sign_out(store(), app.current_event.raw_event, current.viewer))


@app.get("/console/static/<name>")
def static(name: str) -> Response[str]:
    return static_file(name)


# -- clinics, imports, receipts ---------------------------------------------------------------------


@app.get("/console")
def clinics_list() -> Response[str]:
    return clinics.clinics_page(store(), page())


@app.post("/console/clinics")
def create_clinic() -> Response[str]:
    return admin.create_clinic(page(), store())


@app.get("/console/clinics/<clinic_id>")
def clinic(clinic_id: str) -> Response[str]:
    return clinics.clinic_page(store(), page(), clinic_id)


@app.get("/console/clinics/<clinic_id>/imports/<import_id>")
def receipt(clinic_id: str, import_id: str) -> Response[str]:
    return receipts.receipt_page(store(), page(), clinic_id, import_id)


@app.get("/console/clinics/<clinic_id>/imports/<import_id>/document")
def document(clinic_id: str, import_id: str) -> Response[Any]:
    return receipts.document_download(store(), page(), app.current_event, clinic_id, import_id)


@app.get("/console/clinics/<clinic_id>/dry-run")
def dry_run_form(clinic_id: str) -> Response[str]:
    return receipts.dry_run_page(store(), page(), clinic_id, None)


@app.post("/console/clinics/<clinic_id>/dry-run")
def dry_run(clinic_id: str) -> Response[str]:
    return receipts.dry_run_page(store(), page(), clinic_id, read_form(app.current_event))


# -- board, orders, administration (helper B2 adds its routes below) -------------------------------


@app.get("/console/clinics/<clinic_id>/board")
def week_board(clinic_id: str) -> Response[str]:
    return board.week_page(page(), store(), clinic_id)


@app.get("/console/clinics/<clinic_id>/board/<day>")
def day_board(clinic_id: str, day: str) -> Response[str]:
    return board.day_page(page(), store(), clinic_id, day)


@app.get("/console/clinics/<clinic_id>/orders")
def order_search(clinic_id: str) -> Response[str]:
    return orders.search_page(page(), store(), clinic_id)


@app.get("/console/clinics/<clinic_id>/orders/<order_id>")
def order(clinic_id: str, order_id: str) -> Response[str]:
    return orders.order_page_of(page(), store(), clinic_id, order_id)


@app.get("/console/clinics/<clinic_id>/settings")
def settings(clinic_id: str) -> Response[str]:
    return admin.settings_page(page(), store(), clinic_id)


@app.post("/console/clinics/<clinic_id>/settings")
def save_settings(clinic_id: str) -> Response[str]:
    return admin.save_settings(page(), store(), clinic_id)


@app.post("/console/clinics/<clinic_id>/keys")
def rotate_key(clinic_id: str) -> Response[str]:
    return admin.rotate_key(page(), store(), clinic_id)


@app.post("/console/clinics/<clinic_id>/keys/<key_id>/revoke")
def revoke_key(clinic_id: str, key_id: str) -> Response[str]:
    return admin.revoke_key(page(), store(), clinic_id, key_id)


@app.post("/console/clinics/<clinic_id>/disable")
def disable(clinic_id: str) -> Response[str]:
    return admin.disable(page(), store(), clinic_id)


lambda_handler = handler_for(app)
