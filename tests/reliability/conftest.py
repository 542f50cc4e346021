"""Reliability checks. `make test` runs them small; `make reliability` (RELIABILITY_FULL=1) at full size
and prints the figures they record as one table."""

from __future__ import annotations

from typing import Any

from tests.reliability.faults import injector  # noqa: F401 - shared fixture
from tests.reliability.figures import FIGURES, FULL
from tests.unit.conftest import clinic, dynamodb, store  # noqa: F401 - shared fixtures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    write = terminalreporter.write_line
    write("")
    write(f"Reliability figures ({'full' if FULL else 'quick'} run)")
    write(f"{'part':<22} {'figure':<36} value")
    for part in sorted(FIGURES):
        for name, value in FIGURES[part].items():
            write(f"{part:<22} {name:<36} {value}")


from tests.integration.conftest import server  # noqa: E402,F401 - the local server, for load and concurrency
