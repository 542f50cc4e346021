"""The bulk paths: BatchWriteItem (25 items a call) and BatchGetItem (100 keys a call), several calls
at once, retried with backoff.

botocore retries a refused call but not a partial answer (`UnprocessedItems`, `UnprocessedKeys`), and
PynamoDB's own batch writer resends those at once, with no backoff: under throttling that only burns
capacity. Here one loop retries both, with exponential backoff and full jitter (botocore's own
retries are off for these calls), and a chunk that never drains fails the whole call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from mediexchange.store.backend import RETRY, RETRYABLE_CODES, UNREACHABLE, RetryPolicy, busy

WRITE_BATCH = 25  # DynamoDB's limit per BatchWriteItem
GET_BATCH = 100  # DynamoDB's limit per BatchGetItem

Item = dict[str, Any]
T = TypeVar("T")


def put_request(item: Item) -> Item:
    return {"PutRequest": {"Item": item}}


def delete_request(key: Item) -> Item:
    return {"DeleteRequest": {"Key": key}}


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def drain(
    send: Callable[[Any], tuple[list[Item], Any]],
    request: Any,
    retry: RetryPolicy = RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Item], int]:
    """Send a batch request until nothing is left unprocessed: `send(request)` answers (items it
    returned, what is left of the request). Returns every item returned and the number of calls."""
    found: list[Item] = []
    for attempt in range(retry.bulk_attempts):
        if attempt:
            sleep(retry.backoff(attempt))
        try:
            items, request = send(request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in RETRYABLE_CODES:
                raise
            continue
        except UNREACHABLE:  # connection errors and timeouts: the same request may be resent safely
            continue
        found += items
        if not request:
            return found, attempt + 1
    raise busy()


def write_all(
    client: Any,
    table: str,
    requests: Iterable[Item],
    parallelism: int,
    retry: RetryPolicy = RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Write every request; returns the number of BatchWriteItem calls made. Raises StoreUnavailable.

    `requests` is read as the batches go out, at most two batches per worker ahead: a big clinic's
    10^5 items never sit in memory at once.
    """

    def send(pending: list[Item]) -> tuple[list[Item], list[Item]]:
        response = client.batch_write_item(RequestItems={table: pending})
        return [], response.get("UnprocessedItems", {}).get(table, [])

    def write(chunk: tuple[Item, ...]) -> int:
        return drain(send, list(chunk), retry, sleep)[1]

    calls = 0
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        running: set[Future[int]] = set()
        for chunk in batched(requests, WRITE_BATCH):
            if len(running) >= 2 * parallelism:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                calls += sum(future.result() for future in done)
            running.add(pool.submit(write, chunk))
        calls += sum(future.result() for future in running)
    return calls


def get_all(
    client: Any,
    table: str,
    keys: list[Item],
    projection: str | None,
    parallelism: int,
    retry: RetryPolicy = RETRY,
) -> list[Item]:
    """Every item of the given keys that exists, strongly consistent, with the projected attributes (all
    of them if `projection` is None)."""

    def send(request: Item) -> tuple[list[Item], Item]:
        response = client.batch_get_item(RequestItems=request)
        return response["Responses"].get(table, []), response.get("UnprocessedKeys") or {}

    def fetch(chunk: tuple[Item, ...]) -> list[Item]:
        asked: Item = {"Keys": list(chunk), "ConsistentRead": True}
        if projection is not None:
            asked["ProjectionExpression"] = projection
        request = {table: asked}
        return drain(send, request, retry)[0]

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        return [item for items in pool.map(fetch, batched(keys, GET_BATCH)) for item in items]
