"""Writing the service's XML answers: ImportResult, the export document, error results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger
from lxml import etree

from mediexchange.protocol.reading import MAX_REPORTED
from mediexchange.protocol.sections import ORDERS, SYNCED, Applies
from mediexchange.records import EXPORTED_ORDER_FIELDS, NOT_XML, Codec, ExportNames, ImportReport, Issue, Order
from mediexchange.timeutil import from_epoch

logger = Logger(service="mediexchange")

DATE = "%d.%m.%Y"
DATETIME = "%d.%m.%Y %H:%M:%S"
REPLACEMENT = "\ufffd"  # what a code point XML cannot carry is written as


def xml_text(value: str) -> str:
    """`value` with every code point XML 1.0 cannot carry (records.NOT_XML) replaced by U+FFFD: lxml
    refuses them, and an answer must never fail on a value. Everything else lxml writes as it is, or as a
    character reference where the answer's encoding lacks it (windows-1251 has no emoji)."""
    return NOT_XML.sub(REPLACEMENT, value)


def serialize(root: etree._Element, encoding: str = "utf-8") -> bytes:
    # Characters the encoding lacks (windows-1251 has no emoji) become character references.
    return etree.tostring(root, xml_declaration=True, encoding=encoding, pretty_print=True)


def _issue_attributes(element: etree._Element, issue: Issue) -> None:
    located = (
        ("line", issue.line),
        ("section", issue.section),
        ("id", issue.record_id),
        ("attribute", issue.attribute),
    )
    for name, value in located:
        if value is not None:
            element.set(name, xml_text(str(value)))


def error_result(root_name: str, code: str, issues: Sequence[Issue]) -> etree._Element:
    root = etree.Element(root_name, status="error")
    for issue in issues:
        error = etree.SubElement(root, "Error", code=xml_text(code))
        _issue_attributes(error, issue)
        error.text = xml_text(issue.message)
    return root


def import_result(report: ImportReport) -> etree._Element:
    """What an import did, section by section; `partial` when records were rejected (each an Error)."""
    root = etree.Element("ImportResult", status="partial" if report.errors else "ok", import_id=report.import_id)
    if report.dry_run:
        root.set("dry_run", "1")
    for section in SYNCED:
        counts = report.sections.get(section.name)
        if counts is None:
            continue
        element = etree.SubElement(root, section.name)
        if section.applies is Applies.SYNC_MODE:
            element.set("mode", report.sync_mode.value)
        for name in ("received", "written", "deleted", "rejected"):
            element.set(name, str(getattr(counts, name)))
    if report.orders is not None:
        orders = report.orders
        element = etree.SubElement(
            root,
            ORDERS.name,
            received=str(orders.received),
            updated=str(len(orders.updated)),
            unchanged=str(len(orders.unchanged)),
            conflicts=str(len(orders.conflicts)),
            unknown=str(len(orders.unknown)),
            rejected=str(orders.rejected),
        )
        # Listed as far as the issues are (the counts above stay whole): the answer, and its copy in the
        # import log's one DynamoDB item, stay bounded whatever the MIS sends.
        for tag, ids in (("conflict", orders.conflicts), ("unknown", orders.unknown)):
            for order_id in ids[:MAX_REPORTED]:
                etree.SubElement(element, tag, id=str(order_id))
    for issue in report.errors:
        error = etree.SubElement(root, "Error", code=xml_text(issue.code))
        _issue_attributes(error, issue)
        error.text = xml_text(issue.message)
    if report.warnings:
        warnings = etree.SubElement(root, "Warnings")
        for issue in report.warnings:
            warning = etree.SubElement(warnings, "w", code=xml_text(issue.code))
            _issue_attributes(warning, issue)
            warning.text = xml_text(issue.message)
    return root


def accepted_result(import_id: str) -> etree._Element:
    """The answer to a document kept for the background: follow it with status.php."""
    return etree.Element("ImportResult", status="accepted", import_id=import_id)


# The ImportResults a status.php list carries in full, together: 20 imports of 1,001 listed issues each
# would make megabytes (Lambda answers at most 6 MB); the rest come as summaries, each whole by its id.
STATUS_LIST_BYTES = 1024 * 1024
SUMMARY_SECTIONS = frozenset(section.name for section in (*SYNCED, ORDERS))


def result_summary(result: etree._Element) -> etree._Element:
    """An ImportResult without the records it lists: its own attributes and each section's counts."""
    summary = etree.Element(result.tag, result.attrib)
    for child in result:
        if child.tag in SUMMARY_SECTIONS:
            etree.SubElement(summary, child.tag, child.attrib)
    return summary


def status_document(
    entries: Iterable[tuple[str, str, str, bytes | None]], whole: bool | None = None, budget: int = STATUS_LIST_BYTES
) -> etree._Element:
    """ImportStatus: (import_id, received_at, state, ImportResult XML once finished) newest first.

    Newest first, each import carries its full ImportResult while that fits in what is left of `budget`
    bytes; one that does not carries its summary (`result_summary`), marked `abridged="1"` with the
    number of `errors` and `warnings` left out, and comes whole when asked for by its import_id. With
    `whole` (one import asked for by its id; by default, any list of one) every result comes in full,
    whatever its size: the web layer then compresses or redirects an answer too large to send."""
    entries = list(entries)
    whole = len(entries) == 1 if whole is None else whole
    root = etree.Element("ImportStatus", status="ok")
    room = budget
    for import_id, received_at, state, result in entries:
        element = etree.SubElement(root, "import", import_id=xml_text(import_id), received_at=received_at, state=state)
        if result is None:
            continue
        parsed = etree.fromstring(result)
        if whole or len(result) <= room:
            room -= len(result)
            element.append(parsed)
            continue
        element.set("abridged", "1")
        element.set("errors", str(len(parsed.findall("Error"))))
        element.set("warnings", str(len(parsed.findall("Warnings/w"))))
        element.append(result_summary(parsed))
    return root


def _text_value(value: Any, _: ZoneInfo) -> str:
    return str(value) if NOT_XML.search(value) is None else xml_text(value)


# How the export writes an order field's value, by its codec (one function each: an export writes 200,000).
_WRITERS: dict[Codec, Callable[[Any, ZoneInfo], str]] = {
    Codec.DATE: lambda value, _: str(value.strftime(DATE)),
    Codec.LOCAL_TIME: lambda value, _: str(value.strftime(DATETIME)),
    Codec.INSTANT: lambda value, tz: from_epoch(value, tz).strftime(DATETIME),
    Codec.STATUS: lambda value, _: str(value.value),
    Codec.TEXT: _text_value,
    Codec.INT: lambda value, _: str(value),
}


def xml_value(codec: Codec, value: Any, tz: ZoneInfo) -> str:
    """An order field's value as the export writes it (so also what an MIS echoing the export sends back)."""
    return _WRITERS[codec](value, tz)


# Each spelling's (field, attribute, writer) of the exported fields, and (field, attribute) of the text fields.
_SPELLED = {
    names: [(name, names.of(f), _WRITERS[f.codec]) for name, f in EXPORTED_ORDER_FIELDS] for names in ExportNames
}
_TEXTS = {
    names: [(name, names.of(f)) for name, f in EXPORTED_ORDER_FIELDS if f.codec is Codec.TEXT] for names in ExportNames
}


def order_attributes(order: Order, tz: ZoneInfo, names: ExportNames) -> dict[str, str]:
    """An order's attributes as the export writes them, in the clinic's spelling; names and their order are
    exactly the seed's list (records.Order declares them).

    The portal refuses what XML cannot carry, but a value stored otherwise (by an older version, say) must
    not fail every export that holds its order: such code points are written as U+FFFD, and a warning names
    the order and its attributes, never the value (patient data)."""
    attributes = {attribute: write(getattr(order, name), tz) for name, attribute, write in _SPELLED[names]}
    if NOT_XML.search("".join(getattr(order, name) for name, _ in _TEXTS[names])):
        unwritable = [attribute for name, attribute in _TEXTS[names] if NOT_XML.search(getattr(order, name))]
        logger.warning(
            "stored order value XML cannot carry: written with U+FFFD",
            extra={"order_id": order.id, "attributes": unwritable},
        )
    return attributes


class ExportDocument:
    """The export document, made an order at a time as the orders are read, with the attribute names in
    the clinic's spelling (the sample's or the table's)."""

    def __init__(self, client_key: str, tz: ZoneInfo, names: ExportNames) -> None:
        self.root = etree.Element("MediExchange", ClientKey=xml_text(client_key))
        self._orders = etree.SubElement(self.root, ORDERS.name)
        self._tz, self._names = tz, names

    def add(self, order: Order) -> None:
        etree.SubElement(self._orders, ORDERS.tag, order_attributes(order, self._tz, self._names))


def export_document(client_key: str, orders: Iterable[Order], tz: ZoneInfo, names: ExportNames) -> etree._Element:
    """The orders with the attribute names in the clinic's spelling (the sample's or the table's)."""
    document = ExportDocument(client_key, tz, names)
    for order in orders:
        document.add(order)
    return document.root
