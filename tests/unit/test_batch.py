"""The bulk write path against botocore's Stubber: moto never returns UnprocessedItems nor throttles."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mediexchange.errors import StoreUnavailable
from mediexchange.store.backend import RETRY
from mediexchange.store.batch import get_all, put_request, write_all
from mediexchange.web import http_status

TABLE = "records"


def requests(count: int) -> list[dict[str, Any]]:
    return [put_request({"pk": {"S": f"c#A#{i}"}, "sk": {"S": str(i)}}) for i in range(count)]


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("dynamodb", region_name="eu-central-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_unprocessed_items_and_throttling_are_retried_with_backoff(stubbed: Any) -> None:
    client, stubber = stubbed
    batch = requests(30)  # two calls' worth: 25 + 5
    # Given the first chunk comes back with 5 items unprocessed, then drains
    stubber.add_response(
        "batch_write_item", {"UnprocessedItems": {TABLE: batch[20:25]}}, {"RequestItems": {TABLE: batch[:25]}}
    )
    stubber.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {TABLE: batch[20:25]}})
    # And the second chunk is throttled once, then goes through
    stubber.add_client_error(
        "batch_write_item",
        "ProvisionedThroughputExceededException",
        expected_params={"RequestItems": {TABLE: batch[25:]}},
    )
    stubber.add_response("batch_write_item", {}, {"RequestItems": {TABLE: batch[25:]}})
    sleeps: list[float] = []
    # When everything is written
    calls = write_all(client, TABLE, batch, parallelism=1, sleep=sleeps.append)
    # Then only the unprocessed items were resent, after a pause each time
    assert calls == 4
    assert len(sleeps) == 2
    assert all(0 <= s <= RETRY.max_delay for s in sleeps)


def test_items_that_never_drain_fail_the_write_instead_of_spinning(stubbed: Any) -> None:
    client, stubber = stubbed
    batch = requests(3)
    for _ in range(RETRY.bulk_attempts):
        stubber.add_response("batch_write_item", {"UnprocessedItems": {TABLE: batch}}, {"RequestItems": {TABLE: batch}})
    sleeps: list[float] = []
    with pytest.raises(StoreUnavailable) as raised:
        write_all(client, TABLE, batch, parallelism=1, sleep=sleeps.append)
    assert http_status(raised.value) == 503 and raised.value.retry_after
    assert len(sleeps) == RETRY.bulk_attempts - 1


def test_errors_that_retrying_cannot_fix_are_raised_at_once(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "batch_write_item", "ValidationException", expected_params={"RequestItems": {TABLE: requests(1)}}
    )
    with pytest.raises(Exception, match="ValidationException"):
        write_all(client, TABLE, requests(1), parallelism=1, sleep=lambda _: None)


def test_backoff_grows_exponentially_up_to_a_cap() -> None:
    assert [RETRY.backoff(a, rand=lambda: 1.0) for a in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert RETRY.backoff(30, rand=lambda: 1.0) == RETRY.max_delay
    assert RETRY.backoff(3, rand=lambda: 0.0) == 0.0


def test_a_big_write_is_split_into_calls_of_25(stubbed: Any) -> None:
    client, stubber = stubbed
    batch = requests(60)
    for start in (0, 25, 50):
        stubber.add_response("batch_write_item", {}, {"RequestItems": {TABLE: batch[start : start + 25]}})
    assert write_all(client, TABLE, batch, parallelism=1) == 3


def test_unprocessed_keys_of_a_batch_read_are_asked_for_again(stubbed: Any) -> None:
    client, stubber = stubbed
    keys = [{"pk": {"S": f"c#A#{i}"}, "sk": {"S": str(i)}} for i in range(3)]
    asked = {TABLE: {"Keys": keys, "ProjectionExpression": "sk, h", "ConsistentRead": True}}
    left = {TABLE: {"Keys": keys[2:], "ProjectionExpression": "sk, h", "ConsistentRead": True}}
    # Given the store answers two keys, leaving the third unprocessed, then answers it
    first = [{"sk": {"S": "0"}, "h": {"S": "a"}}, {"sk": {"S": "1"}, "h": {"S": "b"}}]
    stubber.add_response(
        "batch_get_item", {"Responses": {TABLE: first}, "UnprocessedKeys": left}, {"RequestItems": asked}
    )
    stubber.add_response(
        "batch_get_item", {"Responses": {TABLE: [{"sk": {"S": "2"}, "h": {"S": "c"}}]}}, {"RequestItems": left}
    )
    # When the three are read; Then all three come back, in two calls
    found = get_all(client, TABLE, keys, "sk, h", parallelism=1)
    assert [item["sk"]["S"] for item in found] == ["0", "1", "2"]
