"""Sync planning and order-change decisions: pure, no store, no handler, no moto.

SPEC §3 "Semantics of one import" (replace vs full/diff sync, cheap when nothing changed, warnings for
unknown references) and "Orders" (unchanged, conflict, unknown, every applied change stamps the order).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any

import pytest
from mediexchange.records import (
    Appointment,
    Document,
    Issue,
    Order,
    OrderChange,
    OrderStatus,
    Resource,
    Schedule,
    Window,
)
from mediexchange.sync import (
    OrderOutcome,
    Plan,
    canonical_json,
    decide_order_change,
    digest_of,
    holds_slot,
    plan_sync,
    reference_warnings,
)

# The order's LastChangedOn as stored (unix seconds) and "now", an hour later.
STAMP = 1_900_000_000
NOW = STAMP + 3600
RECEPTION = dt.datetime(2030, 3, 5, 10, 0)
EXPORTED = dt.datetime(2030, 3, 1, 9, 0)  # the LastChangedOn text the MIS quotes; the stamp is passed apart


def stored_order(**overrides: Any) -> Order:
    """An order the portal created at STAMP and stored: received, 30 minutes at 10:00 with MIS resource 393."""
    values: dict[str, Any] = {
        "id": 1001,
        "status": OrderStatus.RECEIVED,
        "order_date": dt.date(2030, 3, 1),
        "resource_id": 7,
        "mw_resource_id": 393,
        "resource_name": "Терапевт Петров",
        "reception": RECEPTION,
        "duration": 30,
        "last_changed": STAMP,
        "portal_changed": STAMP,  # booked on the portal then
        "user_id": "u-17",
        "user_name": "ivanov",
        "name1": "Иванов",
        "name2": "Иван",
        "name3": "Иванович",
        "phone": "+7 900 000-00-00",
        "comment": "первичный приём",
    }
    values.update(overrides)
    return Order(**values)


def order_change(**overrides: Any) -> OrderChange:
    """An MIS change of order 1001 that asks for exactly what `stored_order()` holds (status only)."""
    values: dict[str, Any] = {"id": 1001, "status": OrderStatus.RECEIVED, "last_changed": EXPORTED, "line": 40}
    values.update(overrides)
    return OrderChange(**values)


# ---------------------------------------------------------------------------------------------------------------
# plan_sync


@pytest.mark.parametrize(
    ("desired", "stored", "replace_all", "writes", "deletes"),
    [
        pytest.param({"1": "h1"}, {}, True, ("1",), (), id="new-replace"),
        pytest.param({"1": "h1"}, {}, False, ("1",), (), id="new-diff"),
        pytest.param({"1": "h1-new"}, {"1": "h1"}, True, ("1",), (), id="changed-replace"),
        pytest.param({"1": "h1-new"}, {"1": "h1"}, False, ("1",), (), id="changed-diff"),
        pytest.param({"1": "h1"}, {"1": "h1"}, True, (), (), id="unchanged-replace"),
        pytest.param({"1": "h1"}, {"1": "h1"}, False, (), (), id="unchanged-diff"),
        pytest.param({"1": "h1"}, {"1": "h1", "2": "h2"}, True, (), ("2",), id="not-sent-replace-deletes"),
        pytest.param({"1": "h1"}, {"1": "h1", "2": "h2"}, False, (), (), id="not-sent-diff-keeps"),
        pytest.param({}, {"1": "h1", "2": "h2"}, True, (), ("1", "2"), id="empty-replace-deletes-all"),
        pytest.param({}, {"1": "h1", "2": "h2"}, False, (), (), id="empty-diff-changes-nothing"),
        pytest.param({}, {}, True, (), (), id="empty-over-empty"),
        pytest.param({"01": "h1"}, {"1": "h1"}, True, ("01",), ("1",), id="keys-compare-as-exact-text"),
        pytest.param(
            {"a#1": "same", "a#2": "new", "a#4": "fresh"},
            {"a#1": "same", "a#2": "old", "a#3": "gone"},
            True,
            ("a#2", "a#4"),
            ("a#3",),
            id="mixed-replace",
        ),
        pytest.param(
            {"a#1": "same", "a#2": "new", "a#4": "fresh"},
            {"a#1": "same", "a#2": "old", "a#3": "gone"},
            False,
            ("a#2", "a#4"),
            (),
            id="mixed-diff",
        ),
    ],
)
def test_plan_writes_what_is_new_or_changed_and_deletes_only_on_replace(
    desired: dict[str, str],
    stored: dict[str, str],
    replace_all: bool,
    writes: tuple[str, ...],
    deletes: tuple[str, ...],
) -> None:
    # Given what the document asks for and what the store holds ({key: content hash})
    # When the import is planned
    plan = plan_sync(desired, stored, replace_all)
    # Then exactly the new and changed keys are written, and not-sent keys go only when replacing
    assert plan == Plan(writes=writes, deletes=deletes)


def test_writes_follow_the_order_of_the_document_not_the_store_nor_the_alphabet() -> None:
    # Given a document whose keys are neither sorted nor in the store's order
    desired = {"30": "c", "10": "a", "20": "b", "5": "e"}
    stored = {"5": "old", "20": "old", "10": "old", "99": "x", "42": "y"}
    # When it replaces the stored set
    plan = plan_sync(desired, stored, replace_all=True)
    # Then writes come in the document's order and deletes in the store's order
    assert plan.writes == ("30", "10", "20", "5")
    assert plan.deletes == ("99", "42")


def test_re_sending_the_same_set_writes_and_deletes_nothing() -> None:
    # Given the store already holds exactly what the document asks for (cheap when nothing changed)
    hashes = {str(i): digest_of(canonical_json({"id": i, "name": f"r{i}"})) for i in range(50)}
    # When it is sent again, either as a replace or as a diff
    # Then nothing is written or deleted
    assert plan_sync(hashes, dict(hashes), replace_all=True) == Plan(writes=(), deletes=())
    assert plan_sync(hashes, dict(hashes), replace_all=False) == Plan(writes=(), deletes=())


def test_a_plan_is_immutable_tuples() -> None:
    # Given / When a plan
    plan = plan_sync({"1": "h"}, {"2": "h"}, replace_all=True)
    # Then its keys are tuples and the plan cannot be changed
    assert isinstance(plan.writes, tuple)
    assert isinstance(plan.deletes, tuple)
    with pytest.raises(AttributeError):
        plan.writes = ()


# ---------------------------------------------------------------------------------------------------------------
# canonical_json and digest_of


def test_canonical_json_sorts_keys_at_every_level_and_has_no_spaces() -> None:
    # Given the same content built in two key orders
    one = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": True}
    other = {"c": True, "a": {"x": None, "y": [1, 2]}, "b": 1}
    # When each is made canonical
    # Then both give the same compact, sorted text
    expected = '{"a":{"x":null,"y":[1,2]},"b":1,"c":true}'
    assert canonical_json(one) == expected
    assert canonical_json(other) == expected


def test_canonical_json_keeps_cyrillic_as_it_is() -> None:
    # Given a record with Cyrillic text and an escaped character
    content = {"name": "Терапевт Петров", "title": 'приём "первичный"'}
    # When made canonical
    text = canonical_json(content)
    # Then the letters are not \u-escaped and the text reads back to the same content
    assert text == '{"name":"Терапевт Петров","title":"приём \\"первичный\\""}'
    assert "\\u" not in text
    assert json.loads(text) == content


def test_canonical_json_is_stable_and_writes_dates_as_their_text() -> None:
    # Given content holding dates and a datetime (not JSON types)
    content = {"date": dt.date(2030, 3, 5), "start": dt.datetime(2030, 3, 5, 9, 30), "windows": ((540, 600),)}
    # When made canonical twice
    first, second = canonical_json(content), canonical_json(dict(content))
    # Then the text is the same each time; dates are str(), tuples are lists
    assert first == second
    assert first == '{"date":"2030-03-05","start":"2030-03-05 09:30:00","windows":[[540,600]]}'


def test_canonical_json_writes_an_order_status_as_its_number() -> None:
    assert canonical_json({"status": OrderStatus.REJECTED}) == '{"status":3}'


def test_digest_is_a_32_hex_digit_prefix_of_sha256_of_the_utf8_text() -> None:
    # Given canonical text with Cyrillic in it
    text = canonical_json({"name": "Иванов"})
    # When digested
    digest = digest_of(text)
    # Then it is the first 32 hex digits of the SHA-256 of its UTF-8 bytes
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    assert len(digest) == 32
    assert set(digest) <= set("0123456789abcdef")
    assert digest_of("") == "e3b0c44298fc1c149afbf4c8996fb924"


def test_equal_content_in_any_key_order_has_an_equal_digest() -> None:
    a = digest_of(canonical_json({"id": 393, "name": "Петров", "time_step": 15, "group_id": None}))
    b = digest_of(canonical_json({"group_id": None, "time_step": 15, "name": "Петров", "id": 393}))
    assert a == b


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param({"name": "Петров"}, {"name": "Петрова"}, id="value"),
        pytest.param({"id": 1}, {"id": "1"}, id="number-vs-text"),
        pytest.param({"pos": 0}, {"pos": None}, id="zero-vs-null"),
        pytest.param({"group_id": None}, {}, id="null-vs-absent"),
        pytest.param({"name": "a"}, {"title": "a"}, id="key"),
        pytest.param({"title": ""}, {"title": " "}, id="whitespace"),
        pytest.param({"windows": [1, 2]}, {"windows": [2, 1]}, id="list-order"),
        pytest.param({"flag": True}, {"flag": 1}, id="true-vs-one"),
    ],
)
def test_different_content_has_a_different_digest(one: dict[str, Any], other: dict[str, Any]) -> None:
    # Given two records that differ in one respect
    # When each is made canonical and digested
    # Then both the texts and the digests differ
    assert canonical_json(one) != canonical_json(other)
    assert digest_of(canonical_json(one)) != digest_of(canonical_json(other))


def test_a_date_and_its_text_are_the_same_content() -> None:
    # Pinned: `default=str` makes a date and the string of that date indistinguishable.
    assert canonical_json({"d": dt.date(2030, 3, 5)}) == canonical_json({"d": "2030-03-05"})


# ---------------------------------------------------------------------------------------------------------------
# decide_order_change


@pytest.mark.parametrize("stamp", [0, STAMP - 1, STAMP, NOW])
def test_a_change_of_an_unknown_order_is_unknown_and_creates_nothing(stamp: int) -> None:
    # Given no stored order with the change's id
    # When the MIS changes it
    outcome, after = decide_order_change(None, order_change(status=OrderStatus.ACCEPTED), (stamp,), NOW)
    # Then it is reported unknown and no order results
    assert outcome is OrderOutcome.UNKNOWN
    assert after is None


@pytest.mark.parametrize("stamp", [0, STAMP - 86_400, STAMP - 1, STAMP, STAMP + 1, NOW + 86_400])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(order_change(), id="status-only"),
        pytest.param(
            order_change(reception=RECEPTION, duration=30, mw_resource_id=393, line=99), id="every-field-echoed"
        ),
        pytest.param(order_change(duration=30), id="duration-echoed"),
    ],
)
def test_a_change_asking_for_what_is_stored_is_unchanged_whatever_its_stamp(change: OrderChange, stamp: int) -> None:
    # Given a stored order
    order = stored_order()
    # When the MIS asks for exactly what is stored, with a stamp older, equal or newer
    outcome, after = decide_order_change(order, change, (stamp,), NOW)
    # Then nothing changes: not even the order's LastChangedOn
    assert outcome is OrderOutcome.UNCHANGED
    assert after is order
    assert after.last_changed == STAMP


@pytest.mark.parametrize(
    ("before", "wanted"),
    [
        (OrderStatus.RECEIVED, OrderStatus.ACCEPTED),
        (OrderStatus.RECEIVED, OrderStatus.REJECTED),
        (OrderStatus.ACCEPTED, OrderStatus.REJECTED),
        (OrderStatus.ACCEPTED, OrderStatus.RECEIVED),
        (OrderStatus.REJECTED, OrderStatus.ACCEPTED),
        (OrderStatus.REJECTED, OrderStatus.RECEIVED),
    ],
)
def test_a_status_change_applies_and_stamps_the_order_with_now(before: OrderStatus, wanted: OrderStatus) -> None:
    # Given a stored order in one status
    order = stored_order(status=before)
    # When the MIS asks for another, quoting the stored LastChangedOn
    outcome, after = decide_order_change(order, order_change(status=wanted), (STAMP,), NOW)
    # Then it applies: only the status and LastChangedOn (= now) change
    assert outcome is OrderOutcome.UPDATED
    assert after == replace(order, status=wanted, last_changed=NOW)


@pytest.mark.parametrize("stamp", [STAMP, STAMP + 1, NOW, NOW + 86_400])
def test_a_stamp_equal_to_or_newer_than_the_stored_one_applies(stamp: int) -> None:
    # Given a stored order last changed at STAMP
    order = stored_order()
    # When the MIS accepts it quoting STAMP or later
    outcome, after = decide_order_change(order, order_change(status=OrderStatus.ACCEPTED), (stamp,), NOW)
    # Then it applies
    assert outcome is OrderOutcome.UPDATED
    assert after == replace(order, status=OrderStatus.ACCEPTED, last_changed=NOW)


@pytest.mark.parametrize("stamp", [0, STAMP - 3600, STAMP - 1])
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(order_change(status=OrderStatus.ACCEPTED), id="status"),
        pytest.param(order_change(status=OrderStatus.REJECTED), id="reject"),
        pytest.param(order_change(reception=RECEPTION + dt.timedelta(hours=1)), id="move-reception"),
        pytest.param(order_change(duration=45), id="move-duration"),
        pytest.param(order_change(mw_resource_id=394), id="move-resource"),
    ],
)
def test_a_real_change_with_an_older_stamp_is_a_conflict_and_not_applied(change: OrderChange, stamp: int) -> None:
    # Given an order changed on the portal side at STAMP
    order = stored_order()
    # When the MIS changes it quoting an earlier LastChangedOn (it decided on stale facts)
    outcome, after = decide_order_change(order, change, (stamp,), NOW)
    # Then it is a conflict and the order stays as stored
    assert outcome is OrderOutcome.CONFLICT
    assert after is order


def test_the_stamp_compared_is_the_one_passed_not_the_changes_own_datetime() -> None:
    # Given a change whose LastChangedOn text is far in the future, but whose stamp (unix seconds) is older
    change = order_change(status=OrderStatus.ACCEPTED, last_changed=dt.datetime(2099, 1, 1))
    # When decided
    outcome, _ = decide_order_change(stored_order(), change, (STAMP - 1,), NOW)
    # Then the passed stamp decides
    assert outcome is OrderOutcome.CONFLICT


MOVED = RECEPTION + dt.timedelta(days=1, hours=2)


@pytest.mark.parametrize(
    ("moves", "expected"),
    [
        pytest.param({"reception": MOVED}, {"reception": MOVED}, id="reception"),
        pytest.param({"duration": 45}, {"duration": 45}, id="duration"),
        pytest.param({"duration": 0}, {"duration": 0}, id="duration-zero-is-a-value"),
        pytest.param({"mw_resource_id": 394}, {"mw_resource_id": 394}, id="mw-resource"),
        pytest.param({"mw_resource_id": 0}, {"mw_resource_id": 0}, id="mw-resource-zero-is-a-value"),
        pytest.param({"mw_resource_id": -5}, {"mw_resource_id": -5}, id="mw-resource-negative"),
        pytest.param(
            {"reception": MOVED, "duration": 60, "mw_resource_id": 394},
            {"reception": MOVED, "duration": 60, "mw_resource_id": 394},
            id="all-three",
        ),
        pytest.param(
            {"reception": MOVED, "duration": None, "mw_resource_id": None},
            {"reception": MOVED},
            id="none-keeps-the-others",
        ),
    ],
)
def test_a_move_applies_the_fields_sent_and_keeps_the_rest(moves: dict[str, Any], expected: dict[str, Any]) -> None:
    # Given a stored order
    order = stored_order()
    # When the MIS moves it, keeping its status
    outcome, after = decide_order_change(order, order_change(**moves), (STAMP,), NOW)
    # Then the moved fields change, every other field is kept, LastChangedOn becomes now
    assert outcome is OrderOutcome.UPDATED
    assert after == replace(order, **expected, last_changed=NOW)


def test_a_move_to_another_mis_resource_leaves_the_portal_resource_to_the_caller() -> None:
    # Given an order on portal resource 7 (MIS 393)
    order = stored_order()
    # When the MIS moves it to MIS resource 394
    _, after = decide_order_change(order, order_change(mw_resource_id=394), (STAMP,), NOW)
    # Then only mw_resource_id changes here: resource_id and resource_name are not looked up
    assert after is not None
    assert (after.mw_resource_id, after.resource_id, after.resource_name) == (394, 7, "Терапевт Петров")


def test_none_fields_of_a_change_keep_the_stored_values() -> None:
    # Given a stored order
    order = stored_order()
    # When the MIS accepts it without reception, duration or resource
    change = order_change(status=OrderStatus.ACCEPTED, reception=None, duration=None, mw_resource_id=None)
    _, after = decide_order_change(order, change, (STAMP,), NOW)
    # Then the stored reception, duration, resource and patient fields stay
    assert after is not None
    assert (after.reception, after.duration, after.mw_resource_id) == (RECEPTION, 30, 393)
    assert (after.name1, after.name2, after.name3, after.phone, after.comment) == (
        "Иванов",
        "Иван",
        "Иванович",
        "+7 900 000-00-00",
        "первичный приём",
    )
    assert (after.id, after.order_date, after.user_id, after.user_name) == (1001, dt.date(2030, 3, 1), "u-17", "ivanov")


def test_a_clock_behind_the_stored_stamp_never_moves_last_changed_back() -> None:
    # Given an order last changed at STAMP; When a change applies with a clock 10 s behind
    order = stored_order()
    _, after = decide_order_change(order, order_change(status=OrderStatus.ACCEPTED), (STAMP,), STAMP - 10)
    # Then LastChangedOn stays at STAMP (the export's window moves forward only)
    assert after is not None
    assert after.last_changed == STAMP


def test_a_second_mis_change_quoting_the_same_exported_stamp_applies_too() -> None:
    # Given a received order and an MIS that exported it at STAMP
    order = stored_order()
    # When the MIS confirms it, and later rejects it, quoting STAMP both times
    first, accepted = decide_order_change(order, order_change(status=OrderStatus.ACCEPTED), (STAMP,), NOW)
    assert accepted is not None
    second, after = decide_order_change(accepted, order_change(status=OrderStatus.REJECTED), (STAMP,), NOW + 60)
    # Then both apply (SPEC r2: the MIS's own changes apply in the order received): the slot is freed
    assert (first, second) == (OrderOutcome.UPDATED, OrderOutcome.UPDATED)
    assert after == replace(order, status=OrderStatus.REJECTED, last_changed=NOW + 60)


def test_a_change_quoting_a_time_before_a_portal_side_change_is_a_conflict() -> None:
    # Given an order the MIS exported at STAMP, changed on the portal side at NOW (a patient's edit)
    order = stored_order(last_changed=NOW, portal_changed=NOW)
    # When the MIS accepts it quoting STAMP
    outcome, after = decide_order_change(order, order_change(status=OrderStatus.ACCEPTED), (STAMP,), NOW + 60)
    # Then it decided on stale facts: a conflict, nothing applied
    assert (outcome, after) == (OrderOutcome.CONFLICT, order)


def test_either_occurrence_of_a_repeated_hour_matches() -> None:
    # Given an order changed on the portal side in the second occurrence of an autumn hour
    order = stored_order(last_changed=STAMP + 3600, portal_changed=STAMP + 3600)
    # When the MIS quotes that local time, which means STAMP or STAMP + 3600
    outcome, _ = decide_order_change(order, order_change(status=OrderStatus.ACCEPTED), (STAMP, STAMP + 3600), NOW * 2)
    # Then it matches the later one: no conflict
    assert outcome is OrderOutcome.UPDATED


def test_a_change_without_last_changed_on_applies() -> None:
    # Given an order changed on the portal side after the MIS could have read it
    order = stored_order(portal_changed=NOW)
    # When the MIS rejects it without quoting any LastChangedOn
    outcome, after = decide_order_change(
        order, order_change(status=OrderStatus.REJECTED, last_changed=None), None, NOW + 1
    )
    # Then it applies (the reader warns of the missing stamp)
    assert outcome is OrderOutcome.UPDATED
    assert after is not None and after.status is OrderStatus.REJECTED


def test_a_second_mis_change_quoting_the_new_stamp_applies() -> None:
    # Given an order the MIS confirmed at NOW and then exported again (carrying NOW)
    _, accepted = decide_order_change(stored_order(), order_change(status=OrderStatus.ACCEPTED), (STAMP,), NOW)
    assert accepted is not None
    # When the MIS rejects it quoting NOW
    outcome, after = decide_order_change(accepted, order_change(status=OrderStatus.REJECTED), (NOW,), NOW + 60)
    # Then it applies and the order frees its time
    assert outcome is OrderOutcome.UPDATED
    assert after == replace(accepted, status=OrderStatus.REJECTED, last_changed=NOW + 60)
    assert not holds_slot(after.status)


# ---------------------------------------------------------------------------------------------------------------
# holds_slot


HOLDS_SLOT = {OrderStatus.RECEIVED: True, OrderStatus.ACCEPTED: True, OrderStatus.REJECTED: False}


@pytest.mark.parametrize(("status", "holds"), HOLDS_SLOT.items())
def test_received_and_accepted_hold_their_time_rejected_frees_it(status: OrderStatus, holds: bool) -> None:
    assert holds_slot(status) is holds


def test_the_holds_slot_table_covers_every_status() -> None:
    assert set(HOLDS_SLOT) == set(OrderStatus)


def test_a_rejection_by_the_mis_frees_the_time() -> None:
    # Given an accepted order, which holds its time
    order = stored_order(status=OrderStatus.ACCEPTED)
    assert holds_slot(order.status)
    # When the MIS rejects it
    _, after = decide_order_change(order, order_change(status=OrderStatus.REJECTED), (STAMP,), NOW)
    # Then it no longer holds its time
    assert after is not None
    assert not holds_slot(after.status)


# ---------------------------------------------------------------------------------------------------------------
# reference_warnings


def resource(id: int, group_id: int | None, line: int) -> Resource:
    return Resource(id=id, name=f"Врач {id}", time_step=15, group_id=group_id, line=line)


def schedule(id: int, resource_id: int, line: int) -> Schedule:
    return Schedule(id=id, date=dt.date(2030, 3, 5), resource_id=resource_id, windows=(Window(540, 600),), line=line)


def appointment(tablename: str, id: int, resource_id: int, line: int) -> Appointment:
    return Appointment(
        tablename=tablename, id=id, resource_id=resource_id, start=RECEPTION, duration=30, title="Занято", line=line
    )


SECTION_NAMES = {"resources": "Resources", "schedules": "Schedules", "appointments": "Appointments"}


def make_document(**records: tuple[Any, ...]) -> Document:
    """A document with the given sections (resources=, schedules=, appointments=); the others absent.

    The one place that knows how a Document holds its sections: a field per section, or (while the
    package is being refactored) a `sections` mapping keyed by section name.
    """
    if "sections" in {f.name for f in fields(Document)}:
        by_name: dict[str, Any] = {SECTION_NAMES[name]: value for name, value in records.items()}
        return Document(client_key="k", **{"sections": by_name})
    return Document(client_key="k", **records)


def unknown_group(group_id: int, line: int, record_id: str) -> Issue:
    return Issue(
        code="unknown_group",
        message=f"group_id {group_id} is not a known resource group",
        line=line,
        section="Resources",
        record_id=record_id,
    )


def unknown_resource(resource_id: int, line: int, section: str, record_id: str) -> Issue:
    return Issue(
        code="unknown_resource",
        message=f"resource_id {resource_id} is not a known resource",
        line=line,
        section=section,
        record_id=record_id,
    )


def test_a_resource_in_an_unknown_group_is_a_warning_with_its_line_and_id() -> None:
    # Given a document whose resource 393 on line 12 names group 5, which the clinic will not have
    document = make_document(resources=(resource(393, group_id=5, line=12),))
    # When references are checked
    warnings = reference_warnings(document, group_ids={1, 2}, resource_ids={393})
    # Then one unknown_group warning locates it
    assert warnings == [unknown_group(5, line=12, record_id="393")]


def test_a_schedule_of_an_unknown_resource_is_a_warning_with_its_line_and_id() -> None:
    document = make_document(schedules=(schedule(77, resource_id=9, line=20),))
    warnings = reference_warnings(document, group_ids=(), resource_ids={393})
    assert warnings == [unknown_resource(9, line=20, section="Schedules", record_id="77")]


def test_an_appointment_of_an_unknown_resource_is_named_by_tablename_and_id() -> None:
    document = make_document(appointments=(appointment("visits", 5001, resource_id=9, line=31),))
    warnings = reference_warnings(document, group_ids=(), resource_ids={393})
    assert warnings == [unknown_resource(9, line=31, section="Appointments", record_id="visits#5001")]


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(make_document(), id="no-sections"),
        pytest.param(
            make_document(resources=(), schedules=(), appointments=()),
            id="empty-sections",
        ),
        pytest.param(make_document(resources=(resource(393, None, 12),)), id="ungrouped-resource"),
        pytest.param(make_document(resources=(resource(393, -1, 12),)), id="known-negative-group"),
        pytest.param(
            make_document(
                resources=(resource(393, 1, 12),),
                schedules=(schedule(77, 393, 20),),
                appointments=(appointment("visits", 5001, 393, 31),),
            ),
            id="all-known",
        ),
    ],
)
def test_known_or_absent_references_warn_nothing(document: Document) -> None:
    assert reference_warnings(document, group_ids={1, -1}, resource_ids={393}) == []


def test_group_and_resource_ids_are_separate() -> None:
    # Given resource 5 exists but group 5 does not, and group 9 exists but resource 9 does not
    document = make_document(resources=(resource(393, group_id=5, line=12),), schedules=(schedule(77, 9, line=20),))
    # When checked
    warnings = reference_warnings(document, group_ids={9}, resource_ids={5, 393})
    # Then both references are unknown
    assert [w.code for w in warnings] == ["unknown_group", "unknown_resource"]


def test_warnings_come_resources_then_schedules_then_appointments_in_document_order() -> None:
    # Given unknown references in every section, lines deliberately not in section order
    document = make_document(
        appointments=(appointment("b", 2, 8, line=5), appointment("a", 1, 393, line=6), appointment("a", 3, 9, line=7)),
        schedules=(schedule(71, 9, line=50), schedule(70, 8, line=40)),
        resources=(resource(394, 6, line=90), resource(393, 5, line=80)),
    )
    # When checked against a clinic that has group 1 and resources 393, 394
    warnings = reference_warnings(document, group_ids=[1], resource_ids=[393, 394])
    # Then warnings are grouped by section in that order, each section in the document's order
    assert warnings == [
        unknown_group(6, line=90, record_id="394"),
        unknown_group(5, line=80, record_id="393"),
        unknown_resource(9, line=50, section="Schedules", record_id="71"),
        unknown_resource(8, line=40, section="Schedules", record_id="70"),
        unknown_resource(8, line=5, section="Appointments", record_id="b#2"),
        unknown_resource(9, line=7, section="Appointments", record_id="a#3"),
    ]


def test_known_ids_may_be_any_one_shot_iterable() -> None:
    # Given ids given as generators, read once
    def ids(*values: int) -> Iterator[int]:
        yield from values

    # (the records ask for the later ids first: a generator searched twice would be exhausted by then)
    document = make_document(
        resources=(resource(394, 2, 12), resource(393, 1, 13), resource(395, 3, 14)),
        schedules=(schedule(78, 394, 20), schedule(77, 393, 21), schedule(79, 395, 22)),
    )
    # When checked
    warnings = reference_warnings(document, group_ids=ids(1, 2), resource_ids=ids(393, 394))
    # Then membership holds for every record, not just the first
    assert warnings == [
        unknown_group(3, line=14, record_id="395"),
        unknown_resource(395, line=22, section="Schedules", record_id="79"),
    ]
