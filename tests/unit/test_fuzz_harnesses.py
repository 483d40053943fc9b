"""The coverage-guided atheris harnesses run in CI too, briefly: each one for a few thousand
inputs from an empty corpus. A harness that finds a crash exits non-zero and prints the input;
``scripts/fuzz`` runs the same harnesses for minutes with a kept corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESSES = sorted((Path(__file__).resolve().parents[1] / "fuzz").glob("atheris_*.py"))
#: inputs per harness in the normal test run (scripts/fuzz runs by time instead)
RUNS = int(os.environ.get("LEITSTAND_ATHERIS_RUNS", "3000"))

pytest.importorskip("atheris")


@pytest.mark.fuzz
@pytest.mark.parametrize("harness", HARNESSES, ids=[h.stem for h in HARNESSES])
def test_harness_finds_no_crash(harness: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(harness), f"-runs={RUNS}", "-print_final_stats=1", f"-artifact_prefix={tmp_path}/crash-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and not crashes, (
        f"{harness.name} found a failing input ({crashes}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )


def test_there_are_harnesses() -> None:
    """The decoders and the signal-model loader each have one (a deleted harness fails here)."""
    names = {h.stem for h in HARNESSES}
    assert {"atheris_decoders", "atheris_signal_model"} <= names, names
