"""SQS -> the worker: finishes the imports that import.php accepted with 202."""

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from mediexchange import importing

logger = Logger(service="mediexchange")
LAST_TRY = 3  # the queue's maxReceiveCount: after this delivery the message goes to the dead-letter queue


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Batch size 1: a failure leaves the message to SQS, which retries it and finally dead-letters it."""
    for message in event["Records"]:
        job = json.loads(message["body"])
        logger.append_keys(clinic_id=job["clinic_id"], import_id=job["import_id"])
        last_try = int(message.get("attributes", {}).get("ApproximateReceiveCount", 1)) >= LAST_TRY
        report = importing.finish_received(job["clinic_id"], job["import_id"], last_try=last_try)
        logger.info("import finished in the background" if report else "import already finished")
    return {"batchItemFailures": []}
