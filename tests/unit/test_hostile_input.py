"""Hostile and malformed input: a clear 4xx, bounded work, and the store exactly as it was."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from mediexchange.records import Clinic
from mediexchange.store import Store

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import call_import, document, snapshot

KEY = SAMPLE_KEY
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + f']><MediExchange ClientKey="{KEY}"><Resources><r id="1" name="&lol9;" time_step="30"/></Resources></MediExchange>'
)

ATTACKS = {
    "external entity (file)": f'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><MediExchange ClientKey="{KEY}"><ResourceGroups><rg id="1" name="&x;"/></ResourceGroups></MediExchange>',
    "external entity (network)": f'<!DOCTYPE m [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><MediExchange ClientKey="{KEY}"><ResourceGroups><rg id="1" name="&x;"/></ResourceGroups></MediExchange>',
    "billion laughs": LAUGHS,
    "external DTD": f'<?xml version="1.0"?>\n<!DOCTYPE MediExchange SYSTEM "http://127.0.0.1:9/evil.dtd"><MediExchange ClientKey="{KEY}"/>',
    "parameter entities": f'<!DOCTYPE m [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><MediExchange ClientKey="{KEY}"/>',
    "deep nesting": f'<MediExchange ClientKey="{KEY}"><Resources>'
    + "<r>" * 5000
    + "</r>" * 5000
    + "</Resources></MediExchange>",
    "NUL byte": f'<MediExchange ClientKey="{KEY}">\x00</MediExchange>',
    "unknown encoding": f'<?xml version="1.0" encoding="klingon"?><MediExchange ClientKey="{KEY}"/>',
    "UTF-16": '<?xml version="1.0" encoding="UTF-16"?><MediExchange/>',
}


@pytest.mark.parametrize("name", ATTACKS)
def test_xml_attacks_are_refused_fast_and_change_nothing(clinic: Clinic, dynamodb: Any, name: str) -> None:
    # Given the sample imported
    call_import(SAMPLE.read_bytes())
    before = snapshot(dynamodb)
    body = ATTACKS[name].encode("utf-16" if name == "UTF-16" else "utf-8")
    # When the attack is posted
    status, result, _ = call_import(body)
    # Then it is a 400 malformed_xml, and nothing changed
    assert (status, result.find("Error").get("code")) == (400, "malformed_xml"), name
    assert snapshot(dynamodb) == before


def test_processing_instructions_and_xinclude_are_inert(clinic: Clinic) -> None:
    # Given a document with a stylesheet PI and an XInclude of a local file
    body = document(
        '<?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?>\n'
        '<Resources><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'
        '<r id="1" name="A" time_step="30"/></Resources>'
    )
    # When it is imported; Then the PI is dropped, the include is an unknown element, nothing is read from disk
    status, result, _ = call_import(body)
    assert status == 200
    assert [w.get("code") for w in result.find("Warnings")] == ["unknown_element"]
    assert "root:" not in (result.find("Warnings")[0].text or "")


def test_a_huge_attribute_value_is_an_invalid_record(clinic: Clinic) -> None:
    status, result, _ = call_import(
        document(f'<Resources>\n<r id="1" name="{"Я" * 2_000_000}" time_step="30"/>\n</Resources>')
    )
    error = result.find("Error")
    assert (status, error.get("code"), error.get("id"), error.text) == (
        400, "invalid_record", "1", "attribute name is longer than 1000 characters"
    )  # fmt: skip


def test_millions_of_tiny_elements_get_a_bounded_answer(clinic: Clinic) -> None:
    # Given 300,000 unknown elements and one real resource
    body = document("<Resources>" + "<x/>" * 300_000 + '<r id="1" name="A" time_step="30"/></Resources>')
    # When imported; Then it applies, and the answer lists 1,000 warnings and counts the rest
    status, result, _ = call_import(body)
    assert status == 200
    warnings = result.find("Warnings")
    assert len(warnings) == 1001
    assert (warnings[-1].get("code"), warnings[-1].text) == ("more_warnings", "and 299000 more not listed")


def test_many_bad_records_get_a_bounded_error_list(clinic: Clinic) -> None:
    body = document(
        "<Resources>" + "".join(f'<r id="{i}" name="" time_step="30"/>' for i in range(5000)) + "</Resources>"
    )
    status, result, _ = call_import(body)
    errors = result.findall("Error")
    assert status == 400 and len(errors) == 1001
    assert errors[-1].text == "and 4000 more not listed"


def count_inflated_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of every piece zlib inflates from here on."""
    sizes: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: Any) -> None:
            self.inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    return sizes


def test_a_zip_bomb_is_refused_without_inflating_it(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gzip body of 200 KB that inflates to 200 MiB, four times the 50 MiB limit
    bomb = gzip.compress(b"<" * (200 << 20), compresslevel=9)
    inflated = count_inflated_bytes(monkeypatch)
    # When it is posted
    status, result, _ = call_import(bomb, "application/xml", content_encoding="gzip")
    # Then it is 413 too_large, decided as soon as the limit is passed: never more than the limit inflated
    assert (status, result.find("Error").get("code")) == (413, "too_large")
    assert 0 < sum(inflated) <= store.settings.max_document_bytes + 1


def test_a_declared_length_over_the_limit_is_refused_before_reading(clinic: Clinic) -> None:
    status, result, _ = call_import(b"<tiny/>", "application/xml", content_length=str(51 * 1024 * 1024))
    assert (status, result.find("Error").get("code")) == (413, "too_large")


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"", "application/xml", "malformed_xml"),
        (b"xml=%ZZ%3CMediExchange", "application/x-www-form-urlencoded", "malformed_xml"),
        (b"<MediExchange ClientKey='k'>\xff\xfe</MediExchange>", "application/xml", "malformed_xml"),
        (
            '<?xml version="1.0" encoding="UTF-8"?><MediExchange ClientKey="к"/>'.encode("cp1251"),
            "text/xml",
            "malformed_xml",
        ),
        (
            b"--x\r\nContent-Disposition: form-data; name=other\r\n\r\nv\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            "bad_request",
        ),
        (b"<MediExchange/>", "application/xml", "missing_client_key"),
        (b"{}", "application/json", "unsupported_media_type"),
        (b"\x1f\x8b\x08garbage", "application/xml", "malformed_xml"),
    ],
    ids=[
        "empty",
        "broken percent-encoding",
        "invalid UTF-8",
        "declared UTF-8, windows-1251 bytes",
        "multipart without xml",
        "no key",
        "JSON",
        "gzip magic without the header",
    ],
)
def test_wrong_shapes_are_clear_4xx(clinic: Clinic, body: bytes, content_type: str, code: str) -> None:
    status, result, _ = call_import(body, content_type)
    assert 400 <= status < 500
    assert result.find("Error").get("code") == code


def test_a_corrupt_gzip_body_is_a_bad_request(clinic: Clinic) -> None:
    status, result, _ = call_import(b"\x1f\x8b\x08\x00corrupt", "application/xml", content_encoding="gzip")
    assert (status, result.find("Error").get("code")) == (400, "bad_request")


def test_an_unknown_content_encoding_is_415(clinic: Clinic) -> None:
    status, result, _ = call_import(SAMPLE.read_bytes(), "application/xml", content_encoding="br")
    assert (status, result.find("Error").get("code")) == (415, "unsupported_media_type")
