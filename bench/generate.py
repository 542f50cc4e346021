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


def document(clinic: Clinic, client_key: str, seed: int = 1, changed_share: float = 0.0) -> bytes:
    """The clinic's full export from its MIS; `changed_share` of the appointments moved (a later export)."""
    rng = random.Random(seed)
    change = random.Random(seed + 1)
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
    for a in range(clinic.appointments):
        resource, day = rng.randrange(clinic.resources), FIRST_DAY + dt.timedelta(days=rng.randrange(clinic.days))
        begins = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=15 * rng.randrange(44))
        if change.random() < changed_share:
            begins += dt.timedelta(minutes=15)
        title = f"{rng.choice(SURNAMES)} {chr(0x410 + rng.randrange(32))}. - приём"
        out.append(
            f'<a tablename="SchedEvent" id="{a}" resource_id="{resource}" '
            f'ReceptionDateTime="{begins:%d.%m.%Y %H:%M:%S}" Duration="{rng.choice([15, 30])}" Title="{title}"/>'
        )
    out += ["</Appointments>", "</MediExchange>"]
    return "\n".join(out).encode()
