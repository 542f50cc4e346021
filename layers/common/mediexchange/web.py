"""HTTP adapters shared by the functions: the store made on first use, request bodies as bytes, XML
answers, and the one map from the service's errors to HTTP answers."""

from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import json
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediexchange.config import ConfigurationError, Settings
from mediexchange.errors import (
    AdminError,
    BadRequest,
    ImportInProgress,
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
    NotFound: 404,
    ImportInProgress: 409,
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


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
XML_TYPES = frozenset({"application/xml", "text/xml"})


def xml_response(status: int, body: bytes, encoding: str = "utf-8", retry_after: int | None = None) -> Response[bytes]:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    # Bytes, not str: the API answers them base64-encoded, so a windows-1251 body arrives intact.
    return Response(status, f"application/xml; charset={encoding}", body, headers)


def raw_body(event: BaseProxyEvent, limit: int | None = None) -> bytes:
    """The request body as the client sent it, gzip inflated, never decoded to text."""
    limit = limit or store().settings.max_document_bytes
    declared = (event.headers.get("content-length") or "").strip()
    if declared.isdigit() and int(declared) > limit:  # refused before the body is looked at
        raise TooLarge(f"the request body is larger than {limit} bytes")
    body = event.body or ""
    data = base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")
    if len(data) > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    encoding = (event.headers.get("content-encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding} is not supported (use gzip or none)")
    return inflate(data, limit)


def inflate(data: bytes, limit: int) -> bytes:
    """Inflate gzip, stopping as soon as the output passes `limit` (a zip bomb is never inflated whole)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BadRequest("the gzip body is corrupt") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the request body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return out


def media_type(event: BaseProxyEvent) -> tuple[str, dict[str, str]]:
    """The Content-Type's media type (lower case) and its parameters."""
    raw = event.headers.get("content-type") or ""
    header = email.message.Message()
    header["content-type"] = raw
    params = {name.lower(): value for name, value in header.get_params(failobj=[])[1:]}
    return raw.split(";")[0].strip().lower(), params


def form_fields(body: bytes) -> dict[str, bytes]:
    # latin-1 maps every byte to one character and back: percent-decoded values stay raw bytes.
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {name: value.encode("latin-1") for name, value in pairs}


def multipart_parts(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None]]:
    """Each field of a multipart body: its bytes, undecoded, and the charset its part's Content-Type
    names (None if none); the first part of a name counts."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("the multipart body cannot be read (check its boundary)")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            charset = part.get_param("charset", header="content-type")
            fields.setdefault(name, (payload, (charset.strip() or None) if isinstance(charset, str) else None))
    return fields


def form_parts(event: BaseProxyEvent, kind: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """The fields of a form body (url-encoded or multipart): bytes, and a multipart part's charset."""
    if kind == FORM:
        return {name: (value, None) for name, value in form_fields(body).items()}
    return multipart_parts(body, event.headers.get("content-type") or "")


def request_fields(event: BaseProxyEvent) -> dict[str, str]:
    """Query string and form parameters together (export takes either)."""
    params = dict(event.query_string_parameters or {})
    if event.body:
        kind, options = media_type(event)
        body = raw_body(event)
        if kind not in (FORM, MULTIPART):
            raise UnsupportedMediaType(f"send the parameters in the query string or as a form, not {kind or 'untyped'}")
        charset = options.get("charset", "utf-8")
        for name, (value, _) in form_parts(event, kind, body).items():
            params.setdefault(
                name, value.decode(charset if charset in ("utf-8", "windows-1251") else "utf-8", "replace")
            )
    return params


@dataclass(frozen=True, slots=True)
class Upload:
    """An import request's document, the charset that names its encoding if it declares none (a
    multipart part's own charset, else the request Content-Type's), and whether it is a dry run."""

    document: bytes
    charset: str | None
    dry_run: bool


def xml_document(event: BaseProxyEvent) -> Upload:
    kind, options = media_type(event)
    charset = options.get("charset")
    if kind not in XML_TYPES | {FORM, MULTIPART}:
        raise UnsupportedMediaType(
            f"Content-Type {kind or '(none)'} is not accepted: post the form field xml "
            f"({FORM} or {MULTIPART}) or the document itself (application/xml)"
        )
    body = raw_body(event)
    dry_run = _is_set((event.query_string_parameters or {}).get(DRY_RUN))
    if kind in XML_TYPES:
        return Upload(body, charset, dry_run)
    parts = form_parts(event, kind, body)
    if "xml" not in parts:
        raise BadRequest("the form has no field named xml")
    document, part_charset = parts["xml"]
    dry_run = dry_run or _is_set(parts[DRY_RUN][0].decode("latin-1") if DRY_RUN in parts else None)
    return Upload(document, part_charset or charset, dry_run)


DRY_RUN = "dry_run"


def _is_set(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


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
    """A resolver whose errors are `<result_root status="error"><Error code=…>` documents."""

    def render(exc: ServiceError) -> Response[Any]:
        body = serialize(error_result(result_root, exc.code, exc.issues))
        return xml_response(http_status(exc), body, retry_after=exc.retry_after)

    return _resolver(render)


def to_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_resolver() -> APIGatewayRestResolver:
    """A resolver whose errors are `{"error": {"code": …, "message": …}}`; Cyrillic stays readable."""

    def render(exc: ServiceError) -> Response[Any]:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        body = to_json({"error": {"code": exc.code, "message": exc.message}})
        return Response(http_status(exc), "application/json", body, headers)

    app = _resolver(render, serializer=to_json)

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
