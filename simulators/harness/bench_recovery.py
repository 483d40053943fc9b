"""``leitstand bench recovery``: stop a worker at a random moment, restart it, check everything.

One broker for all runs; each run has its own topics, consumer group and state directory:

1. a worker (role ``all``) starts; the first half of a frame stream (20 intersections, 15 s
   frames) and of a camera-event stream (motionless swimmers: a raise, then occurrences) is
   sent;
2. once the worker has decoded a random share of the first half (0-100 %), it gets SIGTERM or
   SIGKILL (random, or the one asked for): any moment of its processing, commits and saves;
3. a second worker starts on the same group and state directory, the second halves are sent;
4. every window closed by event time must be on ``aggregates`` with exactly the values a plain
   group-by over all frames gives (the oracle here shares no code with streams/windowing.py),
   and every camera event must appear on ``alerts`` as exactly one transition
   (``raised`` for a pool's first event, ``occurred`` for each further one).

A run is *exact* when every window is on ``aggregates`` exactly once with the oracle's values
(none missing, none with other values, none unexpected, none twice) and every alarm transition
is on ``alerts`` exactly once. An identical repeat of a window counts against exactness too:
the history sink stores every record it reads (COPY), so a repeat would be a second row.
``duplicate_window_emissions`` says how many repeats there were.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from streams.settings import Settings

from .window_oracle import detector_windows

WINDOW_S = 60
INTERSECTIONS = 20
STEPS = 150
FRAME_INTERVAL_S = 15.0
POOLS = 6
EVENTS_PER_POOL = 8
#: how long the second worker may take to emit everything after its start
COLLECT_TIMEOUT_S = 120.0

Window = tuple[Any, ...]


@dataclass
class RunResult:
    """One stop-and-restart run: what went wrong, if anything."""

    run: int
    signal: str
    stopped_after_decoded: int
    exact: bool = True
    problems: list[str] = field(default_factory=list)
    windows_expected: int = 0
    duplicate_window_emissions: int = 0
    transitions_expected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not (k == "problems" and not v)}


# --- the oracle and the comparison (pure) ----------------------------------------------------


def window_oracle(frames: Iterable[Any], window_s: int = WINDOW_S) -> dict[str, Window]:
    """``aggregate_id`` -> (count_sum, occupancy_mean, frames, speed_kmh_mean) by plain group-by."""
    return detector_windows(frames, window_s)


def closed_windows(frames: list[Any], window_s: int = WINDOW_S) -> dict[str, Window]:
    """The windows event time closes (lateness 0): all but those ending after the last frame."""
    last_end = max(f.event_time.timestamp() + f.interval_s for f in frames)
    return {k: v for k, v in window_oracle(frames, window_s).items() if int(k.rsplit("/", 1)[1]) + window_s <= last_end}


def window_problems(want: dict[str, Window], seen: dict[str, list[Window]]) -> tuple[list[str], int]:
    """What differs from the oracle, and how many identical re-emissions there were."""
    problems: list[str] = []
    missing = sorted(set(want) - set(seen))
    if missing:
        problems.append(f"{len(missing)} of {len(want)} windows missing, e.g. {missing[:3]}")
    wrong = sorted(k for k, emissions in seen.items() if k in want and any(e != want[k] for e in emissions))
    for k in wrong[:3]:
        problems.append(f"window {k} emitted as {seen[k]}, expected {want[k]}")
    if len(wrong) > 3:
        problems.append(f"... {len(wrong)} windows with wrong values in all")
    unexpected = sorted(set(seen) - set(want))
    if unexpected:
        problems.append(f"{len(unexpected)} windows emitted that should still be open, e.g. {unexpected[:3]}")
    duplicates = sum(len(e) - 1 for k, e in seen.items() if k in want and k not in wrong)
    if duplicates:
        twice = sorted(k for k, e in seen.items() if len(e) > 1 and k not in wrong)
        problems.append(f"{duplicates} identical repeats of {len(twice)} windows, e.g. {twice[:3]}")
    return problems, duplicates


def expected_transitions(pools: int = POOLS, events: int = EVENTS_PER_POOL) -> set[tuple[str, str, int]]:
    """(pool, transition, occurrences) for every camera event: the first raises, the rest occur."""
    return {(f"rpool-{p}", "raised" if i == 0 else "occurred", i + 1) for p in range(pools) for i in range(events)}


def transition_problems(want: set[tuple[str, str, int]], seen: list[tuple[str, str, int]]) -> list[str]:
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    for t in seen:
        counts[t] += 1
    problems = []
    missing = sorted(want - set(counts))
    if missing:
        problems.append(f"{len(missing)} of {len(want)} alarm transitions lost, e.g. {missing[:3]}")
    twice = sorted(t for t, n in counts.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} alarm transitions delivered more than once, e.g. {twice[:3]}")
    other = sorted(set(counts) - want)
    if other:
        problems.append(f"{len(other)} unexpected alarm transitions, e.g. {other[:3]}")
    return problems


# --- inputs ------------------------------------------------------------------------------------


def camera_events(pools: int, events: int, start: datetime) -> list[tuple[bytes, bytes]]:
    """Motionless-swimmer events, pool by pool interleaved, each with its own event id."""
    out = []
    for i in range(events):
        for p in range(pools):
            at = start + timedelta(seconds=i * 20 + p)
            value = {
                "schema_version": 1,
                "event_time": at.isoformat(),
                "pool_id": f"rpool-{p}",
                "event_id": f"rec-{p}-{i}",
                "kind": "motionless_swimmer",
                "zone": "deep end",
            }
            out.append((f"rpool-{p}".encode(), orjson.dumps(value)))
    return out


async def _send(settings: Settings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    from streams.kafka_io import producer

    prod = producer(settings)
    await prod.start()
    try:
        futures = [await prod.send(settings.topic(topic), key=k, value=v) for k, v in items]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def _send_both(settings: Settings, frames: list[tuple[bytes, bytes]], events: list[tuple[bytes, bytes]]) -> None:
    await asyncio.gather(_send(settings, "sensors.intersection", frames), _send(settings, "pool.supervision", events))


# --- one run -------------------------------------------------------------------------------------


def _worker(settings: Settings, workdir: Path, name: str) -> Any:
    from streams.stack import WorkerProcess, free_port, same_place, settings_env

    env = settings_env(
        {
            **same_place(settings),
            "log_level": "warning",
            # only event time closes windows here: the stop must not close windows early
            "aggregate_idle_close_s": 3600.0,
            "aggregate_lateness_s": 0.0,
            "batch_max": 200,
            # no escalation while a run lasts: transitions must come from the events alone
            "alarm_ack_timeout_critical_s": 86_400.0,
            "alarm_ack_timeout_major_s": 86_400.0,
            "alarm_ack_timeout_minor_s": 86_400.0,
        }
    )
    return WorkerProcess(env, log_file=workdir / f"{name}.log", web_port=free_port())


def _decoded(worker: Any, topic: str) -> float:
    try:
        return float(worker.metrics().get(f'leitstand_records_decoded_total{{topic="{topic}"}}', 0.0))
    except OSError:
        return 0.0


def _stop(worker: Any, sig: int) -> None:
    """Deliver ``sig``; the worker must be gone within 30 s (a hung shutdown is a failure)."""
    worker.proc.send_signal(sig)
    try:
        worker.proc.wait(30)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        worker.proc.wait(10)
        raise RuntimeError(f"worker did not stop within 30 s of signal {sig}: {worker.log_tail()}") from None


async def _collect(
    settings: Settings, want_windows: int, want_transitions: int, timeout_s: float
) -> tuple[dict[str, list[Window]], list[Any]]:
    """Read ``aggregates`` and ``alerts`` from the start until everything expected is there
    (or the timeout), then a little longer so late duplicates are seen too."""
    from streams.kafka_io import tail

    seen: dict[str, list[Window]] = defaultdict(list)
    transitions: list[tuple[str, str, int]] = []

    async def windows() -> None:
        async for m in tail(settings, settings.topic("aggregates"), from_beginning=True, idle_timeout_s=None):
            if m.value is not None:
                a = orjson.loads(m.value)
                seen[a["aggregate_id"]].append((a["count_sum"], a["occupancy_mean"], a["frames"], a["speed_kmh_mean"]))

    async def alerts() -> None:
        async for m in tail(settings, settings.topic("alerts"), from_beginning=True, idle_timeout_s=None):
            if m.value is not None:
                a = orjson.loads(m.value)
                if str(a.get("subject_id", "")).startswith("rpool-"):
                    transitions.append((a["subject_id"], a["transition"], int(a.get("occurrences") or 1)))

    tasks = [asyncio.ensure_future(windows()), asyncio.ensure_future(alerts())]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and (len(seen) < want_windows or len(set(transitions)) < want_transitions):
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # a duplicate right behind the last expected record is still caught
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return dict(seen), transitions


def recovery_run(base: Settings, run: int, rng: random.Random, workdir: Path, stop_signal: int | None = None) -> RunResult:
    """One stop-and-restart run on its own topics and group (see the module docstring)."""
    from simulators.city.frames import frames as frame_source
    from streams.kafka_io import ensure_topics
    from streams.records import encode

    t0 = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    rundir = workdir / f"run-{run:03d}-{tag}"
    settings = base.model_copy(update={"topic_prefix": f"r{tag}.", "app_id": f"recovery-{tag}", "data_dir": rundir / "worker"})
    sig = stop_signal if stop_signal is not None else rng.choice([signal.SIGTERM, signal.SIGKILL])
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=45)
    all_frames = list(
        frame_source(intersections=INTERSECTIONS, start=start, interval_s=FRAME_INTERVAL_S, steps=STEPS, seed=rng.randrange(1 << 30))
    )
    items = [(f.intersection_id.encode(), encode(f)) for f in all_frames]
    events = camera_events(POOLS, EVENTS_PER_POOL, datetime.now(timezone.utc) - timedelta(minutes=5))
    half, ehalf = len(items) // 2, len(events) // 2
    topic = settings.topic("sensors.intersection")
    asyncio.run(ensure_topics(settings))

    share = rng.random()
    first = _worker(settings, rundir, "first")
    first.start(timeout_s=120)
    try:
        asyncio.run(_send_both(settings, items[:half], events[:ehalf]))
        deadline = time.monotonic() + 60
        while _decoded(first, topic) < half * share and time.monotonic() < deadline:
            time.sleep(0.02)
        decoded = int(_decoded(first, topic))
    finally:
        _stop(first, sig)

    want = closed_windows(all_frames)
    transitions = expected_transitions()
    second = _worker(settings, rundir, "second")
    second.start(timeout_s=120)
    try:
        asyncio.run(_send_both(settings, items[half:], events[ehalf:]))
        seen, alerts = asyncio.run(_collect(settings, len(want), len(transitions), COLLECT_TIMEOUT_S))
    finally:
        code = second.stop()
    result = RunResult(run, signal.Signals(sig).name, decoded, windows_expected=len(want), transitions_expected=len(transitions))
    problems, result.duplicate_window_emissions = window_problems(want, seen)
    problems += transition_problems(transitions, alerts)
    if code != 0:
        problems.append(f"second worker exited with {code}: {second.log_tail()}")
    result.problems, result.exact = problems, not problems
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def recovery_benchmark(
    settings: Settings, *, engine: str, runs: int, seed: int = 1, on_run: Callable[[RunResult], None] | None = None
) -> dict[str, Any]:
    """``runs`` stop-and-restart runs against a fresh broker of ``engine``: exact / inexact."""
    from streams.broker import start, stop
    from streams.stack import free_port

    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-recovery-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=False)
    base = settings.model_copy(update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state})
    rng = random.Random(seed)
    results: list[RunResult] = []
    t0 = time.monotonic()
    try:
        for i in range(runs):
            try:
                r = recovery_run(base, i, rng, state)
            except RuntimeError as exc:  # a worker that would not start or stop: an inexact run
                r = RunResult(i, "?", 0, exact=False, problems=[str(exc)[:500]])
            results.append(r)
            if on_run is not None:
                on_run(r)
    finally:
        stop(state, engine)
    inexact = [r.as_dict() for r in results if not r.exact]
    return {
        "benchmark": "recovery",
        "engine": engine,
        "runs": len(results),
        "exact": len(results) - len(inexact),
        "inexact": len(inexact),
        "inexact_runs": inexact,
        "signals": {s: sum(r.signal == s for r in results) for s in ("SIGTERM", "SIGKILL")},
        "duplicate_window_emissions": sum(r.duplicate_window_emissions for r in results),
        "windows_checked": sum(r.windows_expected for r in results),
        "transitions_checked": sum(r.transitions_expected for r in results),
        "seconds_per_run_mean": round((time.monotonic() - t0) / max(1, len(results)), 1),
        "state_dir": str(state),
    }


def recovery_benchmark_with_progress(settings: Settings, *, engine: str, runs: int, seed: int = 1) -> dict[str, Any]:
    """``recovery_benchmark`` with a rich progress bar on stderr (exact / inexact so far)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("recovery on {task.fields[engine]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("exact {task.fields[exact]}, inexact {task.fields[inexact]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task("runs", total=runs, engine=engine, exact=0, inexact=0)
        tally = {"exact": 0, "inexact": 0}

        def on_run(r: RunResult) -> None:
            tally["exact" if r.exact else "inexact"] += 1
            progress.update(task, advance=1, exact=tally["exact"], inexact=tally["inexact"])

        return recovery_benchmark(settings, engine=engine, runs=runs, seed=seed, on_run=on_run)
