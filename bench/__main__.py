"""`make bench`: the big and the typical clinic, every figure beside the baseline it is divided by,
all measured in the same run (these machines are noisy: ratios, not seconds, are what to compare).

Runs against a local store it starts (moto's server) or the one DYNAMODB_ENDPOINT_URL names.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from bench import console, cost, parse
from bench.generate import BIG, TYPICAL, Clinic, diff_document, document
from bench.units import Cost, Units, item_size

if TYPE_CHECKING:
    from mediexchange.config import Settings
    from mediexchange.records import Document
    from mediexchange.store import Store

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ROWS: list[tuple[str, str, str, str, str]] = []
MEASURED: dict[str, cost.Measured] = {}  # per clinic, for what it costs at scale


def row(figure: str, value: float, baseline: float | None, unit: str, target: str, ok: bool) -> None:
    ratio = f"{value / baseline:.2f}x" if baseline else "-"
    shown_baseline = f"{baseline:.3g} {unit}" if baseline is not None else "-"
    verdict = "met" if ok else "MISSED"
    ROWS.append((figure, f"{value:.3g} {unit}", shown_baseline, f"{ratio} (target {target})", verdict))
    print(f"  {figure}: {value:.3g} {unit}, baseline {shown_baseline}, {ratio} (target {target}) {verdict}", flush=True)


def env_for(endpoint: str, queue_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-central-1"),
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "IMPORT_QUEUE_URL": queue_url,
        "IMPORT_TIME_BUDGET_SECONDS": "1000000",  # measured imports run synchronously
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}",
    }


def import_once(path: Path, sizes: dict[str, float]) -> dict[str, Any]:
    """One import in a fresh interpreter (bench.import_once); `sizes`: each section's average item size."""
    env = {**os.environ, "BENCH_ITEM_SIZES": json.dumps(sizes)}
    done = subprocess.run(
        [PYTHON, "-m", "bench.import_once", str(path)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def item_sizes(store: Store, clinic_id: str, doc: Document) -> dict[str, float]:
    """{section code: average size of its items} as the store makes them from the document."""
    from mediexchange.protocol.sections import SYNCED

    sizes = {}
    for section in SYNCED:
        made = [item_size(item) for item in store.records.items_of(clinic_id, section, section.of(doc) or ())]
        if made:
            sizes[section.code] = sum(made) / len(made)
    return sizes


def best(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def parse_figures(data: bytes) -> None:
    """Side by side, alternating (bench.parse; `python -m bench.parse` prints this row alone)."""
    ours, plain = parse.measure(data, rounds=5)
    row(parse.FIGURE, ours, plain, "s", f"<= {parse.TARGET}x", ours <= parse.TARGET * plain)


def raw_client(settings: Settings) -> Any:
    """A plain boto3 client of the same store: what the raw baselines read and write with."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32)
    return boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config)


def read(data: bytes, tz_name: str) -> Document:
    from mediexchange.protocol.reading import read_document
    from mediexchange.protocol.xmlparse import parse_document
    from mediexchange.timeutil import zone

    return read_document(parse_document(data), zone(tz_name))


def document_items(store: Store, clinic_id: str, doc: Document) -> Iterator[dict[str, Any]]:
    """The items the document's synced records are stored as, for `clinic_id` (the store makes them)."""
    from mediexchange.protocol.sections import SYNCED

    for section in SYNCED:
        yield from store.records.items_of(clinic_id, section, section.of(doc) or ())


def baseline_write(store: Store, doc: Document, count: int) -> float:
    """Raw boto3 BatchWriteItem of the items the import writes (the same records, as the store makes
    their items, under a clinic id of their own), same store, same parallelism."""
    client, table = raw_client(store.settings), store.settings.records_table
    clinic_id = f"bl{secrets.token_hex(5)}"  # as long as a clinic's id: items of the same size
    items = [{"PutRequest": {"Item": item}} for item in document_items(store, clinic_id, doc)]
    assert len(items) == count, f"the baseline writes {len(items):,} items, the import wrote {count:,}"
    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]

    def write(chunk: list[dict[str, Any]]) -> None:
        pending = chunk
        while pending:
            pending = client.batch_write_item(RequestItems={table: pending}).get("UnprocessedItems", {}).get(table, [])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=store.settings.store_parallelism) as pool:
        list(pool.map(write, chunks))
    return time.perf_counter() - started


def seed_orders(store: Store, clinic_id: str, count: int, tz_name: str) -> tuple[int, int]:
    """`count` portal orders with their holds, loaded in bulk as a clinic moving from the original portal
    would be; returns the export window holding half of them."""
    from mediexchange.records import Order, OrderStatus
    from mediexchange.timeutil import zone

    ids = store.clinics.reserve_order_ids(clinic_id, count)  # as the portal would have, booking them
    first = 1_900_000_000
    orders = []
    for n, order_id in enumerate(ids, start=1):
        start = dt.datetime(2031, 3, 3, 8) + dt.timedelta(days=n % 31, minutes=15 * (n // 31 % 44))
        orders.append(
            Order(
                id=order_id,
                status=OrderStatus.RECEIVED,
                order_date=dt.date(2031, 3, 1),
                resource_id=n % 500 + 1,
                mw_resource_id=n % 500,
                resource_name=f"Врач {n % 500}",
                reception=start,
                duration=15,
                last_changed=first + n,
                name1="Пациентов",
                phone="+79990000000",
            )
        )
    store.orders.load(clinic_id, orders, zone(tz_name))
    return first + 1, first + count // 2


def raw_query_count(client: Any, **params: Any) -> int:
    """The baseline's way to read: plain boto3 Query pages, nothing made of the items but a count."""
    return sum(len(page["Items"]) for page in client.get_paginator("query").paginate(**params))


def export_figures(store: Store, clinic_key: str, clinic_id: str, window: tuple[int, int]) -> None:
    from mediexchange import exporting

    start, end = window
    client, table = raw_client(store.settings), store.settings.orders_table
    # The index the export reads, and its keys, as the store declares them.
    index = "by_last_changed"
    keys = store.schema()[table]["indexes"][index]
    clinic, changed = keys["HASH"], keys["RANGE"]

    def raw_query() -> None:
        found = raw_query_count(
            client,
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#c = :c AND #t BETWEEN :s AND :e",
            ExpressionAttributeNames={"#c": clinic, "#t": changed},
            ExpressionAttributeValues={":c": {"S": clinic_id}, ":s": {"N": str(start)}, ":e": {"N": str(end)}},
        )
        assert found == end - start + 1

    def export() -> None:
        body = exporting.export(store, {"client_key": clinic_key, "start": str(start), "end": str(end)}).body
        assert body.count(b"<o ") == end - start + 1

    ours, raw = [], []
    for _ in range(3):
        raw.append(best(1, raw_query))
        ours.append(best(1, export))
    row(f"export of {end - start + 1:,} orders", min(ours), min(raw), "s", "<= 1.2x", min(ours) <= 1.2 * min(raw))


def cold_import_figures(env: dict[str, str]) -> None:
    def fresh(statement: str) -> float:
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", statement], cwd=ROOT, env=env, check=True)
        return time.perf_counter() - started

    modules = [
        "functions.mis_import.app",
        "functions.mis_export.app",
        "functions.mis_status.app",
        "functions.portal.app",
        "functions.import_worker.app",
    ]
    base: list[float] = []
    times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(5):
        base.append(fresh("import boto3"))
        for module in modules:
            times[module].append(fresh(f"import {module}"))
    baseline = statistics.median(base)
    for module in modules:
        value = statistics.median(times[module])
        row(f"cold import of {module}", value, baseline, "s", "<= 2x", value <= 2 * baseline)


def clinic_figures(store: Store, clinic: Clinic, work: Path) -> None:
    from mediexchange.protocol.sections import SYNCED

    key = f"BENCH-{clinic.name.upper()}-{int(time.time())}"
    made = store.clinics.create(f"{clinic.name} clinic", "Europe/Moscow", key)
    first_doc, changed_doc = work / f"{clinic.name}-1.xml", work / f"{clinic.name}-2.xml"
    diff_doc = work / f"{clinic.name}-diff.xml"
    first_doc.write_bytes(document(clinic, key))
    changed_doc.write_bytes(document(clinic, key, changed_share=0.01))
    diff_doc.write_bytes(diff_document(clinic, key, churn=3, changed_share=0.01))  # another 1 %, other records
    window = seed_orders(store, made.clinic_id, clinic.orders, made.timezone) if clinic is BIG else None
    sent = read(first_doc.read_bytes(), made.timezone)
    sizes = item_sizes(store, made.clinic_id, sent)
    memory = cost.memory_mb("ImportFunction")

    print(f"{clinic.name} clinic: first import ...", flush=True)
    first = import_once(first_doc, sizes)
    items = first["written"]
    baseline = baseline_write(store, sent, items)
    row(
        f"{clinic.name}: first import, wall time ({items:,} items)",
        first["wall_s"],
        baseline,
        "s",
        "<= 1.3x",
        first["wall_s"] <= 1.3 * baseline,
    )
    requests = first["batch_write_requests"]
    row(
        f"{clinic.name}: data write requests of the first import",
        requests,
        items / 25,
        "calls",
        "<= 1.05x",
        requests <= 1.05 * items / 25,
    )
    share = first["largest_partition_share"]
    row(f"{clinic.name}: largest share of one partition key", share * 100, None, "%", "<= 5%", share <= 0.05)

    print(f"{clinic.name} clinic: identical re-import ...", flush=True)
    again = import_once(first_doc, sizes)
    row(
        f"{clinic.name}: identical re-import, items written",
        again["written"] + again["deleted"],
        None,
        "items",
        "0",
        again["written"] + again["deleted"] == 0,
    )
    row(
        f"{clinic.name}: identical re-import ÷ first import (time)",
        again["wall_s"],
        first["wall_s"],
        "s",
        "<= 0.1x",
        again["wall_s"] <= 0.1 * first["wall_s"],
    )
    read_items = Cost.of(again["units"]).items_read
    row(
        f"{clinic.name}: identical re-import: items read ÷ items stored",
        read_items,
        items,
        "items",
        "<= 0.01x",
        read_items <= 0.01 * items,
    )
    reading = read_hashes_raw(store, made.clinic_id, sent)
    row(
        f"{clinic.name}: identical re-import vs raw read of every stored hash (what it read before the digests)",
        again["wall_s"],
        reading,
        "s",
        "explains",
        True,
    )

    print(f"{clinic.name} clinic: full sync with 1% of appointments changed (moved, new, gone) ...", flush=True)
    changed = changed_appointments(sent, read(changed_doc.read_bytes(), made.timezone))
    moved = import_once(changed_doc, sizes)
    written = moved["written"] + moved["deleted"]
    row(
        f"{clinic.name}: 1% changed, items written ({changed:,} changed)",
        written,
        changed,
        "items",
        "<= 1.02x",
        written <= 1.02 * changed,
    )
    row(
        f"{clinic.name}: full sync with 1% of appointments changed ÷ first import (time)",
        moved["wall_s"],
        first["wall_s"],
        "s",
        "<= 0.25x",
        moved["wall_s"] <= 0.25 * first["wall_s"],
    )
    peaks = [first["peak_rss_mb"], again["peak_rss_mb"], moved["peak_rss_mb"]]
    peak = max(peaks)
    print(
        f"  {clinic.name}: peak RSS of the first, identical and 1% imports: {', '.join(f'{p:.0f}' for p in peaks)} MB"
    )
    row(
        f"{clinic.name}: peak memory (RSS, of the three imports) ÷ the import function's memory",
        peak,
        memory,
        "MB",
        "<= 0.6x",
        peak <= 0.6 * memory,
    )

    print(f"{clinic.name} clinic: appointments diff with 1% changed (for the cost) ...", flush=True)
    diff = import_once(diff_doc, sizes)
    print(
        f"  {clinic.name}: diff import of {diff['written'] + diff['deleted']:,} changed appointments: "
        f"{diff['wall_s']:.2f} s",
        flush=True,
    )
    if clinic is BIG:
        slots_figures(store, made.clinic_id, made.timezone)
    booking, export = booking_costs(store, clinic, key, made.clinic_id, window)
    MEASURED[clinic.name] = cost.Measured(
        records_table=store.settings.records_table,
        codes={section.name: section.code for section in SYNCED},
        first=(first["units"], first["wall_s"]),
        same=(again["units"], again["wall_s"]),
        churn=(moved["units"], moved["wall_s"]),
        diff=(diff["units"], diff["wall_s"]),
        booking=booking,
        export=export,
        schedules=clinic.schedules,
        days=clinic.days,
        bookings_per_day=clinic.orders / clinic.days,
    )
    if window is not None:
        export_figures(store, key, made.clinic_id, window)
    if clinic is BIG:  # the console's pages (bench.console), last: it imports the document again
        console.figures(store, made.clinic_id, key, console.row_with(row))


SLOTS_RESOURCE = 7  # the MIS id of the resource whose slots are asked for (it has seeded orders' holds)
SLOTS_FROM, SLOTS_TO = dt.date(2031, 3, 3), dt.date(2031, 4, 2)  # 31 days, the portal's longest request


def slots_figures(store: Store, clinic_id: str, tz_name: str) -> None:
    """Free slots of one resource for 31 days (the portal's use case, as its handler calls it) beside a raw
    boto3 Query of that resource's schedules and appointments on the by_resource index and of its holds."""
    from mediexchange import portal
    from mediexchange.protocol.sections import APPOINTMENTS, SCHEDULES

    client, records, holds = raw_client(store.settings), store.settings.records_table, store.settings.holds_table
    schema = store.schema()
    [(index, keys)] = schema[records]["indexes"].items()
    hold_keys = schema[holds]["keys"]
    portal_id = store.records.resource_ids(clinic_id)[SLOTS_RESOURCE]
    before = SLOTS_FROM - dt.timedelta(days=1)  # the day before, as the use case reads it
    params = {"resource_id": str(portal_id), "from": SLOTS_FROM.isoformat(), "to": SLOTS_TO.isoformat()}

    def raw_query() -> None:
        found = 0
        for section, last in ((SCHEDULES, SLOTS_TO.isoformat()), (APPOINTMENTS, f"{SLOTS_TO}T99")):
            found += raw_query_count(
                client,
                TableName=records,
                IndexName=index,
                KeyConditionExpression="#r = :r AND #a BETWEEN :f AND :l",
                ExpressionAttributeNames={"#r": keys["HASH"], "#a": keys["RANGE"]},
                ExpressionAttributeValues={
                    ":r": {"S": f"{clinic_id}#{SLOTS_RESOURCE}"},
                    ":f": {"S": f"{section.code}#{before}"},
                    ":l": {"S": f"{section.code}#{last}"},
                },
            )
        held = raw_query_count(
            client,
            TableName=holds,
            KeyConditionExpression="#p = :p AND #d BETWEEN :f AND :l",
            ExpressionAttributeNames={"#p": hold_keys["HASH"], "#d": hold_keys["RANGE"]},
            ExpressionAttributeValues={
                ":p": {"S": f"{clinic_id}#{SLOTS_RESOURCE}"},
                ":f": {"S": before.isoformat()},
                ":l": {"S": SLOTS_TO.isoformat()},
            },
            ConsistentRead=True,
        )
        assert found > 31 and held > 0, (found, held)

    def slots() -> None:
        assert portal.slots_view(store, clinic_id, params)["slots"]

    ours, raw = [], []
    for _ in range(3):  # on moto an index query reads the whole table: seconds each
        raw.append(best(1, raw_query))
        ours.append(best(1, slots))
    figure = "big: free slots of one resource for 31 days ÷ a raw query of its items"
    row(figure, min(ours), min(raw), "s", "<= 2x", min(ours) <= 2 * min(raw))


BOOKINGS = 2  # measured per clinic: on moto each booking's index queries read the whole table (seconds each)


def booking_costs(
    store: Store, clinic: Clinic, key: str, clinic_id: str, seeded: tuple[int, int] | None
) -> tuple[tuple[dict[str, Any], float], tuple[dict[str, Any], float]]:
    """Units and time of one booking (the portal's use case, BOOKINGS of them) and of one export of half an
    hour's orders at the bench's booking rate (the seeded orders over the seeded days: the first of the
    `seeded` ones, or the orders just booked if none were seeded), on the clinic just imported."""
    from mediexchange import exporting, portal

    units = Units(store.settings.records_table, active=False)
    store.instrument("before-parameter-build.*.*", units.before)
    store.instrument("after-call.*.*", units.after)
    portal_id = store.records.resource_ids(clinic_id)[SLOTS_RESOURCE]
    params = {"resource_id": str(portal_id), "from": "2031-03-10", "to": "2031-03-12"}
    free = portal.slots_view(store, clinic_id, params)["slots"]
    count, half_hour = BOOKINGS, max(1, round(clinic.orders / clinic.days / 48))
    assert len(free) >= count, "not enough free slots to book"
    since = int(time.time())
    units.active = True
    started = time.perf_counter()
    for slot in free[:count]:
        body = {
            "resource_id": portal_id,
            "reception_datetime": slot["start"],
            "name1": "Бенчев",
            "phone": "+79990000001",
        }
        portal.book(store, clinic_id, body)
    booked = time.perf_counter() - started
    per_booking = units.summary()
    per_booking["tallies"] = [[*t[:3], t[3] / count, t[4] / count, t[5] / count] for t in per_booking["tallies"]]
    per_booking["calls"] = {name: n / count for name, n in per_booking["calls"].items()}
    units.reset()
    started = time.perf_counter()
    start, end = (seeded[0], seeded[0] + half_hour - 1) if seeded else (since - 1, int(time.time()) + 1)
    answer = exporting.export(store, {"client_key": key, "start": str(start), "end": str(end)}).body
    exported = time.perf_counter() - started
    units.active = False
    orders = answer.count(b"<o ")
    assert orders >= (half_hour if seeded else count), answer[:500]
    print(
        f"  {clinic.name}: {count} bookings {booked / count:.3f} s each; an export of {orders} orders "
        f"(half an hour's at {clinic.orders / clinic.days:.0f} bookings a day) {exported:.3f} s",
        flush=True,
    )
    return (per_booking, booked / count), (units.summary(), exported)


def read_hashes_raw(store: Store, clinic_id: str, doc: Document) -> float:
    """What an identical re-import cannot avoid: reading every stored record's hash (raw boto3 queries
    of every partition the document's records are kept in)."""
    client, table = raw_client(store.settings), store.settings.records_table
    keys = store.schema()[table]["keys"]
    partition, sort = keys["HASH"], keys["RANGE"]
    partitions = sorted({item[partition]["S"] for item in document_items(store, clinic_id, doc)})

    def query(value: str) -> int:
        return raw_query_count(
            client,
            TableName=table,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": partition, "#s": sort},
            ExpressionAttributeValues={":p": {"S": value}},
            ProjectionExpression="#s, h",  # the key and the content hash, as the import reads them
            ConsistentRead=True,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=store.settings.store_parallelism) as pool:
        list(pool.map(query, partitions))
    return time.perf_counter() - started


def changed_appointments(before: Document, after: Document) -> int:
    from mediexchange.protocol.sections import APPOINTMENTS
    from mediexchange.sync import desired

    def hashes(doc: Document) -> dict[str, str]:
        return {key: wanted.digest for key, wanted in desired(APPOINTMENTS, APPOINTMENTS.of(doc) or ()).items()}

    old, new = hashes(before), hashes(after)
    return sum(1 for key, digest in new.items() if old.get(key) != digest) + sum(1 for key in old if key not in new)


def through_make_run(work: Path) -> None:
    """The big clinic's document, gzipped, through `make run`'s server, followed with status.php."""
    from lxml import etree

    from devserver.server import free_port

    port = free_port()
    # make run as a newcomer starts it: its own store, the template's time budget
    own = ("DYNAMODB_ENDPOINT_URL", "IMPORT_QUEUE_URL", "IMPORT_TIME_BUDGET_SECONDS", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in own}
    server = subprocess.Popen(
        [PYTHON, "-m", "devserver"],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        printed: dict[str, str] = {}
        while len(printed) < 2:
            name, _, value = server.stdout.readline().strip().partition("=")
            if name in ("DYNAMODB_ENDPOINT_URL", "PORTAL_API_KEY"):
                printed[name] = value
        cli = subprocess.run(
            [str(Path(PYTHON).parent / "mediexchange"), "clinic", "create", "--name", "Big clinic", "--json"],
            env={**env, "DYNAMODB_ENDPOINT_URL": printed["DYNAMODB_ENDPOINT_URL"]},
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(cli.stdout.strip().splitlines()[-1])["client_key"]
        body = gzip.compress(document(BIG, key))
        started = time.perf_counter()
        request = Request(
            f"http://127.0.0.1:{port}/services/import.php",
            data=body,
            headers={"Content-Type": "application/xml", "Content-Encoding": "gzip"},
        )
        with urlopen(request, timeout=120) as answer:
            accepted = answer.status, answer.read()
        answered = time.perf_counter() - started
        assert accepted[0] == 202, accepted
        import_id = accepted[1].split(b'import_id="')[1].split(b'"')[0].decode()
        state = "running"
        while state in ("queued", "running") and time.perf_counter() - started < 1800:  # the worker takes it 30 s on
            time.sleep(2)
            with urlopen(
                f"http://127.0.0.1:{port}/services/status.php?{urlencode({'client_key': key, 'import_id': import_id})}"
            ) as answer:
                status = answer.read()
            state = status.split(b'state="')[1].split(b'"')[0].decode()
        finished = time.perf_counter() - started
        size = f"{len(body) / 1e6:.1f} MB gzipped"
        print(f"  make run: {size} -> 202 in {answered:.1f} s, status.php '{state}' after {finished:.0f} s", flush=True)
        # The final ImportResult, read by its attributes (an answer may grow attributes the check is not about).
        appointments = etree.fromstring(status).find("import/ImportResult/Appointments")
        wanted = {"mode": "full", "received": "100000", "written": "100000", "deleted": "0"}
        got = {name: appointments.get(name) for name in wanted} if appointments is not None else {}
        ok = state == "done" and got == wanted
        if not ok:
            print(f"  make run: unexpected answer: {status.decode()[:2000]}", flush=True)
        ROWS.append(
            (
                "big: gzipped through make run, 202 then status.php",
                f"202 in {answered:.1f} s, done in {finished:.0f} s",
                "-",
                "final ImportResult",
                "met" if ok else "MISSED",
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextmanager
def bench_store() -> Iterator[dict[str, str]]:
    """The store the figures are measured on, its environment set in os.environ (and given): the one
    DYNAMODB_ENDPOINT_URL names, or a local moto server (`bench.store`, as `make run`'s), stopped after."""
    given = os.environ.get("DYNAMODB_ENDPOINT_URL")
    local = None
    if given:
        endpoint, queue_url = given, os.environ.get("IMPORT_QUEUE_URL", "")
    else:
        local = subprocess.Popen(
            [PYTHON, "-m", "bench.store"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": env_for("", "")["PYTHONPATH"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert local.stdout is not None
        endpoint, queue_url = local.stdout.readline().strip(), local.stdout.readline().strip()
    env = env_for(endpoint, queue_url)
    os.environ.update(env)
    try:
        yield env
    finally:
        if local is not None:
            local.terminate()


def main() -> None:
    from mediexchange.config import Settings
    from mediexchange.store import Store

    given = os.environ.get("DYNAMODB_ENDPOINT_URL")
    started = time.time()
    with bench_store() as env, tempfile.TemporaryDirectory() as folder:
        store = Store(Settings.from_env())  # as the functions build theirs, from the environment just set
        work = Path(folder)
        if os.environ.get("BENCH_SKIP_PARSE_AND_COLD") != "1":  # for a quick look at the clinics alone
            print("parse + validate ...", flush=True)
            parse_figures(document(BIG, "BENCH"))
            print("cold imports ...", flush=True)
            cold_import_figures(env)
        only = os.environ.get("BENCH_CLINICS", "typical,big").split(",")
        for clinic in (c for c in (TYPICAL, BIG) if c.name in only):
            clinic_figures(store, clinic, work)
        if not given and os.environ.get("BENCH_SKIP_MAKE_RUN") != "1":
            print("big document through make run ...", flush=True)
            through_make_run(work)
    print()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    took = f"{time.time() - started:.0f} s"
    print(f"MediExchange benchmark, {dt.date.today()}, {machine}, store {given or 'moto server'}, {took}")
    widths = [max(len(r[i]) for r in ROWS) for i in range(5)]
    header = ("figure", "value", "baseline", "ratio", "")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in ROWS:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print()
    print("What it costs at scale (bench/cost.py: the seed's cadence, units and durations measured above)")
    for line in cost.table(MEASURED.get("big"), MEASURED.get("typical")):
        print(line)


if __name__ == "__main__":
    main()
