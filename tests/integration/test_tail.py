"""`leitstand tail` through a real broker: the idle timeout counts only once the records present at
start have been read, however slow the start; an empty topic says so; no broker fails in one line.
Both brokers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from streams.kafka_io import TailError, TailReport, ensure_topics, produce_to, tail
from streams.settings import Settings
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 2_000


def _env(s: Settings) -> dict[str, str]:
    return {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}


def _fill(s: Settings, n: int) -> str:
    """``sensors.pool`` (all partitions) holding ``n`` records keyed over 8 pools; its full name."""
    asyncio.run(ensure_topics(s, ["sensors.pool"]))
    items = ((f"P{i % 8}".encode(), orjson.dumps({"i": i})) for i in range(n))
    assert asyncio.run(produce_to(s, s.topic("sensors.pool"), items)) == n
    return s.topic("sensors.pool")


def test_tiny_idle_timeout_still_prints_every_record_present_at_start(broker, settings_for) -> None:
    """0.01 s of idleness used to end the tail before the consumer was even assigned: nothing
    printed, exit 0. Now it reads all N, in the CLI and in the library."""
    s = settings_for(broker)
    name = _fill(s, N)
    got = leitstand("tail", "sensors.pool", "--from-beginning", "--idle-timeout", "0.01", env=_env(s), timeout=120)
    assert got.returncode == 0, got.stderr
    assert sorted(orjson.loads(line)["i"] for line in got.stdout.splitlines()) == list(range(N))
    assert got.stderr.strip() == ""

    async def read() -> tuple[int, TailReport]:
        report = TailReport()
        n = 0
        async for _ in tail(s, name, from_beginning=True, idle_timeout_s=0.0, report=report):
            n += 1
        return n, report

    n, report = asyncio.run(read())
    assert n == N
    assert report.caught_up and report.idle_stop and report.read == N and not report.empty_at_start
    assert len(report.end_offsets) == s.topic_partitions


def test_slow_fetches_do_not_end_the_tail_before_it_caught_up(broker, settings_for, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded machine, made deterministic: every fetch takes 0.5 s. With an idle timeout of
    0.01 s the old tail gave up on the first empty poll (before any fetch came back)."""
    from aiokafka.consumer.fetcher import Fetcher

    s = settings_for(broker)
    name = _fill(s, N)
    real = Fetcher._proc_fetch_request

    async def slow(self: Fetcher, *args: object, **kwargs: object) -> object:
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:  # closed meanwhile: what aiokafka's own request returns then
            return False
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Fetcher, "_proc_fetch_request", slow)

    async def read() -> list[int]:
        return [orjson.loads(m.value or b"")["i"] async for m in tail(s, name, from_beginning=True, idle_timeout_s=0.01)]

    assert sorted(asyncio.run(read())) == list(range(N))


def test_limit_and_meta_unchanged(broker, settings_for) -> None:
    s = settings_for(broker)
    _fill(s, 50)
    got = leitstand("tail", "sensors.pool", "--from-beginning", "-n", "7", "--meta", "--idle-timeout", "0.01", env=_env(s), timeout=120)
    assert got.returncode == 0, got.stderr
    rows = [orjson.loads(line) for line in got.stdout.splitlines()]
    assert len(rows) == 7
    assert all(set(r) == {"partition", "offset", "timestamp_ms", "key", "value"} for r in rows)


def test_empty_topic_says_so_in_one_line(broker, settings_for) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s, ["sensors.pool"]))
    got = leitstand("tail", "sensors.pool", "--from-beginning", "--idle-timeout", "0.5", env=_env(s), timeout=120)
    assert got.returncode == 0, got.stderr
    assert got.stdout == ""
    assert got.stderr.strip() == f"no records on {s.topic('sensors.pool')} (empty at start, none arrived in 0.5 s)"


def test_records_arriving_after_start_are_read(broker, settings_for) -> None:
    """Idle time counts from catching up: a record produced while the tail waits is printed."""
    s = settings_for(broker)
    name = _fill(s, 10)

    async def run() -> int:
        n = 0

        async def late() -> None:
            await asyncio.sleep(1.0)
            await produce_to(s, name, [(b"P0", b'{"i": 10}')])

        sender = asyncio.create_task(late())
        async for _ in tail(s, name, from_beginning=True, idle_timeout_s=8.0, limit=11):
            n += 1
        await sender
        return n

    assert asyncio.run(run()) == 11


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_broker_that_never_answers_fails_within_the_startup_limit(silent_port: int) -> None:
    s = Settings(_env_file=None, kafka_bootstrap_servers=f"127.0.0.1:{silent_port}")

    async def read() -> None:
        async for _ in tail(s, "x", from_beginning=True, idle_timeout_s=0.01, startup_limit_s=1.0):
            pass

    t0 = time.monotonic()
    with pytest.raises(TailError, match=r"did not answer within 1 s"):
        asyncio.run(read())
    assert time.monotonic() - t0 < 20


def test_no_broker_is_one_line_and_non_zero(silent_port: int) -> None:
    proc = leitstand("-b", f"127.0.0.1:{silent_port}", "tail", "sensors.pool", "--idle-timeout", "1", timeout=120)
    assert f"127.0.0.1:{silent_port}" in one_clean_line(proc)
