"""Bucket digests (issue 12): an import reads only the leaves whose digest differs or that are marked dirty,
keeps the digests true through diffs, and rewrites items of the layout from before the digests.

The crash cases are proven in tests/reliability/test_faults.py (a failure at every write, then the original
or the new document). Here: what each kind of import reads and writes.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from typing import Any

import pytest
from mediexchange.protocol.sections import APPOINTMENTS, RESOURCES, SCHEDULES
from mediexchange.records import Clinic
from mediexchange.store import Store
from mediexchange.store.synced import MARK_LIFETIME
from mediexchange.sync import (
    MAX_LEAVES,
    POSITIONS,
    Buckets,
    buckets_for,
    leaf_digests,
    position_of,
    shard_of,
    updated_digests,
)

from tests.reliability.scenario import (
    DAYS,
    digest_lies,
    document,
    restore,
    snapshot_items,
    to_legacy_layout,
)
from tests.unit.conftest import call_import, call_portal

ORIGINAL = document(range(5), range(10), range(400))
ONE_LONGER = re.sub(rb'(id="123" [^/]*Duration=")15', rb"\g<1>30", ORIGINAL)
MOVED = b'<a tablename="SchedEvent" id="123" resource_id="3" ReceptionDateTime="01.01.2031 10:00:00" Duration="15"/>'
NEW = b'<a tablename="SchedEvent" id="9000" resource_id="3" ReceptionDateTime="01.01.2031 11:00:00" Duration="15"/>'


def diff_of(*elements: bytes) -> bytes:
    head = ORIGINAL.split(b"<ResourceGroups>")[0]
    return head + b'<Appointments SyncMode="diff">' + b"".join(elements) + b"</Appointments></MediExchange>"


class Reads:
    """Counts the Records table's read calls by the partition they read (a botocore before-call handler)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, bool]] = []  # operation, partition, a range of one leaf

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name not in ("Query", "BatchGetItem", "GetItem"):
            return
        body = json.loads(params["body"] or b"{}")
        if model.name == "Query":
            if not body["TableName"].endswith("records") or "IndexName" in body:
                return
            values = body["ExpressionAttributeValues"].values()
            partition = next(v["S"] for v in values if "S" in v and "#" in v["S"])
            self.add(model.name, partition, "BETWEEN" in body["KeyConditionExpression"])
        elif model.name == "BatchGetItem":
            for table, asked in body["RequestItems"].items():
                if table.endswith("records"):
                    for key in asked["Keys"]:
                        self.add(model.name, key["pk"]["S"], False)

    def add(self, operation: str, partition: str, leaf: bool) -> None:
        with self.lock:
            self.calls.append((operation, partition.split("#", 1)[1], leaf))


@pytest.fixture
def reads(store: Store) -> Reads:
    counter = Reads()
    store.instrument("before-call.dynamodb.*", counter)
    return counter


def written(result: Any, section: str = "Appointments") -> tuple[int, int]:
    element = result.find(section)
    return int(element.get("written")), int(element.get("deleted"))


# -- pure -----------------------------------------------------------------------------------------------


def test_a_leafs_digest_does_not_depend_on_the_order_of_its_records() -> None:
    records = [(f"SchedEvent#{n}", f"{n:032x}") for n in range(300)]
    buckets = Buckets(32, 4)
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert leaf_digests(records, buckets) == leaf_digests(shuffled, buckets)
    assert leaf_digests(records, buckets) != leaf_digests([*records[:-1], (records[-1][0], "0" * 32)], buckets)


def test_digests_updated_from_what_changed_equal_digests_made_anew() -> None:
    rng = random.Random(7)
    buckets = Buckets(32, 2)
    before = {f"SchedEvent#{n}": f"{rng.getrandbits(128):032x}" for n in range(500)}
    after = dict(before)
    for key in rng.sample(sorted(before), 40):
        after[key] = f"{rng.getrandbits(128):032x}"  # changed
    for key in rng.sample(sorted(before), 20):
        del after[key]  # gone
    after |= {f"SchedEvent#{n}": "a" * 32 for n in range(500, 530)}  # new
    values = leaf_digests(before.items(), buckets)
    # Record by record (a diff's clean leaves) ...
    assert updated_digests(values, buckets, set(), after, before) == leaf_digests(after.items(), buckets)
    # ... or some leaves read whole: `after` then holds all of those leaves and only the changes elsewhere
    whole = {0, 5, 17}
    in_whole = {k: h for k, h in after.items() if buckets.leaf(k) in whole}
    outside = {k: h for k, h in after.items() if buckets.leaf(k) not in whole}
    before_outside = {k: h for k, h in before.items() if buckets.leaf(k) not in whole}
    new = updated_digests(values, buckets, whole, in_whole | outside, before_outside)
    assert new == leaf_digests(after.items(), buckets)


def test_a_leaf_is_one_range_of_positions_in_one_shard() -> None:
    buckets = Buckets(32, 8)
    for n in range(2000):
        key = f"SchedEvent#{n}"
        shard, first, last = buckets.span(buckets.leaf(key))
        assert shard == shard_of(key, 32) and first <= position_of(key) <= last
    spans = [buckets.span(leaf) for leaf in range(buckets.count)]
    assert sum(last - first + 1 for _, first, last in spans) == 32 * POSITIONS


@pytest.mark.parametrize(
    ("records", "shards", "per_shard"),
    [(0, 32, 1), (10_000, 32, 64), (2_000, 32, 16), (500, 1, 128), (40, 1, 8), (1, 1, 1)],
)
def test_buckets_hold_about_four_records_a_leaf(records: int, shards: int, per_shard: int) -> None:
    buckets = buckets_for(records, shards)
    assert buckets == Buckets(shards, per_shard)
    assert buckets.suits(records)
    assert not buckets.suits(records * 5 + 20 * shards)  # grown 5x: rebucketed


def test_a_sections_digests_stay_one_item_far_below_dynamodbs_400_kb() -> None:
    big = buckets_for(100_000, 32)
    assert big == Buckets(32, MAX_LEAVES // 32) and big.count * 8 <= 256 * 1024
    assert big.suits(1_000_000)  # past the cap a leaf just holds more


# -- what imports read -------------------------------------------------------------------------------------


def test_an_identical_full_sync_reads_the_digests_and_nothing_of_the_records(
    store: Store, clinic: Clinic, reads: Reads
) -> None:
    # Given the clinic's records imported once
    assert call_import(ORIGINAL)[0] == 200
    assert digest_lies(store, clinic) == []
    reads.calls.clear()
    # When the same document comes again
    status, result, _ = call_import(ORIGINAL)
    # Then nothing is written, and of the Records table only the digests (one query) and the portal's
    # resource ids are read
    assert status == 200 and written(result) == (0, 0)
    assert sorted(reads.calls) == [("Query", "DG", False), ("Query", "RID", False)]


def test_one_changed_appointment_reads_its_leafs_records_by_key_and_writes_it_alone(
    store: Store, clinic: Clinic, reads: Reads
) -> None:
    assert call_import(ORIGINAL)[0] == 200
    reads.calls.clear()
    # When a full sync changes one appointment
    status, result, _ = call_import(ONE_LONGER)
    # Then the records the document sends in that one leaf are read by key (its digest says there are no
    # others), no leaf is queried, and one item is written
    assert status == 200 and written(result) == (1, 0)
    by_key = [call for call in reads.calls if call[0] == "BatchGetItem"]
    assert 1 <= len(by_key) <= 12 and len({partition for _, partition, _ in by_key}) == 1
    assert not any(leaf for _, _, leaf in reads.calls)
    assert digest_lies(store, clinic) == []
    # And going back does the same
    assert written(call_import(ORIGINAL)[1]) == (1, 0)
    assert digest_lies(store, clinic) == []


def test_one_gone_appointment_is_found_by_reading_its_leaf_whole(store: Store, clinic: Clinic, reads: Reads) -> None:
    assert call_import(ORIGINAL)[0] == 200
    reads.calls.clear()
    # When a full sync no longer sends one appointment
    status, result, _ = call_import(re.sub(rb'<a tablename="SchedEvent" id="123" [^>]*/>', b"", ORIGINAL))
    # Then its leaf (whose digest says it holds more than was sent) is queried, one range of one partition
    assert status == 200 and written(result) == (0, 1)
    leaf_reads = [call for call in reads.calls if call[2]]
    assert len(leaf_reads) == 1 and leaf_reads[0][1].startswith("A#")
    assert digest_lies(store, clinic) == []
    assert written(call_import(ORIGINAL)[1]) == (1, 0)
    assert digest_lies(store, clinic) == []


def test_a_diff_keeps_the_digests_true_so_a_later_full_sync_finds_nothing_to_do(
    store: Store, clinic: Clinic, reads: Reads
) -> None:
    assert call_import(ORIGINAL)[0] == 200
    reads.calls.clear()
    # When a diff changes one appointment and adds one
    status, result, _ = call_import(diff_of(MOVED, NEW))
    assert status == 200 and written(result) == (2, 0)
    # Then it read those two records by key, no leaf whole, and the digests are those of the records
    assert not any(leaf for _, _, leaf in reads.calls)
    assert digest_lies(store, clinic) == []
    # And a full sync of the same records reads no leaf and writes nothing
    reads.calls.clear()
    full = re.sub(rb'<a tablename="SchedEvent" id="123" [^>]*/>', MOVED, ORIGINAL)
    status, result, _ = call_import(full.replace(b"</Appointments>", NEW + b"</Appointments>"))
    assert status == 200 and written(result) == (0, 0)
    assert not any(leaf for _, _, leaf in reads.calls)


def test_a_dirty_leaf_is_read_whole_even_when_its_digest_matches(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    # Given the records imported, then an import that stopped half-way: it marked a leaf dirty and changed
    # one of its records, and never wrote the leaf's digest
    assert call_import(ORIGINAL)[0] == 200
    table = store.settings.records_table
    key = "SchedEvent#123"
    buckets = store.records.digests(clinic.clinic_id).sections["A"].buckets
    store.records.mark(clinic.clinic_id, "crashed", {"A": (buckets.count, [buckets.leaf(key)])})
    [item] = [
        i
        for i in dynamodb.scan(TableName=table)["Items"]
        if i["pk"]["S"].startswith(f"{clinic.clinic_id}#A#") and i["sk"]["S"].endswith(f"#{key}")
    ]
    dynamodb.put_item(
        TableName=table, Item={**item, "h": {"S": "0" * 32}, "d": {"S": item["d"]["S"].replace("15", "45")}}
    )
    # When the original document comes again (its digests all match what is stored)
    status, result, _ = call_import(ORIGINAL)
    # Then the dirty leaf was diffed record by record and the record restored
    assert status == 200 and written(result) == (1, 0)
    assert store.records.hashes(clinic.clinic_id, APPOINTMENTS)[key] != "0" * 32
    assert digest_lies(store, clinic) == []


# -- items written before the digests -----------------------------------------------------------------------


def test_items_of_the_old_layout_are_rewritten_by_the_next_import_and_the_portal_still_finds_them(
    store: Store, clinic: Clinic, dynamodb: Any
) -> None:
    # Given a stack from before the digests: every record keyed by its key alone, no digests
    assert call_import(ORIGINAL)[0] == 200
    table = store.settings.records_table
    restore(dynamodb, to_legacy_layout(snapshot_items(dynamodb), table))
    assert store.records.digests(clinic.clinic_id).sections == {}
    before = {s.name: store.records.hashes(clinic.clinic_id, s) for s in (RESOURCES, SCHEDULES, APPOINTMENTS)}
    # When the same document comes again
    status, result, _ = call_import(ORIGINAL)
    # Then it reports nothing changed, yet every item is now in the new layout and the digests are there
    assert status == 200 and written(result) == (0, 0) and written(result, "Schedules") == (0, 0)
    records = [
        i for i in dynamodb.scan(TableName=table)["Items"] if "#DG" not in i["pk"]["S"] and "#RID" not in i["pk"]["S"]
    ]
    assert records and all("v" in item for item in records)
    assert {s.name: store.records.hashes(clinic.clinic_id, s) for s in (RESOURCES, SCHEDULES, APPOINTMENTS)} == before
    assert set(store.records.digests(clinic.clinic_id).sections) == {"G", "R", "S", "A"}
    assert digest_lies(store, clinic) == []
    # And the portal reads the resources and a resource's free time by the index as before
    status, view = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}")
    assert status == 200 and len(view["resources"]) == 10
    resource = view["resources"][0]["resource_id"]
    query = {"resource_id": str(resource), "from": DAYS[0].isoformat(), "to": DAYS[0].isoformat()}
    status, slots = call_portal("GET", f"/portal/clinics/{clinic.clinic_id}/slots", query=query)
    assert status == 200 and slots["slots"]


def test_a_diff_on_the_old_layout_keeps_what_it_did_not_send(store: Store, clinic: Clinic, dynamodb: Any) -> None:
    assert call_import(ORIGINAL)[0] == 200
    table = store.settings.records_table
    restore(dynamodb, to_legacy_layout(snapshot_items(dynamodb), table))
    before = store.records.hashes(clinic.clinic_id, APPOINTMENTS)
    status, result, _ = call_import(diff_of(NEW))
    assert status == 200 and written(result) == (1, 0)
    after = store.records.hashes(clinic.clinic_id, APPOINTMENTS)
    assert set(after) == set(before) | {"SchedEvent#9000"} and all(after[k] == h for k, h in before.items())
    appointments = [i for i in dynamodb.scan(TableName=table)["Items"] if f"{clinic.clinic_id}#A#" in i["pk"]["S"]]
    assert len(appointments) == 401 and all("v" in item for item in appointments)
    assert len(store.records.all(clinic.clinic_id, APPOINTMENTS)) == 401
    assert digest_lies(store, clinic) == []


def test_a_section_grown_or_shrunk_4x_is_rebucketed_and_its_digests_stay_true(store: Store, clinic: Clinic) -> None:
    assert call_import(ORIGINAL)[0] == 200
    small = store.records.digests(clinic.clinic_id).sections["A"].buckets
    # When the appointments grow eightfold, and then shrink back
    bigger = document(range(5), range(10), range(3200))
    assert written(call_import(bigger)[1]) == (2800, 0)
    grown = store.records.digests(clinic.clinic_id).sections["A"].buckets
    assert grown.count > small.count and digest_lies(store, clinic) == []
    assert written(call_import(ORIGINAL)[1]) == (0, 2800)
    # Then the buckets follow the size, and the digests are those of the records each time
    assert store.records.digests(clinic.clinic_id).sections["A"].buckets == small
    assert digest_lies(store, clinic) == []
    assert written(call_import(ORIGINAL)[1]) == (0, 0)


def test_a_dirty_mark_is_cleared_by_a_later_import_only_once_no_import_can_still_be_writing(
    store: Store, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert call_import(ORIGINAL)[0] == 200
    buckets = store.records.digests(clinic.clinic_id).sections["A"].buckets
    store.records.mark(clinic.clinic_id, "stalled", {"A": (buckets.count, [buckets.leaf("SchedEvent#123")])})
    # A later import re-reads the leaf, but the mark is young: an import that lost its lease may still write
    assert call_import(ORIGINAL)[0] == 200
    assert len(store.records.digests(clinic.clinic_id).marks) == 1
    # Once the mark is older than any import can run, the next import that re-reads its leaves clears it
    later = time.time() + MARK_LIFETIME + 60
    monkeypatch.setattr("mediexchange.importing.time.time", lambda: later)
    assert call_import(ORIGINAL)[0] == 200
    assert store.records.digests(clinic.clinic_id).marks == []


def test_a_key_of_1024_bytes_is_kept_under_its_hash_and_read_back_as_itself(store: Store, clinic: Clinic) -> None:
    masks = "😷" * 255  # with "#123" a key of 1,024 bytes: with the position in front, too long for a sort key
    row = 'resource_id="3" ReceptionDateTime="30.06.2031 15:00:00" Duration="30"'
    body = ORIGINAL.replace(b"</Appointments>", f'<a tablename="{masks}" id="123" {row}/></Appointments>'.encode())
    assert written(call_import(body)[1]) == (401, 0)
    assert f"{masks}#123" in store.records.hashes(clinic.clinic_id, APPOINTMENTS)
    assert digest_lies(store, clinic) == []
    assert written(call_import(body)[1]) == (0, 0)
    assert written(call_import(ORIGINAL)[1]) == (0, 1)
    assert f"{masks}#123" not in store.records.hashes(clinic.clinic_id, APPOINTMENTS)
