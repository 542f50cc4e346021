"""A receipt laid over its document: every rejected record and warning of an import shown at its line in
the stored document, with the lines around it and the attribute at fault highlighted; the document for
download; and the dry run, which shows the same for a pasted document and writes nothing.

A document may hold 50 MB on one line or on a million: only the lines around the issues are ever decoded,
each cut to a window around what it is about.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from lxml import etree

from mediexchange import importing
from mediexchange.clients import KeyOwner, authenticate
from mediexchange.console.pages import Form, Page, not_found
from mediexchange.errors import MalformedXml, ServiceError, UnknownClientKey
from mediexchange.protocol.reading import client_key_of
from mediexchange.protocol.sections import SECTIONS
from mediexchange.protocol.writing import error_result, import_result, serialize
from mediexchange.protocol.xmlparse import document_encoding, root_start
from mediexchange.store import Store
from mediexchange.web import http_status, sized_xml_response

CONTEXT_LINES = 3  # shown before and after each issue's line
MAX_ISSUES_SHOWN = 200  # at their lines on one page; the rest are counted
LINE_CHARS = 320  # of one line shown; a longer one is cut to a window around what the issue is about
SECTION_NAMES = tuple(section.name for section in SECTIONS)
ERROR, WARNING = "error", "warning"

_RESULT_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_HEAD_CHARS = 1024  # of a pasted document, enough to hold its XML declaration


# -- the receipt, read from the stored ImportResult ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptIssue:
    """One Error or warning of an ImportResult, where the document has it."""

    kind: str  # error | warning
    code: str
    message: str
    line: int | None
    section: str | None
    record_id: str | None
    attribute: str | None


@dataclass(frozen=True, slots=True)
class SectionCounts:
    name: str
    counts: dict[str, str]  # the section element's attributes as the answer wrote them (received, written, ...)
    errors: int
    warnings: int


@dataclass(frozen=True, slots=True)
class Receipt:
    status: str  # ok | partial | error (accepted for one not applied yet)
    import_id: str | None
    dry_run: bool
    sections: tuple[SectionCounts, ...]
    issues: tuple[ReceiptIssue, ...]  # errors then warnings, in the answer's order

    @property
    def errors(self) -> int:
        return sum(issue.kind == ERROR for issue in self.issues)

    @property
    def warnings(self) -> int:
        return sum(issue.kind == WARNING for issue in self.issues)


def _issue(element: etree._Element, kind: str) -> ReceiptIssue:
    line = element.get("line")
    return ReceiptIssue(
        kind,
        element.get("code") or "",
        element.text or "",
        int(line) if line is not None and line.isdigit() else None,
        element.get("section"),
        element.get("id"),
        element.get("attribute"),
    )


def read_receipt(result: bytes) -> Receipt:
    """An ImportResult (protocol.writing.import_result or error_result) as the pages show it."""
    root = etree.fromstring(result, _RESULT_PARSER)
    issues = [_issue(e, ERROR) for e in root.iterchildren("Error")]
    issues += [_issue(w, WARNING) for w in root.iterfind("Warnings/w")]
    per_section = Counter((issue.section, issue.kind) for issue in issues)
    sections = tuple(
        SectionCounts(e.tag, dict(e.attrib), per_section[(e.tag, ERROR)], per_section[(e.tag, WARNING)])
        for e in root.iterchildren()
        if isinstance(e.tag, str) and e.tag in SECTION_NAMES
    )
    shown = {s.name for s in sections}
    # A section with issues but no counts (a document refused whole names none): still counted.
    sections += tuple(
        SectionCounts(name, {}, per_section[(name, ERROR)], per_section[(name, WARNING)])
        for name in SECTION_NAMES
        if name not in shown and (per_section[(name, ERROR)] or per_section[(name, WARNING)])
    )
    return Receipt(root.get("status") or "", root.get("import_id"), root.get("dry_run") == "1", sections, tuple(issues))


# -- the document's lines around the issues ------------------------------------------------------------


def encoding_of(data: bytes, charset: str | None) -> str:
    """What the document's text is in, as the import read it (`document_encoding`); a name Python does not
    know, or a declaration that names no valid encoding: UTF-8, with replacements."""
    try:
        name = document_encoding(data, charset)
    except MalformedXml:
        return "utf-8"
    return name.lower() if name and _known(name) else "utf-8"


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    marked: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    pieces: tuple[Piece, ...]
    issues: tuple[ReceiptIssue, ...] = ()  # at this line (shown after it)

    @property
    def kind(self) -> str | None:
        kinds = {issue.kind for issue in self.issues}
        return ERROR if ERROR in kinds else WARNING if kinds else None


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive lines shown together (issues close to each other share their context)."""

    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Overlay:
    blocks: tuple[Block, ...]
    unplaced: tuple[ReceiptIssue, ...]  # issues without a line (or past the document's end)
    hidden: int  # issues with a line beyond MAX_ISSUES_SHOWN
    lines: int | None  # the document's line count, if it was read


def _split_lines(data: bytes, last: int) -> list[bytes]:
    """The document's first `last` lines (as XML counts them: CR LF, CR and LF each end one), as bytes;
    the rest stays in one piece at the end."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.split(b"\n", last)


def _attribute_spans(text: str, issues: Iterable[ReceiptIssue]) -> list[tuple[int, int]]:
    """Where each issue's attribute (`name="value"`) is on its line: in the element with the record's id
    when the line holds several records, else its first occurrence."""
    spans = []
    for issue in issues:
        if not issue.attribute:
            continue
        pattern = re.compile(r"(?<![\w.:-])" + re.escape(issue.attribute) + r"""\s*=\s*(?:"[^"]*"|'[^']*')""")
        found = list(pattern.finditer(text))
        if not found:
            continue
        chosen = found[0]
        if len(found) > 1 and issue.record_id:
            record = _id_pattern(issue.record_id).search(text)
            if record is not None:  # the record runs to the next element with an id (its children have none)
                following = _ANY_ID.search(text, record.end())
                start = text.rfind("<", 0, record.start())
                end = text.rfind("<", 0, following.start()) if following is not None else len(text)
                chosen = next((m for m in found if start <= m.start() < end), chosen)
        spans.append((chosen.start(), chosen.end()))
    return sorted(set(spans))


_ANY_ID = re.compile(r"""(?<![\w.:-])id\s*=\s*["']""")


def _written_id(record_id: str) -> str:
    """The id attribute's value within a record's key (an appointment's is `tablename#id`)."""
    return record_id.rsplit("#", 1)[-1]


def _id_pattern(record_id: str) -> re.Pattern[str]:
    """The record's id attribute, as the document may write the number (leading zeros, a plus)."""
    written = _written_id(record_id)
    number = r"\+?0*" if written.isdigit() else ""
    return re.compile(r"""(?<![\w.:-])id\s*=\s*["']\s*""" + number + re.escape(written) + r"""\s*["']""")


def _plain_id(written: str) -> str:
    """An id attribute's value as keys name it (a number without its leading zeros)."""
    digits = written.strip().lstrip("+")
    return str(int(digits)) if digits.isdigit() else written.strip()


def _record_position(text: str, issues: Iterable[ReceiptIssue]) -> int | None:
    """Where the first issue's record (its id attribute) is on the line."""
    for issue in issues:
        if issue.record_id:
            found = _id_pattern(issue.record_id).search(text)
            if found is not None:
                return found.start()
    return None


_SECTION_OR_ID = re.compile(r"<(" + "|".join(SECTION_NAMES) + r""")\b|(?<![\w.:-])id\s*=\s*["']\s*([^"'<>]*?)\s*["']""")


def _record_positions(text: str) -> dict[tuple[str | None, str], int]:
    """Where each record of a long line starts, by (section, id) and by id alone: one pass over the line."""
    found: dict[tuple[str | None, str], int] = {}
    section = None
    for match in _SECTION_OR_ID.finditer(text):
        if match.group(1):
            section = match.group(1)
        else:
            written = _plain_id(match.group(2))
            found.setdefault((section, written), match.start())
            found.setdefault((None, written), match.start())
    return found


def line_pieces(text: str, issues: Sequence[ReceiptIssue], focus: int | None = None) -> tuple[Piece, ...]:
    """A line as pieces of text, the issues' attributes marked. A line longer than LINE_CHARS is cut to a
    window around what it is about (`focus`, else the issues' record, else its start), with "…" where cut."""
    text = text.rstrip("\r\n")
    offset = 0
    if len(text) > 4 * LINE_CHARS:  # look for the attributes near the record only
        focus = _record_position(text, issues) if focus is None else focus
        offset = max(0, (focus or 0) - LINE_CHARS)
    window = text[offset : offset + 4 * LINE_CHARS] if offset or len(text) > 4 * LINE_CHARS else text
    spans = _attribute_spans(window, issues)
    start, end = 0, len(window)
    if offset or len(text) > LINE_CHARS:
        here = spans[0][0] if spans else (focus - offset if focus is not None else _record_position(window, issues))
        here = 0 if here is None else here
        start = max(0, min(here - LINE_CHARS // 3, len(window) - LINE_CHARS))
        end = max(start + LINE_CHARS, spans[0][1] if spans else 0)
    pieces: list[Piece] = [Piece("…")] if offset + start > 0 else []
    at = start
    for span_start, span_end in spans:
        if span_start < at or span_end > end:
            continue  # overlapping, or cut off: the first one counts
        if span_start > at:
            pieces.append(Piece(window[at:span_start]))
        pieces.append(Piece(window[span_start:span_end], marked=True))
        at = span_end
    if at < min(end, len(window)):
        pieces.append(Piece(window[at:end]))
    if offset + end < len(text):
        pieces.append(Piece("…"))
    return tuple(pieces)


def issue_lines(number: int, text: str, issues: tuple[ReceiptIssue, ...]) -> list[Line]:
    """An issue line as shown: once with all its issues, or, when it is long and holds several (a document
    on one line), once per issue, each cut around that issue's record."""
    if len(issues) < 2 or len(text) <= LINE_CHARS:
        return [Line(number, line_pieces(text, issues), issues)]
    positions = _record_positions(text)
    focused = []
    for issue in issues:
        key = _written_id(issue.record_id or "")
        focused.append((positions.get((issue.section, key), positions.get((None, key), 0)), issue))
    focused.sort(key=lambda pair: pair[0])  # in the order the line has them
    return [Line(number, line_pieces(text, (issue,), focus), (issue,)) for focus, issue in focused]


def overlay(data: bytes | None, charset: str | None, issues: Sequence[ReceiptIssue]) -> Overlay:
    """The issues at their lines of the document, MAX_ISSUES_SHOWN at most, with CONTEXT_LINES around each."""
    placed = sorted((i for i in issues if i.line is not None), key=lambda i: (i.line or 0, i.kind != ERROR))
    unplaced = [i for i in issues if i.line is None]
    shown, hidden = placed[:MAX_ISSUES_SHOWN], len(placed) - min(len(placed), MAX_ISSUES_SHOWN)
    if data is None or not shown:
        return Overlay((), tuple(unplaced + shown), hidden, None)
    encoding = encoding_of(data, charset)
    last = max(issue.line or 0 for issue in shown) + CONTEXT_LINES
    lines = _split_lines(data, last)  # lines 1..last whole, then (if the document goes on) the rest in one
    count = len(lines) if len(lines) <= last else None  # the whole count is not needed: not counted
    known = min(len(lines), last)
    by_line: dict[int, list[ReceiptIssue]] = {}
    for issue in shown:
        if issue.line is not None and issue.line <= known:
            by_line.setdefault(issue.line, []).append(issue)
        else:
            unplaced.append(issue)  # past the document's end: not where the receipt says
    around = (range(max(1, line - CONTEXT_LINES), min(known, line + CONTEXT_LINES) + 1) for line in by_line)
    wanted = sorted({number for numbers in around for number in numbers})
    blocks: list[list[Line]] = []
    previous = None
    for number in wanted:
        raw = lines[number - 1]
        if len(raw) > LINE_CHARS * 8 and number not in by_line:
            raw = raw[: LINE_CHARS * 4]  # a context line is shown cut anyway: decode no more of it than that
        here = tuple(by_line.get(number, ()))
        if previous is None or number != previous + 1:
            blocks.append([])
        blocks[-1] += issue_lines(number, raw.decode(encoding, "replace"), here)
        previous = number
    return Overlay(tuple(Block(tuple(b)) for b in blocks), tuple(unplaced), hidden, count)


# -- the pages ---------------------------------------------------------------------------------------


def _entry_or_404(store: Store, clinic_id: str, import_id: str) -> Any:
    if not importing.IMPORT_ID.fullmatch(import_id):
        raise not_found()
    entry = store.imports.get(clinic_id, import_id)
    if entry is None:
        raise not_found()
    return entry


def receipt_page(store: Store, page: Page, clinic_id: str, import_id: str) -> Response[str]:
    """GET /console/clinics/{id}/imports/{import_id}: the receipt laid over the stored document."""
    page = page.for_clinic(store, clinic_id)
    entry = _entry_or_404(store, clinic_id, import_id)
    receipt = read_receipt(entry.result) if entry.result is not None else None
    laid = None
    document_gone = False
    if receipt is not None:
        needs_document = any(issue.line is not None for issue in receipt.issues)
        stored = store.imports.kept_document(clinic_id, import_id) if needs_document else None
        document_gone = needs_document and stored is None
        data, charset = stored if stored is not None else (None, None)
        laid = overlay(data, charset, receipt.issues)
    return page.render(
        "receipt.html",
        entry=entry,
        receipt=receipt,
        overlay=laid,
        document_gone=document_gone,
        limit=MAX_ISSUES_SHOWN,
    )


def document_download(store: Store, page: Page, event: BaseProxyEvent, clinic_id: str, import_id: str) -> Response[Any]:
    """GET .../imports/{import_id}/document: the document as it was received, to save (its own type and
    charset); gzip-compressed for a client that takes it; one too large for a Lambda answer is handed over
    through a short-lived link to the kept document itself, answered as the same attachment."""
    page = page.for_clinic(store, clinic_id)
    _entry_or_404(store, clinic_id, import_id)
    stored = store.imports.kept_document(clinic_id, import_id)
    if stored is None:
        raise not_found()
    data, charset = stored
    disposition = f'attachment; filename="{import_id}.xml"'
    headers = {**page.headers(), "Content-Disposition": disposition, "Cache-Control": "private, no-store"}

    def link(_body: bytes, _type: str) -> str:  # the document is kept already: a link to it, not a copy
        return store.imports.document_url(clinic_id, import_id, disposition)

    return sized_xml_response(event, data, charset, link, headers=headers)


def _pasted(form: Form) -> tuple[bytes, str | None, str]:
    """The document of a dry-run form: the uploaded file if one was chosen, else the textarea (its text in
    the encoding its declaration names, so it reads as the MIS would send it). Also the text to show again."""
    upload = form.data("file")
    if upload is not None and upload[0]:
        return upload[0], upload[1], ""
    text = form.get("document")
    encoding = encoding_of(text[:_HEAD_CHARS].encode("ascii", "replace"), None)
    try:
        return text.encode(encoding, "xmlcharrefreplace"), None, text
    except (LookupError, UnicodeError):
        return text.encode("utf-8"), None, text


def _dry_run(store: Store, clinic_id: str, data: bytes, charset: str | None) -> bytes:
    """The ImportResult a document would get from the clinic (nothing written); an error's as an
    ImportResult too. A document of another clinic is refused as an unknown key is, before it is read."""
    start = root_start(data, charset)
    known = None
    if start is not None:
        client_key = client_key_of(start)
        known = KeyOwner(client_key, authenticate(store, client_key))
        if known.clinic.clinic_id != clinic_id:
            raise UnknownClientKey()
    received = importing.receive_document(store, data, charset, dry_run=True, known=known)
    assert received.report is not None  # a dry run always answers at once
    return serialize(import_result(received.report))


def dry_run_page(store: Store, page: Page, clinic_id: str, form: Form | None) -> Response[str]:
    """GET/POST /console/clinics/{id}/dry-run: a form; posted, the receipt laid over the pasted document."""
    page = page.for_clinic(store, clinic_id)
    if form is None:
        return page.render("dry_run.html", text="", receipt=None, overlay=None, limit=MAX_ISSUES_SHOWN)
    page.require_csrf(form)
    data, charset, text = _pasted(form)
    status = 200
    try:
        result = _dry_run(store, clinic_id, data, charset)
    except ServiceError as exc:
        status = http_status(exc)
        result = serialize(error_result("ImportResult", exc.code, exc.issues))
    receipt = read_receipt(result)
    laid = overlay(data, charset, receipt.issues)
    return page.render(
        "dry_run.html", status=status, text=text, receipt=receipt, overlay=laid, limit=MAX_ISSUES_SHOWN, size=len(data)
    )
