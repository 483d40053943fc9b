"""Run the real ``leitstand`` console script in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def leitstand(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        input=stdin.decode() if stdin is not None else None,
    )


def one_clean_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the failure was reported as one line, without a traceback, and return it."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]
