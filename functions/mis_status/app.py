"""GET /services/status.php: what became of a clinic's recent imports."""

from aws_lambda_powertools.event_handler import Response
from mediexchange import importing
from mediexchange.web import handler_for, request_fields, store, xml_resolver, xml_response

app = xml_resolver("ImportStatus")


@app.get("/services/status.php")
def status_php() -> Response[bytes]:
    return xml_response(200, importing.import_status(store(), request_fields(app.current_event)))


lambda_handler = handler_for(app)
