"""The one line an operator reads when a worker stops because its tables and the broker disagree."""

from __future__ import annotations

from types import SimpleNamespace

from faust.exceptions import ConsistencyError

from streams.worker import _lost_state

CRASH = ConsistencyError(
    "The persisted offset for changelog topic partition TP(topic='x-changelog', partition=3) is higher than the last offset"
)


def test_a_clean_stop_is_not_a_lost_state() -> None:
    assert _lost_state(SimpleNamespace(broker_link=None), SimpleNamespace(crash_reason=None)) is None


def test_memory_tables_blame_the_broker() -> None:
    line = _lost_state(SimpleNamespace(broker_link=None), SimpleNamespace(crash_reason=CRASH), "memory://")
    assert line is not None and line.startswith("the broker lost data") and "x-changelog" in line


def test_rocksdb_tables_name_the_local_state_and_the_way_out() -> None:
    """rocksdb:// on Tansu fails this way on every restart (bench recovery, 4 of 4): the line must
    not send the operator looking for lost broker data only."""
    line = _lost_state(SimpleNamespace(broker_link=None), SimpleNamespace(crash_reason=CRASH), "rocksdb://")
    assert line is not None and "rocksdb://" in line and "Apache Kafka" in line and "LEITSTAND_DATA_DIR" in line
    assert "\n" not in line and "x-changelog" in line


def test_a_stop_that_hangs_after_lost_broker_state_still_ends_the_process() -> None:
    """Seen in a clean-clone CI run: Faust's consumer stop retried its last commit against the
    vanished topics for a minute. The watchdog ends the process with the operator's line."""
    import subprocess
    import sys
    import time

    code = (
        "import time\n"
        "from streams.faust_transport import _exit_unless_stopped_within\n"
        "_exit_unless_stopped_within(0.3, 'error: the broker lost its topics and offsets (test)')\n"
        "time.sleep(30)\n"  # a stop that never finishes
    )
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert time.monotonic() - t0 < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the broker lost its topics and offsets (test)"), done.stderr
