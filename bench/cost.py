"""What it costs at scale: a month of one clinic's syncs, bookings and exports on the seed's cadence,
priced at on-demand list prices, from the units and durations `make bench` measured.

The cadence (SPEC section 4, the seed's recommended MIS cycle): Resources and Schedules once a day,
`Appointments diff` every 30 minutes, an `Appointments full` sync every hour, orders exported every 30
minutes; bookings at the bench's rate (the seeded orders: `Clinic.orders` over `Clinic.days`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.units import Cost

# On-demand list prices, eu-central-1 (Frankfurt), USD, as published on aws.amazon.com/dynamodb/pricing/
# (on-demand, after the 2024-11-01 price cut), /lambda/pricing/ (Arm, first tier), /sqs/pricing/ and
# /s3/pricing/ (S3 Standard); written down 2026-11-30, not fetched by the bench. Free tiers are ignored.
PRICES_AS_OF = "2026-11-30"
PRICES_REGION = "eu-central-1"
DYNAMODB_PER_MILLION_WRU = 0.7625
DYNAMODB_PER_MILLION_RRU = 0.1525
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
SQS_FIFO_PER_MILLION_REQUESTS = 0.50
S3_PUT_PER_THOUSAND = 0.0054

HOURS_PER_MONTH = 730  # AWS's own convention for a month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
TYPICAL_CLINICS = 10_000
# Each import sends one SQS message (import.php hands every import to the worker too); the worker's
# event source receives and deletes it (3 FIFO requests) and the worker is invoked once, finds the
# import finished and returns (its few milliseconds are not counted).
SQS_REQUESTS_PER_MESSAGE = 3

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def function_setting(name: str, setting: str, template: Path = TEMPLATE) -> str:
    """A function's property as deployed: its own (`Resources.<name>.Properties.<setting>`), else the
    template's `Globals.Function.<setting>`. Read line by line (the template's tags, !Ref and the like,
    are not YAML a plain loader reads); the setting must be a scalar on one line."""
    lines = template.read_text().splitlines()

    def block(path: list[str]) -> list[str] | None:
        found, indent = lines, -1
        for part in path:
            start = next(
                (
                    i
                    for i, line in enumerate(found)
                    if line.strip() == f"{part}:" and len(line) - len(line.lstrip()) > indent
                ),
                None,
            )
            if start is None:
                return None
            indent = len(found[start]) - len(found[start].lstrip())
            end = next(
                (
                    i
                    for i in range(start + 1, len(found))
                    if found[i].strip()
                    and not found[i].lstrip().startswith("#")
                    and len(found[i]) - len(found[i].lstrip()) <= indent
                ),
                len(found),
            )
            found = found[start + 1 : end]
        return found

    for path in (["Resources", name, "Properties"], ["Globals", "Function"]):
        body = block(path)
        if body is None:
            continue
        indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        for line in body:
            match = re.fullmatch(rf" {{{indent}}}{setting}:\s*(.+?)\s*(#.*)?", line)
            if match:
                return match.group(1)
    raise LookupError(f"{name} has no {setting} in {template.name}, nor do the Globals")


def memory_mb(function: str) -> int:
    return int(function_setting(function, "MemorySize"))


@dataclass(frozen=True)
class Month:
    """A month of one clinic (or of many: multiply), in request units, Lambda and requests."""

    cost: Cost
    gb_seconds: float
    lambda_requests: float
    sqs_requests: float

    def __add__(self, other: Month) -> Month:
        return Month(
            self.cost + other.cost,
            self.gb_seconds + other.gb_seconds,
            self.lambda_requests + other.lambda_requests,
            self.sqs_requests + other.sqs_requests,
        )

    def __mul__(self, times: float) -> Month:
        return Month(
            self.cost * times, self.gb_seconds * times, self.lambda_requests * times, self.sqs_requests * times
        )

    def dollars(self) -> float:
        return (
            self.cost.wru / 1e6 * DYNAMODB_PER_MILLION_WRU
            + self.cost.rru / 1e6 * DYNAMODB_PER_MILLION_RRU
            + self.gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
            + self.lambda_requests / 1e6 * LAMBDA_PER_MILLION_REQUESTS
            + self.sqs_requests / 1e6 * SQS_FIFO_PER_MILLION_REQUESTS
            + self.cost.s3_puts / 1e3 * S3_PUT_PER_THOUSAND
        )


def imports(cost: Cost, seconds: float, times: float, memory: int) -> Month:
    """`times` imports, each costing `cost` and running `seconds` in a function of `memory` MB."""
    return Month(
        cost * times,
        seconds * memory / 1024 * times,
        2 * times,  # import.php, then the worker the message reaches
        SQS_REQUESTS_PER_MESSAGE * cost.sqs_sends * times,
    )


def calls(cost: Cost, seconds: float, times: float, memory: int) -> Month:
    """`times` requests of a function (a booking, an export) of `memory` MB."""
    return Month(cost * times, seconds * memory / 1024 * times, times, 0.0)


@dataclass(frozen=True)
class Measured:
    """What `make bench` measured for one clinic: each import's units summary and wall time."""

    records_table: str
    codes: Mapping[str, str]  # section name -> section code (ResourceGroups -> G, ...)
    first: tuple[Mapping[str, object], float]
    same: tuple[Mapping[str, object], float]
    churn: tuple[Mapping[str, object], float]
    diff: tuple[Mapping[str, object], float]
    booking: tuple[Mapping[str, object], float]  # one booking
    export: tuple[Mapping[str, object], float]  # one export of half an hour's orders
    schedules: int
    days: int
    bookings_per_day: float


def month(m: Measured, naive: bool) -> Month:
    """One clinic's month on the seed's cadence; `naive`: every sync rewrites all it sends, reading nothing."""
    parts = list(activities(m, naive).values())
    return sum(parts[1:], parts[0])


def activities(m: Measured, naive: bool) -> dict[str, Month]:
    """One clinic's month, by what it does."""
    code = m.codes
    table = m.records_table
    import_mb, portal_mb, export_mb = (
        memory_mb("ImportFunction"),
        memory_mb("PortalFunction"),
        memory_mb("ExportFunction"),
    )

    def part(summary: Mapping[str, object], names: tuple[str, ...], kinds: frozenset[str] | None = None) -> Cost:
        sections = frozenset(code.get(n, n) for n in names)
        return Cost.of(summary, table, sections, kinds or frozenset({"read", "write", "delete"}))

    everything = ("ResourceGroups", "Resources", "Schedules", "Appointments", "RID")

    def overhead(summary: Mapping[str, object]) -> Cost:
        """What any import costs besides its records: the import log, the clinic, S3, SQS."""
        return Cost.of(summary) - part(summary, everything)

    first, first_s = m.first
    same, same_s = m.same
    churn, churn_s = m.churn
    diff, diff_s = m.diff
    # An import's time, split among the sections by the items it reads (as built) or writes (naive).
    weigh = first if naive else same
    total = part(weigh, everything)
    share = {
        name: (
            part(weigh, (name,)).wru / max(1.0, total.wru)
            if naive
            else part(weigh, (name,)).items_read / max(1.0, total.items_read)
        )
        for name in everything
    }
    sync_s = first_s if naive else same_s
    # Appointments diff, every 30 minutes, as measured (1 % churn: the moved and the new ones).
    # Appointments full, hourly: the churn came with the diff sent at the same moment; what is gone only
    # a full sync can delete. Resources are read to check references.
    # Resources and Schedules, daily: a month ahead, so each day one day's schedules are new and one day's
    # are gone, each written and deleted at the size the first import wrote them.
    schedule = part(first, ("Schedules",), frozenset({"write"})) * (1 / m.schedules)
    day = m.schedules / m.days
    if naive:  # every sync puts every record it sends, reading nothing (and so deleting nothing)
        diff_cost = overhead(diff) + part(diff, ("Appointments",), frozenset({"write"}))
        full = overhead(same) + part(first, ("Appointments",), frozenset({"write"}))
        daily = overhead(same) + part(first, ("ResourceGroups", "Resources", "Schedules"), frozenset({"write"}))
    else:
        diff_cost = Cost.of(diff)
        # With the digests a full sync reads the leaves that differ: those the diff's churn left to it (what
        # is gone) and no others. Taken as the measured full sync with 1 % churn, less the writes the diff
        # made already: its reads (digests, leaves), its deletes and its digest writes.
        full = overhead(churn) + part(churn, ("Appointments", "Resources"), frozenset({"read", "delete"}))
        daily = overhead(same) + part(same, ("ResourceGroups", "Resources", "Schedules", "RID")) + schedule * (2 * day)
    if naive:
        full_s = sync_s * (share["Appointments"] + share["Resources"])
        daily_s = sync_s * (share["ResourceGroups"] + share["Resources"] + share["Schedules"] + share["RID"])
    else:  # as measured: the full sync with 1 % churn, and the identical re-import of everything
        full_s, daily_s = churn_s, same_s
    booking, booking_s = m.booking
    export, export_s = m.export
    return {
        "diffs": imports(diff_cost, diff_s, 2 * HOURS_PER_MONTH, import_mb),
        "full syncs": imports(full, full_s, HOURS_PER_MONTH, import_mb),
        "schedules": imports(daily, daily_s, DAYS_PER_MONTH, import_mb),
        "bookings": calls(Cost.of(booking), booking_s, m.bookings_per_day * DAYS_PER_MONTH, portal_mb),
        "exports": calls(Cost.of(export), export_s, 2 * HOURS_PER_MONTH, export_mb),
    }


def table(big: Measured | None, typical: Measured | None) -> list[str]:
    """The cost table's lines: one big clinic and 10,000 typical clinics, now and naive."""
    header = ("a month of", "way", "RRU", "WRU", "Lambda GB-s", "Lambda req", "SQS req", "S3 PUT", "USD")
    rows: list[tuple[str, ...]] = []
    for name, measured, times in (
        ("1 big clinic", big, 1),
        (f"{TYPICAL_CLINICS:,} typical clinics", typical, TYPICAL_CLINICS),
    ):
        if measured is None:
            continue
        for naive in (False, True):
            m = month(measured, naive) * times
            rows.append(
                (
                    name,
                    "naive rewrite" if naive else "as built",
                    f"{m.cost.rru:,.0f}",
                    f"{m.cost.wru:,.0f}",
                    f"{m.gb_seconds:,.0f}",
                    f"{m.lambda_requests:,.0f}",
                    f"{m.sqs_requests:,.0f}",
                    f"{m.cost.s3_puts:,.0f}",
                    f"{m.dollars():,.2f}",
                )
            )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for name, measured, times in (("1 big clinic", big, 1), (f"{TYPICAL_CLINICS:,} typical", typical, TYPICAL_CLINICS)):
        if measured is not None:
            parts = activities(measured, naive=False)
            where = ", ".join(
                f"{what} ${part.dollars() * times:,.2f} ({part.gb_seconds * times:,.0f} GB-s)"
                for what, part in parts.items()
            )
            lines.append(f"{name}, as built, by activity: {where}")
    lines.append(
        f"prices ({PRICES_REGION}, on-demand list, as of {PRICES_AS_OF}): DynamoDB ${DYNAMODB_PER_MILLION_WRU}/M WRU, "
        f"${DYNAMODB_PER_MILLION_RRU}/M RRU; Lambda arm64 ${LAMBDA_ARM64_PER_GB_SECOND:.10f}/GB-s, "
        f"${LAMBDA_PER_MILLION_REQUESTS}/M requests; SQS FIFO ${SQS_FIFO_PER_MILLION_REQUESTS}/M requests; "
        f"S3 PUT ${S3_PUT_PER_THOUSAND}/1,000"
    )
    return lines
