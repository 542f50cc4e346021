"""Reliability checks: each records the figures `make reliability` prints as one table.

`make test` runs them small; `make reliability` (RELIABILITY_FULL=1) runs them at full size.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pytest

from tests.unit.conftest import clinic, dynamodb  # noqa: F401 - shared fixtures

FULL = os.environ.get("RELIABILITY_FULL") == "1"
FIGURES: dict[str, dict[str, Any]] = defaultdict(dict)


def record(part: str, **figures: Any) -> None:
    """Add to a part's figures (numbers add up across tests; other values replace)."""
    for name, value in figures.items():
        previous = FIGURES[part].get(name)
        both_numbers = isinstance(value, int) and isinstance(previous, int)
        FIGURES[part][name] = previous + value if both_numbers else value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    write = terminalreporter.write_line
    write("")
    write(f"Reliability figures ({'full' if FULL else 'quick'} run)")
    write(f"{'part':<26} {'figure':<34} value")
    for part in sorted(FIGURES):
        for name, value in FIGURES[part].items():
            write(f"{part:<26} {name:<34} {value}")


@pytest.fixture
def full() -> bool:
    return FULL
