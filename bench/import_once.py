"""One import in a fresh interpreter, measured: wall time, peak RSS, write requests, partition spread.

Usage: python -m bench.import_once DOCUMENT_FILE   (prints one JSON object)
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.client

WRITES = {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


class Meter:
    """Counts the data write requests that reach DynamoDB and the items each partition key takes."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.partitions: Counter[str] = Counter()
        self.items = 0
        self.lock = threading.Lock()

    def install(self) -> None:
        original = botocore.client.BaseClient._make_api_call

        def measured(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if operation in WRITES:
                with self.lock:
                    self.requests[operation] += 1
                    for requests in params.get("RequestItems", {}).values():
                        for request in requests:
                            item = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get(
                                "Key"
                            )
                            self.partitions[next(iter(item["pk"].values()))] += 1
                            self.items += 1
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = measured  # type: ignore[method-assign]


def main() -> None:
    data = Path(sys.argv[1]).read_bytes()
    meter = Meter()
    meter.install()
    from mediexchange import importing  # after the environment and the meter are in place

    started = time.perf_counter()
    received = importing.receive_document(data)
    wall = time.perf_counter() - started
    report = received.report
    assert report is not None, "the benchmark runs imports synchronously"
    sections = [s for s in (report.groups, report.resources, report.schedules, report.appointments) if s]
    top = meter.partitions.most_common(1)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "batch_write_requests": meter.requests["BatchWriteItem"],
                "write_requests": sum(meter.requests.values()),
                "items_in_batches": meter.items,
                "written": sum(s.written for s in sections),
                "deleted": sum(s.deleted for s in sections),
                "largest_partition_share": (top[0][1] / meter.items) if top else 0.0,
            }
        )
    )


if __name__ == "__main__":
    main()
