"""A local store for the benchmark: moto's server (partition-aware queries) with the template's resources.
Prints its URL, then serves until killed."""

from __future__ import annotations

import os
import time

from devserver.server import configure, start_store

if __name__ == "__main__":
    endpoint = start_store()
    configure(endpoint)
    print(endpoint, flush=True)
    print(os.environ["IMPORT_QUEUE_URL"], flush=True)
    while True:
        time.sleep(3600)
