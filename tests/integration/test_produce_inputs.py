"""`produce` and `replay` through a real broker: what the command reports is what is on the topic.

#15: a record over the producer's max request size is refused by line number, the valid records
around it are all sent, and the exit code says something was refused. #14: an unknown topic is
refused (and not created) unless ``--create``. The fuzzers send generated files to Tansu and
compare the count the command reported with the records on the topic.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.broker import BrokerInfo
from streams.kafka_io import MAX_REQUEST_BYTES, list_topics, record_size
from streams.settings import Settings
from tests.cli_helpers import leitstand, one_clean_line
from tests.fuzzing import budget
from tests.unit.streams.cli.test_inputs_support import count_records, invoke, sent_count

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that points a ``leitstand`` subprocess at the test's broker and topics."""
    return {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": settings.topic_prefix}


def frame(i: int, pad: int = 0) -> bytes:
    return orjson.dumps(
        {
            "schema_version": 1,
            "intersection_id": f"I{i}",
            "event_time": "2026-01-01T00:00:00Z",
            "interval_s": 60,
            "detectors": [],
            "pad": "x" * pad,
        }
    )


def test_oversize_record_is_refused_and_every_valid_one_sent(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\n".join([frame(1), frame(2, pad=MAX_REQUEST_BYTES + 100), frame(3), frame(4)]) + b"\n")
    proc = leitstand("produce", "sensors.intersection", "-f", str(p), env=env_of(s), timeout=120)
    line = one_clean_line(proc)  # was: traceback after 1 of 3 valid records, no count
    assert f"sent 3 records to {s.topic('sensors.intersection')}; refused 1: line 2 (" in line
    assert "over the producer's limit of 1,048,576" in line
    assert count_records(s, s.topic("sensors.intersection")) == 3


def test_record_just_under_the_limit_is_sent(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    p = tmp_path / "in.jsonl"
    p.write_bytes(frame(1, pad=MAX_REQUEST_BYTES - 400) + b"\n" + frame(2) + b"\n")
    proc = leitstand("produce", "sensors.intersection", "-f", str(p), env=env_of(s), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sent 2 records" in proc.stderr
    assert count_records(s, s.topic("sensors.intersection")) == 2


def test_an_internal_topic_is_keyed_by_its_entity_too(broker, settings_for, tmp_path: Path) -> None:
    """A raise sent by hand to alerts.lifecycle without --key-field went out unkeyed, and the
    alarm book then skipped later acknowledgements from another partition. Now it is keyed by
    subject_id, as the worker's own commands are (and the worker refuses an unkeyed one)."""
    from streams.kafka_io import tail

    s = settings_for(broker)
    lines = [
        {"schema_version": 1, "event_time": "2026-01-01T00:00:00Z", "op": "raise", "subject_id": f"P{i}", "kind": "water_ph"}
        for i in range(4)
    ]
    (tmp_path / "raise.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in lines) + b"\n")
    proc = leitstand("produce", "alerts.lifecycle", "-f", str(tmp_path / "raise.jsonl"), env=env_of(s), timeout=120)
    assert proc.returncode == 0, proc.stderr

    async def keys() -> list[tuple[bytes | None, str]]:
        topic = s.topic("alerts.lifecycle")
        return [(m.key, orjson.loads(m.value or b"")["subject_id"]) async for m in tail(s, topic, from_beginning=True, idle_timeout_s=1.0)]

    assert sorted(keys_ := asyncio.run(keys())) == [(f"P{i}".encode(), f"P{i}") for i in range(4)], keys_


def test_ctrl_c_while_produce_waits_on_stdin_ends_it_cleanly(broker, settings_for) -> None:
    """The read-ahead thread blocks in stdin; a Ctrl-C (here two, as `timeout` and an impatient
    person send) used to abort the interpreter at shutdown ('Fatal Python error', exit 134)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    s = settings_for(broker)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "produce", "sensors.pool"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env_of(s)},
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(frame(1) + b"\n")
        proc.stdin.flush()  # stdin stays open: the command waits for more
        deadline = time.monotonic() + 60
        while count_records(s, s.topic("sensors.pool"), idle_s=0.3) < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    text = stderr.decode(errors="replace")
    assert proc.returncode == 130 and "Fatal Python error" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("command", ["produce", "replay"])
def test_unknown_topic_is_refused_and_not_created_unless_create(broker, settings_for, tmp_path: Path, command: str) -> None:
    s = settings_for(broker)
    (tmp_path / "in.jsonl").write_bytes(frame(1) + b"\n" + frame(2) + b"\n")
    (tmp_path / "in.csv").write_text("timestamp,value\n2015-09-01T10:00:00,1\n2015-09-01T10:01:00,2\n")
    args = (
        ["produce", "no.such.topic", "-f", str(tmp_path / "in.jsonl")]
        if command == "produce"
        else ["replay", str(tmp_path / "in.csv"), "--topic", "no.such.topic", "--speed", "0"]
    )
    line = one_clean_line(leitstand(*args, env=env_of(s), timeout=120))
    assert "unknown topic 'no.such.topic'" in line and "sensors.intersection" in line
    assert s.topic("no.such.topic") not in asyncio.run(list_topics(s))
    ok = leitstand(*args, "--create", env=env_of(s), timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert count_records(s, s.topic("no.such.topic")) == 2


def test_replay_refuses_an_oversize_row_and_sends_the_rest(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    big = ",".join(["y" * 100_000] * 11)  # 11 fields under the csv limit, 1.1 MB as one record
    (tmp_path / "in.csv").write_text(
        "timestamp," + ",".join(f"c{i}" for i in range(11)) + "\n"
        f"2015-09-01T10:00:00,{','.join(['1'] * 11)}\n"
        f"2015-09-01T10:01:00,{big}\n"
        f"2015-09-01T10:02:00,{','.join(['2'] * 11)}\n"
    )
    line = one_clean_line(
        leitstand("replay", str(tmp_path / "in.csv"), "--topic", "sensors.pool", "--speed", "0", env=env_of(s), timeout=120)
    )
    assert "replayed 2 rows" in line and "refused 1: line 3 (" in line
    assert count_records(s, s.topic("sensors.pool")) == 2


# --- fuzzing against Tansu (session-scoped, so cheap) ------------------------------------------

JSON_LINES = st.one_of(
    st.builds(lambda i: frame(i), st.integers(0, 5)),
    st.builds(
        lambda n: b'{"huge": "' + b"h" * n + b'"}',
        st.sampled_from([10, MAX_REQUEST_BYTES - 200, MAX_REQUEST_BYTES - 30, MAX_REQUEST_BYTES + 1, 2 * MAX_REQUEST_BYTES]),
    ),
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=10),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
        max_leaves=8,
    ).map(orjson.dumps),
)


def tansu_only(broker: BrokerInfo) -> None:
    if broker.engine != "tansu":
        pytest.skip("the fuzzers run against Tansu; the regressions above cover both engines")


@pytest.mark.fuzz
def test_fuzz_produce_reports_exactly_what_is_on_the_topic(broker, settings_for) -> None:
    tansu_only(broker)
    s = settings_for(broker)
    env, topic = env_of(s), s.topic("sensors.intersection")
    total = [0]

    @budget(12)
    @given(lines=st.lists(JSON_LINES, max_size=6), crlf=st.booleans())
    def check(lines: list[bytes], crlf: bool) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "in.jsonl"
            p.write_bytes((b"\r\n" if crlf else b"\n").join(lines))
            code, text = invoke("produce", "sensors.intersection", "-f", str(p), env=env)
        oversize = [line for line in lines if record_size(None, line.rstrip(b"\r")) > MAX_REQUEST_BYTES]
        if code == 0:
            assert not oversize
        else:
            assert text.startswith("error: sent ") and f"refused {len(oversize)}:" in text, text
        total[0] += sent_count(text)

    check()
    assert count_records(s, topic) == total[0]  # once: reading a topic until idle takes a second


@pytest.mark.fuzz
def test_fuzz_replay_reports_exactly_what_is_on_the_topic(broker, settings_for) -> None:
    from tests.unit.streams.cli.test_inputs_replay import FILES

    tansu_only(broker)
    s = settings_for(broker)
    env, topic = env_of(s), s.topic("sensors.pool")
    total = [0]

    @budget(12)
    @given(data=FILES, with_header=st.booleans())
    def check(data: bytes, with_header: bool) -> None:
        data = b"timestamp,value\n" + data if with_header else data  # most examples reach the broker
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "in.csv"
            p.write_bytes(data)
            code, text = invoke("replay", str(p), "--topic", "sensors.pool", "--speed", "0", env=env)
        if code == 0:
            total[0] += sent_count(text)
        else:
            assert text.startswith("error: "), text
            if text.startswith("error: replayed"):
                total[0] += sent_count(text)

    check()
    assert count_records(s, topic) == total[0]  # once: reading a topic until idle takes a second
