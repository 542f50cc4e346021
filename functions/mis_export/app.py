"""GET or POST /services/export.php: a clinic's MIS pulls the orders changed in a window.

Any number of orders reaches the MIS (SPEC section 4, "Any size"): in the response where it fits Lambda's
limit, gzip-compressed when the MIS accepts gzip, and otherwise by a redirect to the document in S3.
"""

from aws_lambda_powertools.event_handler import Response
from mediexchange import exporting
from mediexchange.uploads import request_fields
from mediexchange.web import handler_for, sized_xml_response, store, xml_resolver

app = xml_resolver("ExportResult")


@app.get("/services/export.php")
@app.post("/services/export.php")
def export_php() -> Response[bytes]:
    event = app.current_event
    found = exporting.export(store(), request_fields(event))
    return sized_xml_response(event, found.body, found.encoding, found.keep(store()))


lambda_handler = handler_for(app)
