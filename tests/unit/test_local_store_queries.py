"""The local store's speed-ups of moto (devserver/moto_partitions.py, what `make run` and `make bench`
serve) answer every query exactly as moto itself does, page by page: an index query narrowed to what its
page can hold must never end a query early (an export would miss orders)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from devserver import moto_partitions

Page = tuple[list[tuple[str, str | None]], Any]
QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "p = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}},
    {"KeyConditionExpression": "p = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}, "ScanIndexForward": False},
    {
        "KeyConditionExpression": "p = :p AND lc BETWEEN :s AND :e",
        "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"N": "1100"}, ":e": {"N": "1250"}},
    },
    {
        "KeyConditionExpression": "p = :p AND lc >= :s",
        "ExpressionAttributeValues": {":p": {"S": "b"}, ":s": {"N": "1200"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "p = :p AND lc <= :s",
        "ExpressionAttributeValues": {":p": {"S": "b"}, ":s": {"N": "1200"}},
        "Limit": 333,
    },
]


@pytest.fixture
def client() -> Iterator[Any]:
    """Two partitions of 2,000 items of up to 2.7 KB (several 1 MB pages each) with an index partitioned as
    the table is, its range value shared by many items (ties across page boundaries); every 97th item
    lacks it (not in the index)."""
    rng = random.Random(3)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-central-1")
        index_keys = [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "lc", "KeyType": "RANGE"}]
        dynamodb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "o", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind} for name, kind in (("p", "S"), ("o", "N"), ("lc", "N"))
            ],
            GlobalSecondaryIndexes=[{"IndexName": "by_lc", "KeySchema": index_keys, "Projection": {"ProjectionType": "ALL"}}],
        )  # fmt: skip
        for partition in ("a", "b"):
            for order in range(2_000):
                item = {"p": {"S": partition}, "o": {"N": str(order)}, "pad": {"S": "x" * rng.randint(300, 2700)}}
                if order % 97:
                    item["lc"] = {"N": str(1000 + rng.randint(0, 400))}
                dynamodb.put_item(TableName="t", Item=item)
        yield dynamodb


def pages(client: Any, query: dict[str, Any]) -> list[Page]:
    """Every page of an index query: its items' (o, lc) and the key it ends at."""
    found: list[Page] = []
    more: dict[str, Any] = {}
    while True:
        answer = client.query(TableName="t", IndexName="by_lc", **query, **more)
        found.append(
            ([(i["o"]["N"], i.get("lc", {}).get("N")) for i in answer["Items"]], answer.get("LastEvaluatedKey"))
        )
        if "LastEvaluatedKey" not in answer:
            return found
        more = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def test_index_queries_of_the_local_store_answer_as_motos_own_page_by_page(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given what moto itself answers to queries of every shape the export makes (and more), page by page
    expected = [pages(client, query) for query in QUERIES]
    assert [len(p) for p in expected] == [4, 4, 2, 2, 4]  # several pages, ties at their boundaries
    # When the local store's speed-ups are in place (as `make run` installs them)
    monkeypatch.setattr(Table, "query", moto_partitions._partition_query)
    monkeypatch.setattr(Table, "all_items", moto_partitions._partition_items)
    monkeypatch.setattr(DynamoHandler, "query", moto_partitions._plain_query)
    # Then every page holds the same items in the same order and ends at the same key
    assert [pages(client, query) for query in QUERIES] == expected
