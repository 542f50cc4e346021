"""Settings: read once from the environment when a function first needs the store, checked, named in errors."""

from __future__ import annotations

import pytest
from mediexchange.config import LOCAL_REGION, ConfigurationError, Settings

from devserver.server import local_resource_names
from devserver.template import environment


def test_the_templates_environment_gives_settings_with_the_templates_values() -> None:
    # Given the environment template.yaml gives every function (with local resource names)
    env = {**environment(local_resource_names()), "AWS_REGION": "eu-west-1"}
    # When settings are read from it
    settings = Settings.from_env(env)
    # Then every value is the template's
    assert settings.region == "eu-west-1" and settings.endpoint_url is None and settings.credentials is None
    assert settings.import_time_budget == float(env["IMPORT_TIME_BUDGET_SECONDS"])
    assert settings.import_lease_seconds == int(env["IMPORT_LEASE_SECONDS"])
    assert settings.import_max_receives == int(env["IMPORT_MAX_RECEIVES"])
    assert settings.max_document_bytes == int(env["MAX_DOCUMENT_BYTES"])


def test_a_local_store_keeps_its_region_and_credentials_whatever_the_shell_says() -> None:
    # Given a developer's shell with another region, and the local store named
    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:5"}
    # When settings are read; Then they point at the local store's region with local credentials
    settings = Settings.from_env(env)
    assert (settings.region, settings.endpoint_url, settings.credentials) == (
        LOCAL_REGION,
        "http://127.0.0.1:5",
        ("local", "local"),
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STORE_PARALLELISM", "eight", "STORE_PARALLELISM='eight': must be a positive whole number"),
        ("STORE_PARALLELISM", "0", "STORE_PARALLELISM='0': must be a positive whole number"),
        ("IMPORT_TIME_BUDGET_SECONDS", "-1", "IMPORT_TIME_BUDGET_SECONDS='-1': must be a positive number"),
        ("IMPORT_TIME_BUDGET_SECONDS", "soon", "IMPORT_TIME_BUDGET_SECONDS='soon': could not convert string to float: 'soon'"),
        ("MAX_DOCUMENT_BYTES", "1e6", "MAX_DOCUMENT_BYTES='1e6': must be a positive whole number"),
        ("DYNAMODB_ENDPOINT_URL", "localhost:8000", "DYNAMODB_ENDPOINT_URL='localhost:8000': must be a URL starting with http:// or https://"),
    ],
)  # fmt: skip
def test_a_bad_value_fails_fast_naming_the_variable(name: str, value: str, message: str) -> None:
    # Given one bad setting; When settings are read; Then one clear message names it and what it should be
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"AWS_REGION": "eu-west-1", name: value})
    assert str(raised.value) == message


def test_no_region_and_no_local_store_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no AWS region"):
        Settings.from_env({})
