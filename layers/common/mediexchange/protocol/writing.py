"""Writing the service's XML answers: ImportResult, the export document, error results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from mediexchange.protocol.sections import ORDERS, SYNCED, Applies
from mediexchange.records import EXPORTED_ORDER_FIELDS, Codec, ExportNames, ImportReport, Issue, Order
from mediexchange.timeutil import from_epoch

DATE = "%d.%m.%Y"
DATETIME = "%d.%m.%Y %H:%M:%S"


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
            element.set(name, str(value))


def error_result(root_name: str, code: str, issues: Sequence[Issue]) -> etree._Element:
    root = etree.Element(root_name, status="error")
    for issue in issues:
        error = etree.SubElement(root, "Error", code=code)
        _issue_attributes(error, issue)
        error.text = issue.message
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
        for tag, ids in (("conflict", orders.conflicts), ("unknown", orders.unknown)):
            for order_id in ids:
                etree.SubElement(element, tag, id=str(order_id))
    for issue in report.errors:
        error = etree.SubElement(root, "Error", code=issue.code)
        _issue_attributes(error, issue)
        error.text = issue.message
    if report.warnings:
        warnings = etree.SubElement(root, "Warnings")
        for issue in report.warnings:
            warning = etree.SubElement(warnings, "w", code=issue.code)
            _issue_attributes(warning, issue)
            warning.text = issue.message
    return root


def accepted_result(import_id: str) -> etree._Element:
    """The answer to a document kept for the background: follow it with status.php."""
    return etree.Element("ImportResult", status="accepted", import_id=import_id)


def status_document(entries: Iterable[tuple[str, str, str, bytes | None]]) -> etree._Element:
    """ImportStatus: (import_id, received_at, state, ImportResult XML once finished) newest first."""
    root = etree.Element("ImportStatus", status="ok")
    for import_id, received_at, state, result in entries:
        element = etree.SubElement(root, "import", import_id=import_id, received_at=received_at, state=state)
        if result is not None:
            element.append(etree.fromstring(result))
    return root


def xml_value(codec: Codec, value: Any, tz: ZoneInfo) -> str:
    """An order field's value as the export writes it."""
    if codec is Codec.DATE:
        return str(value.strftime(DATE))
    if codec is Codec.LOCAL_TIME:
        return str(value.strftime(DATETIME))
    if codec is Codec.INSTANT:
        return from_epoch(value, tz).strftime(DATETIME)
    if codec is Codec.STATUS:
        return str(value.value)
    return str(value)


def export_document(client_key: str, orders: Iterable[Order], tz: ZoneInfo, names: ExportNames) -> etree._Element:
    """The orders with the attribute names in the clinic's spelling (the sample's or the table's)."""
    root = etree.Element("MediExchange", ClientKey=client_key)
    container = etree.SubElement(root, ORDERS.name)
    spelled = [(name, names.of(f), f.codec) for name, f in EXPORTED_ORDER_FIELDS]
    for order in orders:
        # Attribute names and their order are exactly the seed's list (records.Order declares them).
        attributes = {attribute: xml_value(codec, getattr(order, name), tz) for name, attribute, codec in spelled}
        etree.SubElement(container, ORDERS.tag, attributes)
    return root
