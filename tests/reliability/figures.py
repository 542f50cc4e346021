"""The figures reliability checks report; `make reliability` prints them as one table."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

FULL = os.environ.get("RELIABILITY_FULL") == "1"
FIGURES: dict[str, dict[str, Any]] = defaultdict(dict)


def record(part: str, **figures: Any) -> None:
    """Add to a part's figures (counts add up across tests; other values replace)."""
    for name, value in figures.items():
        previous = FIGURES[part].get(name)
        both_counts = isinstance(value, int) and isinstance(previous, int)
        FIGURES[part][name] = previous + value if both_counts else value
