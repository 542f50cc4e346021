"""The environment every test shares: moto's fake credentials and the settings the template gives the
functions. Stores are built from it in fixtures (nothing reads it at import time)."""

import os
from pathlib import Path

from devserver.template import find_in_map

os.environ.pop("DYNAMODB_ENDPOINT_URL", None)  # unit tests run on moto in-process; integration tests start their own
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-central-1",
    AWS_REGION="eu-central-1",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
    IMPORT_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/mediexchange-imports.fifo",
    IMPORT_MAX_RECEIVES=str(find_in_map("ImportQueue", "Deliveries", "Max")),
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "seed-sample.xml"
SAMPLE_KEY = "9DDDE578-5179-4CC4-A2A0-F681618ED9EA"
