"""What the local server and the tests take from template.yaml: tables, routes, function settings.

One source for the schema: the local store and the tests create their tables from the template's
own definitions, so nothing drifts from what AWS deploys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - safe loader + CFN tags
    return loaded


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template()["Resources"].items() if r["Type"] == kind}


def resolved(value: Any, resource_names: dict[str, str] | None = None) -> Any:
    """A template value as deployed with the defaults: a !Ref to a resource (named by `resource_names`) or
    to a parameter (its default), a !FindInMap read; anything else as written."""
    if isinstance(value, dict) and "Ref" in value:
        ref = value["Ref"]
        names = resource_names or {}
        return names[ref] if ref in names else template()["Parameters"][ref]["Default"]
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        return find_in_map(*value["Fn::FindInMap"])
    return value


def environment(resource_names: dict[str, str]) -> dict[str, str]:
    """The functions' environment as the template sets it, with resources named by `resource_names`; a
    resource not named there (the console's Cognito user pool, which has no local stand-in) is ""."""
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    unmade = {
        name: ""
        for name in template()["Resources"]
        if name not in resource_names and name not in template().get("Parameters", {})
    }
    return {name: str(resolved(value, {**unmade, **resource_names})) for name, value in variables.items()}


def find_in_map(mapping: str, key: str, attribute: str) -> Any:
    return template()["Mappings"][mapping][key][attribute]


def resource_env_names(kind: str) -> dict[str, str]:
    """{logical id of a resource of this kind: the environment variable that names it}."""
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    of_kind = resources(kind)
    return {v["Ref"]: k for k, v in variables.items() if isinstance(v, dict) and v.get("Ref") in of_kind}


def create_table_requests(table_names: dict[str, str]) -> list[dict[str, Any]]:
    """boto3 `create_table` arguments for every table of the template."""
    requests = []
    for logical_id, resource in resources("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        request: dict[str, Any] = {
            "TableName": table_names[logical_id],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"],
        }
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        requests.append(request)
    return requests


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    module: str  # e.g. functions.mis_import.app
    handler: str
    api_key_required: bool
    authorizer: str | None = None  # the name of the API's Lambda authorizer guarding the route

    @property
    def pattern(self) -> re.Pattern[str]:
        """`{name}` takes one path segment, a greedy `{name+}` (last) the rest of the path."""
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern) + "$")

    @property
    def specificity(self) -> tuple[int, ...]:
        """API Gateway's preference among routes matching a path, lowest first: segment by segment, a
        literal before a `{parameter}`, a `{parameter}` before a greedy `{proxy+}`."""
        return tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in self.path.split("/"))


@dataclass(frozen=True)
class Consumer:
    module: str
    handler: str


def _code(props: dict[str, Any]) -> tuple[str, str]:
    """The module (functions.<folder>.app) and function a Lambda's CodeUri and Handler name."""
    module, _, function = props["Handler"].rpartition(".")
    return props["CodeUri"].strip("/").replace("/", ".") + "." + module, function


def queue_max_receives() -> int:
    """How often SQS delivers a message of the import queue before dead-lettering it."""
    [queue] = [r for r in resources("AWS::SQS::Queue").values() if "RedrivePolicy" in r["Properties"]]
    return int(resolved(queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]))


def function_timeout(module: str) -> float:
    """The Timeout the template gives the function whose code is `module` (else its Globals' one)."""
    default = template()["Globals"]["Function"].get("Timeout", 3)
    for resource in resources("AWS::Serverless::Function").values():
        props = resource["Properties"]
        if _code(props)[0] == module:
            return float(resolved(props.get("Timeout", default)))
    return float(resolved(default))


def queue_consumers() -> list[Consumer]:
    found = []
    for resource in resources("AWS::Serverless::Function").values():
        props = resource["Properties"]
        if any(e["Type"] == "SQS" for e in props.get("Events", {}).values()):
            found.append(Consumer(*_code(props)))
    return found


def routes() -> list[Route]:
    found = []
    for resource in resources("AWS::Serverless::Function").values():
        props = resource["Properties"]
        module, handler = _code(props)
        for event in props.get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            spec = event["Properties"]
            auth = spec.get("Auth", {})
            key_required = bool(auth.get("ApiKeyRequired", False))
            authorizer = auth.get("Authorizer") if auth.get("Authorizer") not in (None, "NONE") else None
            found.append(Route(spec["Method"].upper(), spec["Path"], module, handler, key_required, authorizer))
    return found


@dataclass(frozen=True)
class Authorizer:
    """A Lambda REQUEST authorizer of the API: the function and the headers it takes as identity."""

    module: str
    handler: str
    identity_headers: tuple[str, ...]


def _api() -> dict[str, Any]:
    [api] = resources("AWS::Serverless::Api").values()
    return dict(api["Properties"])


def authorizers() -> dict[str, Authorizer]:
    functions = resources("AWS::Serverless::Function")
    found = {}
    for name, spec in _api().get("Auth", {}).get("Authorizers", {}).items():
        function = functions[spec["FunctionArn"]["Fn::GetAtt"].split(".")[0]]["Properties"]
        headers = tuple(spec.get("Identity", {}).get("Headers", ()))
        found[name] = Authorizer(*_code(function), headers)
    return found


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]


def gateway_responses() -> dict[str, GatewayResponse]:
    """The API's customised gateway responses (UNAUTHORIZED, ACCESS_DENIED, ...) as deployed with the
    parameters' defaults: their status and static header values (unquoted)."""
    found = {}
    for kind, spec in _api().get("GatewayResponses", {}).items():
        headers = spec.get("ResponseParameters", {}).get("Headers", {})
        values = {name: str(evaluated(value)).strip("'") for name, value in headers.items()}
        found[kind] = GatewayResponse(int(spec["StatusCode"]), values)
    return found


def condition(name: str) -> bool:
    """A condition of the template as it holds with the parameters' defaults."""
    return bool(evaluated(template()["Conditions"][name]))


def evaluated(value: Any) -> Any:
    """A template value with the parameters' defaults: !Ref to a parameter, !If, !Equals, !Not, !And, !Or,
    Condition; anything else (a resource's !Ref, !Sub, ...) as written."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    [(function, argument)] = value.items()
    if function == "Ref" and argument in template().get("Parameters", {}):
        return template()["Parameters"][argument].get("Default")
    if function == "Condition":
        return condition(argument)
    if function == "Fn::If":
        chosen, when_true, when_false = argument
        return evaluated(when_true if condition(chosen) else when_false)
    if function == "Fn::Equals":
        return evaluated(argument[0]) == evaluated(argument[1])
    if function == "Fn::Not":
        return not evaluated(argument[0])
    if function == "Fn::And":
        return all(evaluated(each) for each in argument)
    if function == "Fn::Or":
        return any(evaluated(each) for each in argument)
    return value
