"""GET or POST /services/export.php: a clinic's MIS pulls the orders changed in a window."""

from aws_lambda_powertools.event_handler import Response
from mediexchange import exporting
from mediexchange.web import handler_for, request_fields, store, xml_resolver, xml_response

app = xml_resolver("ExportResult")


@app.get("/services/export.php")
@app.post("/services/export.php")
def export_php() -> Response[bytes]:
    body, encoding = exporting.export_orders(store(), request_fields(app.current_event))
    return xml_response(200, body, encoding)


lambda_handler = handler_for(app)
