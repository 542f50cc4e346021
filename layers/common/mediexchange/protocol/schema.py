"""The XML Schema of the MediExchange document as this service reads it (/services/schema.xsd), made from
the table of sections and the table of value forms, so it cannot drift from the reader.

XML Schema compares names exactly, while the service matches them in any case: the schema names
everything in lower case, and a document is checked against it with its names lower-cased. What a
schema cannot say (a real date, a break inside its window, a time a clock change skips) the reader
checks on top. Unknown attributes are allowed here (the reader warns of them); unknown elements
are not (the reader ignores them with a warning).
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from mediexchange.protocol.attributes import FORMS, MAX_TEXT
from mediexchange.protocol.reading import ROOT
from mediexchange.protocol.sections import (
    MAX_WINDOWS,
    SECTIONS,
    TIME_RULE_ALIASES,
    TIME_RULE_ATTRIBUTES,
    Applies,
    Attr,
)
from mediexchange.records import OrderStatus

XS = "http://www.w3.org/2001/XMLSchema"
BLANK = r"\s*"


def _xs(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{XS}}}{tag}", attributes)


def _simple_type(schema: etree._Element, name: str, base: str, **facets: str) -> None:
    restriction = _xs(_xs(schema, "simpleType", name=name), "restriction", base=base)
    for facet, value in facets.items():
        _xs(restriction, facet, value=value)


def _value_types(schema: etree._Element) -> None:
    """One simple type per form of value, trimmed as the reader trims; `…-or-empty` for optional ones."""
    _simple_type(schema, "empty", "xs:string", pattern=BLANK)
    _simple_type(schema, "text", "xs:string", maxLength=str(MAX_TEXT))
    _simple_type(schema, "required-text", "xs:string", pattern=r"\s*\S[\s\S]*", maxLength=str(MAX_TEXT))
    for form in FORMS:
        if form.name != "integer":  # integers are xs:long: ASCII digits, 64 bits, whitespace trimmed
            _simple_type(schema, form.name, "xs:string", pattern=BLANK + form.pattern + BLANK)
    status = _xs(_xs(schema, "simpleType", name="status"), "restriction", base="xs:long")
    for value in OrderStatus:
        _xs(status, "enumeration", value=str(value.value))
    _simple_type(schema, "syncmode", "xs:string", pattern=r"\s*([Ff][Uu][Ll][Ll]|[Dd][Ii][Ff][Ff])?\s*")


def _attribute_type(schema: etree._Element, owner: str, attr: Attr) -> str:
    if attr.form == "integer":
        if attr.low is None and attr.high is None:
            base = "xs:long"
        else:
            base = f"{owner}-{attr.name}"
            _simple_type(schema, base, "xs:long", minInclusive=str(attr.low), maxInclusive=str(attr.high))
    elif attr.form == "text":
        base = "required-text" if attr.required else "text"
        if attr.max_length != MAX_TEXT:
            base = f"{owner}-{attr.name}"
            pattern = r"\s*\S[\s\S]*" if attr.required else r"[\s\S]*"
            _simple_type(schema, base, "xs:string", pattern=pattern, maxLength=str(attr.max_length))
    else:
        base = attr.form
    if attr.required or base in ("text", "syncmode"):
        return base
    name = f"{base.removeprefix('xs:')}-or-empty"  # an empty optional attribute means "not given"
    if schema.find(f"{{{XS}}}simpleType[@name='{name}']") is None:
        _xs(_xs(schema, "simpleType", name=name), "union", memberTypes=f"{base} empty")
    return name


def _attributes(schema: etree._Element, owner: str, complex_type: etree._Element, attrs: tuple[Attr, ...]) -> None:
    for attr in attrs:
        use = "required" if attr.required else "optional"
        _xs(complex_type, "attribute", name=attr.name, type=_attribute_type(schema, owner, attr), use=use)
    _xs(complex_type, "anyAttribute", processContents="skip")  # unknown attributes: a warning, not an error


@lru_cache(maxsize=1)
def schema_document() -> bytes:
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    documentation = _xs(_xs(schema, "annotation"), "documentation")
    documentation.text = __doc__
    _value_types(schema)
    root = _xs(schema, "element", name=ROOT)
    root_type = _xs(root, "complexType")
    every = _xs(root_type, "all")  # each section at most once, in any order
    for section in SECTIONS:
        owner = section.tag
        section_element = _xs(every, "element", name=section.name.lower(), minOccurs="0")
        section_type = _xs(section_element, "complexType")
        records = _xs(_xs(section_type, "sequence"), "element", name=section.tag, minOccurs="0", maxOccurs="unbounded")
        record_type = _xs(records, "complexType")
        if section.tag == "s":
            rules = _xs(_xs(record_type, "sequence"), "element", name="time_rules", minOccurs="0")
            rules.set("maxOccurs", str(MAX_WINDOWS))
            aliases = tuple(Attr(alias, "time") for alias in TIME_RULE_ALIASES)
            _attributes(schema, "time_rules", _xs(rules, "complexType"), TIME_RULE_ATTRIBUTES + aliases)
        _attributes(schema, owner, record_type, section.attributes)
        if section.applies is Applies.SYNC_MODE:
            _xs(section_type, "attribute", name="syncmode", type="syncmode", use="optional")
    _xs(root_type, "attribute", name="clientkey", type="required-text", use="required")
    _xs(root_type, "anyAttribute", processContents="skip")
    return etree.tostring(schema, xml_declaration=True, encoding="utf-8", pretty_print=True)


def lower_cased(document: etree._Element) -> etree._Element:
    """A copy of a document with every element and attribute name in lower case and without namespaces:
    how a document is checked against the schema (the service matches names in any case)."""
    copy = etree.Element(etree.QName(document).localname.lower())
    for name, value in document.attrib.items():
        copy.set(etree.QName(name).localname.lower(), value)
    copy.text = document.text
    for child in document:
        if isinstance(child.tag, str):
            copy.append(lower_cased(child))
    return copy
