"""Issue 10 through a real broker: a SASL worker against a broker without SASL says so (#18);
/ready tells the truth during an outage and a Tansu restart (which loses every topic by design)
ends the worker with one clear line instead of a hang (#19)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.broker import start, stop
from streams.kafka_io import producer
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, ready_state, settings_env
from tests.cli_helpers import leitstand, one_clean_line
from tests.conftest import CACHE_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sasl_worker_against_a_broker_without_sasl_names_the_handshake(broker) -> None:
    """#18: it said "no Kafka broker answers" although the broker answered."""
    env = {
        "LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "LEITSTAND_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "LEITSTAND_KAFKA_SASL_MECHANISM": "PLAIN",
        "LEITSTAND_KAFKA_SASL_USERNAME": "leitstand",
        "LEITSTAND_KAFKA_SASL_PASSWORD": "not-a-real-secret",
    }
    line = one_clean_line(leitstand("worker", env=env, timeout=60))
    assert "no Kafka broker answers" not in line, line
    assert f"the broker at {broker.bootstrap} answered but the SASL handshake failed" in line, line
    assert "not-a-real-secret" not in line


def _wait(predicate, timeout_s: float, step_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


@pytest.fixture
def own_tansu(tmp_path: Path):
    """A Tansu of this test's own, which the test stops and restarts on the same port."""
    state, port = tmp_path / "broker-state", free_port()
    info = start("tansu", state, CACHE_DIR, "127.0.0.1", port, progress=False)
    yield info, state
    stop(state, "tansu")


def test_ready_during_an_outage_and_a_clear_exit_when_tansu_lost_its_topics(own_tansu, tmp_path: Path) -> None:
    """#19: during the outage /ready said 200; after the restart the worker crashed with a
    table-recovery ConsistencyError and a new worker hung at 503."""
    info, state = own_tansu
    s = Settings(
        _env_file=None,
        kafka_bootstrap_servers=info.bootstrap,
        topic_prefix="o.",
        app_id="outage",
        data_dir=tmp_path / "worker",
    )
    env = settings_env(
        {
            "kafka_bootstrap_servers": info.bootstrap,
            "topic_prefix": "o.",
            "app_id": "outage",
            "data_dir": s.data_dir,
            "worker_role": "critical",
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=40)
    try:

        async def send() -> None:
            prod = producer(s)
            await prod.start()
            try:
                await prod.send_and_wait(s.topic("pool.supervision"), key=b"P1", value=b'{"not": "valid"}')
            finally:
                await prod.stop()

        asyncio.run(send())
        assert ready_state(worker.web_port)[0] == 200

        stop(state, "tansu")
        t0 = time.monotonic()
        seen: list[tuple[int, dict]] = []

        def unready() -> bool:
            seen.append(ready_state(worker.web_port))
            return seen[-1][0] == 503

        _wait(unready, timeout_s=10)
        status, body = seen[-1]
        assert status == 503, f"/ready still {status} {body} {time.monotonic() - t0:.1f} s into the outage"
        assert "no answer from the broker" in body.get("reason", ""), body
        assert body["ready"] is False

        start("tansu", state, CACHE_DIR, "127.0.0.1", info.port, progress=False)
        proc = worker.proc
        assert proc is not None
        code = _wait(lambda: proc.poll() is not None and proc.returncode, timeout_s=25)
        assert proc.poll() is not None, "the worker did not stop after the broker lost its topics"
        assert code not in (0, None), code
    finally:
        worker.stop()
    lines = (tmp_path / "worker.log").read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "the broker lost its topics and offsets" in errors[0], lines[-5:]
    assert "Traceback" not in "\n".join(lines) and "ConsistencyError" not in "\n".join(lines)

    # a worker started again on the restarted broker is ready promptly (it hung at 503 for minutes)
    again = WorkerProcess(env, tmp_path / "worker-again.log", free_port())
    ready_after = again.start(timeout_s=30)
    try:
        status, body = ready_state(again.web_port)
        assert status == 200 and body["ready"] and "reason" not in body, body
    finally:
        assert again.stop() == 0, again.log_tail()
    assert ready_after < 30
