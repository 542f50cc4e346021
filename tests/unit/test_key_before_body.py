"""Key before body (issue 11, item 5): an import's ClientKey is found and checked on the first bytes of its body
(uploads.KEY_WINDOW), so a request without a valid key costs little memory and CPU whatever it sends; a body that
fits in the window, and any body with a valid key, is read whole exactly as before."""

from __future__ import annotations

import gzip
import time
import tracemalloc
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from lxml import etree
from mediexchange.protocol.sections import GROUPS
from mediexchange.records import Clinic, Group
from mediexchange.store import Store
from mediexchange.uploads import KEY_WINDOW

from functions.mis_import.app import lambda_handler
from tests.conftest import SAMPLE_KEY
from tests.unit.conftest import FakeContext, api_event, call_import, decoded, document, items_got, snapshot
from tests.unit.test_hostile_input import count_inflated_bytes

MB = 1_000_000
PAD = "<!--" + " " * KEY_WINDOW + "-->"  # a comment inside the root: the body no longer fits in the window
GROUP = '<ResourceGroups><rg id="1" name="Терапия"/></ResourceGroups>'
BOUNDARY = "mis-boundary-7"


def error_of(result: Any) -> dict[str, str | None]:
    [error] = result.iter("Error")
    return {**error.attrib, "text": error.text}


def traced_import(body: bytes, content_type: str, **headers: str) -> tuple[int, Any, int, float]:
    """POST a body to the import handler; returns its status, its XML answer, the peak of the memory it
    allocated (tracemalloc) and the CPU time it took. The event is built before the measuring starts."""
    all_headers = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    event = api_event("POST", "/services/import.php", body, all_headers)
    tracemalloc.start()
    started = time.process_time()
    try:
        response = lambda_handler(event, FakeContext())
        cpu = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return response["statusCode"], etree.fromstring(decoded(response)), peak, cpu


def multipart(fields: list[tuple[str, bytes]], xml_type: str = "text/xml") -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        + (f'; filename="export.xml"\r\nContent-Type: {xml_type}'.encode() if name == "xml" else b"")
        + b"\r\n\r\n"
        + value
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


UNKNOWN = "00000000-0000-0000-0000-000000000000"
START = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{UNKNOWN}">\n'.encode()


def gzip_bomb() -> bytes:
    """50 MiB (the largest document accepted once inflated) of a well-formed document, 51 KB gzipped."""
    line = b"<x>" + b"\n" * (1024 * 1024 - 7) + b"</x>"  # text nodes stay under lxml's 10 MB limit
    body = START + line * 49 + b"<x>" + b"\n" * (1024 * 1024 - len(START) - 40) + b"</x></MediExchange>"
    assert len(body) <= 50 * 1024 * 1024
    return gzip.compress(body, 9)


ATTACKS = {
    # name: (body, Content-Type, headers); every one measured with the code before this change
    "50 MiB gzip bomb": (gzip_bomb, "application/xml", {"content_encoding": "gzip"}),  # 105 MB, 0.25 s
    "10 MB of <a/>, gzipped": (
        lambda: gzip.compress(START + b"<a/>" * 2_500_000 + b"</MediExchange>", 9),
        "application/xml",
        {"content_encoding": "gzip"},
    ),  # 24 MB traced (+315 MB of lxml tree), 0.4 s
    "4.5 MB multipart": (
        lambda: multipart([("xml", START + b"</MediExchange>"), ("pad", b"a\r\n" * 1_500_000)]),
        f"multipart/form-data; boundary={BOUNDARY}",
        {},
    ),  # 122 MB, 3.8 s
    "9 MB of a=& in a gzipped form": (
        lambda: gzip.compress(
            b"xml=" + quote_from_bytes(START + b"</MediExchange>").encode() + b"&" + b"a=&" * 3_000_000, 9
        ),
        "application/x-www-form-urlencoded",
        {"content_encoding": "gzip"},
    ),  # 388 MB, 13.9 s
}


@pytest.mark.parametrize("name", ATTACKS)
def test_a_request_without_a_valid_key_costs_little_whatever_its_body(
    store: Store, clinic: Clinic, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Given a body that costs hundreds of megabytes or seconds of CPU to read whole, under a key no clinic has
    make, content_type, headers = ATTACKS[name]
    body = make()
    call_import(document(GROUP))  # the handler warmed up, the clinic's groups stored
    before = snapshot(dynamodb)
    inflated = count_inflated_bytes(monkeypatch)
    # When it is posted
    status, result, peak, cpu = traced_import(body, content_type, **headers)
    # Then it is refused for its key, having read only the start of the body: under 5 MB and a fraction of a
    # second (the whole reading took 24 to 388 MB and up to 14 s), at most a window and a piece inflated
    assert (status, error_of(result)) == (
        403,
        {"code": "unknown_client_key", "text": "no active clinic has this client_key"},
    )
    assert peak < 5 * MB, f"{peak / MB:.1f} MB"
    assert cpu < 0.5, f"{cpu:.2f} s"
    assert sum(inflated) <= 2 * KEY_WINDOW
    # And nothing changed
    assert snapshot(dynamodb) == before


def padded(
    start: str = f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">', body: str = GROUP
) -> str:
    """A document whose records come after a comment longer than the key window."""
    return f"{start}\n{PAD}\n{body}\n</MediExchange>"


def cyrillic_document() -> bytes:
    text = padded('<?xml version="1.0" encoding="windows-1251"?>\n<MediExchange ClientKey="ключ-клиники">')
    return text.encode("windows-1251")


SHAPES = {
    # name: (body, Content-Type, headers, client key)
    "XML": (padded().encode(), "application/xml", {}, SAMPLE_KEY),
    "gzipped XML": (gzip.compress(padded().encode()), "application/xml", {"content_encoding": "gzip"}, SAMPLE_KEY),
    "form": (b"dry_run=0&xml=" + quote_from_bytes(padded().encode()).encode(), "application/x-www-form-urlencoded", {}, SAMPLE_KEY),
    "form, name percent-encoded": (b"x%6Dl=" + quote_from_bytes(padded().encode()).encode() + b"&a=1", "application/x-www-form-urlencoded", {}, SAMPLE_KEY),
    "multipart, xml after another field": (
        multipart([("comment", b"export"), ("xml", padded().encode())]), f"multipart/form-data; boundary={BOUNDARY}", {}, SAMPLE_KEY
    ),
    "gzipped multipart": (
        gzip.compress(multipart([("xml", padded().encode())])), f"multipart/form-data; boundary={BOUNDARY}", {"content_encoding": "gzip"}, SAMPLE_KEY
    ),
    "windows-1251, Cyrillic key": (cyrillic_document(), "text/xml", {}, "ключ-клиники"),
    "undeclared windows-1251 in a multipart part with its charset": (
        multipart([("xml", cyrillic_document().split(b"\n", 1)[1])], xml_type="text/xml; charset=windows-1251"),
        f"multipart/form-data; boundary={BOUNDARY}",
        {},
        "ключ-клиники",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", SHAPES)
def test_a_valid_key_lets_a_body_past_the_window_through_in_every_shape(store: Store, name: str) -> None:
    # Given a document that does not fit in the key window, in each shape an MIS sends, under a clinic's key
    body, content_type, headers, key = SHAPES[name]
    clinic = store.clinics.create("Клиника", "Europe/Moscow", key)
    assert len(gzip.decompress(body) if headers else body) > KEY_WINDOW
    # When it is imported
    status, result, _ = call_import(body, content_type, **headers)
    # Then it is read whole and applied, Cyrillic intact
    assert (status, result.get("status")) == (200, "ok"), error_of(result)
    assert store.records.all(clinic.clinic_id, GROUPS) == [Group(1, "Терапия")]


@pytest.mark.parametrize("name", ["XML", "gzipped XML", "form", "gzipped multipart"])
def test_a_key_checked_before_the_body_is_not_looked_up_again(store: Store, clinic: Clinic, name: str) -> None:
    # Given a document past the key window under the clinic's key, in a shape an MIS sends
    body, content_type, headers, _ = SHAPES[name]
    read = items_got(store, store.settings.client_keys_table)
    # When it is imported
    status, result, _ = call_import(body, content_type, **headers)
    # Then it is applied, its key read from the store once: on the body's first bytes
    assert (status, result.get("status")) == (200, "ok"), error_of(result)
    assert len(read) == 1


def test_a_form_with_two_xml_fields_imports_the_first_the_one_whose_key_was_checked(
    store: Store, clinic: Clinic
) -> None:
    # Given a form whose first xml field (past the window) carries the sample's key, and whose second another
    # clinic's document
    other_key = "0F0F0F0F-1111-2222-3333-444455556666"
    other = store.clinics.create("Other clinic", "Europe/Moscow", other_key)
    theirs = padded(f'<MediExchange ClientKey="{other_key}">')
    body = (
        b"xml=" + quote_from_bytes(padded().encode()).encode() + b"&xml=" + quote_from_bytes(theirs.encode()).encode()
    )
    # When it is imported
    status, result, _ = call_import(body, "application/x-www-form-urlencoded")
    # Then the first field is the document, as the first part of a name is in a multipart body: the sample
    # clinic's, under the key checked on the body's first bytes; the other clinic gets nothing
    assert (status, result.get("status")) == (200, "ok"), error_of(result)
    assert (store.records.all(clinic.clinic_id, GROUPS), store.records.all(other.clinic_id, GROUPS)) == (
        [Group(1, "Терапия")],
        [],
    )


REFUSED_AT_ONCE = {
    # name: (start of the document, status, code, text); the rest of the body is malformed: never read
    "no key": ("<MediExchange>", 400, "missing_client_key", "the MediExchange element has no ClientKey attribute"),
    "blank key": ('<MediExchange ClientKey="  ">', 400, "missing_client_key", "the MediExchange element has no ClientKey attribute"),
    "wrong root": (f'<Exchange ClientKey="{SAMPLE_KEY}">', 400, "bad_request", "the root element must be MediExchange, not Exchange"),
    "unknown key": (f'<MediExchange ClientKey="{UNKNOWN}">', 403, "unknown_client_key", "no active clinic has this client_key"),
}  # fmt: skip


@pytest.mark.parametrize("name", REFUSED_AT_ONCE)
def test_a_wrong_root_or_key_is_told_from_the_start_though_the_rest_is_malformed(clinic: Clinic, name: str) -> None:
    # Given a start with a wrong root or key, then a body that is not even well-formed, past the window
    start, status, code, text = REFUSED_AT_ONCE[name]
    body = f'<?xml version="1.0"?>\n{start}\n{PAD}<Resources><r></Resources>'.encode()
    # When it is posted; Then the start alone decides
    got, result, _ = call_import(body)
    assert (got, error_of(result)) == (status, {"code": code, "text": text})


def test_a_valid_key_does_not_hide_a_malformed_body(clinic: Clinic) -> None:
    # Given the clinic's key, then past the window (line 3) an r opened on line 5 that line 6 does not close
    body = padded(body='<Resources>\n<r id="1" name="A" time_step="30">\n</Resources>').encode()
    assert body.split(b"\n")[2].startswith(b"<!--") and len(body.split(b"\n")[2]) > KEY_WINDOW
    # When it is imported; Then the whole reading refuses it, naming the real line
    status, result, _ = call_import(body)
    assert (status, error_of(result)) == (
        400,
        {
            "code": "malformed_xml",
            "line": "6",
            "text": "not well-formed XML: Opening and ending tag mismatch: r line 5 and Resources, line 6, column 13",
        },
    )


def test_a_start_that_is_not_well_formed_gets_the_answer_a_whole_reading_gives(clinic: Clinic) -> None:
    # Given a start tag whose attribute is not quoted, once alone and once before a body past the window
    start = '<?xml version="1.0"?>\n<MediExchange ClientKey=k>'
    small = call_import(f"{start}</MediExchange>".encode())
    # When it is posted with the long body
    status, result, _ = call_import(f"{start}\n{PAD}\n</MediExchange>".encode())
    # Then the answer is the whole reading's, line and column included
    assert (status, error_of(result)) == (400, error_of(small[1]))
    assert error_of(result) == {
        "code": "malformed_xml",
        "line": "2",
        "text": "not well-formed XML: AttValue: \" or ' expected, line 2, column 25",
    }


NOT_IN_THE_WINDOW = {
    # name: (body, Content-Type, code, text)
    "a comment before the root longer than the window": (
        f'<?xml version="1.0"?>\n{PAD}\n<MediExchange ClientKey="{SAMPLE_KEY}"/>'.encode(),
        "application/xml",
        "malformed_xml",
        f"the MediExchange start tag, with its ClientKey, must end within the first {KEY_WINDOW} bytes of the request body",
    ),
    "a form field before xml longer than the window": (
        b"comment=" + b"a" * KEY_WINDOW + b"&xml=" + quote_from_bytes(document(GROUP)).encode(),
        "application/x-www-form-urlencoded",
        "bad_request",
        f"the form has no field named xml within its first {KEY_WINDOW} bytes",
    ),
    "a multipart part before xml longer than the window": (
        multipart([("comment", b"a" * KEY_WINDOW), ("xml", document(GROUP))]),
        f"multipart/form-data; boundary={BOUNDARY}",
        "bad_request",
        f"the form has no field named xml within its first {KEY_WINDOW} bytes",
    ),
}


@pytest.mark.parametrize("name", NOT_IN_THE_WINDOW)
def test_a_key_that_does_not_come_within_the_window_is_a_clear_400(
    store: Store, clinic: Clinic, dynamodb: Any, name: str
) -> None:
    # Given a valid key that comes only after the first KEY_WINDOW bytes of the body
    body, content_type, code, text = NOT_IN_THE_WINDOW[name]
    before = snapshot(dynamodb)
    # When it is posted
    status, result, _ = call_import(body, content_type)
    # Then it is refused, saying where the key must be, and nothing changed
    assert (status, error_of(result)) == (400, {"code": code, "text": text})
    assert snapshot(dynamodb) == before


def test_a_body_too_large_is_still_told_before_a_start_that_cannot_be_read(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gzip body whose start is not XML and which inflates past the 50 MiB a document may hold
    body = gzip.compress(b"not xml" + b" " * (51 << 20), 9)
    inflated = count_inflated_bytes(monkeypatch)
    # When it is posted; Then it is 413, as reading it whole would answer, inflated once and never past the limit
    status, result, _ = call_import(body, "application/xml", content_encoding="gzip")
    assert (status, error_of(result)) == (
        413,
        {"code": "too_large", "text": "the request body inflates to more than 52428800 bytes"},
    )
    assert sum(inflated) == 52428800 + 1
