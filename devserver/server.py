"""Serve template.yaml's API on 127.0.0.1 through the real Lambda handlers, with moto as the store.

Each request becomes the API Gateway REST proxy event that AWS would send (body base64-encoded, as
the API's binary media types make it) and goes to the handler the template names for its route.
The limits of AWS hold as they do there, answered as API Gateway answers them: a body over 10 MB, an
event or an answer over Lambda's 6 MB, a function past its timeout or API Gateway's 29 s.
"""

from __future__ import annotations

import base64
import fnmatch
import importlib
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from mediexchange.config import LAMBDA_PAYLOAD_BYTES, Settings
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devserver import template

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "eu-central-1",
}
STAGE = "live"

# The limits of the deployed stack (SPEC section 7), answered as AWS answers them (as observed on deployed
# REST APIs; the messages are AWS's own):
# API Gateway REST refuses a request body over 10 MB itself, in plain text.
API_BODY_BYTES = 10 * 1024 * 1024
# Lambda refuses an event JSON over 6 MiB ("Request must be smaller than 6291456 bytes"); API Gateway then
# answers 413 {"message": "Request Too Long"}. The body is in that JSON base64-encoded, 4 bytes for 3.
LAMBDA_REQUEST_BYTES = LAMBDA_PAYLOAD_BYTES
# Lambda fails an answer whose JSON is over 6 MiB + 100 bytes ("Response payload size exceeded maximum
# allowed payload size (6291556 bytes)"), as it fails a function that raises or times out: API Gateway
# answers 502 {"message": "Internal server error"}.
LAMBDA_RESPONSE_BYTES = LAMBDA_PAYLOAD_BYTES + 100
# API Gateway stops waiting for the function after 29 s and answers 504 {"message": "Endpoint request timed
# out"} (the function runs on). INTEGRATION_TIMEOUT_SECONDS shortens it, so a test shows it in a second.
INTEGRATION_TIMEOUT_SECONDS = 29.0


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    deadline: float
    memory_limit_in_mb: int = 512

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-central-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _json_response(status: int, message: str) -> Response:
    return Response(f'{{"message":"{message}"}}', status, content_type="application/json")


def _integration_error(status: int, message: str, error_type: str | None = None) -> Response:
    """How API Gateway answers when the integration (Lambda) cannot: its own JSON, spaced as it writes it."""
    response = Response(f'{{"message": "{message}"}}', status, content_type="application/json")
    if error_type:
        response.headers["x-amzn-ErrorType"] = error_type
    return response


def integration_timeout(env: dict[str, str] | None = None) -> float:
    """API Gateway's integration timeout as the local server plays it: 29 s, or INTEGRATION_TIMEOUT_SECONDS."""
    raw = ((os.environ if env is None else env).get("INTEGRATION_TIMEOUT_SECONDS") or "").strip()
    if not raw:
        return INTEGRATION_TIMEOUT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise SystemExit(f"INTEGRATION_TIMEOUT_SECONDS={raw!r}: must be a positive number of seconds")
    return seconds


@dataclass
class _Invocation:
    """One call of a handler, on a thread of its own: API Gateway may stop waiting for it, Lambda does not.
    A cold start (importing the handler's module) is part of the call, as it is in Lambda."""

    load_handler: Callable[[], Callable[[dict[str, Any], Any], dict[str, Any]]]
    event: dict[str, Any]
    context: LambdaContext
    result: dict[str, Any] | None = None
    failed: bool = False

    def run(self) -> None:
        try:
            self.result = self.load_handler()(self.event, self.context)
        except Exception:  # as Lambda takes a function that raises: logged, and answered 502 by API Gateway
            self.failed = True
            traceback.print_exc(file=sys.stderr)

    def finished_within(self, seconds: float) -> bool:
        worker = threading.Thread(target=self.run, name=f"invocation-{self.context.aws_request_id}", daemon=True)
        worker.start()
        worker.join(seconds)
        return not worker.is_alive()


class LocalApi:
    """A WSGI application that plays API Gateway in front of the template's functions."""

    def __init__(self, portal_api_key: str, timeout: float | None = None) -> None:
        self.portal_api_key = portal_api_key
        self.timeout = integration_timeout() if timeout is None else timeout
        self.routes = template.routes()
        self.handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}

    def handler(self, route: template.Route) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        if route.module not in self.handlers:
            self.handlers[route.module] = getattr(importlib.import_module(route.module), route.handler)
        return self.handlers[route.module]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request, started = Request(environ), time.monotonic()
        response = self.respond(request)
        elapsed = (time.monotonic() - started) * 1000
        print(f"{request.method} {request.path} {response.status_code} {elapsed:.0f} ms", file=sys.stderr, flush=True)
        return response(environ, start_response)

    def route_for(self, method: str, path: str) -> tuple[template.Route, dict[str, str]] | None:
        """The route API Gateway takes: the most specific resource matching the path (a trailing slash
        ignored), then its method; None for a path, or a method of its resource, the API has no route for."""
        wanted = path[:-1] if len(path) > 1 and path.endswith("/") else path
        matching = [(route, match) for route in self.routes if (match := route.pattern.match(wanted))]
        if not matching:
            return None
        best = min(route.specificity for route, _ in matching)
        for route, match in matching:
            if route.specificity == best and route.method == method:
                return route, match.groupdict()
        return None

    def respond(self, request: Request) -> Response:
        found = self.route_for(request.method, request.path)
        if found is None:
            # What API Gateway answers for a path or method it has no route for.
            return _json_response(403, "Missing Authentication Token")
        route, path_parameters = found
        if route.api_key_required and not secrets.compare_digest(
            request.headers.get("x-api-key", ""), self.portal_api_key
        ):
            return _json_response(403, "Forbidden")
        authorized: dict[str, Any] | None = None
        if route.authorizer:
            decision = self.authorize(request, route, path_parameters)
            if isinstance(decision, Response):
                _discard(request)  # a form posted without a session: its answer goes to a browser still sending
                return decision
            authorized = decision
        declared = request.content_length or 0
        # Read no further than the limit; a body without Content-Length (chunked) is counted as it comes.
        sent = b"" if declared > API_BODY_BYTES else request.stream.read(API_BODY_BYTES + 1)
        if declared > API_BODY_BYTES or len(sent) > API_BODY_BYTES:
            _discard(request)
            return Response(f"HTTP content length exceeded {API_BODY_BYTES} bytes.", 413, mimetype="text/plain")
        request_id = str(uuid.uuid4())
        proxied = proxy_event(request, route, path_parameters, request_id, sent)
        if authorized is not None:
            proxied["requestContext"]["authorizer"] = authorized
        event = json.dumps(proxied).encode()
        if len(event) > LAMBDA_REQUEST_BYTES:
            return _integration_error(413, "Request Too Long", "BadRequestException")
        limit = template.function_timeout(route.module)
        context = LambdaContext(route.module, request_id, time.monotonic() + limit)
        # The event as Lambda hands it over: parsed from the JSON that was measured.
        invocation = _Invocation(partial(self.handler, route), json.loads(event), context)
        if not invocation.finished_within(min(self.timeout, limit)):
            if self.timeout <= limit:
                return _integration_error(504, "Endpoint request timed out")
            print(f"{route.module} timed out after {limit:g} s (it runs on here; Lambda stops it)", file=sys.stderr)
            return _integration_error(502, "Internal server error", "InternalServerErrorException")
        result = invocation.result
        if invocation.failed or not isinstance(result, dict) or "statusCode" not in result:
            return _integration_error(502, "Internal server error", "InternalServerErrorException")
        answered = len(json.dumps(result).encode())
        if answered > LAMBDA_RESPONSE_BYTES:
            print(f"{route.module} answered {answered} bytes, over Lambda's {LAMBDA_RESPONSE_BYTES}", file=sys.stderr)
            return _integration_error(502, "Internal server error", "InternalServerErrorException")
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        response = Response(payload, result["statusCode"])
        response.headers.clear()
        for name, values in (result.get("multiValueHeaders") or {}).items():
            for value in values:
                response.headers.add(name, value)
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = value
        return response

    def authorize(
        self, request: Request, route: template.Route, path_parameters: dict[str, str]
    ) -> dict[str, Any] | Response:
        """Play API Gateway's Lambda REQUEST authorizer (no result cache): without every identity header,
        UNAUTHORIZED at once; else the function's policy decides: Allow gives the request its context (and
        principalId) as requestContext.authorizer, anything else is ACCESS_DENIED; a failing authorizer is
        a 500. Both refusals are the template's gateway responses, where it customises them."""
        authorizer = template.authorizers()[str(route.authorizer)]
        if not all(request.headers.get(name) for name in authorizer.identity_headers):
            return gateway_response("UNAUTHORIZED")
        event = authorizer_event(request, route, path_parameters)
        started = time.monotonic()
        try:
            handler = getattr(importlib.import_module(authorizer.module), authorizer.handler)
            lambda_context = LambdaContext(authorizer.module, str(uuid.uuid4()), started + 10)
            answer = handler(json.loads(json.dumps(event)), lambda_context)
        except Exception as exc:
            if str(exc) == "Unauthorized":  # what a Lambda authorizer raises to have API Gateway answer 401
                return gateway_response("UNAUTHORIZED")
            traceback.print_exc(file=sys.stderr)
            # API Gateway's answer when the authorizer fails: 500 with a null message.
            failed = Response('{"message":null}', 500, content_type="application/json")
            failed.headers["x-amzn-ErrorType"] = "AuthorizerConfigurationException"
            return failed
        if not isinstance(answer, dict) or not allows(answer.get("policyDocument"), event["methodArn"]):
            return gateway_response("ACCESS_DENIED")
        context = {str(k): v for k, v in (answer.get("context") or {}).items()}
        latency = int((time.monotonic() - started) * 1000)
        return {**context, "principalId": str(answer.get("principalId", "")), "integrationLatency": latency}


# API Gateway's own answers where the template does not customise them.
DEFAULT_GATEWAY_RESPONSES = {
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}'),
    "ACCESS_DENIED": (403, '{"Message":"User is not authorized to access this resource with an explicit deny"}'),
}


def gateway_response(kind: str) -> Response:
    """API Gateway's answer of this kind, with the template's status and headers where it sets them. The
    local server serves the stage at its root (as the custom domain does), so a Location the template
    writes for the execute-api URL (/live/...) loses its stage here."""
    status, body = DEFAULT_GATEWAY_RESPONSES[kind]
    response = Response(body, status, content_type="application/json")
    custom = template.gateway_responses().get(kind)
    if custom is not None:
        response.status_code = custom.status
        for name, value in custom.headers.items():
            stage = f"/{STAGE}/"
            response.headers[name] = (
                value[len(stage) - 1 :] if name == "Location" and value.startswith(stage) else value
            )
    return response


def allows(policy: Any, method_arn: str) -> bool:
    """Whether an IAM policy document allows execute-api:Invoke on `method_arn`: an Allow matches and no
    Deny does (`*` and `?` as IAM reads them)."""
    if not isinstance(policy, dict):
        return False
    statements = policy.get("Statement") or []
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        if any(_arn_matches(r, method_arn) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _arn_matches(pattern: str, arn: str) -> bool:
    return re.fullmatch(".*".join(".".join(map(re.escape, p.split("?"))) for p in pattern.split("*")), arn) is not None


AUTHORIZER_EVENT_KEYS = (
    "resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext",
)  # fmt: skip


def authorizer_event(request: Request, route: template.Route, path_parameters: dict[str, str]) -> dict[str, Any]:
    """The event API Gateway sends a REQUEST authorizer: the request's parts and the method's ARN."""
    proxy = proxy_event(request, route, path_parameters, str(uuid.uuid4()), b"")
    method_arn = f"arn:aws:execute-api:eu-central-1:000000000000:local/{STAGE}/{request.method}{request.path}"
    return {"type": "REQUEST", "methodArn": method_arn, **{key: proxy[key] for key in AUTHORIZER_EVENT_KEYS}}


def _discard(request: Request) -> None:
    """Read what is left of a refused body, keeping none of it: the client, still sending, gets the answer
    (API Gateway, too, answers a request once it has it)."""
    while request.stream.read(1 << 20):
        pass


def proxy_event(
    request: Request, route: template.Route, path_parameters: dict[str, str], request_id: str, body: bytes
) -> dict[str, Any]:
    query = request.args
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": dict(request.headers.items()),
        "multiValueHeaders": {name: request.headers.getlist(name) for name, _ in request.headers.items()},
        "queryStringParameters": {k: query.getlist(k)[-1] for k in query} or None,
        "multiValueQueryStringParameters": {k: query.getlist(k) for k in query} or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": request.method,
            # The stage at the root, as behind the custom domain: the path as the browser sent it.
            "path": request.path,
            "stage": STAGE,
            "requestId": request_id,
            "accountId": "000000000000",
            "apiId": "local",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.remote_addr or "127.0.0.1", "apiKey": request.headers.get("x-api-key")},
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_store() -> str:
    """moto's server on a free loopback port, with the template's tables; returns its URL."""
    from moto.server import ThreadedMotoServer

    from devserver import moto_partitions

    moto_partitions.install()
    port = int(os.environ.get("DYNAMODB_PORT") or free_port())
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    return f"http://127.0.0.1:{port}"


LOCAL_QUEUE = "mediexchange-imports.fifo"


def configure(endpoint_url: str) -> None:
    """Point this process (and the handlers it imports) at the local store, create what the template
    declares there, named as `mediexchange.config` names it, and set the environment the template sets.
    The handlers build their store from that environment on their first request, as in AWS."""

    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["DYNAMODB_ENDPOINT_URL"] = endpoint_url
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ["IMPORT_QUEUE_URL"] = f"{endpoint_url}/123456789012/{LOCAL_QUEUE}"
    assert create_resources(endpoint_url) == os.environ["IMPORT_QUEUE_URL"]
    names = local_resource_names()
    for name, value in template.environment(names).items():
        os.environ.setdefault(name, value)


def local_settings() -> Settings:
    return Settings.from_env()


def local_resource_names(kind: str | None = None) -> dict[str, str]:
    """Resources are named as `mediexchange.config` names them, so the CLI finds them with no settings."""
    kinds = [kind] if kind else ["AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue"]
    settings = local_settings()
    return {
        logical_id: getattr(settings, env.lower())
        for each in kinds
        for logical_id, env in template.resource_env_names(each).items()
    }


def local_table_names() -> dict[str, str]:
    return local_resource_names("AWS::DynamoDB::Table")


def create_resources(endpoint_url: str | None) -> str:
    """The template's tables, the documents bucket and the import queue; returns the queue's URL."""
    import boto3

    settings = local_settings()
    session = boto3.session.Session(region_name=settings.region)
    create_tables(session.client("dynamodb", endpoint_url=endpoint_url))
    region = {"LocationConstraint": settings.region}
    s3 = session.client("s3", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=settings.documents_bucket, CreateBucketConfiguration=region)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    # FIFO, as in the template: a clinic's lane gets its messages in the order received, one at a time.
    attributes = {"FifoQueue": "true", "VisibilityTimeout": "10"}
    return str(sqs.create_queue(QueueName=LOCAL_QUEUE, Attributes=attributes)["QueueUrl"])


def create_tables(client: Any) -> None:
    existing = set(client.list_tables()["TableNames"])
    for request in template.create_table_requests(local_table_names()):
        if request["TableName"] not in existing:
            client.create_table(**request)


def consume_queue(stop: threading.Event) -> None:
    """Play the SQS event source mapping: each message, one at a time, to the function the template names."""
    import boto3

    [consumer] = template.queue_consumers()
    handler = getattr(importlib.import_module(consumer.module), consumer.handler)
    settings = local_settings()
    sqs = boto3.session.Session(region_name=settings.region).client("sqs", endpoint_url=settings.endpoint_url)
    queue_url, max_receives = os.environ["IMPORT_QUEUE_URL"], template.queue_max_receives()
    while not stop.is_set():
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
        )
        for message in received.get("Messages", []):
            record = {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "eventSource": "aws:sqs",
            }
            started = time.monotonic()
            context = LambdaContext(consumer.module, message["MessageId"], started + 900)
            try:
                failed = bool(handler({"Records": [record]}, context).get("batchItemFailures"))
                why = "reported a failure"
            except Exception as exc:  # as the event source mapping takes a crashed invocation
                failed, why = True, f"failed ({type(exc).__name__})"
            if failed:
                tries = int(record["attributes"].get("ApproximateReceiveCount", 1))
                print(f"worker {why}, try {tries} of {max_receives}", file=sys.stderr, flush=True)
                if tries < max_receives:
                    continue  # delivered again once its visibility timeout runs out
                # else dropped, as AWS dead-letters it
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            print(f"SQS {consumer.module} {(time.monotonic() - started) * 1000:.0f} ms", file=sys.stderr, flush=True)


def console_link(base_url: str) -> str:
    """A fresh one-time operator sign-in URL of the console (`mediexchange console link` makes more)."""
    from mediexchange.console.auth import one_time_url
    from mediexchange.store import Store

    return one_time_url(Store(local_settings()), base_url)


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's and our own access lines; we print ours
    port = int(os.environ.get("PORT") or 3000)
    endpoint_url = start_store()
    configure(endpoint_url)
    portal_api_key = os.environ.get("PORTAL_API_KEY") or secrets.token_urlsafe(24)
    server = make_server("127.0.0.1", port, LocalApi(portal_api_key), threaded=True)
    stop = threading.Event()
    threading.Thread(target=consume_queue, args=(stop,), daemon=True, name="import-worker").start()
    print(f"MediExchange API on http://127.0.0.1:{port}", flush=True)
    print(f"DYNAMODB_ENDPOINT_URL={endpoint_url}", flush=True)
    print(f"PORTAL_API_KEY={portal_api_key}", flush=True)
    print(f"CONSOLE_URL={console_link(f'http://127.0.0.1:{port}')}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
