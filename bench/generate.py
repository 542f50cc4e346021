"""Seeded, reproducible MediExchange documents of realistic clinics."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Clinic:
    name: str
    groups: int
    resources: int
    days: int
    schedules: int
    appointments: int
    orders: int


BIG = Clinic("big", groups=40, resources=500, days=31, schedules=15_500, appointments=100_000, orders=20_000)
TYPICAL = Clinic("typical", groups=10, resources=70, days=29, schedules=2_000, appointments=10_000, orders=2_000)
FIRST_DAY = dt.date(2031, 3, 3)
SURNAMES = ["Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Попова", "Васильев", "Новикова"]


def appointments(clinic: Clinic, rng: random.Random, churn: int, changed_share: float) -> list[tuple[int, str]]:
    """(id, element) of the clinic's appointments, in the document's order. `changed_share` of them are
    changed as an MIS changes them between two exports: half of those moved by 15 minutes, a quarter gone
    (cancelled), and a quarter's worth of new ones (ids after the last); `churn` seeds which and how."""
    change, extra = random.Random(churn), random.Random(churn + 1)
    out, new = [], 0
    for a in range(clinic.appointments):
        resource, day = rng.randrange(clinic.resources), FIRST_DAY + dt.timedelta(days=rng.randrange(clinic.days))
        begins = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=15 * rng.randrange(44))
        title = f"{rng.choice(SURNAMES)} {chr(0x410 + rng.randrange(32))}. - приём"
        duration = rng.choice([15, 30])
        kind = change.random() if change.random() < changed_share else 1.0  # < 0.5 moved, < 0.75 gone, else new
        if kind < 0.5:
            begins += dt.timedelta(minutes=15)
        elif kind < 0.75:
            continue
        elif kind < 1.0:
            new += 1
        out.append((a, _appointment(a, resource, begins, duration, title)))
    for a in range(clinic.appointments, clinic.appointments + new):
        resource, day = extra.randrange(clinic.resources), FIRST_DAY + dt.timedelta(days=extra.randrange(clinic.days))
        begins = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=15 * extra.randrange(44))
        title = f"{extra.choice(SURNAMES)} {chr(0x410 + extra.randrange(32))}. - приём"
        duration = extra.choice([15, 30])
        out.append((a, _appointment(a, resource, begins, duration, title)))
    return out


def _appointment(a: int, resource: int, begins: dt.datetime, duration: int, title: str) -> str:
    return (
        f'<a tablename="SchedEvent" id="{a}" resource_id="{resource}" '
        f'ReceptionDateTime="{begins:%d.%m.%Y %H:%M:%S}" Duration="{duration}" Title="{title}"/>'
    )


def document(clinic: Clinic, client_key: str, seed: int = 1, changed_share: float = 0.0, churn: int = 2) -> bytes:
    """The clinic's full export from its MIS; with `changed_share`, a later export with that share of the
    appointments changed (moved, gone, new: see `appointments`)."""
    rng = random.Random(seed)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<MediExchange ClientKey="{client_key}">', "<ResourceGroups>"]
    out += [f'<rg id="{g}" name="Отделение {g}" pos="{g}"/>' for g in range(clinic.groups)]
    out += ["</ResourceGroups>", "<Resources>"]
    for r in range(clinic.resources):
        step, group = rng.choice([15, 20, 30]), r % clinic.groups
        out.append(f'<r id="{r}" name="{rng.choice(SURNAMES)} {r}" time_step="{step}" group_id="{group}"/>')
    out += ["</Resources>", "<Schedules>"]
    for s in range(clinic.schedules):
        resource, day = s % clinic.resources, FIRST_DAY + dt.timedelta(days=s // clinic.resources % clinic.days)
        start = rng.choice(["8:00", "9:00", "14:00"])
        end = {"8:00": "14:00", "9:00": "18:00", "14:00": "20:00"}[start]
        pause = ' b_start="12:00" b_end="13:00"' if start == "9:00" else ""
        rules = f'<time_rules w_start="{start}" w_end="{end}"{pause}/>'
        out.append(f'<s id="{s}" date="{day:%d.%m.%Y}" resource_id="{resource}">{rules}</s>')
    out += ["</Schedules>", '<Appointments SyncMode="full">']
    out += [element for _, element in appointments(clinic, rng, churn, changed_share)]
    out += ["</Appointments>", "</MediExchange>"]
    return "\n".join(out).encode()


def diff_document(clinic: Clinic, client_key: str, churn: int, seed: int = 1, changed_share: float = 0.0) -> bytes:
    """What an MIS sends as `Appointments SyncMode="diff"` for `document(changed_share, churn)` after
    `document()`: the moved and the new appointments (a diff cannot say that one is gone)."""

    def elements(share: float) -> dict[int, str]:
        rng = random.Random(seed)  # the same draws as `document` makes before its appointments
        rng_skip(rng, clinic)
        return dict(appointments(clinic, rng, churn, share))

    before, after = elements(0.0), elements(changed_share)
    changed = [element for a, element in after.items() if before.get(a) != element]
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<MediExchange ClientKey="{client_key}">']
    out += ['<Appointments SyncMode="diff">', *changed, "</Appointments>", "</MediExchange>"]
    return "\n".join(out).encode()


def rng_skip(rng: random.Random, clinic: Clinic) -> None:
    """Advance `rng` past the draws `document` makes for resources and schedules."""
    for _ in range(clinic.resources):
        rng.choice([15, 20, 30])
        rng.choice(SURNAMES)
    for _ in range(clinic.schedules):
        rng.choice(["8:00", "9:00", "14:00"])
