"""/services/schema.xsd: made from the reader's tables, it accepts what the reader accepts and refuses
what the reader rejects (names lower-cased, as the schema says)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from mediexchange.protocol.reading import read_document
from mediexchange.protocol.schema import lower_cased
from mediexchange.protocol.xmlparse import parse_document

from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, api_event, decoded

MOSCOW = ZoneInfo("Europe/Moscow")


def served_schema() -> etree.XMLSchema:
    from functions.mis_import.app import lambda_handler

    response = lambda_handler(api_event("GET", "/services/schema.xsd"), FakeContext())
    assert response["statusCode"] == 200
    return etree.XMLSchema(etree.fromstring(decoded(response)))


def doc(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<MediExchange ClientKey="{SAMPLE_KEY}">\n{body}\n</MediExchange>'.encode()


ACCEPTED = {
    "the seed sample": SAMPLE.read_bytes(),
    "names in any case": doc('<resourceGROUPS><RG ID="1" NAME="Терапия" POS=""/></resourceGROUPS>'),
    "resource without group": doc('<Resources><r id="1" name="Баева" time_step="30" group_id=""/></Resources>'),
    "aliases and seconds": doc('<Schedules><s id="1" date="01.07.2010" resource_id="1"><time_rules w_startTime="08:00:00" w_endTime="17:00:00" b_startTime="12:00" b_endTime="13:00"/></s></Schedules>'),
    "a date with a midnight time": doc('<Schedules><s id="1" date="01.07.2010 0:00:00" resource_id="1"><time_rules w_start="9:00" w_end="24:00"/></s></Schedules>'),
    "an overnight window, no break": doc('<Schedules><s id="1" date="01.07.2010" resource_id="1"><time_rules w_start="20:00" w_end="08:00" b_start="0:00" b_end="0:00"/></s></Schedules>'),
    "days off": doc('<Schedules><s id="1" date="01.07.2010" resource_id="1"/><s id="2" date="02.07.2010" resource_id="1"><time_rules/></s></Schedules>'),
    "a zero-minute appointment": doc('<Appointments SyncMode="FULL"><a tablename="SchedEvent" id="1" resource_id="1" ReceptionDateTime="01.07.2010 9:00" Duration="0"/></Appointments>'),
    "an order change with echoed fields": doc('<Orders><o ID="1" Status="1" LastChangedOn="01.07.2010 10:00:00" Name1="Иванов" Type="3"/></Orders>'),
    "an order change without LastChangedOn": doc('<Orders><o id="1" status="3"/></Orders>'),
    "an unknown attribute": doc('<ResourceGroups><rg id="1" name="A" colour="red"/></ResourceGroups>'),
}  # fmt: skip

REJECTED = {
    "an id that is not a number": doc('<ResourceGroups><rg id="x1" name="A"/></ResourceGroups>'),
    "non-ASCII digits": doc('<ResourceGroups><rg id="١٢" name="A"/></ResourceGroups>'),
    "a missing name": doc('<ResourceGroups><rg id="1"/></ResourceGroups>'),
    "a blank name": doc('<ResourceGroups><rg id="1" name="  "/></ResourceGroups>'),
    "time_step 0": doc('<Resources><r id="1" name="A" time_step="0"/></Resources>'),
    "an int over 64 bits": doc('<Resources><r id="1" name="A" time_step="30" group_id="9999999999999999999"/></Resources>'),
    "an ISO date": doc('<Schedules><s id="1" date="2010-07-01" resource_id="1"/></Schedules>'),
    "a date with an afternoon time": doc('<Schedules><s id="1" date="01.07.2010 14:00:00" resource_id="1"/></Schedules>'),
    "a time with a dot": doc('<Schedules><s id="1" date="01.07.2010" resource_id="1"><time_rules w_start="9.00" w_end="18:00"/></s></Schedules>'),
    "Duration over a day": doc('<Appointments><a tablename="T" id="1" resource_id="1" ReceptionDateTime="01.07.2010 9:00" Duration="1441"/></Appointments>'),
    "a tablename over 255": doc(f'<Appointments><a tablename="{"T" * 256}" id="1" resource_id="1" ReceptionDateTime="01.07.2010 9:00" Duration="30"/></Appointments>'),
    "status 2": doc('<Orders><o id="1" status="2" LastChangedOn="01.07.2010 10:00:00"/></Orders>'),
    "text over 1,000": doc(f'<ResourceGroups><rg id="1" name="{"Я" * 1001}"/></ResourceGroups>'),
}  # fmt: skip


@pytest.mark.parametrize("name", ACCEPTED)
def test_what_the_reader_accepts_the_schema_accepts(name: str) -> None:
    # Given a document the reader takes without an error
    root = parse_document(ACCEPTED[name])
    assert read_document(root, MOSCOW).errors == ()
    # Then it is valid against the served schema, names lower-cased
    schema = served_schema()
    assert schema.validate(lower_cased(root)), schema.error_log


@pytest.mark.parametrize("name", REJECTED)
def test_what_the_reader_rejects_the_schema_refuses(name: str) -> None:
    # Given a document with one record the reader rejects
    root = parse_document(REJECTED[name])
    [error] = read_document(root, MOSCOW).errors
    assert error.code == "invalid_record"
    # Then the served schema refuses it too
    assert not served_schema().validate(lower_cased(root))
