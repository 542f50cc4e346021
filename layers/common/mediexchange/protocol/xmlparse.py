"""A hardened lxml parser for documents that arrive from the internet."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def _parser(encoding: str | None = None) -> etree.XMLParser:
    # No DTD loading, no entity expansion, no network, no huge trees: a public endpoint's parser.
    return etree.XMLParser(
        encoding=encoding,
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        # Less memory for a big document: no whitespace nodes between records, no id index.
        remove_blank_text=True,
        collect_ids=False,
    )


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
    named = _ENCODING.search(declaration.group()) if declaration else None
    if named:
        value = (named.group(1) if named.group(1) is not None else named.group(2)).decode("ascii", "replace")
        if not _ENCODING_NAME.fullmatch(value):
            raise MalformedXml("the XML declaration names no valid encoding")
        return _Prepared(data, value, True, shifted, shifted_columns, declaration_lines)
    encoding = "UTF-8" if bom else fallback_encoding or None
    return _Prepared(data, encoding, False, shifted, shifted_columns, declaration_lines)


def parse_document(data: bytes, fallback_encoding: str | None = None) -> etree._Element:
    """Parse the raw bytes of a document, honouring its own encoding declaration.

    The declaration wins, also after a UTF-8 byte-order mark; a document that declares none is
    UTF-8 after a byte-order mark, else in `fallback_encoding` (the charset of the request or of
    its multipart part), else in XML's default UTF-8. White space before the declaration is
    tolerated, and lines keep their numbers. Only ASCII-compatible encodings are accepted.
    """
    if not data.removeprefix(UTF8_BOM).strip():
        raise MalformedXml("the document is empty")
    if data.startswith(_WIDE_BOMS) or b"\x00" in data[:4]:
        raise MalformedXml(_NOT_ASCII)
    if _DOCTYPE.search(data):
        raise MalformedXml("a DOCTYPE is not allowed")
    prepared = _prepare(data, fallback_encoding)
    encoding = prepared.encoding
    if encoding is not None and not _is_ascii_compatible(encoding):
        raise MalformedXml(_NOT_ASCII)
    try:
        parser = _parser(encoding)
    except LookupError:  # lxml knows no such encoding
        source = "declared by the document" if prepared.declared else "named by the charset it was sent with"
        raise MalformedXml(f"the document cannot be decoded: unknown encoding {encoding} ({source})") from None
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
