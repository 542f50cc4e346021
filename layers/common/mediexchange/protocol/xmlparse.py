"""A hardened lxml parser for documents that arrive from the internet."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict, TypeVar

from lxml import etree

from mediexchange.errors import MalformedXml
from mediexchange.records import Issue

UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_NOT_ASCII = "only ASCII-compatible encodings (UTF-8, windows-1251) are accepted"
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")  # XML's white space, nothing else
# The XML declaration (not a processing instruction such as <?xml-stylesheet): its values hold no ">".
_DECLARATION = re.compile(rb"<\?xml[ \t\r\n][^>]*\?>")
_ENCODING = re.compile(rb"""[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')""")
_ENCODING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")  # XML's EncName
_WHERE = re.compile(r", line \d+, column \d+$")  # how lxml ends its messages
T = TypeVar("T")
_ASCII_PROBE = '<?xml version="1.0"?><MediExchange ClientKey="AZaz09-{}"/> \t\r\n'


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The bytes lxml gets and how to read them.

    The white space that stood before the declaration now follows it (XML allows it only there):
    every line after the declaration keeps its number, and an error inside the declaration (lines
    1..`declaration_lines`) is moved back by the `shifted_lines` line breaks (and, on its first
    line, the `shifted_columns` characters) that stood before it.
    """

    data: bytes
    encoding: str | None
    declared: bool
    shifted_lines: int = 0
    shifted_columns: int = 0
    declaration_lines: int = 0


# No DTD loading, no entity expansion, no network, no huge trees: a public endpoint's parser. Less memory
# for a big document: no whitespace nodes between records, no id index.
class _Options(TypedDict):
    resolve_entities: bool
    load_dtd: bool
    dtd_validation: bool
    no_network: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool
    remove_blank_text: bool
    collect_ids: bool


_HARDENED: _Options = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "remove_blank_text": True,
    "collect_ids": False,
}


def _parser(encoding: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(encoding=encoding, **_HARDENED)


def _pull_parser(encoding: str | None = None) -> etree.XMLPullParser:
    """The same parser, fed piece by piece, reporting each element as soon as its start tag ends."""
    return etree.XMLPullParser(events=("start",), encoding=encoding, **_HARDENED)


def _is_ascii_compatible(encoding: str) -> bool:
    """Whether markup in `encoding` is plain ASCII bytes; True for a name Python does not know (lxml decides)."""
    try:
        return _ASCII_PROBE.encode(encoding) == _ASCII_PROBE.encode("ascii")
    except LookupError:
        return True
    except (UnicodeError, ValueError):
        return False


def _prepare(data: bytes, fallback_encoding: str | None) -> _Prepared:
    """Choose the encoding (the declaration's, else UTF-8 after a byte-order mark, else the request's
    charset, else XML's default UTF-8) and take away what lxml would refuse before the declaration."""
    bom = data.startswith(UTF8_BOM)
    if bom:  # a BOM and then a declaration of another encoding: the declaration wins (SPEC §3)
        data = data[len(UTF8_BOM) :]
    space = _LEADING_SPACE.match(data)
    start = space.end() if space else 0
    declaration = _DECLARATION.match(data, start)
    shifted = shifted_columns = declaration_lines = 0
    if declaration and start:
        # Move the white space behind the declaration, byte for byte: lxml counts its lines as before.
        shifted = data.count(b"\n", 0, start)
        shifted_columns = start - (data.rfind(b"\n", 0, start) + 1)
        data = declaration.group() + data[:start] + data[declaration.end() :]
        declaration_lines = 1 + declaration.group().count(b"\n")
    declared = _declared_encoding(declaration)
    encoding = _chosen_encoding(declared, bom, fallback_encoding)
    return _Prepared(data, encoding, declared is not None, shifted, shifted_columns, declaration_lines)


def _chosen_encoding(declared: str | None, bom: bool, fallback_encoding: str | None) -> str | None:
    """The declaration's encoding, else UTF-8 after a byte-order mark (a declaration of another encoding
    after one wins: SPEC §3), else the request's charset; None for XML's default, UTF-8."""
    return declared or ("UTF-8" if bom else fallback_encoding or None)


def _declared_encoding(declaration: re.Match[bytes] | None) -> str | None:
    """The encoding an XML declaration names, or None if there is no declaration or it names none."""
    named = _ENCODING.search(declaration.group()) if declaration else None
    if named is None:
        return None
    value = (named.group(1) if named.group(1) is not None else named.group(2)).decode("ascii", "replace")
    if not _ENCODING_NAME.fullmatch(value):
        raise MalformedXml("the XML declaration names no valid encoding")
    return value


def document_encoding(data: bytes, fallback_encoding: str | None = None) -> str | None:
    """The encoding a reading of `data` decodes it in (see `parse_document`): the declaration's, else UTF-8
    after a byte-order mark, else `fallback_encoding`; None for XML's default, UTF-8. Raises MalformedXml
    if the declaration names no valid encoding. Only the head of `data` is looked at, and nothing is copied."""
    start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    space = _LEADING_SPACE.match(data, start)
    declared = _declared_encoding(_DECLARATION.match(data, space.end() if space else start))
    return _chosen_encoding(declared, start > 0, fallback_encoding)


def _checked(data: bytes, fallback_encoding: str | None) -> _Prepared:
    """What every reading refuses before parsing (a wide encoding, a DOCTYPE, an encoding that is not
    ASCII-compatible), and the bytes and encoding lxml gets."""
    if data.startswith(_WIDE_BOMS) or b"\x00" in data[:4]:
        raise MalformedXml(_NOT_ASCII)
    if _DOCTYPE.search(data):
        raise MalformedXml("a DOCTYPE is not allowed")
    prepared = _prepare(data, fallback_encoding)
    if prepared.encoding is not None and not _is_ascii_compatible(prepared.encoding):
        raise MalformedXml(_NOT_ASCII)
    return prepared


def _checked_parser(prepared: _Prepared, make: Callable[[str | None], T]) -> T:
    """`make(encoding)`, or the document's refusal if lxml cannot read in that encoding."""
    try:
        return make(prepared.encoding)
    except (LookupError, ValueError):  # lxml knows no such encoding, or refuses its name (a control character)
        source = "declared by the document" if prepared.declared else "named by the charset it was sent with"
        raise MalformedXml(f"the document cannot be decoded: unknown encoding {prepared.encoding} ({source})") from None


def parse_document(data: bytes, fallback_encoding: str | None = None) -> etree._Element:
    """Parse the raw bytes of a document, honouring its own encoding declaration.

    The declaration wins, also after a UTF-8 byte-order mark; a document that declares none is
    UTF-8 after a byte-order mark, else in `fallback_encoding` (the charset of the request or of
    its multipart part), else in XML's default UTF-8. White space before the declaration is
    tolerated, and lines keep their numbers. Only ASCII-compatible encodings are accepted.
    """
    if not data.removeprefix(UTF8_BOM).strip():
        raise MalformedXml("the document is empty")
    prepared = _checked(data, fallback_encoding)
    parser = _checked_parser(prepared, _parser)
    try:
        root = etree.fromstring(prepared.data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or None
        reason = exc.msg
        if line is not None and line <= prepared.declaration_lines:  # inside the declaration that was moved up
            column = exc.position[1] + (prepared.shifted_columns if line == 1 else 0)
            line += prepared.shifted_lines
            reason = _WHERE.sub(f", line {line}, column {column}", reason)
        message = f"not well-formed XML: {reason}"
        raise MalformedXml(message, [Issue(MalformedXml.code, message, line=line)]) from None
    except (LookupError, ValueError) as exc:  # anything else lxml cannot decode
        raise MalformedXml(f"the document cannot be decoded: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise MalformedXml("a DOCTYPE is not allowed")
    return root


PULL_PIECE = 4096  # bytes fed to the pull parser at a time: it stops soon after the root's start tag


def root_start(head: bytes, fallback_encoding: str | None = None) -> etree._Element | None:
    """The root element as its start tag gives it (name and attributes, no content), read from `head`,
    the first bytes of a document; None if the start tag does not end within them.

    Nothing after the start tag is read. A document that goes wrong before its start tag ends is
    refused as `parse_document` would refuse it, with the same message and line.
    """
    prepared = _checked(head, fallback_encoding)
    parser = _checked_parser(prepared, _pull_parser)
    data = prepared.data
    try:
        for offset in range(0, len(data), PULL_PIECE):
            parser.feed(data[offset : offset + PULL_PIECE])
            for _, element in parser.read_events():
                return element
    except etree.XMLSyntaxError as exc:
        for _, element in parser.read_events():
            return element  # the start tag ended before the error: what follows is the body's business
        parse_document(head, fallback_encoding)  # raises with the message a whole reading gives
        raise MalformedXml(f"not well-formed XML: {exc.msg}") from None  # (should the whole reading differ)
    except (LookupError, ValueError) as exc:
        raise MalformedXml(f"the document cannot be decoded: {exc}") from None
    return None
