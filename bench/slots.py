"""`python -m bench.slots`: issue 12's slots row alone, on the big clinic, in about a minute.

`make bench` measures the slots figure after every import figure of both clinics. This builds only
what it needs, as `make bench` builds it (the big clinic's seeded orders, then its first import, in a
fresh interpreter), and prints the row BENCH_RUNS times (default 3), each the best of three alternating
measurements, as `bench.slots_figures` takes them.

Runs against a local store it starts (moto's server, as `make run`'s) or the one DYNAMODB_ENDPOINT_URL
names, in `make bench`'s environment.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.__main__ import bench_store, import_once, item_sizes, read, seed_orders, slots_figures
from bench.generate import BIG, document


def main() -> None:
    with bench_store():
        from mediexchange.config import Settings
        from mediexchange.store import Store

        store = Store(Settings.from_env())
        key = f"BENCH-SLOTS-{int(time.time())}"
        made = store.clinics.create("big clinic", "Europe/Moscow", key)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "big-1.xml"
            path.write_bytes(document(BIG, key))
            print("big clinic: seeded orders, then the first import ...", flush=True)
            seed_orders(store, made.clinic_id, BIG.orders, made.timezone)
            import_once(path, item_sizes(store, made.clinic_id, read(path.read_bytes(), made.timezone)))
        for _ in range(int(os.environ.get("BENCH_RUNS", "3"))):
            slots_figures(store, made.clinic_id, made.timezone)


if __name__ == "__main__":
    main()
