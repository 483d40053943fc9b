"""Issue 10 through a real worker: an unmapped venue does not crash the event agent (#4), and the
worker's HTTP server listens on loopback only (#5)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.records import ScheduledEvent, encode
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from streams.stores import key_partition

pytestmark = pytest.mark.integration


def _worker(s, tmp_path: Path, **extra: object) -> WorkerProcess:
    values = {
        **same_place(s),
        **extra,
    }
    return WorkerProcess(settings_env(values), tmp_path / "worker.log", free_port())


def _event(venue: str, event_id: str) -> tuple[bytes, bytes]:
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
    ev = ScheduledEvent(
        schema_version=1,
        event_time=datetime.now(timezone.utc),
        venue_id=venue,
        event_id=event_id,
        kind="concert",
        starts_at=start,
        ends_at=start + timedelta(hours=3),
        expected_attendance=8000,
    )
    return venue.encode(), encode(ev)


async def _send(s, items: list[tuple[bytes, bytes]]) -> None:
    prod = producer(s)
    await prod.start()
    try:
        await asyncio.gather(*[await prod.send(s.topic("events.schedule"), key=k, value=v) for k, v in items])
    finally:
        await prod.stop()


def _stored_event_ids(changelog: str, s, want: set[str], timeout_s: float) -> set[str]:
    """Event ids written to the announced-events table (its changelog), until ``want`` are seen."""
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while not want <= seen and time.monotonic() < deadline:

        async def read() -> list[bytes]:
            return [m.value or b"" async for m in tail(s, changelog, from_beginning=True, idle_timeout_s=0.5)]

        values = asyncio.run(read())
        seen = {e for e in want if any(e.encode() in v for v in values)}
        time.sleep(0.3)
    return seen


def test_event_at_an_unmapped_venue_is_logged_and_the_agent_keeps_going(broker, settings_for, tmp_path: Path) -> None:
    """#4: ``log.warning(..., event=...)`` raised TypeError in the event agent for every event at
    a venue without a series mapping; the batch after it was lost."""
    s = settings_for(broker)
    mapped = "stadium"
    partition = key_partition(mapped.encode(), s.topic_partitions)
    # an unmapped venue on the same partition, so its event comes first in the mapped one's batch
    unmapped = next(v for v in (f"hall-{i}" for i in range(1000)) if key_partition(v.encode(), s.topic_partitions) == partition)
    asyncio.run(ensure_topics(s))
    worker = _worker(s, tmp_path, worker_role="telemetry", venues={mapped: ["intersection/K1"]})
    worker.start(timeout_s=90)
    changelog = f"{s.app_id}-telemetry-announced-events-changelog"
    try:
        asyncio.run(_send(s, [_event(unmapped, "gig-1"), _event(mapped, "match-1")]))
        first = _stored_event_ids(changelog, s, {"match-1"}, timeout_s=30)
        asyncio.run(_send(s, [_event(unmapped, "gig-2"), _event(mapped, "match-2")]))
        second = _stored_event_ids(changelog, s, {"match-1", "match-2"}, timeout_s=30)
    finally:
        code = worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert code == 0, worker.log_tail()
    assert "Traceback" not in log and "Logging error" not in log, log[log.find("Traceback") - 2000 :][:4000]
    assert first == {"match-1"} and second == {"match-1", "match-2"}, "the agent stopped processing"
    warnings = [line for line in log.splitlines() if "event at a venue without series mapping ignored" in line]
    assert len(warnings) == 2, warnings
    assert f"venue={unmapped}" in warnings[0] and "event_id=gig-1" in warnings[0] and "[warning" in warnings[0]
    assert "gig-1" not in str(second) and "gig-2" not in str(second)


def _listening(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on ``port``, from /proc/net/tcp and tcp6 (no psutil)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = TCP_LISTEN
                raw = bytes.fromhex(address)
                if width == 8:  # little-endian IPv4
                    found.append(".".join(str(b) for b in raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(str(ipaddress.IPv6Address(words)))
    return found


@pytest.mark.parametrize("broker", ["tansu"], indirect=True)  # the web server does not depend on the broker
def test_worker_http_server_listens_on_loopback_only(broker, settings_for, tmp_path: Path) -> None:
    """#5: Faust bound 0.0.0.0, exposing /alerts and /metrics to the network."""
    s = settings_for(broker)
    worker = _worker(s, tmp_path, worker_role="critical")
    worker.start(timeout_s=90)
    try:
        addresses = _listening(worker.web_port)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert addresses == ["127.0.0.1"], addresses
