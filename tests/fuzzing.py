"""One knob for every fuzzer's budget: short in CI, long in ``scripts/fuzz``.

Property tests that fuzz (decoders, the signal-model loader, CLI file inputs, the HTTP API)
take their hypothesis settings from ``budget(n)``: ``n`` examples in the normal test run,
``n * LEITSTAND_FUZZ_SCALE`` when ``scripts/fuzz`` runs them with a larger scale. They are
marked ``fuzz`` so ``pytest -m fuzz`` selects exactly them.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

#: multiplier of every fuzz test's example count (scripts/fuzz sets it, CI leaves it at 1)
FUZZ_SCALE = max(1, int(os.environ.get("LEITSTAND_FUZZ_SCALE", "1") or "1"))


def budget(examples: int, **extra: Any) -> settings:
    """Hypothesis settings for a fuzz test: ``examples`` scaled, no deadline, no slow-data checks."""
    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **extra,
    )


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (keys and list indexes), the root's ``()`` first: where a
    fuzzer may put a mutation of a valid document."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += json_paths(v, (*prefix, i))
    return out
