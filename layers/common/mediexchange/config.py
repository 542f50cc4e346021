"""Settings from the environment, read once: the template sets them in AWS, `make run` and tests locally."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    endpoint_url: str | None
    clinics_table: str
    client_keys_table: str
    records_table: str
    orders_table: str
    holds_table: str
    imports_table: str
    documents_bucket: str
    import_queue_url: str | None
    max_document_bytes: int
    import_lease_seconds: int
    write_parallelism: int
    import_time_budget: float
    write_items_per_second: int
    retention_days: int


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def load() -> Settings:
    env = os.environ.get
    return Settings(
        region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "eu-central-1",
        endpoint_url=env("DYNAMODB_ENDPOINT_URL") or None,
        clinics_table=env("CLINICS_TABLE") or "mediexchange-clinics",
        client_keys_table=env("CLIENT_KEYS_TABLE") or "mediexchange-client-keys",
        records_table=env("RECORDS_TABLE") or "mediexchange-records",
        orders_table=env("ORDERS_TABLE") or "mediexchange-orders",
        holds_table=env("HOLDS_TABLE") or "mediexchange-holds",
        imports_table=env("IMPORTS_TABLE") or "mediexchange-imports",
        documents_bucket=env("DOCUMENTS_BUCKET") or "mediexchange-documents",
        import_queue_url=env("IMPORT_QUEUE_URL") or None,
        max_document_bytes=_int("MAX_DOCUMENT_BYTES", 50 * 1024 * 1024),
        # Longer than the import function's timeout: a lease outlives the import it guards,
        # and a crashed import's lease runs out by itself.
        import_lease_seconds=_int("IMPORT_LEASE_SECONDS", 120),
        write_parallelism=_int("WRITE_PARALLELISM", 8),
        # An import whose writes would not finish within this many seconds (below the API's 29 s)
        # is stored and finished in the background: 202, then status.php.
        import_time_budget=float(env("IMPORT_TIME_BUDGET_SECONDS") or 20),
        write_items_per_second=_int("WRITE_ITEMS_PER_SECOND", 2000),
        retention_days=_int("RETENTION_DAYS", 30),
    )


settings = load()
