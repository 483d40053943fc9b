"""Apache Kafka's jars are fetched once per cache, even when two processes ask at the same moment
(two brokers started together, the test suite's two integration processes on a fresh machine).

Maven is replaced by a stand-in script on PATH (named ``mvn``, a test double): the real one
would fetch ~100 MB from Maven Central, and what is tested here is our locking and our reading
of its result, not Maven. The stand-in counts its runs and takes a second, so two unlocked
fetches would overlap.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker import BrokerError
from streams.broker.engines import KAFKA_VERSION, kafka_libs

FAKE_MVN = """#!/usr/bin/env bash
# stand-in for Maven: count the run, take a second, write the broker's jar where asked
echo run >> "$FAKE_MVN_RUNS"
sleep 1
if [ -n "${FAKE_MVN_FAIL:-}" ]; then echo "[ERROR] Could not resolve dependencies"; exit 1; fi
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; -Dkafka.version=*) v="${arg#-Dkafka.version=}" ;; esac
done
touch "$out/kafka_2.13-$v.jar"
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``mvn`` (the stand-in) and ``java`` (does nothing) first on PATH; returns the runs file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("mvn", FAKE_MVN), ("java", "#!/bin/sh\nexit 0\n")):
        tool = bin_dir / name
        tool.write_text(text)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    runs = tmp_path / "mvn-runs"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MVN_RUNS", str(runs))
    return runs


def test_two_processes_asking_at_once_fetch_once(fake_tools: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = f"from streams.broker.engines import kafka_libs; print(kafka_libs({str(cache)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    assert outs == [str(libs.resolve())] * 2
    assert fake_tools.read_text().count("run") == 1  # the second waited and found them complete
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()
    kafka_libs(cache)  # and later calls do not fetch at all
    assert fake_tools.read_text().count("run") == 1


def test_a_failed_fetch_says_why_and_the_next_call_tries_again(fake_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_MVN_FAIL", "1")
    with pytest.raises(BrokerError, match=r"Maven could not fetch Apache Kafka .*Could not resolve dependencies"):
        kafka_libs(cache)
    assert not (cache / f"kafka-{KAFKA_VERSION}" / "complete").exists()
    monkeypatch.delenv("FAKE_MVN_FAIL")
    assert (kafka_libs(cache) / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()
    assert fake_tools.read_text().count("run") == 2
