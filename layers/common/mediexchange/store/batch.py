"""The bulk write path: BatchWriteItem, 25 items a call, several calls at once, retried with backoff.

PynamoDB's own batch writer resends unprocessed items at once, with no backoff; under throttling
that only burns capacity. Here each chunk's `UnprocessedItems` and throttling errors are retried
with exponential backoff and full jitter, and a chunk that never drains fails the whole write.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import lru_cache
from itertools import islice
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as StoreConnectionError

from mediexchange.config import settings
from mediexchange.errors import StoreUnavailable

BATCH_SIZE = 25  # DynamoDB's limit per BatchWriteItem
MAX_ATTEMPTS = 8
BASE_DELAY = 0.05
MAX_DELAY = 5.0
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

# Timeouts and broken connections (not botocore's other errors, such as invalid parameters: bugs).
UNREACHABLE = (StoreConnectionError, HTTPClientError)

WriteRequest = dict[str, Any]
T = TypeVar("T")


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)
    return boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config)


def put_request(item: dict[str, Any]) -> WriteRequest:
    return {"PutRequest": {"Item": item}}


def delete_request(key: dict[str, Any]) -> WriteRequest:
    return {"DeleteRequest": {"Key": key}}


def is_transient(exc: BaseException) -> bool:
    """A store failure that waiting may cure (throttling, timeouts, the service's own errors)."""
    cause = getattr(exc, "cause", None) or exc  # PynamoDB wraps the botocore error
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return isinstance(cause, UNREACHABLE)


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: a random delay up to an exponentially growing cap."""
    return rand() * min(MAX_DELAY, BASE_DELAY * 2.0**attempt)


def write_all(
    table: str,
    requests: Iterable[WriteRequest],
    *,
    client: Any = None,
    parallelism: int | None = None,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Write every request; returns the number of BatchWriteItem calls made. Raises StoreUnavailable.

    `requests` is read as the batches go out, at most two batches per worker ahead.
    """
    client = client or dynamodb_client()
    pause = sleep or time.sleep
    workers = parallelism or settings.write_parallelism
    calls = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: set[Future[int]] = set()
        for chunk in batched(requests, BATCH_SIZE):
            if len(running) >= 2 * workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                calls += sum(future.result() for future in done)
            running.add(pool.submit(_write_chunk, client, table, list(chunk), pause))
        calls += sum(future.result() for future in running)
    return calls


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def _write_chunk(client: Any, table: str, chunk: list[WriteRequest], sleep: Callable[[float], None]) -> int:
    pending, calls = chunk, 0
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            sleep(backoff(attempt))
        calls += 1
        try:
            response = client.batch_write_item(RequestItems={table: pending})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in RETRYABLE_CODES:
                raise
            continue
        except UNREACHABLE:  # connection errors and timeouts: the same request may be resent safely
            continue
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if not pending:
            return calls
    raise StoreUnavailable("the store is busy; nothing accepted was lost, send the document again later", retry_after=5)
