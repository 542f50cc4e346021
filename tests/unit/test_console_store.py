"""What the console reads and keeps in the store: sessions and one-time links, the clinics' overview,
their keys, the orders waiting for the MIS and the orders of some days; on moto, through the handlers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
import types
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from mediexchange.errors import AdminError
from mediexchange.records import Clinic, Lane, Order
from mediexchange.store import WAITING_COUNTED, ClinicOverview, KeyInfo, Session, Store, Ticket
from mediexchange.store import sessions as sessions_module

from functions.import_worker.app import lambda_handler as worker
from tests.conftest import SAMPLE, SAMPLE_KEY
from tests.unit.conftest import FakeContext, an_order, call_import, document

MOSCOW = ZoneInfo("Europe/Moscow")
T0 = 1_900_000_000  # when the orders below were booked (17.03.2030 20:46:40 in Moscow)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sessions' clock, set by the test: [now]."""
    now = [float(T0)]
    monkeypatch.setattr(sessions_module, "time", types.SimpleNamespace(time=lambda: now[0]))
    return now


def session_items(dynamodb: Any, store: Store) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName=store.settings.sessions_table)["Items"]
    return items


# -- sessions ----------------------------------------------------------------------------------------


def test_a_session_is_found_by_its_token_until_it_expires(store: Store, clock: list[float]) -> None:
    # Given an operator's session of 8 hours
    token, session = store.sessions.create("operator", "alice", None, 8 * 3600)
    # Then its token finds it, with a csrf value of its own, until the second it expires
    assert session == Session("operator", "alice", None, session.csrf, T0 + 8 * 3600)
    assert len(session.csrf) >= 16
    assert store.sessions.find(token) == session
    clock[0] = T0 + 8 * 3600 - 1
    assert store.sessions.find(token) == session
    # When it expires (DynamoDB's TTL has not deleted it yet); Then it is not found
    clock[0] = T0 + 8 * 3600
    assert store.sessions.find(token) is None
    assert store.sessions.find("not-a-token") is None


def test_an_integrator_session_names_its_clinic_and_ends_on_sign_out(store: Store, clock: list[float]) -> None:
    # Given an integrator's session and an operator's
    token, session = store.sessions.create("integrator", "clinic:c1", "c1", 3600)
    other, _ = store.sessions.create("operator", "bob", None, 3600)
    assert store.sessions.find(token) == Session("integrator", "clinic:c1", "c1", session.csrf, T0 + 3600)
    # When the integrator signs out (twice: the second is harmless)
    store.sessions.end(token)
    store.sessions.end(token)
    # Then that session is gone and the other stays
    assert store.sessions.find(token) is None
    assert store.sessions.find(other) is not None


def test_tokens_are_stored_only_as_their_sha256(store: Store, dynamodb: Any, clock: list[float]) -> None:
    # Given a session and a one-time link
    token, session = store.sessions.create("operator", "alice", None, 60)
    link = store.sessions.create_link(600)
    # Then the table holds their hashes, and neither token anywhere
    items = session_items(dynamodb, store)
    assert sorted(item["token_hash"]["S"] for item in items) == sorted([sha256(token), sha256(link)])
    assert all(token not in repr(item) and link not in repr(item) for item in items)
    by_hash = {item["token_hash"]["S"]: item for item in items}
    assert by_hash[sha256(token)] == {
        "token_hash": {"S": sha256(token)},
        "kind": {"S": "session"},
        "role": {"S": "operator"},
        "who": {"S": "alice"},
        "csrf": {"S": session.csrf},
        "created_at": {"N": str(T0)},
        "expires_at": {"N": str(T0 + 60)},
    }
    assert by_hash[sha256(link)] == {
        "token_hash": {"S": sha256(link)},
        "kind": {"S": "sign_in_link"},
        "created_at": {"N": str(T0)},
        "expires_at": {"N": str(T0 + 600)},
    }
    # And the tokens are 32 random bytes, URL-safe
    assert len(token) == len(link) == 43 and token != link


def test_a_one_time_link_is_redeemed_once_and_is_no_session(store: Store, dynamodb: Any, clock: list[float]) -> None:
    # Given a one-time link of 10 minutes
    link = store.sessions.create_link(600)
    # Then it is no session, and signing out with it leaves it alone
    assert store.sessions.find(link) is None
    store.sessions.end(link)
    # When it is redeemed twice; Then only the first succeeds, and nothing is left of it
    assert [store.sessions.redeem_link(link), store.sessions.redeem_link(link)] == [True, False]
    assert session_items(dynamodb, store) == []


def test_an_expired_link_a_session_token_and_an_unknown_token_redeem_nothing(store: Store, clock: list[float]) -> None:
    # Given a link of 10 minutes and a session
    link = store.sessions.create_link(600)
    token, session = store.sessions.create("operator", "alice", None, 3600)
    # When the link's 10 minutes are over; Then it redeems nothing
    clock[0] = T0 + 600
    assert store.sessions.redeem_link(link) is False
    # And neither does a session's token (which stays a session), nor a token never issued
    assert store.sessions.redeem_link(token) is False
    assert store.sessions.find(token) == session
    assert store.sessions.redeem_link("never-issued") is False


# -- the clinics' overview -----------------------------------------------------------------------------

GROUPS_AND_RESOURCES = (
    '<ResourceGroups><rg id="1" name="Терапия"/></ResourceGroups>\n'
    '<Resources><r id="393" name="Баева" group_id="1" time_step="30"/></Resources>'
)


REFUSED = document(f"{GROUPS_AND_RESOURCES}\n<Resources/>")  # a section twice: the whole document is refused


def test_the_overview_notes_the_last_import_of_each_section_and_lane(store: Store, clinic: Clinic) -> None:
    # Given a clinic that never imported
    nothing_yet = ClinicOverview(clinic, 1, {Lane.SYNC: 0, Lane.ORDERS: 0}, {}, None)
    assert store.clinics.overview_of(clinic.clinic_id) == nothing_yet
    assert store.clinics.overview() == [nothing_yet]
    # When it imports groups and resources (ok), then orders, one of them unreadable (partial, orders lane)
    started = int(time.time())
    status, synced, _ = call_import(document(GROUPS_AND_RESOURCES))
    assert (status, synced.get("status")) == (200, "ok")
    status, ordered, _ = call_import(document('<Orders><o id="x" status="1"/><o id="7" status="1"/></Orders>'))
    assert (status, ordered.get("status")) == (200, "partial")
    # And then a document with Resources twice (error)
    status, refused, _ = call_import(REFUSED)
    assert (status, refused.get("status")) == (400, "error")
    ended = int(time.time())
    # Then each import's entry says how it went, what it carried and its size, newest first
    entries = store.imports.recent(clinic.clinic_id)
    assert [(e.outcome, e.errors, e.warnings, e.sections, e.lane) for e in entries] == [
        ("error", 1, 0, ("ResourceGroups", "Resources"), Lane.SYNC),
        ("partial", 1, 1, ("Orders",), Lane.ORDERS),  # the warning: order 7 came without LastChangedOn
        ("ok", 0, 0, ("ResourceGroups", "Resources"), Lane.SYNC),
    ]
    error, partial, ok = entries
    assert (ok.import_id, partial.import_id) == (synced.get("import_id"), ordered.get("import_id"))
    assert error.size == len(REFUSED)
    assert store.imports.recent(clinic.clinic_id, limit=1) == [error]
    # And the overview shows the last import of each section: the refused one for groups and resources
    overview = store.clinics.overview_of(clinic.clinic_id)
    assert overview is not None and overview.last_import is not None
    assert {name: (s.import_id, s.outcome) for name, s in overview.last.items()} == {
        "ResourceGroups": (error.import_id, "error"),
        "Resources": (error.import_id, "error"),
        "Orders": (partial.import_id, "partial"),
    }
    assert (overview.last_import.import_id, overview.last_import.outcome) == (error.import_id, "error")
    assert overview.last["Resources"] == overview.last_import
    assert started <= overview.last["Orders"].at <= overview.last_import.at <= ended
    assert (overview.keys, overview.queued) == (1, {Lane.SYNC: 0, Lane.ORDERS: 0})
    assert store.clinics.overview() == [overview]


def test_an_import_the_worker_finishes_is_noted_as_well(store: Store, clinic: Clinic, monkeypatch: Any) -> None:
    # Given the sample with one resource unreadable, too big for the request (202)
    monkeypatch.setattr(store, "settings", dataclasses.replace(store.settings, import_time_budget=0.0))
    text = SAMPLE.read_text(encoding="utf-8")
    broken = text.replace('<r id="391" name="Баранов" time_step="30"', '<r id="391" name="Баранов" time_step="0"')
    status, accepted, _ = call_import(broken.encode())
    assert status == 202
    overview = store.clinics.overview_of(clinic.clinic_id)
    assert overview is not None and (overview.queued[Lane.SYNC], overview.last) == (1, {})
    # When the worker applies it
    queue = boto3.client("sqs")
    [message] = queue.receive_message(QueueUrl=store.settings.import_queue_url)["Messages"]
    worker({"Records": [{"body": message["Body"], "messageId": message["MessageId"]}]}, FakeContext())
    # Then its entry and the clinic note it as partial, for every section the sample carries
    [entry] = store.imports.recent(clinic.clinic_id)
    every = ("ResourceGroups", "Resources", "Schedules", "Appointments", "Orders")
    assert (entry.import_id, entry.outcome, entry.errors, entry.sections) == (
        accepted.get("import_id"), "partial", 1, every
    )  # fmt: skip
    overview = store.clinics.overview_of(clinic.clinic_id)
    assert overview is not None and overview.queued[Lane.SYNC] == 0
    assert {name: (s.import_id, s.outcome) for name, s in overview.last.items()} == {
        name: (entry.import_id, "partial") for name in every
    }


def test_the_overview_counts_the_imports_waiting_in_each_lane(store: Store, clinic: Clinic) -> None:
    # Given two schedule imports and one orders import received and not yet applied
    for lane, import_id in ((Lane.SYNC, "a"), (Lane.SYNC, "b"), (Lane.ORDERS, "c")):
        store.imports.receive(Ticket(clinic.clinic_id, lane, import_id), b"<MediExchange/>", None, time.time())
    # Then the overview counts them per lane
    overview = store.clinics.overview_of(clinic.clinic_id)
    assert overview is not None and overview.queued == {Lane.SYNC: 2, Lane.ORDERS: 1}
    assert store.clinics.overview_of("no-such-clinic") is None


def test_the_overview_lists_every_clinic_by_name(store: Store, clinic: Clinic) -> None:
    # Given a second clinic, named before the first alphabetically
    other = store.clinics.create("Another clinic", "Asia/Yekaterinburg", "OTHER-KEY")
    # Then the overview lists both, by name
    assert [o.clinic for o in store.clinics.overview()] == [other, clinic]


# -- keys ------------------------------------------------------------------------------------------------


def test_keys_are_named_by_their_hash_and_the_last_one_cannot_be_revoked(store: Store, clinic: Clinic) -> None:
    # Given the clinic's one key
    first = KeyInfo(sha256(SAMPLE_KEY)[:12], store.clinics.keys(clinic.clinic_id)[0].created_at)
    assert store.clinics.keys(clinic.clinic_id) == [first]
    # Then it cannot be revoked: that would lock the MIS out
    with pytest.raises(AdminError, match="last live key"):
        store.clinics.revoke_key_id(clinic.clinic_id, first.key_id)
    assert store.clinics.for_key(SAMPLE_KEY) == clinic
    # When a second key is issued and the first revoked by its id
    second_key = store.clinics.rotate_key(clinic.clinic_id)
    [second] = [k for k in store.clinics.keys(clinic.clinic_id) if k.key_id == sha256(second_key)[:12]]
    assert store.clinics.keys(clinic.clinic_id) == sorted([first, second], key=lambda k: (k.created_at, k.key_id))
    store.clinics.revoke_key_id(clinic.clinic_id, first.key_id)
    # Then only the second key is listed and works
    assert store.clinics.keys(clinic.clinic_id) == [second]
    assert (store.clinics.for_key(SAMPLE_KEY), store.clinics.for_key(second_key)) == (None, clinic)
    assert first.created_at <= second.created_at
    # And ids that name no live key are refused
    for unknown in (first.key_id, second.key_id[:6], "0" * 12):
        with pytest.raises(AdminError, match="no live key"):
            store.clinics.revoke_key_id(clinic.clinic_id, unknown)
    with pytest.raises(AdminError, match="no clinic"):
        store.clinics.keys("no-such-clinic")


# -- orders waiting for the MIS, orders of some days ----------------------------------------------------


def book(store: Store, clinic: Clinic, last_changed: int, reception: dt.datetime) -> Order:
    [order_id] = store.clinics.reserve_order_ids(clinic.clinic_id)
    order = an_order(order_id, last_changed, reception=reception)
    store.orders.book(clinic.clinic_id, order, MOSCOW)
    return order


def changes(*rows: str) -> bytes:
    return document("<Orders>" + "".join(rows) + "</Orders>")


def stamp(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, MOSCOW).strftime("%d.%m.%Y %H:%M:%S")


def test_orders_wait_from_their_booking_until_the_mis_decides(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given three orders booked a minute apart
    orders = [book(store, clinic, T0 + 60 * n, dt.datetime(2030, 3, 20, 10 + n)) for n in range(3)]
    # Then all three wait, the oldest since its booking
    assert store.orders.waiting(clinic.clinic_id) == (3, T0)
    # When the MIS accepts the oldest and moves the second to another hour, still undecided
    first, second, third = orders
    status, result, _ = call_import(
        changes(
            f'<o id="{first.id}" status="1" LastChangedOn="{stamp(T0)}"/>',
            f'<o id="{second.id}" status="0" reception_datetime="20.03.2030 15:00:00" LastChangedOn="{stamp(T0 + 60)}"/>',
        )
    )
    assert (status, result.find("Orders").get("updated")) == (200, "2")
    # Then two wait, the oldest since the second's booking (a move is no decision)
    assert store.orders.waiting(clinic.clinic_id) == (2, T0 + 60)
    key = {"clinic_id": {"S": clinic.clinic_id}, "order_id": {"N": str(first.id)}}
    item = dynamodb.get_item(TableName=store.settings.orders_table, Key=key)["Item"]
    assert "waiting_since" not in item
    # When it rejects the other two; Then none waits
    call_import(changes(*(f'<o id="{o.id}" status="3" LastChangedOn="{stamp(T0 + 120)}"/>' for o in (second, third))))
    assert store.orders.waiting(clinic.clinic_id) == (0, None)
    # And another clinic's orders never counted
    assert store.orders.waiting("other-clinic") == (0, None)


def test_an_order_the_mis_makes_received_again_waits_anew(store: Store, clinic: Clinic) -> None:
    # Given an order booked an hour ago and accepted by the MIS
    booked_at = int(time.time()) - 3600
    order = book(store, clinic, booked_at, dt.datetime(2030, 3, 20, 10))
    call_import(changes(f'<o id="{order.id}" status="1" LastChangedOn="{stamp(booked_at)}"/>'))
    assert store.orders.waiting(clinic.clinic_id) == (0, None)
    # When the MIS sets it back to received
    before = int(time.time())
    call_import(changes(f'<o id="{order.id}" status="0" LastChangedOn="{stamp(booked_at)}"/>'))
    # Then it waits again, from that change
    changed = store.orders.get(clinic.clinic_id, order.id)
    assert changed is not None and changed.last_changed >= before
    assert store.orders.waiting(clinic.clinic_id) == (1, changed.last_changed)


def test_waiting_orders_are_counted_to_one_past_the_limit_and_the_oldest_is_still_the_oldest(
    store: Store, clinic: Clinic
) -> None:
    # Given more orders waiting than are counted one by one (a clinic whose MIS stopped deciding)
    many = WAITING_COUNTED + 5
    ids = store.clinics.reserve_order_ids(clinic.clinic_id, many)
    orders = [an_order(order_id, T0 + order_id) for order_id in ids]
    store.orders.load(clinic.clinic_id, orders, MOSCOW)
    # When they are counted
    count, oldest = store.orders.waiting(clinic.clinic_id)
    # Then the count stops one past the limit, and the oldest is the first booked
    assert (count, oldest) == (WAITING_COUNTED + 1, T0 + ids[0])


def test_the_orders_of_some_days_are_those_whose_visit_starts_on_them(store: Store, clinic: Clinic) -> None:
    # Given orders on the 19th (late evening), the 20th (two), the 21st (midnight) and the 22nd
    receptions = [
        dt.datetime(2030, 3, 19, 23, 30),
        dt.datetime(2030, 3, 20, 12, 0),
        dt.datetime(2030, 3, 20, 9, 0),
        dt.datetime(2030, 3, 21, 0, 0),
        dt.datetime(2030, 3, 22, 8, 0),
    ]
    orders = [book(store, clinic, T0, reception) for reception in receptions]
    # Then the 20th..21st are the three between, by start
    found = store.orders.on_days(clinic.clinic_id, dt.date(2030, 3, 20), dt.date(2030, 3, 21))
    assert found == [orders[2], orders[1], orders[3]]
    # And one day alone, a day without orders, and another clinic find theirs only
    assert store.orders.on_days(clinic.clinic_id, dt.date(2030, 3, 22), dt.date(2030, 3, 22)) == [orders[4]]
    assert store.orders.on_days(clinic.clinic_id, dt.date(2030, 3, 23), dt.date(2030, 3, 30)) == []
    assert store.orders.on_days("other-clinic", dt.date(2030, 3, 1), dt.date(2030, 3, 31)) == []
