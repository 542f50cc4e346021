"""The portal's JSON API (behind an API Gateway API key): clinic, free slots, booking, orders."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from mediexchange import portal
from mediexchange.web import handler_for, json_resolver, store

app = json_resolver()


@app.get("/portal/clinics/<clinic_id>")
def clinic(clinic_id: str) -> dict[str, Any]:
    return portal.clinic_view(store(), clinic_id)


@app.get("/portal/clinics/<clinic_id>/slots")
def slots(clinic_id: str) -> dict[str, Any]:
    answer = portal.slots_view(store(), clinic_id, app.current_event.query_string_parameters or {})
    if answer.get("stale"):  # the clinic's MIS stopped sending its busy time: the StaleSyncAlarm fires
        with single_metric("StaleSlotAnswers", MetricUnit.Count, 1, namespace="MediExchange") as metric:
            metric.add_dimension("service", "portal")
    return answer


@app.post("/portal/clinics/<clinic_id>/orders")
def book(clinic_id: str) -> Response[dict[str, Any]]:
    return Response(201, "application/json", portal.book(store(), clinic_id, app.current_event.json_body))


@app.get("/portal/clinics/<clinic_id>/orders/<order_id>")
def order(clinic_id: str, order_id: str) -> dict[str, Any]:
    return portal.order_view(store(), clinic_id, order_id)


lambda_handler = handler_for(app)
