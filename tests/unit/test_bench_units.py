"""The benchmark's request-unit meter (bench/units.py), on the store's own calls: the cost table is built on it."""

from __future__ import annotations

import math

from mediexchange.protocol.sections import GROUPS
from mediexchange.records import Clinic, Group
from mediexchange.store import Store
from mediexchange.sync import desired

from bench.units import Units, item_size


def metered(store: Store) -> Units:
    units = Units(store.settings.records_table)
    store.instrument("before-parameter-build.*.*", units.before)
    store.instrument("after-call.*.*", units.after)
    return units


def test_an_item_is_sized_as_dynamodb_sizes_it() -> None:
    # Given an item of a string, a number and a map
    item = {"pk": {"S": "ab"}, "n": {"N": "-123.5"}, "m": {"M": {"x": {"BOOL": True}}}}
    # When it is sized
    # Then names and values count: 2+2, 1+(4 digits: 2 bytes, +1), 1+(3 + 1 + 1 + 1)
    assert item_size(item) == 4 + 4 + 7


def test_a_batch_write_is_counted_item_by_item_in_write_units(store: Store, clinic: Clinic) -> None:
    # Given the store's calls metered, and 30 groups, one with a name over a kilobyte
    units = metered(store)
    groups = [Group(n, "Терапия" * (100 if n == 7 else 1)) for n in range(1, 31)]
    items = list(store.records.items_of(clinic.clinic_id, GROUPS, groups))
    # When the store writes them
    store.records.write(clinic.clinic_id, [(GROUPS, wanted) for wanted in desired(GROUPS, groups).values()])
    # Then every item is counted under its section, a write unit per started kilobyte, in two calls
    tally = units.tallies[(store.settings.records_table, GROUPS.code, "write")]
    assert (tally.items, units.calls["dynamodb.BatchWriteItem"]) == (30, 2)
    assert tally.units == sum(math.ceil(item_size(item) / 1024) for item in items) == 31


def test_a_projected_query_is_charged_at_the_full_size_of_what_it_read(store: Store, clinic: Clinic) -> None:
    # Given 30 groups stored, and the meter told a group's item is 3,000 bytes in full
    groups = [Group(n, f"Группа {n}") for n in range(1, 31)]
    store.records.write(clinic.clinic_id, [(GROUPS, wanted) for wanted in desired(GROUPS, groups).values()])
    units = metered(store)
    units.sizes = {GROUPS.code: 3000.0}
    # When the store reads the section's hashes (a query projected to key and hash)
    hashes = store.records.hashes(clinic.clinic_id, GROUPS)
    # Then the items read are counted at their full size: 30 x 3,000 bytes, a read unit per started 4 KB
    # of each page (strongly consistent), where their projection alone is one unit a page
    tally = units.tallies[(store.settings.records_table, GROUPS.code, "read")]
    assert (len(hashes), tally.items) == (30, 30)
    assert math.ceil(30 * 3000 / 4096) <= tally.units < math.ceil(30 * 3000 / 4096) + tally.calls
