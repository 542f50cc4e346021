"""A hardened lxml parser for documents that arrive from the internet."""

from __future__ import annotations

import re

from lxml import etree

from mediexchange.errors import MalformedXml
from mediexchange.records import Issue

_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


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


def parse_document(data: bytes, fallback_encoding: str | None = None) -> etree._Element:
    """Parse the raw bytes of a document, honouring its own encoding declaration.

    `fallback_encoding` (the charset of the request's Content-Type) applies only to a document
    that declares none; without either, XML's default UTF-8 applies.
    """
    if not data.strip():
        raise MalformedXml("the document is empty")
    if data.startswith(_WIDE_BOMS) or b"\x00" in data[:4]:
        raise MalformedXml("only ASCII-compatible encodings (UTF-8, windows-1251) are accepted")
    if _DOCTYPE.search(data):
        raise MalformedXml("a DOCTYPE is not allowed")
    encoding = None if _DECLARED_ENCODING.match(data) else fallback_encoding
    try:
        root = etree.fromstring(data, _parser(encoding))
    except etree.XMLSyntaxError as exc:
        message = f"not well-formed XML: {exc.msg}"
        raise MalformedXml(message, [Issue(MalformedXml.code, message, line=exc.lineno or None)]) from None
    except (LookupError, ValueError) as exc:  # unknown encoding names and the like
        raise MalformedXml(f"the document cannot be decoded: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise MalformedXml("a DOCTYPE is not allowed")
    return root
