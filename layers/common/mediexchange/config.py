"""Settings: read from the environment when a function first needs the store, checked, then passed down.

The template sets them in AWS; `make run`, the tests and the benchmark build them the same way.
Nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

# The local store (moto's server, `make run`) keeps its tables in this region, whatever the shell says.
LOCAL_REGION = "eu-central-1"
LOCAL_CREDENTIALS = ("local", "local")  # any key will do for a local store; botocore insists on one

T = TypeVar("T")

# -- sizes that AWS decides -----------------------------------------------------------------------
# Lambda refuses an invocation whose payload, the event JSON that API Gateway builds, is over 6 MiB
# ("Request must be smaller than 6291456 bytes"). API Gateway puts the request body in that event
# base64-encoded (the API's binary media types): 4 characters for every 3 bytes. Around it come the
# headers (twice: `headers` and `multiValueHeaders`), the query string (twice), the path and the
# request context. API Gateway caps the request line and headers at 10,240 bytes, so 64 KiB holds that
# envelope with room to spare. The largest body sure to reach the function is therefore
#     (6,291,456 - 65,536) / 4 * 3 = 4,669,440 bytes (about 4.45 MiB) as sent;
# a larger one gets 413 too_large from the function, or, larger still, never reaches it at all.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
EVENT_ENVELOPE_BYTES = 64 * 1024
MAX_REQUEST_BYTES = (LAMBDA_PAYLOAD_BYTES - EVENT_ENVELOPE_BYTES) // 4 * 3


class ConfigurationError(Exception):
    """A setting that cannot work; the message names the variable and what it should be."""


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    endpoint_url: str | None  # DYNAMODB_ENDPOINT_URL: a local store (DynamoDB, S3 and SQS); None means AWS
    clinics_table: str = "mediexchange-clinics"
    client_keys_table: str = "mediexchange-client-keys"
    records_table: str = "mediexchange-records"
    orders_table: str = "mediexchange-orders"
    holds_table: str = "mediexchange-holds"
    imports_table: str = "mediexchange-imports"
    sessions_table: str = "mediexchange-sessions"
    history_table: str = "mediexchange-history"
    documents_bucket: str = "mediexchange-documents"
    import_queue_url: str | None = None
    # What a document may hold once gzip is inflated; as sent, a body holds at most MAX_REQUEST_BYTES.
    max_document_bytes: int = 50 * 1024 * 1024
    # The import lease renews itself every third of this while the import works, so a crashed
    # import holds its clinic's lane for at most this long.
    import_lease_seconds: int = 60
    # How long an import request may live (the import function's timeout): until then the worker
    # leaves the request's import to the request, after it the worker takes it over.
    import_request_seconds: int = 30
    # Store calls in flight at once for one request (batch writes, batch reads, per-partition queries).
    store_parallelism: int = 8
    # An import whose writes would not finish within this many seconds (below the API's 29 s)
    # is stored and finished in the background: 202, then status.php.
    import_time_budget: float = 20.0
    write_items_per_second: int = 2000
    retention_days: int = 30
    # Orders and their held time are deleted (DynamoDB TTL) this long after the visit or their last change.
    order_retention_days: int = 365
    # Deliveries of one background import before SQS dead-letters it (template.yaml's ImportQueue mapping).
    import_max_receives: int | None = None
    # The console's operators sign in through this Cognito user pool and app client; None (locally)
    # leaves only the one-time sign-in links.
    console_user_pool_id: str | None = None
    console_user_pool_client_id: str | None = None
    console_session_hours: int = 8
    console_link_minutes: int = 10

    @property
    def credentials(self) -> tuple[str, str] | None:
        """Explicit credentials for a local store; None lets AWS's usual chain find them."""
        return LOCAL_CREDENTIALS if self.endpoint_url else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables (default: this process's); raises ConfigurationError."""
        env = os.environ if env is None else env

        def read(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name}={raw!r}: {exc}") from None

        text = str
        endpoint = read("DYNAMODB_ENDPOINT_URL", _url, None)
        defaults = cls(region=LOCAL_REGION, endpoint_url=None)
        return cls(
            # A local store lives in one region; an AWS_REGION left in a developer's shell must not move it.
            region=LOCAL_REGION if endpoint else read("AWS_REGION", text, "") or read("AWS_DEFAULT_REGION", text, ""),
            endpoint_url=endpoint,
            clinics_table=read("CLINICS_TABLE", text, defaults.clinics_table),
            client_keys_table=read("CLIENT_KEYS_TABLE", text, defaults.client_keys_table),
            records_table=read("RECORDS_TABLE", text, defaults.records_table),
            orders_table=read("ORDERS_TABLE", text, defaults.orders_table),
            holds_table=read("HOLDS_TABLE", text, defaults.holds_table),
            imports_table=read("IMPORTS_TABLE", text, defaults.imports_table),
            sessions_table=read("SESSIONS_TABLE", text, defaults.sessions_table),
            history_table=read("HISTORY_TABLE", text, defaults.history_table),
            documents_bucket=read("DOCUMENTS_BUCKET", text, defaults.documents_bucket),
            import_queue_url=read("IMPORT_QUEUE_URL", _url, None),
            max_document_bytes=read("MAX_DOCUMENT_BYTES", _positive, defaults.max_document_bytes),
            import_lease_seconds=read("IMPORT_LEASE_SECONDS", _positive, defaults.import_lease_seconds),
            import_request_seconds=read("IMPORT_REQUEST_SECONDS", _positive, defaults.import_request_seconds),
            store_parallelism=read("STORE_PARALLELISM", _positive, defaults.store_parallelism),
            import_time_budget=read("IMPORT_TIME_BUDGET_SECONDS", _positive_float, defaults.import_time_budget),
            write_items_per_second=read("WRITE_ITEMS_PER_SECOND", _positive, defaults.write_items_per_second),
            retention_days=read("RETENTION_DAYS", _positive, defaults.retention_days),
            order_retention_days=read("ORDER_RETENTION_DAYS", _positive, defaults.order_retention_days),
            import_max_receives=read("IMPORT_MAX_RECEIVES", _positive, None),
            console_user_pool_id=read("CONSOLE_USER_POOL_ID", text, None),
            console_user_pool_client_id=read("CONSOLE_USER_POOL_CLIENT_ID", text, None),
            console_session_hours=read("CONSOLE_SESSION_HOURS", _positive, defaults.console_session_hours),
            console_link_minutes=read("CONSOLE_LINK_MINUTES", _positive, defaults.console_link_minutes),
        ).checked()

    def checked(self) -> Settings:
        if not self.region:
            raise ConfigurationError("no AWS region: set AWS_REGION (or DYNAMODB_ENDPOINT_URL for a local store)")
        return self


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError("must be a positive whole number")
    return int(raw)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be a URL starting with http:// or https://")
    return raw
