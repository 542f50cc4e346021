"""template.yaml and the code agree: the same tables, keys and indexes; the routes the handlers serve."""

from __future__ import annotations

from typing import Any

from mediexchange.config import Settings
from mediexchange.store import Store

from devserver import template
from devserver.server import local_table_names


def key_schema(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def template_schema() -> dict[str, dict[str, Any]]:
    """The template's tables, described as `Store.schema` describes the models."""
    described = {}
    for table in template.create_table_requests(local_table_names()):
        indexes = {i["IndexName"]: key_schema(i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])}
        types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
        described[table["TableName"]] = {"keys": key_schema(table["KeySchema"]), "indexes": indexes, "types": types}
    return described


def test_the_store_and_the_template_declare_the_same_tables_keys_and_indexes() -> None:
    # Given the store built as the functions build it; When its models are described
    expected = Store(Settings.from_env()).schema()
    # Then the template declares exactly those tables, keys, indexes and key types
    assert template_schema() == expected
    assert set(expected) == set(local_table_names().values())


def test_the_mis_routes_are_the_original_portals_paths() -> None:
    routes = {(r.method, r.path, r.module) for r in template.routes()}
    assert routes >= {
        ("POST", "/services/import.php", "functions.mis_import.app"),
        ("GET", "/services/export.php", "functions.mis_export.app"),
        ("POST", "/services/export.php", "functions.mis_export.app"),
    }


def test_data_tables_are_retained_encrypted_and_recoverable() -> None:
    for resource in template.resources("AWS::DynamoDB::Table").values():
        props = resource["Properties"]
        assert resource["DeletionPolicy"] == "Retain"
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_api_is_throttled_and_the_portal_metered() -> None:
    api = template.resources("AWS::Serverless::Api")["MediExchangeApi"]["Properties"]
    [stage_limits] = api["MethodSettings"]
    assert stage_limits["ThrottlingRateLimit"] > 0 and stage_limits["ThrottlingBurstLimit"] > 0
    plan = api["Auth"]["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API" and plan["Throttle"]["RateLimit"] > 0 and plan["Quota"]["Limit"] > 0
    portal_routes = [r for r in template.routes() if r.path.startswith("/portal/")]
    assert len(portal_routes) == 4 and all(r.api_key_required for r in portal_routes)
    assert not any(r.api_key_required for r in template.routes() if r.path.startswith("/services/"))


def test_alarms_watch_server_errors_and_throttling() -> None:
    alarms = template.resources("AWS::CloudWatch::Alarm")
    watched = {a["Properties"].get("MetricName") for a in alarms.values()}
    watched |= {
        m["MetricStat"]["Metric"]["MetricName"]
        for a in alarms.values()
        for m in a["Properties"].get("Metrics", [])
        if "MetricStat" in m
    }
    assert {"5XXError", "Throttles", "WriteThrottleEvents", "ApproximateNumberOfMessagesVisible"} <= watched
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
