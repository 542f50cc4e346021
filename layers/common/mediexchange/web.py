"""HTTP adapters shared by the functions: the store made on first use, XML answers of any size, the
resolvers, and the one map from the service's errors to HTTP answers (request bodies: `uploads`)."""

from __future__ import annotations

import json
import traceback
import zlib
from collections.abc import Callable, Mapping
from json import JSONDecodeError
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediexchange.config import LAMBDA_PAYLOAD_BYTES, ConfigurationError, Settings
from mediexchange.errors import (
    AdminError,
    BadRequest,
    Forbidden,
    ImportQueueFull,
    Internal,
    InvalidRequest,
    NotFound,
    ServiceError,
    SlotUnavailable,
    StoreUnavailable,
    SyncStale,
    TooLarge,
    UnknownClientKey,
    UnsupportedMediaType,
)
from mediexchange.protocol.writing import error_result, serialize
from mediexchange.store import Store

logger = Logger(service="mediexchange")

# The HTTP status of each error (a subclass answers as its nearest listed base).
HTTP_STATUS: dict[type[ServiceError], int] = {
    BadRequest: 400,
    AdminError: 400,
    UnknownClientKey: 403,
    Forbidden: 403,
    NotFound: 404,
    ImportQueueFull: 503,
    SlotUnavailable: 409,
    SyncStale: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    Internal: 500,
    StoreUnavailable: 503,
}


def http_status(exc: ServiceError) -> int:
    return next((HTTP_STATUS[kind] for kind in type(exc).__mro__ if kind in HTTP_STATUS), 400)


_store: Store | None = None


def store() -> Store:
    """The store of this process, made from the environment's settings on the first request that needs it."""
    global _store
    if _store is None:
        _store = Store(Settings.from_env())
    return _store


def use_store(replacement: Store | None) -> None:
    """Serve from `replacement` (tests, the local server); None makes the next request build one anew."""
    global _store
    _store = replacement


def xml_response(status: int, body: bytes, encoding: str = "utf-8", retry_after: int | None = None) -> Response[bytes]:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    # Bytes, not str: the API answers them base64-encoded, so a windows-1251 body arrives intact.
    return Response(status, f"application/xml; charset={encoding}", body, headers)


# Lambda refuses a response over 6 MB (6,291,456 bytes) of JSON, and the API's binary media types make every
# body base64 in it: 4 MiB of body are 5,592,408 characters, leaving room for the headers and the JSON.
LAMBDA_RESPONSE_BYTES = LAMBDA_PAYLOAD_BYTES
INLINE_BODY_BYTES = 4 * 1024 * 1024
GZIP_FROM_BYTES = 1024  # smaller answers are sent as they are: compressing them gains nothing
REDIRECT_AFTER_POST = 303  # a POST's answer is fetched with GET; a GET's redirect (302) is followed by anything


def weighted(header: str) -> list[tuple[str, float]]:
    """The values of a header listing them with weights (Accept-Encoding, Accept-Language: RFC 9110
    section 12.4.2), lowercased, in its order, each with its q (1 when it names none, 0 when it cannot be
    read); empty ones left out."""
    found = []
    for part in header.split(","):
        value, *params = (piece.strip().lower() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, given = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(given)
                except ValueError:
                    weight = 0.0
        if value:
            found.append((value, weight))
    return found


def accepts_gzip(event: BaseProxyEvent) -> bool:
    """Whether the request's Accept-Encoding takes gzip (RFC 9110: `gzip`, `x-gzip` or `*`, with q above 0);
    no header means no (an old client that cannot inflate sends none)."""
    weights: dict[str, float] = {}
    for coding, weight in weighted(event.headers.get("accept-encoding") or ""):
        weights.setdefault(coding, weight)  # a coding named twice: the first counts
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


def gzipped(body: bytes) -> bytes:
    """`body` as a gzip member (level 6: nearly level 9's size at a fraction of its time)."""
    deflater = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return deflater.compress(body) + deflater.flush()


def sized_xml_response(
    event: BaseProxyEvent,
    body: bytes,
    encoding: str | None,
    keep: Callable[[bytes, str], str],
    limit: int | None = None,
    *,
    headers: Mapping[str, str | list[str]] | None = None,
) -> Response[bytes]:
    """An XML answer of any size that Lambda can return (SPEC section 4, "Any size"): gzip-compressed when
    the client accepts gzip, as it is when it fits, and otherwise a redirect (302, or 303 to a POST) to
    the URL `keep(body, content_type)` stores the whole document at. `limit` is the largest body sent in
    the response itself (INLINE_BODY_BYTES); `encoding` None names no charset (a document as it was
    received without one); `headers` are added to the answer, whichever it is."""
    limit = limit or INLINE_BODY_BYTES
    content_type = f"application/xml; charset={encoding}" if encoding else "application/xml"
    given: dict[str, str | list[str]] = {**(headers or {}), "Vary": "Accept-Encoding"}
    if len(body) >= GZIP_FROM_BYTES and accepts_gzip(event):
        compressed = gzipped(body)
        if len(compressed) < len(body) and len(compressed) <= limit:
            return Response(200, content_type, compressed, {**given, "Content-Encoding": "gzip"})
    if len(body) <= limit:
        return Response(200, content_type, body, given)
    status = REDIRECT_AFTER_POST if event.http_method.upper() == "POST" else 302
    location = keep(body, content_type)
    logger.info("answer redirected", extra={"bytes": len(body), "status": status})
    return Response(status, None, b"", {**given, "Location": location, "Cache-Control": "no-store"})


ErrorRenderer = Callable[[ServiceError], "Response[Any]"]


def _resolver(render: ErrorRenderer, **options: Any) -> APIGatewayRestResolver:
    """A resolver with the one exception map every function shares; `render` shapes the error body."""
    app = APIGatewayRestResolver(**options)

    @app.exception_handler(ServiceError)  # type: ignore[untyped-decorator]
    def refused(exc: ServiceError) -> Response[Any]:
        extra = {"status": http_status(exc), "code": exc.code, "problems": len(exc.issues)}
        logger.info("request refused", extra=extra)
        return render(exc)

    @app.not_found
    def not_found(_: Exception) -> Response[Any]:
        return render(NotFound("no such endpoint"))

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def internal(exc: Exception) -> Response[Any]:
        if isinstance(exc, ConfigurationError):  # the deployment's mistake: say which setting, once per request
            logger.error("bad configuration", extra={"problem": str(exc)})
        else:
            log_bug(exc)
        request_id = app.current_event.request_context.request_id
        return render(Internal(f"internal error; quote request id {request_id} to support"))

    return app


def xml_resolver(result_root: str) -> APIGatewayRestResolver:
    """A resolver whose errors are `<result_root status="error"><Error code=…>` documents (every value in
    them written through `writing.xml_text`: request data quoted in a message never breaks the answer)."""

    def render(exc: ServiceError) -> Response[Any]:
        body = serialize(error_result(result_root, exc.code, exc.issues))
        return xml_response(http_status(exc), body, retry_after=exc.retry_after)

    return _resolver(render)


def html_resolver(render: Callable[[ServiceError, BaseProxyEvent], Response[Any]]) -> APIGatewayRestResolver:
    """A resolver whose errors are pages: `render` gets the error and the request (its language, its prefix)."""
    app = _resolver(lambda exc: render(exc, app.current_event))
    return app


def to_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str) -> Any:
    """A JSON request body; one nested too deep or with a number too long to read is not valid JSON either."""
    try:
        return json.loads(text)
    except (RecursionError, ValueError):  # JSONDecodeError is a ValueError, as is "exceeds the limit (4300 digits)"
        raise InvalidRequest("the body is not valid JSON") from None


def json_resolver() -> APIGatewayRestResolver:
    """A resolver whose errors are `{"error": {"code": …, "message": …}}`; Cyrillic stays readable. The
    message is `printable` (errors.ServiceError): whatever request data it quotes, it encodes as UTF-8."""

    def render(exc: ServiceError) -> Response[Any]:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        body = to_json({"error": {"code": exc.code, "message": exc.message}})
        return Response(http_status(exc), "application/json", body, headers)

    app = _resolver(render, serializer=to_json, json_body_deserializer=from_json)

    @app.exception_handler([JSONDecodeError, UnicodeDecodeError])  # type: ignore[untyped-decorator]
    def bad_json(_: ValueError) -> Response[Any]:
        return render(InvalidRequest("the body is not valid JSON"))

    return app


def log_bug(exc: BaseException) -> None:
    """Where a bug happened, without the values in play (they may be patient data or keys)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[-5:]]
    logger.error("unhandled error", extra={"error_type": type(exc).__name__, "frames": where})


def handler_for(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler
