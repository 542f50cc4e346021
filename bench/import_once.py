"""One import in a fresh interpreter, measured: wall time, peak RSS, write requests, partition spread,
and the items and request units it read and wrote (bench.units).

Usage: python -m bench.import_once DOCUMENT_FILE   (prints one JSON object)

The store is built as the functions build theirs, from the environment `python -m bench` set; the
requests are counted by a botocore event handler on every client of that store. BENCH_ITEM_SIZES (JSON,
{section code: average item size}) gives bench.units the full size of the Records items it reads projected.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

WRITES = {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


class Meter:
    """Counts the data write requests that reach DynamoDB and the items each partition key takes.

    A `before-parameter-build.dynamodb.*` handler: botocore calls it with the operation's model and the
    call's own parameters, once per API call. (The request's serialized body, as `before-call` has it,
    would have to be parsed again: a quarter of a millisecond a batch of 25 items, in the writers' threads,
    inside the measured time, where the raw baseline parses nothing.)
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.partitions: Counter[str] = Counter()
        self.items = 0
        self.lock = threading.Lock()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        operation = model.name
        if operation not in WRITES:
            return
        with self.lock:
            self.requests[operation] += 1
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
                    self.partitions[next(iter(item["pk"].values()))] += 1
                    self.items += 1


def main() -> None:
    from mediexchange import importing
    from mediexchange.config import Settings
    from mediexchange.store import Store

    from bench.units import Units

    data = Path(sys.argv[1]).read_bytes()
    store = Store(Settings.from_env())
    meter = Meter()
    store.instrument("before-parameter-build.dynamodb.*", meter)
    units = Units(store.settings.records_table, json.loads(os.environ.get("BENCH_ITEM_SIZES", "{}")))
    store.instrument("before-parameter-build.*.*", units.before)
    store.instrument("after-call.*.*", units.after)

    started = time.perf_counter()
    received = importing.receive_document(store, data)
    wall = time.perf_counter() - started
    report = received.report
    assert report is not None, "the benchmark runs imports synchronously"
    top = meter.partitions.most_common(1)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "batch_write_requests": meter.requests["BatchWriteItem"],
                "write_requests": sum(meter.requests.values()),
                "items_in_batches": meter.items,
                "written": report.written,
                "deleted": report.deleted,
                "sections": {name: s.written + s.deleted for name, s in report.sections.items()},
                "largest_partition_share": (top[0][1] / meter.items) if top else 0.0,
                "units": units.summary(),
            }
        )
    )


if __name__ == "__main__":
    main()
