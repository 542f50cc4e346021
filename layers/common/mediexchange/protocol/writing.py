"""Writing the service's XML answers: ImportResult, the export document, error results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from lxml import etree

from mediexchange.records import ImportReport, Issue, Order, SectionReport
from mediexchange.timeutil import from_epoch

DATE = "%d.%m.%Y"
DATETIME = "%d.%m.%Y %H:%M:%S"
ORDER_TYPE_BOOKING = 3  # the seed: bookings are type 3, no other type is exported


def serialize(root: etree._Element, encoding: str = "utf-8") -> bytes:
    # Characters the encoding lacks (windows-1251 has no emoji) become character references.
    return etree.tostring(root, xml_declaration=True, encoding=encoding, pretty_print=True)


def _issue_attributes(element: etree._Element, issue: Issue) -> None:
    for name, value in (("line", issue.line), ("section", issue.section), ("id", issue.record_id)):
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
    root = etree.Element("ImportResult", status="ok", import_id=report.import_id)
    sections: list[tuple[str, SectionReport | None]] = [
        ("ResourceGroups", report.groups),
        ("Resources", report.resources),
        ("Schedules", report.schedules),
    ]
    for name, section in sections:
        if section is not None:
            _counts(etree.SubElement(root, name), section)
    if report.appointments is not None:
        _counts(etree.SubElement(root, "Appointments", mode=report.sync_mode.value), report.appointments)
    if report.orders is not None:
        orders = report.orders
        element = etree.SubElement(
            root,
            "Orders",
            received=str(orders.received),
            updated=str(len(orders.updated)),
            unchanged=str(len(orders.unchanged)),
            conflicts=str(len(orders.conflicts)),
            unknown=str(len(orders.unknown)),
        )
        for tag, ids in (("conflict", orders.conflicts), ("unknown", orders.unknown)):
            for order_id in ids:
                etree.SubElement(element, tag, id=str(order_id))
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


def import_status(entries: Iterable[tuple[str, str, str, bytes | None]]) -> etree._Element:
    """ImportStatus: (import_id, received_at, state, ImportResult XML once finished) newest first."""
    root = etree.Element("ImportStatus", status="ok")
    for import_id, received_at, state, result in entries:
        element = etree.SubElement(root, "import", import_id=import_id, received_at=received_at, state=state)
        if result is not None:
            element.append(etree.fromstring(result))
    return root


def _counts(element: etree._Element, section: SectionReport) -> None:
    element.set("received", str(section.received))
    element.set("written", str(section.written))
    element.set("deleted", str(section.deleted))


def export_document(client_key: str, orders: Iterable[Order], tz: ZoneInfo) -> etree._Element:
    root = etree.Element("MediExchange", ClientKey=client_key)
    container = etree.SubElement(root, "Orders")
    for order in orders:
        # Attribute names and their order are exactly the seed's list.
        etree.SubElement(
            container,
            "o",
            {
                "id": str(order.id),
                "status": str(order.status.value),
                "user_id": order.user_id,
                "user_name": order.user_name,
                "order_date": order.order_date.strftime(DATE),
                "mw_resource_id": str(order.mw_resource_id),
                "resource_name": order.resource_name,
                "resource_id": str(order.resource_id),
                "reception_datetime": order.reception.strftime(DATETIME),
                "duration": str(order.duration),
                "type": str(ORDER_TYPE_BOOKING),
                "name1": order.name1,
                "name2": order.name2,
                "name3": order.name3,
                "aim": order.aim,
                "phone": order.phone,
                "city": order.city,
                "address": order.address,
                "email": order.email,
                "comment": order.comment,
                "LastChangedOn": from_epoch(order.last_changed, tz).strftime(DATETIME),
            },
        )
    return root
