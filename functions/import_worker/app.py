"""SQS FIFO -> the worker: finishes the imports that import.php did not (202, or a request that ended).

Every import has a message, grouped by clinic and lane, so a lane's imports come in the order received.
A message that fails is reported back (partial batch response) for SQS to deliver again, up to the
queue's maxReceiveCount; on that last delivery the import log records the failure.
"""

import json
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from mediexchange import importing
from mediexchange.config import ConfigurationError
from mediexchange.errors import ServiceError
from mediexchange.web import log_bug, store

logger = Logger(service="mediexchange")


def max_receives() -> int:
    configured = store().settings.import_max_receives
    if configured is None:
        raise ConfigurationError("IMPORT_MAX_RECEIVES is not set (template.yaml sets it from the queue's mapping)")
    return configured


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures = []
    for message in event["Records"]:
        job = json.loads(message["body"])
        logger.append_keys(clinic_id=job["clinic_id"], import_id=job["import_id"])
        deliveries = int(message.get("attributes", {}).get("ApproximateReceiveCount", 1))
        last_try = deliveries >= max_receives()
        try:
            # Waiting for older imports of the clinic may take half the time left; applying, the rest.
            wait_until = time.time() + context.get_remaining_time_in_millis() / 2000
            report = importing.finish_received(
                store(), job["clinic_id"], job["import_id"], last_try=last_try, wait_until=wait_until
            )
        except Exception as exc:
            if isinstance(exc, ServiceError):
                logger.warning("background import refused", extra={"code": exc.code, "delivery": deliveries})
            else:
                log_bug(exc)
            failures.append({"itemIdentifier": message["messageId"]})  # SQS delivers it again, or dead-letters it
            continue
        logger.info("import finished in the background" if report else "import already finished")
    return {"batchItemFailures": failures}
