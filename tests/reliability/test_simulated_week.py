"""The whole order loop as a clinic runs it: a simulated MIS (tests/simulated_mis.py) on the seed's cadence
against `make run`'s server over real HTTP, with patients booking through the portal throughout.

`make test` runs a simulated day with three doctors; `make reliability` a simulated week with six."""

from __future__ import annotations

from tests.integration.conftest import LocalServer
from tests.reliability.figures import FULL, record
from tests.simulated_mis import SimulatedMis, doctors

HALF_HOURS = 7 * 48 if FULL else 48
STAFF = 6 if FULL else 3
PATIENTS_PER_HALF_HOUR = 4 if FULL else 3


def test_a_simulated_mis_week_loses_nothing(server: LocalServer) -> None:
    # Given a clinic whose MIS keeps its own book: doctors with breaks, two windows a day and an
    # overnight window, walk-ins on the coming days
    clinic = server.create_clinic("Simulated clinic")
    mis = SimulatedMis(server, clinic, doctors(STAFF), seed=20261130, patients_per_half_hour=PATIENTS_PER_HALF_HOUR)

    # When it runs on the seed's cadence (diff every half hour, full every hour fired together with
    # that half hour's diff, resources and schedules daily, orders exported by contiguous windows,
    # confirmed, rejected, moved and later rejected), while patients book free and busy slots
    tally = mis.run(HALF_HOURS)

    record(
        "mis week",
        simulated_half_hours=tally.half_hours,
        imports=tally.imports,
        imports_answered_202=tally.imports_202,
        full_and_diff_pairs=tally.full_and_diff_pairs,
        exports=tally.exports,
        orders=tally.orders,
        decisions=tally.confirmations + tally.rejections + tally.later_rejections + tally.order_moves,
        later_rejections=tally.later_rejections,
        order_moves=tally.order_moves,
        own_visits_changed=tally.own_visits_added + tally.own_visits_moved + tally.own_visits_cancelled,
        busy_slot_attempts=tally.busy_attempts,
        slot_checks=tally.slot_checks,
        import_409s=tally.answers_409,
        import_503s=tally.answers_503,
        lost_decisions=tally.lost_decisions,
        conflicts=tally.conflicts,
        changes_not_updated=tally.changes_not_updated,
        missed_orders=tally.missed_orders,
        missed_changes=tally.missed_changes,
        false_overlap_warnings=tally.false_overlap_warnings,
        other_warnings=tally.other_warnings,
        double_bookings=tally.double_bookings,
        slot_mismatches=tally.slot_mismatches,
        free_slots_refused=tally.free_slot_refused,
        busy_slots_booked=tally.busy_slot_booked,
    )

    # Then the loop was exercised in full: every hour fired its full sync beside the diff, patients
    # booked, the MIS confirmed, rejected, moved and later rejected orders, patients tried busy time
    assert tally.full_and_diff_pairs == HALF_HOURS // 2
    assert min(tally.orders, tally.confirmations, tally.rejections, tally.busy_attempts) > 0, tally
    assert min(tally.later_rejections, tally.order_moves, tally.own_visits_moved) > 0, tally
    assert tally.slot_checks >= HALF_HOURS // 2 * STAFF
    # And nothing was lost, missed, falsely warned, double booked or offered wrongly
    assert tally.problems() == {
        "409 answers": 0,
        "lost decisions": 0,
        "conflicts": 0,
        "changes not updated": 0,
        "missed orders": 0,
        "missed changes": 0,
        "false overlaps_order warnings": 0,
        "other warnings": 0,
        "double bookings": 0,
        "slot mismatches": 0,
        "free slots refused": 0,
        "busy slots booked": 0,
        "orders exported that no patient made": 0,
    }, "\n".join(tally.details)
