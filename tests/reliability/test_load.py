"""Concurrency and load against `make run`'s server over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from tests.integration.conftest import LocalServer
from tests.reliability.figures import FULL, record

XML = {"Content-Type": "application/xml"}
DAY = dt.date.today() + dt.timedelta(days=5)


def mis_document(client_key: str, body: str) -> bytes:
    return f'<MediExchange ClientKey="{client_key}">{body}</MediExchange>'.encode()


def resources(ids: range, label: str) -> str:
    return "<Resources>" + "".join(f'<r id="{i}" name="{label} {i}" time_step="15"/>' for i in ids) + "</Resources>"


def stored_resource_names(server: LocalServer, clinic: dict[str, str]) -> set[str]:
    status, _, body = server.request(
        "GET", f"/portal/clinics/{clinic['clinic_id']}", headers={"x-api-key": server.portal_api_key}
    )
    assert status == 200
    return {r["name"] for r in json.loads(body)["resources"]}


FINISH_WITHIN_SECONDS = 180


def test_parallel_imports_of_one_clinic_never_interleave(server: LocalServer) -> None:
    # Given one clinic and six documents, each replacing the resources with a set of its own
    clinic = server.create_clinic("Busy clinic")
    documents = {
        f"doc{n}": mis_document(clinic["client_key"], resources(range(n * 100, n * 100 + 60), f"doc{n}"))
        for n in range(6)
    }

    def send(label: str) -> tuple[str, tuple[int, str]]:
        status, _, body = server.request("POST", "/services/import.php", documents[label], XML)
        return label, (status, str(etree.fromstring(body).get("import_id")))

    # When all six arrive at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = dict(pool.map(send, documents))
    # Then none was refused: each was applied, or queued and applied after (202), one at a time
    assert {status for status, _ in results.values()} <= {200, 202}, results
    for status, import_id in results.values():
        if status == 202:
            assert final_state(server, clinic, import_id) == "done"
    # And what is stored is exactly one document's set: they never interleaved
    names = stored_resource_names(server, clinic)
    assert any(
        names == {f"{label} {i}" for i in range(int(label[3:]) * 100, int(label[3:]) * 100 + 60)} for label in results
    )
    statuses = [status for status, _ in results.values()]
    record(
        "concurrency",
        same_clinic_imports=len(results),
        same_clinic_refused_409=statuses.count(409),
        same_clinic_queued_202=statuses.count(202),
    )


def final_state(server: LocalServer, clinic: dict[str, str], import_id: str) -> str:
    """Follow an import through status.php until it is done or failed. The worker first sees an import 30 s
    after it was received (the queue's delay) and applies a lane's imports one after another, so on a
    loaded machine the last of six may take minutes."""
    query = urlencode({"client_key": clinic["client_key"], "import_id": import_id})
    deadline = time.monotonic() + FINISH_WITHIN_SECONDS
    while True:
        status, _, body = server.request("GET", f"/services/status.php?{query}")
        assert status == 200
        state = str(etree.fromstring(body)[0].get("state"))
        if state in ("done", "failed"):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"import {import_id} still {state} after {FINISH_WITHIN_SECONDS} s")
        time.sleep(0.1)


def test_parallel_imports_of_different_clinics_all_succeed(server: LocalServer) -> None:
    clinics = [server.create_clinic(f"Clinic {n}") for n in range(6)]

    def send(clinic: dict[str, str]) -> int:
        body = mis_document(clinic["client_key"], resources(range(40), clinic["clinic_id"]))
        return server.request("POST", "/services/import.php", body, XML)[0]

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, clinics))
    assert statuses == [200] * 6
    record("concurrency", other_clinics_imports=len(statuses), other_clinics_failed=6 - statuses.count(200))


def prepare(server: LocalServer, n: int) -> dict[str, Any]:
    clinic = server.create_clinic(f"Load clinic {n}")
    schedules = "".join(
        f'<s id="{r}" date="{DAY:%d.%m.%Y}" resource_id="{r}"><time_rules w_start="08:00" w_end="20:00"/></s>'
        for r in range(5)
    )
    body = mis_document(clinic["client_key"], resources(range(5), "Врач") + f"<Schedules>{schedules}</Schedules>")
    assert server.request("POST", "/services/import.php", body, XML)[0] == 200
    return clinic


def test_mixed_load_has_no_errors(server: LocalServer) -> None:
    # Given five clinics with a day of schedule each
    clinics = [prepare(server, n) for n in range(5)]
    seconds = 60 if FULL else 6
    deadline = time.monotonic() + seconds
    latencies: dict[str, list[float]] = {"export": [], "import diff": [], "slots": [], "booking": []}
    failures: list[tuple[str, int]] = []
    deliberate = [0]
    lock = threading.Lock()

    def one(rng: random.Random) -> None:
        clinic = rng.choice(clinics)
        kind = rng.choice(list(latencies))
        portal = {"x-api-key": server.portal_api_key, "Content-Type": "application/json"}
        started = time.monotonic()
        if kind == "export":
            query = urlencode({"client_key": clinic["client_key"], "start": 0})
            status = server.request("GET", f"/services/export.php?{query}")[0]
            ok = status == 200
        elif kind == "import diff":
            minute = rng.randrange(0, 720, 15)
            start = dt.datetime.combine(DAY, dt.time(8)) + dt.timedelta(minutes=minute)
            row = f'<a tablename="T" id="{rng.randrange(50)}" resource_id="{rng.randrange(5)}" ReceptionDateTime="{start:%d.%m.%Y %H:%M:%S}" Duration="15"/>'
            status = server.request(
                "POST",
                "/services/import.php",
                mis_document(clinic["client_key"], f"<Appointments>{row}</Appointments>"),
                XML,
            )[0]
            ok = status in (200, 202)  # 202: queued behind another import of the clinic, applied after
        elif kind == "slots":
            query = urlencode({"resource_id": rng.randrange(1, 6), "from": DAY.isoformat(), "to": DAY.isoformat()})
            status = server.request("GET", f"/portal/clinics/{clinic['clinic_id']}/slots?{query}", headers=portal)[0]
            ok = status == 200
        else:
            at = dt.datetime.combine(DAY, dt.time(8)) + dt.timedelta(minutes=rng.randrange(0, 720, 15))
            booking = {
                "resource_id": rng.randrange(1, 6),
                "reception_datetime": f"{at:%Y-%m-%dT%H:%M}",
                "name1": "Нагрузкин",
                "phone": "+79000000000",
            }
            status = server.request(
                "POST", f"/portal/clinics/{clinic['clinic_id']}/orders", json.dumps(booking).encode(), portal
            )[0]
            ok = status in (201, 409)  # 409: the slot is taken, as designed
        elapsed = time.monotonic() - started
        with lock:
            latencies[kind].append(elapsed)
            if not ok:
                failures.append((kind, status))
            elif status == 409:
                deliberate[0] += 1

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            one(rng)

    # When eight clients send mixed traffic for a fixed time
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    # Then nothing failed outside the deliberate 409s
    every = sorted(t for values in latencies.values() for t in values)
    assert failures == []
    quantiles = statistics.quantiles(every, n=100)
    record(
        "load",
        seconds=seconds,
        requests=len(every),
        errors=len(failures),
        deliberate_409s=deliberate[0],
        requests_per_second=round(len(every) / seconds, 1),
        p50_ms=round(quantiles[49] * 1000),
        p99_ms=round(quantiles[98] * 1000),
    )
    for kind, values in latencies.items():
        record("load", **{f"{kind.replace(' ', '_')}_p50_ms": round(statistics.median(values) * 1000)})
