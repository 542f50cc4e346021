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


OTHER_INDEX_QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}},
    {"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}, "ScanIndexForward": False},
    {
        "KeyConditionExpression": "g = :g AND at BETWEEN :s AND :e",
        "ExpressionAttributeValues": {":g": {"S": "y"}, ":s": {"S": "A#1100"}, ":e": {"S": "A#1250"}},
    },
    {
        "KeyConditionExpression": "g = :g AND begins_with(at, :b)",
        "ExpressionAttributeValues": {":g": {"S": "y"}, ":b": {"S": "S#"}},
    },
    {
        "KeyConditionExpression": "g = :g AND at <= :s",
        "ExpressionAttributeValues": {":g": {"S": "z"}, ":s": {"S": "A#1200"}},
        "Limit": 333,
    },
]


def other_index_pages(client: Any, query: dict[str, Any]) -> list[Page]:
    found: list[Page] = []
    more: dict[str, Any] = {}
    while True:
        answer = client.query(TableName="r", IndexName="by_g", **query, **more)
        items = [(f"{i['p']['S']}/{i['o']['N']}", i.get("at", {}).get("S")) for i in answer["Items"]]
        found.append((items, answer.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in answer:
            return found
        more = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}


def test_queries_of_an_index_partitioned_by_another_attribute_answer_as_motos_own_also_after_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a table whose index is partitioned by another attribute than the table (as the records'
    # by_resource is), 3,000 items of up to 2.7 KB over seven table partitions, every 97th not in the index
    rng = random.Random(5)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-central-1")
        index_keys = [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}]
        dynamodb.create_table(
            TableName="r",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "o", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": k} for n, k in (("p", "S"), ("o", "N"), ("g", "S"), ("at", "S"))
            ],
            GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": index_keys, "Projection": {"ProjectionType": "ALL"}}],
        )  # fmt: skip

        def put(n: int) -> None:
            item = {"p": {"S": f"p{n % 7}"}, "o": {"N": str(n)}, "pad": {"S": "x" * rng.randint(300, 2700)}}
            if n % 97:
                item["g"] = {"S": rng.choice("xyz")}
                item["at"] = {"S": f"{rng.choice('AS')}#{1000 + rng.randint(0, 400)}"}
            dynamodb.put_item(TableName="r", Item=item)

        for n in range(3_000):
            put(n)
        expected = [other_index_pages(dynamodb, query) for query in OTHER_INDEX_QUERIES]
        assert max(len(p) for p in expected) > 1
        # When the local store's speed-ups are in place
        monkeypatch.setattr(Table, "query", moto_partitions._partition_query)
        monkeypatch.setattr(Table, "all_items", moto_partitions._partition_items)
        monkeypatch.setattr(Table, "put_item", moto_partitions._counted_put)
        monkeypatch.setattr(Table, "delete_item", moto_partitions._counted_delete)
        monkeypatch.setattr(moto_partitions._dynamodb.DynamoDBBackend, "update_item", moto_partitions._counted_update)
        monkeypatch.setattr(DynamoHandler, "query", moto_partitions._plain_query)
        # Then every page is moto's own
        assert [other_index_pages(dynamodb, query) for query in OTHER_INDEX_QUERIES] == expected
        # And stays so after writes: new items, a deleted one, an update moving an item to another partition
        for n in range(3_000, 3_100):
            put(n)
        dynamodb.delete_item(TableName="r", Key={"p": {"S": "p1"}, "o": {"N": "1"}})
        dynamodb.update_item(
            TableName="r",
            Key={"p": {"S": "p2"}, "o": {"N": "2"}},
            UpdateExpression="SET g = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
        )
        patched = [other_index_pages(dynamodb, query) for query in OTHER_INDEX_QUERIES]
        monkeypatch.undo()
        assert patched == [other_index_pages(dynamodb, query) for query in OTHER_INDEX_QUERIES]
