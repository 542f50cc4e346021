"""Serve template.yaml's API on 127.0.0.1 through the real Lambda handlers, with moto as the store.

Each request becomes the API Gateway REST proxy event that AWS would send (body base64-encoded, as
the API's binary media types make it) and goes to the handler the template names for its route.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mediexchange.config import Settings
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devserver import template

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "eu-central-1",
}
STAGE = "live"
TIMEOUT_SECONDS = 29


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


class LocalApi:
    """A WSGI application that plays API Gateway in front of the template's functions."""

    def __init__(self, portal_api_key: str) -> None:
        self.portal_api_key = portal_api_key
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

    def respond(self, request: Request) -> Response:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match and route.method == request.method:
                break
        else:
            # What API Gateway answers for a path or method it has no route for.
            return _json_response(403, "Missing Authentication Token")
        if route.api_key_required and not secrets.compare_digest(
            request.headers.get("x-api-key", ""), self.portal_api_key
        ):
            return _json_response(403, "Forbidden")
        request_id = str(uuid.uuid4())
        event = proxy_event(request, route, match.groupdict(), request_id)
        context = LambdaContext(route.module, request_id, time.monotonic() + TIMEOUT_SECONDS)
        result = self.handler(route)(event, context)
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


def proxy_event(
    request: Request, route: template.Route, path_parameters: dict[str, str], request_id: str
) -> dict[str, Any]:
    # A body over the limit is not read at all: the handler refuses it by its Content-Length.
    too_large = (request.content_length or 0) > local_settings().max_document_bytes
    body = b"" if too_large else request.get_data()
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
            "path": f"/{STAGE}{request.path}",
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


LOCAL_QUEUE = "mediexchange-imports"


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
    return str(sqs.create_queue(QueueName=LOCAL_QUEUE, Attributes={"VisibilityTimeout": "10"})["QueueUrl"])


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
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
