"""template.yaml and the code agree: the same tables, keys and indexes; the routes the handlers serve."""

from __future__ import annotations

from typing import Any

import pytest
from mediexchange.store.models import ALL_MODELS
from pynamodb.models import Model

from devserver import template
from devserver.server import local_table_names


def key_schema(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def model_keys(model: type[Model]) -> dict[str, str]:
    keys = {}
    for name, attribute in model.get_attributes().items():
        if attribute.is_hash_key:
            keys["HASH"] = name
        if attribute.is_range_key:
            keys["RANGE"] = name
    return keys


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_model_has_its_table_in_the_template(model: type[Model]) -> None:
    by_name = {r["TableName"]: r for r in template.create_table_requests(local_table_names())}
    table: dict[str, Any] = by_name[model.Meta.table_name]
    assert key_schema(table["KeySchema"]) == model_keys(model)
    template_indexes = {i["IndexName"]: key_schema(i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])}
    model_indexes = {
        index.Meta.index_name: {
            ("HASH" if a.is_hash_key else "RANGE"): name
            for name, a in index.Meta.attributes.items()
            if a.is_hash_key or a.is_range_key
        }
        for index in model._indexes.values()
    }
    assert template_indexes == model_indexes
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    attributes = model.get_attributes()
    assert {name: attributes[name].attr_type for name in types} == types


def test_every_template_table_is_served_by_a_model() -> None:
    assert {m.Meta.table_name for m in ALL_MODELS} == set(local_table_names().values())


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
