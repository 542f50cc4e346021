"""Request bodies as the functions receive them: bytes as sent (never decoded to text before lxml sees
them), inflated within the limits, form and multipart fields, and the import's document, whose ClientKey
is checked on the body's first bytes before the rest is inflated or parsed."""

from __future__ import annotations

import base64
import email.message
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from mediexchange.clients import KeyOwner, authenticate
from mediexchange.config import MAX_REQUEST_BYTES
from mediexchange.errors import BadRequest, MalformedXml, TooLarge, UnsupportedMediaType
from mediexchange.protocol.reading import client_key_of
from mediexchange.protocol.xmlparse import root_start
from mediexchange.web import store

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
XML_TYPES = frozenset({"application/xml", "text/xml"})


def raw_body(event: BaseProxyEvent, limit: int | None = None) -> bytes:
    """The request body as the client sent it, gzip inflated, never decoded to text. As sent it holds at
    most MAX_REQUEST_BYTES (what surely reaches the function); inflated, at most `limit` (the settings'
    max_document_bytes)."""
    limit, is_gzip = _checked_body(event, limit)
    body = event.body or ""
    data = base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")
    return inflate(data, limit) if is_gzip else data


def _checked_body(event: BaseProxyEvent, limit: int | None) -> tuple[int, bool]:
    """What may be known of a body before any of it is decoded: it is not too large as sent (by its
    Content-Length, then its length) and its Content-Encoding is one we read. Returns the limit once
    inflated, and whether the body is gzip."""
    limit = limit or store().settings.max_document_bytes
    sent_limit = min(MAX_REQUEST_BYTES, limit)
    encoding = (event.headers.get("content-encoding") or "").strip().lower()
    is_gzip = encoding == "gzip"
    if is_gzip:
        too_large = f"the gzipped request body is larger than {sent_limit} bytes, the most that reaches the service"
    elif sent_limit < limit:
        too_large = (
            f"the request body is larger than {sent_limit} bytes, the most that reaches the service: "
            f"send it gzipped (Content-Encoding: gzip), up to {limit} bytes once inflated"
        )
    else:
        too_large = f"the request body is larger than {limit} bytes"
    declared = (event.headers.get("content-length") or "").strip()
    if declared.isdigit() and int(declared) > sent_limit:  # refused before the body is looked at
        raise TooLarge(too_large)
    if _sent_length(event) > sent_limit:
        raise TooLarge(too_large)
    if encoding not in ("", "identity", "gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding} is not supported (use gzip or none)")
    return limit, is_gzip


def _sent_length(event: BaseProxyEvent) -> int:
    """The body's length in bytes as sent, without decoding it (API Gateway's base64 has no line breaks)."""
    body = event.body or ""
    if event.is_base64_encoded:
        return len(body) * 3 // 4 - body[-2:].count("=")
    return len(body.encode("utf-8"))


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
    """A url-encoded form's fields; the first of a name counts, as in a multipart body, and as the ClientKey
    check on the body's first bytes reads the xml field (`check_key_first`)."""
    # latin-1 maps every byte to one character and back: percent-decoded values stay raw bytes.
    fields: dict[str, bytes] = {}
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        fields.setdefault(name, value.encode("latin-1"))
    return fields


def _mime(data: bytes) -> email.message.EmailMessage:
    """A MIME message (a multipart body, or one of its parts) as the email package reads HTTP's."""
    # Multipart bodies are rare: the parser and its policy are imported by the first, not by every cold start.
    import email.parser
    import email.policy

    return email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(data)


def multipart_parts(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None]]:
    """Each field of a multipart body: its bytes, undecoded, and the charset its part's Content-Type
    names (None if none); the first part of a name counts."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = _mime(head + body)
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
    known: KeyOwner | None = None  # the key found and checked on the body's first bytes, and its clinic


def xml_document(event: BaseProxyEvent) -> Upload:
    """The import request's document, read whole once its ClientKey has proved valid (`check_key_first`)."""
    kind, options = media_type(event)
    charset = options.get("charset")
    if kind not in XML_TYPES | {FORM, MULTIPART}:
        raise UnsupportedMediaType(
            f"Content-Type {kind or '(none)'} is not accepted: post the form field xml "
            f"({FORM} or {MULTIPART}) or the document itself (application/xml)"
        )
    known = check_key_first(event, kind, charset)
    body = raw_body(event)
    dry_run = _is_set((event.query_string_parameters or {}).get(DRY_RUN))
    if kind in XML_TYPES:
        return Upload(body, charset, dry_run, known)
    parts = form_parts(event, kind, body)
    if "xml" not in parts:
        raise BadRequest("the form has no field named xml")
    document, part_charset = parts["xml"]
    dry_run = dry_run or _is_set(parts[DRY_RUN][0].decode("latin-1") if DRY_RUN in parts else None)
    return Upload(document, part_charset or charset, dry_run, known)


DRY_RUN = "dry_run"


def _is_set(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


# -- key before body: an import's ClientKey is checked on the first bytes of its body ------------------

KEY_WINDOW = 64 * 1024  # bytes of the (inflated) request body within which an import's ClientKey must come
_PIECE = 64 * 1024  # bytes decoded or inflated at a time when a body is read piece by piece


def check_key_first(event: BaseProxyEvent, kind: str, charset: str | None) -> KeyOwner | None:
    """Refuse an import whose ClientKey is missing or unknown from the first KEY_WINDOW bytes of its body
    alone: without a valid key, a body is never inflated or parsed whole.

    A body that fits in the window is left to the whole reading (which costs no more, and answers as it
    always did). In a longer one the document's start tag, with its ClientKey, must end within the
    window: the document itself (XML), the first field named xml (form) or the first part named xml
    (multipart). A start that cannot be read is refused as the whole reading refuses it, once the rest of
    a gzip body has been inflated and counted (a body too large or a broken gzip is still told first); a
    wrong root, a missing or an unknown key is refused at once. A valid key is returned with its clinic
    (None when the body fits in the window), for the import to take rather than look up again.
    """
    limit, is_gzip = _checked_body(event, None)
    pieces = _body_pieces(event, limit, is_gzip)
    head = b""
    for piece in pieces:
        head += piece
        if len(head) > KEY_WINDOW:
            break
    else:
        return None  # the whole body is in the window
    head = head[:KEY_WINDOW]
    try:
        document, part_charset = _document_head(event, kind, head)
        start = root_start(document, part_charset or charset)
        if start is None:
            raise MalformedXml(
                f"the MediExchange start tag, with its ClientKey, must end within the first {KEY_WINDOW} bytes "
                "of the request body"
            )
    except BadRequest:
        for _ in pieces:  # inflated and counted, never kept
            pass
        raise
    client_key = client_key_of(start)
    return KeyOwner(client_key, authenticate(store(), client_key))


def _sent_pieces(event: BaseProxyEvent) -> Iterator[bytes]:
    """The body as sent, base64 decoded a piece at a time (each piece of at most _PIECE bytes)."""
    body = event.body or ""
    step = _PIECE // 3 * 4  # base64 characters, a multiple of 4
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        yield base64.b64decode(piece) if event.is_base64_encoded else piece.encode("utf-8")


def _body_pieces(event: BaseProxyEvent, limit: int, is_gzip: bool) -> Iterator[bytes]:
    """The body, gzip inflated, in pieces of at most _PIECE bytes. Raises as `inflate` does, as soon as
    the inflated body passes `limit` or the gzip stream proves corrupt or truncated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if is_gzip else None
    inflated = 0
    for sent in _sent_pieces(event):
        if inflater is None:
            yield sent
            continue
        data = sent
        while not inflater.eof:
            room = min(_PIECE, limit + 1 - inflated)
            try:
                out = inflater.decompress(data, room)
            except zlib.error:
                raise BadRequest("the gzip body is corrupt") from None
            inflated += len(out)
            if inflated > limit:
                raise TooLarge(f"the request body inflates to more than {limit} bytes")
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and len(out) < room:  # this piece is all inflated
                break
        if inflater.eof:
            return  # what follows the gzip stream is ignored, as `inflate` ignores it
    if inflater is not None and not inflater.eof:
        raise BadRequest("the gzip body is truncated")


def _document_head(event: BaseProxyEvent, kind: str, head: bytes) -> tuple[bytes, str | None]:
    """The start of the import document within `head` (a body's first bytes), and its part's charset."""
    if kind in XML_TYPES:
        return head, None
    content_type = event.headers.get("content-type") or ""
    found = _form_xml_head(head) if kind == FORM else _multipart_xml_head(head, content_type)
    if found is None:
        raise BadRequest(f"the form has no field named xml within its first {KEY_WINDOW} bytes")
    return found


# A field named xml as parse_qsl reads its name: each letter itself or percent-encoded.
_FORM_XML_FIELD = re.compile(rb"(?:\A|&)(?:x|%78)(?:m|%6[dD])(?:l|%6[cC])(?:=|(?=&)|\Z)")
_CUT_ESCAPE = re.compile(rb"%[0-9A-Fa-f]?\Z")


def _form_xml_head(head: bytes) -> tuple[bytes, str | None] | None:
    """The first field named xml in the first bytes of a url-encoded form: its value so far, decoded as
    `form_fields` decodes it."""
    field = _FORM_XML_FIELD.search(head)
    if field is None:
        return None
    end = head.find(b"&", field.end())
    # Where the window cuts the value, an escape cut in two is not a character yet.
    value = head[field.end() : end] if end >= 0 else _CUT_ESCAPE.sub(b"", head[field.end() :])
    return unquote_to_bytes(value.replace(b"+", b" ")), None


_LINE_END = rb"(?:\r\n|\r(?!\n)|\n)"
_HEADERS_END = re.compile(_LINE_END + _LINE_END)  # an empty line


def _multipart_xml_head(head: bytes, content_type: str) -> tuple[bytes, str | None] | None:
    """The first part named xml that starts in the first bytes of a multipart body: its content so far,
    decoded as its Content-Transfer-Encoding says, and its charset. Parts are delimited and read as the
    email package reads a whole body (`multipart_parts`), but a part is parsed only if its headers can
    name it xml: many small parts cost a scan, not a parse each."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_boundary()
    if boundary is None:
        raise BadRequest("the multipart body cannot be read (check its boundary)")
    if not boundary.isascii():
        return None  # no line of the body can match it
    separator = rb"--" + re.escape(boundary.encode("ascii"))
    delimiter = re.compile(rb"(?:\A|" + _LINE_END + rb")" + separator + rb"(--)?[ \t]*(?:" + _LINE_END + rb"|\Z)")
    found = list(delimiter.finditer(head))
    for this, following in zip(found, [*found[1:], None], strict=True):
        if this.group(1):  # the closing delimiter: what follows is the epilogue
            return None
        part = head[this.end() : following.start() if following else len(head)]
        blank = _HEADERS_END.search(b"\n" + part)  # a part may start with its empty line: no headers
        headers = part if blank is None else part[: max(blank.start() - 1, 0)]
        if b"xml" not in headers and b"*" not in headers:  # the name is neither xml nor in RFC 2231 pieces
            continue
        message = _mime(part)
        payload = message.get_payload(decode=True)
        if message.get_param("name", header="content-disposition") == "xml" and isinstance(payload, bytes):
            charset = message.get_param("charset", header="content-type")
            return payload, (charset.strip() or None) if isinstance(charset, str) else None
    return None
