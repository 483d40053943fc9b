"""A worker stopped at a random moment (SIGTERM, or SIGKILL as a crash) and restarted comes back
exactly as if it had never stopped. Both brokers.

Each case is one run of ``leitstand bench recovery`` (simulators/harness/bench_recovery.py):
every window closed by event time carries exactly the oracle's values, none is missing or
unexpected, and every camera event is exactly one alarm transition on ``alerts`` (none lost,
none delivered twice). The benchmark repeats this 50 times; CI runs a handful of seeds here.
Wall-clock idle closing is switched off so only event time closes windows.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from simulators.harness.bench_recovery import recovery_run

pytestmark = pytest.mark.integration


# one seed per way of stopping (a graceful stop and a kill), on each broker: four runs of ~28 s;
# `leitstand bench recovery --runs 50` is where many seeds are run (README, "Benchmarks")
@pytest.mark.parametrize(("stop_signal", "seed"), [(signal.SIGTERM, 1), (signal.SIGKILL, 2)], ids=["sigterm-seed1", "sigkill-seed2"])
def test_restart_is_exact(broker, settings_for, tmp_path: Path, stop_signal: int, seed: int) -> None:
    result = recovery_run(settings_for(broker), seed, random.Random(seed), tmp_path, stop_signal=stop_signal)
    assert result.exact, (broker.engine, result.as_dict())
    assert result.windows_expected > 500 and result.transitions_expected > 0
