"""The clinics list and a clinic's page: its sync health per section against the seed's cadence, the last
outcome, the stale flag (SPEC section 5), imports queued, orders waiting for the MIS, and recent imports.

The seed's cadence (what a healthy MIS sends):

* Appointments: a diff every 30 minutes at most, a full sync hourly: late after an hour, bad once the
  clinic's `stale_after_hours` passes (the portal then offers no slots);
* Schedules: daily: late after a day, bad after a week;
* Resources and groups: daily to weekly: late after a week, bad after two;
* Orders: the MIS imports its decisions after it exports: only their age is shown.

A section's last import that was partial is at least late, one that failed is bad.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aws_lambda_powertools.event_handler import Response

from mediexchange.console.pages import Page, not_found
from mediexchange.protocol.sections import APPOINTMENTS, GROUPS, ORDERS, RESOURCES, SCHEDULES
from mediexchange.records import Clinic
from mediexchange.store import WAITING_COUNTED, ClinicOverview, ImportEntry, SectionSeen, Store

OK, WARN, BAD = "ok", "warn", "bad"
LEVELS = (OK, WARN, BAD)
HOUR, DAY = 3600, 86400
RECENT_IMPORTS = 20


@dataclass(frozen=True, slots=True)
class Cadence:
    """How old a section's last import may be: late (warn) after `warn` seconds, bad after `bad`; None:
    age alone never makes it late."""

    warn: float | None
    bad: float | None


def cadence(section: str, clinic: Clinic) -> Cadence:
    if section == APPOINTMENTS.name:
        stale = clinic.stale_after_hours * HOUR
        return Cadence(min(HOUR, stale), stale)
    if section == SCHEDULES.name:
        return Cadence(DAY, 7 * DAY)
    if section in (RESOURCES.name, GROUPS.name):
        return Cadence(7 * DAY, 14 * DAY)
    return Cadence(None, None)


# The sections as the pages list them, with their labels.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    (APPOINTMENTS.name, "Appointments", "Приёмы"),
    (SCHEDULES.name, "Schedules", "Графики"),
    (RESOURCES.name, "Resources", "Ресурсы"),
    (GROUPS.name, "Groups", "Группы"),
    (ORDERS.name, "Orders", "Заявки"),
)


def worst(levels: Iterable[str]) -> str:
    return max(levels, key=LEVELS.index, default=OK)


def outcome_level(outcome: str | None) -> str:
    return {None: OK, "ok": OK, "partial": WARN}.get(outcome, BAD)


@dataclass(frozen=True, slots=True)
class SectionHealth:
    """One section of one clinic: its last import, and the verdict on its age and outcome. `level` None:
    nothing to judge (orders never imported)."""

    name: str
    en: str
    ru: str
    seen: SectionSeen | None
    level: str | None
    late: bool  # older than its cadence allows
    cadence: Cadence


def section_health(name: str, en: str, ru: str, seen: SectionSeen | None, clinic: Clinic, now: float) -> SectionHealth:
    due = cadence(name, clinic)
    if seen is None:
        # Never imported: a section the MIS must send is late; orders only come once there are some.
        return SectionHealth(name, en, ru, None, None if due.warn is None else WARN, due.warn is not None, due)
    age = now - seen.at
    by_age = BAD if due.bad is not None and age > due.bad else WARN if due.warn is not None and age > due.warn else OK
    return SectionHealth(name, en, ru, seen, worst((by_age, outcome_level(seen.outcome))), by_age != OK, due)


@dataclass(frozen=True, slots=True)
class Health:
    """A clinic at a glance, judged."""

    overview: ClinicOverview
    sections: tuple[SectionHealth, ...]
    stale_since: int | None  # SPEC 5: its busy time is too old, the portal offers no slots
    waiting: int  # orders the MIS has not decided yet
    oldest_waiting: int | None  # unix seconds the oldest of them has waited since

    @property
    def clinic(self) -> Clinic:
        return self.overview.clinic

    @property
    def queued(self) -> int:
        return sum(self.overview.queued.values())

    @property
    def waiting_text(self) -> str:
        return f"{WAITING_COUNTED}+" if self.waiting > WAITING_COUNTED else str(self.waiting)

    @property
    def level(self) -> str:
        stale = BAD if self.stale_since is not None else OK
        return worst([stale, *(s.level for s in self.sections if s.level is not None)])


def judge(overview: ClinicOverview, waiting: tuple[int, int | None], now: float) -> Health:
    clinic = overview.clinic
    sections = tuple(section_health(n, en, ru, overview.last.get(n), clinic, now) for n, en, ru in SECTIONS)
    return Health(overview, sections, clinic.stale_since(now), waiting[0], waiting[1])


def healths(store: Store, overviews: Sequence[ClinicOverview], now: float) -> list[Health]:
    """Each clinic judged; the waiting orders of each are one query, asked in parallel."""
    ids = [overview.clinic.clinic_id for overview in overviews]
    with ThreadPoolExecutor(max_workers=max(1, min(len(ids), store.settings.store_parallelism))) as pool:
        waiting = list(pool.map(store.orders.waiting, ids))
    return [judge(overview, wait, now) for overview, wait in zip(overviews, waiting, strict=True)]


# -- the pages ---------------------------------------------------------------------------------------


def clinics_page(store: Store, page: Page) -> Response[str]:
    """GET /console/: every clinic with its health (operators; an integrator goes to their own clinic)."""
    if not page.is_operator:
        assert page.viewer is not None
        return page.redirect(f"/console/clinics/{page.viewer.clinic_id}/")
    listed = healths(store, store.clinics.overview(), page.now)
    return page.render("clinics.html", clinics=listed, sections=SECTIONS)


def clinic_page(store: Store, page: Page, clinic_id: str) -> Response[str]:
    """GET /console/clinics/{id}/: the clinic's health in detail and its recent imports."""
    page.require_sight_of(clinic_id)
    overview = store.clinics.overview_of(clinic_id)  # the clinic's item, read once: the clinic and its overview
    if overview is None:
        raise not_found()
    page = page.with_clinic(overview.clinic)
    health = judge(overview, store.orders.waiting(clinic_id), page.now)
    imports: list[ImportEntry] = store.imports.recent(clinic_id, limit=RECENT_IMPORTS)
    return page.render("clinic.html", health=health, imports=imports)
