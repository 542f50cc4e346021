"""The parse + validate figure on its own: `.venv/bin/python -m bench.parse [ROUNDS]`.

Builds the big clinic's document as `make bench` does and times, side by side and alternating, plain
`lxml.etree.fromstring` of its bytes (the baseline) and the service's reading of the same bytes
(`parse_document`, then `read_document` into typed records with every warning and error), ROUNDS times
(default 7). Prints each round, then the best of each, their ratio, the target and whether it is met.
`make bench` prints the same row (fewer rounds).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bench.generate import BIG, document

TARGET = 2.5  # issue 12: parse + validate of the big document at most 2.5x plain lxml.etree.fromstring
FIGURE = "parse + validate, big document"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(data: bytes, rounds: int, show: bool = False) -> tuple[float, float]:
    """The best time of the service's reading and of plain lxml, over `rounds` alternating rounds."""
    from lxml import etree
    from mediexchange.protocol.reading import read_document
    from mediexchange.protocol.xmlparse import parse_document
    from mediexchange.timeutil import zone

    tz = zone("Europe/Moscow")
    plain, ours = [], []
    for n in range(rounds):
        plain.append(timed(lambda: etree.fromstring(data)))
        ours.append(timed(lambda: read_document(parse_document(data), tz)))
        if show:
            print(f"  round {n + 1}: lxml {plain[-1]:.3f} s, ours {ours[-1]:.3f} s, {ours[-1] / plain[-1]:.2f}x")
    return min(ours), min(plain)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    data = document(BIG, "BENCH")
    print(f"{FIGURE}: {len(data) / 1e6:.1f} MB, {rounds} rounds", flush=True)
    ours, plain = measure(data, rounds, show=True)
    verdict = "met" if ours <= TARGET * plain else "MISSED"
    print(f"{FIGURE}: {ours:.3f} s, baseline {plain:.3f} s, {ours / plain:.2f}x (target <= {TARGET}x) {verdict}")


if __name__ == "__main__":
    main()
