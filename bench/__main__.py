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
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from bench.generate import BIG, TYPICAL, Clinic, document

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ROWS: list[tuple[str, str, str, str, str]] = []


def row(figure: str, value: float, baseline: float | None, unit: str, target: str, ok: bool) -> None:
    ratio = f"{value / baseline:.2f}x" if baseline else "-"
    shown_baseline = f"{baseline:.3g} {unit}" if baseline is not None else "-"
    ROWS.append(
        (figure, f"{value:.3g} {unit}", shown_baseline, f"{ratio} (target {target})", "met" if ok else "MISSED")
    )
    print(f"  {figure}: {value:.3g} {unit}, baseline {shown_baseline}, {ratio}", flush=True)


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


def import_once(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "bench.import_once", str(path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def best(runs: int, action: Any) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def parse_figures(data: bytes) -> None:
    from lxml import etree
    from mediexchange.protocol.reading import read_document
    from mediexchange.protocol.xmlparse import parse_document
    from mediexchange.timeutil import zone

    plain, ours = [], []
    for _ in range(3):  # side by side, alternating
        plain.append(best(1, lambda: etree.fromstring(data)))
        ours.append(best(1, lambda: read_document(parse_document(data), zone("Europe/Moscow"))))
    row("parse + validate, big document", min(ours), min(plain), "s", "<= 2.5x", min(ours) <= 2.5 * min(plain))


def baseline_write(count: int, parallelism: int) -> float:
    """Raw boto3 BatchWriteItem of `count` items like the import's, same store, same parallelism."""
    from mediexchange.store.batch import dynamodb_client
    from mediexchange.store.models import RecordModel

    client, table = dynamodb_client(), RecordModel.Meta.table_name
    payload = "x" * 180  # about the size of an appointment's content
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": f"baseline#A#{n % 32}"},
                    "sk": {"S": f"T#{n}"},
                    "h": {"S": "0" * 32},
                    "d": {"S": payload},
                }
            }
        }
        for n in range(count)
    ]
    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]

    def write(chunk: list[dict[str, Any]]) -> None:
        pending = chunk
        while pending:
            pending = client.batch_write_item(RequestItems={table: pending}).get("UnprocessedItems", {}).get(table, [])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(write, chunks))
    return time.perf_counter() - started


def seed_orders(clinic_id: str, count: int, tz_name: str) -> tuple[int, int]:
    """`count` portal orders with their holds, written straight to the tables; returns the export window
    holding half of them."""
    from mediexchange.records import Order, OrderStatus
    from mediexchange.store.batch import put_request, write_all
    from mediexchange.store.clinics import allocate_ids
    from mediexchange.store.holds import hold_of
    from mediexchange.store.models import HoldDayModel, OrderModel
    from mediexchange.store.orders import to_model
    from mediexchange.timeutil import zone

    allocate_ids(clinic_id, "next_order_id", count)  # as the portal would have, booking them
    tz, first = zone(tz_name), 1_900_000_000
    orders, days = [], {}
    for n in range(1, count + 1):
        start = dt.datetime(2031, 3, 3, 8) + dt.timedelta(days=n % 31, minutes=15 * (n // 31 % 44))
        order = Order(
            n,
            OrderStatus.RECEIVED,
            dt.date(2031, 3, 1),
            n % 500 + 1,
            n % 500,
            f"Врач {n % 500}",
            start,
            15,
            first + n,
            name1="Пациентов",
            phone="+79990000000",
        )
        orders.append(put_request(to_model(clinic_id, order).serialize()))
        hold = hold_of(order, tz)
        assert hold is not None
        key = (f"{clinic_id}#{hold.mis_resource_id}", hold.day.isoformat())
        days.setdefault(key, {})[str(n)] = [int(hold.interval.start.timestamp()), int(hold.interval.end.timestamp())]
    write_all(OrderModel.Meta.table_name, orders)
    write_all(
        HoldDayModel.Meta.table_name,
        [put_request(HoldDayModel(pk, day, holds=h, version=1).serialize()) for (pk, day), h in days.items()],
    )
    return first + 1, first + count // 2


def raw_query_count(**params: Any) -> int:
    """The baseline's way to read: plain boto3 Query pages, nothing made of the items but a count."""
    from mediexchange.store.batch import dynamodb_client

    return sum(len(page["Items"]) for page in dynamodb_client().get_paginator("query").paginate(**params))


def export_figures(clinic_key: str, clinic_id: str, window: tuple[int, int]) -> None:
    from mediexchange import exporting
    from mediexchange.store.models import OrderModel

    start, end = window

    def raw_query() -> None:
        found = raw_query_count(
            TableName=OrderModel.Meta.table_name,
            IndexName="by_last_changed",
            KeyConditionExpression="clinic_id = :c AND last_changed BETWEEN :s AND :e",
            ExpressionAttributeValues={":c": {"S": clinic_id}, ":s": {"N": str(start)}, ":e": {"N": str(end)}},
        )
        assert found == end - start + 1

    def export() -> None:
        body, _ = exporting.export_orders({"client_key": clinic_key, "start": str(start), "end": str(end)})
        assert body.count(b"<o ") == end - start + 1

    ours, raw = [], []
    for _ in range(3):
        raw.append(best(1, raw_query))
        ours.append(best(1, export))
    row(f"export of {end - start + 1:,} orders", min(ours), min(raw), "s", "<= 2x", min(ours) <= 2 * min(raw))


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
    base, times = [], {m: [] for m in modules}
    for _ in range(5):
        base.append(fresh("import boto3"))
        for module in modules:
            times[module].append(fresh(f"import {module}"))
    baseline = statistics.median(base)
    for module in modules:
        value = statistics.median(times[module])
        row(f"cold import of {module}", value, baseline, "s", "<= 2x", value <= 2 * baseline)


def clinic_figures(clinic: Clinic, work: Path, parallelism: int) -> None:
    from mediexchange.store import clinics

    key = f"BENCH-{clinic.name.upper()}-{int(time.time())}"
    made = clinics.create_clinic(f"{clinic.name} clinic", "Europe/Moscow", key)
    first_doc, changed_doc = work / f"{clinic.name}-1.xml", work / f"{clinic.name}-2.xml"
    first_doc.write_bytes(document(clinic, key))
    changed_doc.write_bytes(document(clinic, key, changed_share=0.01))
    if clinic is BIG:
        window = seed_orders(made.clinic_id, clinic.orders, made.timezone)

    print(f"{clinic.name} clinic: first import ...", flush=True)
    first = import_once(first_doc)
    items = first["written"]
    baseline = baseline_write(items, parallelism)
    row(
        f"{clinic.name}: first import, wall time ({items:,} items)",
        first["wall_s"],
        baseline,
        "s",
        "<= 1.5x",
        first["wall_s"] <= 1.5 * baseline,
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
    row(
        f"{clinic.name}: peak memory of the first import",
        first["peak_rss_mb"],
        None,
        "MB RSS",
        "< 512 MB",
        first["peak_rss_mb"] < 512,
    )
    share = first["largest_partition_share"]
    row(f"{clinic.name}: largest share of one partition key", share * 100, None, "%", "<= 5%", share <= 0.05)

    print(f"{clinic.name} clinic: identical re-import ...", flush=True)
    again = import_once(first_doc)
    row(
        f"{clinic.name}: identical re-import, items written",
        again["written"] + again["deleted"],
        None,
        "items",
        "0",
        again["written"] + again["deleted"] == 0,
    )
    row(
        f"{clinic.name}: identical re-import, wall time",
        again["wall_s"],
        first["wall_s"],
        "s",
        "<= 0.2x",
        again["wall_s"] <= 0.2 * first["wall_s"],
    )
    reading = read_hashes_raw(made.clinic_id, parallelism)
    row(
        f"{clinic.name}: identical re-import vs raw read of the stored hashes",
        again["wall_s"],
        reading,
        "s",
        "explains",
        True,
    )

    print(f"{clinic.name} clinic: full re-import with 1% changed ...", flush=True)
    changed = changed_appointments(first_doc.read_bytes(), changed_doc.read_bytes())
    moved = import_once(changed_doc)
    written = moved["written"] + moved["deleted"]
    row(
        f"{clinic.name}: 1% changed, items written ({changed:,} changed)",
        written,
        changed,
        "items",
        "<= 1.02x",
        written <= 1.02 * changed,
    )
    if clinic is BIG:
        export_figures(key, made.clinic_id, window)


def read_hashes_raw(clinic_id: str, parallelism: int) -> float:
    """What an identical re-import cannot avoid: reading every stored record's hash (raw boto3 queries)."""
    from mediexchange.store.models import RecordModel
    from mediexchange.store.records import Kind

    def read(partition: str) -> int:
        return raw_query_count(
            TableName=RecordModel.Meta.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ProjectionExpression="sk, h",
            ConsistentRead=True,
        )

    partitions = [p for kind in Kind for p in kind.partitions(clinic_id)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(read, partitions))
    return time.perf_counter() - started


def changed_appointments(before: bytes, after: bytes) -> int:
    from mediexchange.protocol.reading import read_document
    from mediexchange.protocol.xmlparse import parse_document
    from mediexchange.store.records import desired
    from mediexchange.timeutil import zone

    def hashes(data: bytes) -> dict[str, str]:
        doc = read_document(parse_document(data), zone("Europe/Moscow"))
        return {k: w.digest for k, w in desired(doc.appointments or ()).items()}

    old, new = hashes(before), hashes(after)
    return sum(1 for k, digest in new.items() if old.get(k) != digest)


def through_make_run(work: Path) -> None:
    """The big clinic's document, gzipped, through `make run`'s server, followed with status.php."""
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
        while state == "running" and time.perf_counter() - started < 1800:
            time.sleep(2)
            with urlopen(
                f"http://127.0.0.1:{port}/services/status.php?{urlencode({'client_key': key, 'import_id': import_id})}"
            ) as answer:
                status = answer.read()
            state = status.split(b'state="')[1].split(b'"')[0].decode()
        finished = time.perf_counter() - started
        size = f"{len(body) / 1e6:.1f} MB gzipped"
        print(f"  make run: {size} -> 202 in {answered:.1f} s, status.php '{state}' after {finished:.0f} s", flush=True)
        ok = state == "done" and b'<Appointments mode="full" received="100000" written="100000" deleted="0"/>' in status
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


def main() -> None:
    given = os.environ.get("DYNAMODB_ENDPOINT_URL")
    store = None
    if given:
        endpoint, queue_url = given, os.environ.get("IMPORT_QUEUE_URL", "")
    else:
        store = subprocess.Popen(
            [PYTHON, "-m", "bench.store"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert store.stdout is not None
        endpoint, queue_url = store.stdout.readline().strip(), store.stdout.readline().strip()
    env = env_for(endpoint, queue_url)
    os.environ.update(env)
    parallelism = int(os.environ.get("WRITE_PARALLELISM") or 8)
    started = time.time()
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            print("parse + validate ...", flush=True)
            parse_figures(document(BIG, "BENCH"))
            print("cold imports ...", flush=True)
            cold_import_figures(env)
            only = os.environ.get("BENCH_CLINICS", "typical,big").split(",")
            for clinic in (c for c in (TYPICAL, BIG) if c.name in only):
                clinic_figures(clinic, work, parallelism)
            if not given and os.environ.get("BENCH_SKIP_MAKE_RUN") != "1":
                print("big document through make run ...", flush=True)
                through_make_run(work)
    finally:
        if store is not None:
            store.terminate()
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


if __name__ == "__main__":
    main()
