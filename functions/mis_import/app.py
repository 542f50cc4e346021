"""POST /services/import.php: a clinic's MIS pushes a MediExchange document; GET /services/schema.xsd: its schema."""

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from mediexchange import importing
from mediexchange.protocol.writing import accepted_result, import_result, serialize
from mediexchange.uploads import xml_document
from mediexchange.web import handler_for, logger, store, xml_resolver, xml_response

metrics = Metrics(namespace="MediExchange", service="import")
app = xml_resolver("ImportResult")


@app.post("/services/import.php")
def import_php() -> Response[bytes]:
    metrics.add_metric("ImportRequests", MetricUnit.Count, 1)
    upload = xml_document(app.current_event)
    received = importing.receive_document(
        store(), upload.document, upload.charset, dry_run=upload.dry_run, known=upload.known
    )
    ids = {"clinic_id": received.clinic.clinic_id, "import_id": received.import_id, "status": received.status}
    logger.info("import received", extra=ids)
    report = received.report
    if report is None:
        metrics.add_metric("ImportsDeferred", MetricUnit.Count, 1)
        return xml_response(202, serialize(accepted_result(received.import_id)))
    if not report.dry_run:
        metrics.add_metric("ItemsWritten", MetricUnit.Count, report.written)
        metrics.add_metric("ItemsDeleted", MetricUnit.Count, report.deleted)
    return xml_response(200, serialize(import_result(report)))


@app.get("/services/schema.xsd")
def schema_xsd() -> Response[bytes]:
    from mediexchange.protocol.schema import schema_document  # a rare request: not every cold start's import

    metrics.add_metric("SchemaRequests", MetricUnit.Count, 1)
    return xml_response(200, schema_document())


lambda_handler = metrics.log_metrics(handler_for(app))
