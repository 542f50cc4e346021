"""A realistic clinic and its next import, and the clinic's whole stored state in comparable form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from mediexchange import portal
from mediexchange.protocol.sections import SYNCED
from mediexchange.records import Clinic, Lane
from mediexchange.slots import local_interval
from mediexchange.store import Store
from mediexchange.sync import holds_slot

from tests.conftest import SAMPLE_KEY

FIRST_DAY = dt.date.today() + dt.timedelta(days=3)
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(5)]


def ddmmyyyy(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def document(groups: range, resources: range, appointments: range, shift: int = 0, orders_xml: str = "") -> bytes:
    """Groups, resources (two per group), a 09:00-13:00 schedule per resource and day, appointments."""
    rows = ['<?xml version="1.0" encoding="UTF-8"?>', f'<MediExchange ClientKey="{SAMPLE_KEY}">', "<ResourceGroups>"]
    rows += [f'<rg id="{g}" name="Группа {g + shift}"/>' for g in groups]
    rows += ["</ResourceGroups>", "<Resources>"]
    rows += [f'<r id="{r}" name="Врач {r + shift}" time_step="30" group_id="{r // 2}"/>' for r in resources]
    rows += ["</Resources>", "<Schedules>"]
    for n, (r, day) in enumerate((r, day) for r in resources for day in DAYS):
        end = "13:00" if (n + shift) % 7 else "12:00"
        rows.append(
            f'<s id="{n}" date="{ddmmyyyy(day)}" resource_id="{r}"><time_rules w_start="9:00" w_end="{end}"/></s>'
        )
    rows += ["</Schedules>", '<Appointments SyncMode="full">']
    for a in appointments:
        resource, day = resources[a % len(resources)], DAYS[a % len(DAYS)]
        minute = 30 * ((a + shift * (a % 3 == 0)) % 8)
        start = dt.datetime.combine(day, dt.time(9)) + dt.timedelta(minutes=minute)
        rows.append(
            f'<a tablename="SchedEvent" id="{a}" resource_id="{resource}" '
            f'ReceptionDateTime="{start:%d.%m.%Y %H:%M:%S}" Duration="15" Title="Пациент {a}"/>'
        )
    rows += ["</Appointments>", orders_xml, "</MediExchange>"]
    return "\n".join(rows).encode()


BASELINE = document(range(5), range(10), range(60))


def book_orders(store: Store, clinic: Clinic) -> list[dict[str, Any]]:
    """Four patients book resource 0's and 1's free slots on the last day."""
    view = portal.clinic_view(store, clinic.clinic_id)
    ids = {r["mw_resource_id"]: r["resource_id"] for r in view["resources"]}
    booked = []
    for resource in (0, 1):
        free = portal.slots_view(
            store,
            clinic.clinic_id,
            {"resource_id": str(ids[resource]), "from": DAYS[-1].isoformat(), "to": DAYS[-1].isoformat()},
        )
        for slot in free["slots"][-2:]:
            body = {
                "resource_id": ids[resource],
                "reception_datetime": slot["start"][:16],
                "name1": "Пациентов",
                "phone": "+79990000000",
            }
            booked.append(portal.book(store, clinic.clinic_id, body))
    return booked


def next_document(booked: list[dict[str, Any]], tz: ZoneInfo) -> bytes:
    """Groups, resources, schedules and appointments changed in part; orders accepted, rejected, moved."""

    def stamp(order: dict[str, Any]) -> str:
        return dt.datetime.fromisoformat(order["last_changed"]).astimezone(tz).strftime("%d.%m.%Y %H:%M:%S")

    first, second, third, _ = booked
    moved = dt.datetime.fromisoformat(third["reception_datetime"]) - dt.timedelta(minutes=90)
    changes = (
        "<Orders>"
        f'<o id="{first["id"]}" status="1" LastChangedOn="{stamp(first)}"/>'
        f'<o id="{second["id"]}" status="3" LastChangedOn="{stamp(second)}"/>'
        f'<o id="{third["id"]}" status="1" LastChangedOn="{stamp(third)}" reception_datetime="{moved:%d.%m.%Y %H:%M:%S}"/>'
        '<o id="9999" status="1" LastChangedOn="01.01.2030 10:00:00"/>'
        "</Orders>"
    )
    return document(range(1, 6), range(2, 12), range(20, 80), shift=1, orders_xml=changes)


@dataclass(frozen=True)
class State:
    records: dict[tuple[str, str], str]
    identities: dict[int, int]
    orders: dict[int, tuple[Any, ...]]
    holds: dict[int, tuple[int, int]]


RESOURCES_EVER = range(12)  # every MIS resource id the baseline and the next document name


def state_of(store: Store, clinic: Clinic, order_ids: list[int]) -> State:
    records = {
        (section.name, key): digest
        for section in SYNCED
        for key, digest in store.records.hashes(clinic.clinic_id, section).items()
    }
    stored = store.orders.get_many(clinic.clinic_id, order_ids)
    held = {}
    for resource in RESOURCES_EVER:
        for order_id, interval in store.orders.held(clinic.clinic_id, resource, DAYS[0], DAYS[-1]).items():
            held[order_id] = (int(interval.start.timestamp()), int(interval.end.timestamp()))
    return State(
        records=records,
        identities=store.records.resource_ids(clinic.clinic_id),
        orders={
            i: (o.status, o.reception, o.duration, o.mw_resource_id, o.resource_id, o.resource_name)
            for i, o in stored.items()
        },
        holds=held,
    )


def holds_match_orders(store: Store, clinic: Clinic, order_ids: list[int]) -> bool:
    """The time every order holds is exactly what its own state says: changed together, always."""
    tz = ZoneInfo(clinic.timezone)
    expected = {}
    for order in store.orders.get_many(clinic.clinic_id, order_ids).values():
        if holds_slot(order.status):
            interval = local_interval(order.reception, order.duration, tz)
            expected[order.id] = (int(interval.start.timestamp()), int(interval.end.timestamp()))
    return state_of(store, clinic, order_ids).holds == expected


def never_poorer(now: State, before: State, clean: State) -> list[str]:
    """What a failed import may leave: every record old or new, deletions only once every write is in."""
    problems = []
    writes_done = all(now.records.get(key) == digest for key, digest in clean.records.items())
    for key in before.records.keys() | clean.records.keys():
        got = now.records.get(key)
        allowed = {before.records.get(key), clean.records.get(key)}
        if key not in clean.records and writes_done:
            allowed.add(None)
        if got not in allowed:
            problems.append(f"record {key}: {'missing' if got is None else 'unexpected content'}")
    for order_id, value in now.orders.items():
        if value not in (before.orders.get(order_id), clean.orders.get(order_id)):
            problems.append(f"order {order_id} is neither as before nor as after")
    if not (before.identities.items() <= now.identities.items() <= clean.identities.items()):
        problems.append("resource identities lost or changed")
    return problems


def the_worker_catches_up(store: Store, dynamodb: Any) -> None:
    """What production does after a failed import that could not record its failure: its request ends, its
    lease runs out, and the worker's message (every import has one) applies it. Time is moved on in the
    store (an hour: every lease run out, every request over) rather than waited for."""
    from functions.import_worker.app import lambda_handler as worker
    from tests.unit.conftest import FakeContext

    settings = store.settings
    for item in dynamodb.scan(TableName=settings.clinics_table, ConsistentRead=True)["Items"]:
        for lane in Lane:
            if f"{lane}_lease_expires" in item:
                dynamodb.update_item(
                    TableName=settings.clinics_table,
                    Key={"clinic_id": item["clinic_id"]},
                    UpdateExpression="SET #expires = :past",
                    ExpressionAttributeNames={"#expires": f"{lane}_lease_expires"},
                    ExpressionAttributeValues={":past": {"N": "0"}},
                )
    for item in dynamodb.scan(TableName=settings.imports_table, ConsistentRead=True)["Items"]:
        dynamodb.update_item(
            TableName=settings.imports_table,
            Key={"clinic_id": item["clinic_id"], "import_id": item["import_id"]},
            UpdateExpression="SET received_at = received_at - :hour",
            ExpressionAttributeValues={":hour": {"N": "3600"}},
        )
    sqs = boto3.client("sqs", region_name=settings.region)
    while messages := sqs.receive_message(QueueUrl=settings.import_queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            record = {"body": message["Body"], "messageId": message["MessageId"]}
            assert worker({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}
            sqs.delete_message(QueueUrl=settings.import_queue_url, ReceiptHandle=message["ReceiptHandle"])


def snapshot_items(client: Any) -> dict[str, list[dict[str, Any]]]:
    return {t: client.scan(TableName=t, ConsistentRead=True)["Items"] for t in client.list_tables()["TableNames"]}


def restore(client: Any, items: dict[str, list[dict[str, Any]]]) -> None:
    """Put every table back to a snapshot (small tables: a scan and single writes are enough)."""
    for table, wanted in items.items():
        description = client.describe_table(TableName=table)["Table"]
        key_names = [k["AttributeName"] for k in description["KeySchema"]]
        for item in client.scan(TableName=table, ConsistentRead=True)["Items"]:
            client.delete_item(TableName=table, Key={k: item[k] for k in key_names})
        for item in wanted:
            client.put_item(TableName=table, Item=item)


def digest_lies(store: Store, clinic: Clinic) -> list[str]:
    """Leaves whose stored digest is not that of their stored records, among those no dirty mark names:
    what must never be (a clean leaf's digest is what lets an import skip reading it)."""
    from mediexchange.sync import leaf_digests

    digests = store.records.digests(clinic.clinic_id)
    lies = []
    for section in SYNCED:
        stored = digests.sections.get(section.code)
        dirty = digests.dirty(section.code)
        if stored is None or dirty is None:
            continue  # read whole by the next import
        true = leaf_digests(store.records.hashes(clinic.clinic_id, section).items(), stored.buckets)
        wrong = [leaf for leaf, value in enumerate(true) if value != stored.values[leaf] and leaf not in dirty]
        lies += [f"{section.name} leaf {leaf}" for leaf in wrong]
    return lies


def to_legacy_layout(items: dict[str, list[dict[str, Any]]], records_table: str) -> dict[str, list[dict[str, Any]]]:
    """A snapshot as a stack from before the digests would hold it: record items keyed by their record key
    alone (no position, no `v`), and no digest items."""
    legacy = []
    for item in items[records_table]:
        if item["pk"]["S"].endswith("#DG"):
            continue
        if "v" in item:
            key = item["k"] if "k" in item else {"S": item["sk"]["S"][5:]}
            item = {**{k: v for k, v in item.items() if k not in ("v", "k")}, "sk": key}
        legacy.append(item)
    return {**items, records_table: legacy}
