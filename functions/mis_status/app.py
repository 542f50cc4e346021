"""GET /services/status.php: what became of a clinic's recent imports.

The list is bounded (protocol.writing.status_document); one import asked for by its id comes whole, and
like every answer here it is gzip-compressed for a client that accepts gzip, or redirected to S3 when
it would not fit Lambda's limit.
"""

import functools

from aws_lambda_powertools.event_handler import Response
from mediexchange import importing
from mediexchange.uploads import request_fields
from mediexchange.web import handler_for, sized_xml_response, store, xml_resolver

app = xml_resolver("ImportStatus")


@app.get("/services/status.php")
def status_php() -> Response[bytes]:
    event = app.current_event
    body = importing.import_status(store(), request_fields(event))
    return sized_xml_response(event, body, "utf-8", functools.partial(store().exports.keep, "status"))


lambda_handler = handler_for(app)
