"""Fuzzing: valid documents and requests, mutated. No input gets a 500, every refused import leaves the
store byte for byte as it was, and every rejected record keeps the version stored before."""

from __future__ import annotations

import gzip
import re
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mediexchange.protocol.sections import SYNCED
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.reliability.figures import FULL, record
from tests.unit.conftest import call_export, call_import, call_portal, snapshot

EXAMPLES = 300 if FULL else 25
SYNCED_NAMES = {section.name for section in SYNCED}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SAMPLE_TEXT = SAMPLE.read_text(encoding="utf-8")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
HOSTILE = [
    "", " ", "-1", "0", "1441", "99999999999999999999", "-9223372036854775809", "1e3", "0x10", "31.02.2024",
    "29.02.2023", "32.01.2024", "24:01", "23:60", "7:5", "24:00", "2024-01-01", "01.01.2024 25:00:00",
    "31.03.2030 02:30:00", "&amp;", "&lt;&gt;", "абв", "😷", "\t", "NaN", "FULL", "diff", "3", "2", "Я" * 1200,
]  # fmt: skip


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    text = SAMPLE_TEXT
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "delete", "duplicate", "insert", "case"]))
        if kind == "value":
            matches = list(ATTRIBUTE.finditer(text))
            match = matches[draw(st.integers(0, len(matches) - 1))]
            value = draw(st.sampled_from(HOSTILE) | st.text(max_size=12)).replace('"', "&quot;")
            text = text[: match.start(2)] + value + text[match.end(2) :]
        elif kind == "delete":
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 40)) :]
        elif kind == "duplicate":
            lines = text.split("\n")
            n = draw(st.integers(0, len(lines) - 1))
            text = "\n".join([*lines[: n + 1], lines[n], *lines[n + 1 :]])
        elif kind == "insert":
            at = draw(st.integers(0, len(text)))
            text = (
                text[:at]
                + draw(st.sampled_from(["<x/>", "<", "&", "]]>", "<!--", "\x00", "<Orders/>"]) | st.text(max_size=8))
                + text[at:]
            )
        else:
            matches = list(re.finditer(r"<(\w+)", text))
            match = matches[draw(st.integers(0, len(matches) - 1))]
            text = text[: match.start(1)] + match.group(1).swapcase() + text[match.end(1) :]
    return text


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str, dict[str, str]]:
    text = draw(mutated_documents())
    if draw(st.booleans()):
        text = text.replace('encoding="UTF-8"', 'encoding="windows-1251"')
        body = text.encode("cp1251", errors="replace")
    else:
        body = text.encode("utf-8", errors="surrogatepass")
    shape = draw(st.sampled_from(["xml", "text", "form", "multipart", "json", "none"]))
    content_type = {
        "xml": "application/xml",
        "text": "text/xml; charset=windows-1251",
        "form": "application/x-www-form-urlencoded",
        "multipart": "multipart/form-data; boundary=b",
        "json": "application/json",
        "none": "",
    }[shape]
    if shape == "form":
        body = b"xml=" + quote_from_bytes(body).encode()
    elif shape == "multipart":
        body = b'--b\r\nContent-Disposition: form-data; name="xml"\r\n\r\n' + body + b"\r\n--b--\r\n"
    headers = {}
    if draw(st.booleans()):
        body = gzip.compress(body)
        headers["content_encoding"] = "gzip"
    return body, content_type, headers


def stored_hashes(store: Store, clinic: Clinic) -> dict[tuple[str, str], str]:
    return {
        (section.name, key): digest
        for section in SYNCED
        for key, digest in store.records.hashes(clinic.clinic_id, section).items()
    }


def test_mutated_imports_never_500_and_rejections_keep_what_was_stored(
    store: Store, clinic: Clinic, dynamodb: Any
) -> None:
    tried, errors, changed_by_rejection, rejected_records = [0], [0], [0], [0]
    assert call_import(SAMPLE.read_bytes())[0] == 200

    @FUZZ
    @given(requests())
    def attempt(request: tuple[bytes, str, dict[str, str]]) -> None:
        body, content_type, headers = request
        before, before_hashes = snapshot(dynamodb), stored_hashes(store, clinic)
        # When a mutated document is posted
        status, result, _ = call_import(body, content_type, **headers)
        tried[0] += 1
        errors[0] += status >= 500
        assert status < 500
        if status != 200:
            # Then a refused document changes nothing at all
            changed_by_rejection[0] += snapshot(dynamodb) != before
            assert snapshot(dynamodb) == before
            return
        # Or a rejected record keeps the version stored before (unless a later record of its key won)
        replaced = {(w.get("section"), w.get("id")) for w in result.iter("w") if w.get("code") == "duplicate_id"}
        after = stored_hashes(store, clinic)
        for error in result.findall("Error"):
            key = (error.get("section"), error.get("id"))
            rejected_records[0] += 1
            if key not in replaced and key[0] in SYNCED_NAMES:
                changed_by_rejection[0] += after.get(key) != before_hashes.get(key)
                assert after.get(key) == before_hashes.get(key), (key, error.text)

    attempt()
    record(
        "bad input",
        fuzzed_imports=tried[0],
        fuzzed_500s=errors[0],
        records_rejected=rejected_records[0],
        store_changed_by_rejection=changed_by_rejection[0],
    )


def test_mutated_export_and_portal_requests_never_500(clinic: Clinic) -> None:
    assert call_import(SAMPLE.read_bytes())[0] == 200
    tried, errors = [0], [0]
    anything = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=True))

    @FUZZ
    @given(
        st.dictionaries(st.sampled_from(["client_key", "start", "end", "encoding", "x"]), st.text(max_size=20)),
        st.dictionaries(
            st.sampled_from(
                ["resource_id", "reception_datetime", "duration", "name1", "phone", "email", "comment", "x"]
            ),
            anything,
        ),
        st.dictionaries(st.sampled_from(["resource_id", "from", "to"]), st.text(max_size=12)),
    )
    def attempt(export: dict[str, str], booking: dict[str, Any], slots: dict[str, str]) -> None:
        export = {"client_key": SAMPLE_KEY, **export} if "client_key" not in export else export
        statuses = [
            call_export(export)[0],
            call_portal("POST", f"/portal/clinics/{clinic.clinic_id}/orders", booking)[0],
            call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/slots", query=slots)[0],
        ]
        tried[0] += len(statuses)
        errors[0] += sum(s >= 500 for s in statuses)
        assert max(statuses) < 500, (export, booking, slots, statuses)

    attempt()
    record("bad input", fuzzed_other_requests=tried[0], fuzzed_500s=errors[0])
