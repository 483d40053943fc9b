"""Timestamps as operators write them in CSV files: ISO 8601 (naive means UTC) or epoch seconds."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def parse_time(text: str) -> float:
    """POSIX seconds; NaN when the text is neither (the caller decides what a bad row means)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return math.nan
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp()
