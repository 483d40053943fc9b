"""The stack the browser tests drive: a real broker, a worker (role ``all``), the console as its own
process, accounts of every role, a local webhook receiver standing in for the pager gateway, and
Debian's Chromium driven by Playwright (headless). axe-core comes from npm (tests/browser/package.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from streams.console.users import UserStore
from streams.kafka_io import ensure_topics, producer, tail
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.conftest import CACHE_DIR, IN_CI
from tests.integration.test_alarm_lifecycle import Receiver

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("LEITSTAND_CHROMIUM", "/usr/bin/chromium"))
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
PASSWORDS = {"sup": "supervisor-pass-1", "op1": "operator-pass-12", "plan": "planner-pass-123", "admin": "admin-pass-12345"}
ROLES = {"sup": "pool-supervisor", "op1": "operator", "plan": "planner", "admin": "admin"}
T = TypeVar("T")


def in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine in a thread of its own: Playwright's sync API owns this thread's loop."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class Stack:
    settings: Settings
    base: str
    store: UserStore
    receiver: Receiver
    shots: Path
    log_dir: Path

    def send(self, topic: str, records: list[dict[str, Any]], key_field: str) -> None:
        async def go() -> None:
            prod = producer(self.settings)
            await prod.start()
            try:
                futs = [await prod.send(self.settings.topic(topic), key=r[key_field].encode(), value=orjson.dumps(r)) for r in records]
                await asyncio.gather(*futs)
            finally:
                await prod.stop()

        in_thread(go)

    def records(self, topic: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            found = tail(self.settings, self.settings.topic(topic), from_beginning=True, idle_timeout_s=0.5)
            return [orjson.loads(m.value or b"") async for m in found]

        return in_thread(read)

    def wait_records(self, topic: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.records(topic)
            if predicate(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


def _start_console(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "console", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"console exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if json.loads(r.read()).get("ready"):
                    return proc
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"console not ready within 90 s: {log.read_text()[-2000:]}")


def _add_users(env: dict[str, str], store: UserStore) -> None:
    """``sup`` through the CLI (the way an admin does it), the others straight into the store."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "users", "add", "sup", "--role", ROLES["sup"], "--password-stdin"],
        input=PASSWORDS["sup"] + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0 and "added sup" in done.stdout, done.stderr
    for name in ("op1", "plan", "admin", "victim"):
        store.add(name, ROLES.get(name, "operator"), PASSWORDS.get(name, "victim-pass-123"))


@pytest.fixture(scope="module")
def stack(broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("console")
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=broker.bootstrap,
        topic_prefix=f"c{tag}.",
        app_id=f"console-{tag}",
        state_dir=tmp / "state",
        data_dir=tmp / "worker",
        cache_dir=CACHE_DIR,
    )
    in_thread(lambda: ensure_topics(settings))
    receiver = Receiver(fail_first=0)
    base_env = settings_env({**same_place(settings), "state_dir": settings.state_dir})
    worker_env = {
        **base_env,
        **settings_env(
            {
                "worker_role": "all",
                "alarm_contact_levels": [[receiver.url + "/duty"]],
                "webhook_allowed_hosts": "127.0.0.1",
                "webhook_backoff_s": 0.2,
                "alarm_ack_timeout_critical_s": 600.0,
            }
        ),
    }
    worker = WorkerProcess(worker_env, tmp / "worker.log", free_port())
    worker.start(timeout_s=120)
    store = UserStore(settings.state_dir / "console.sqlite")
    console = None
    try:
        _add_users(base_env, store)
        port = free_port()
        console = _start_console(base_env, port, tmp / "console.log")
        shots = Path(os.environ.get("LEITSTAND_CONSOLE_SHOTS", tmp / "shots"))
        shots.mkdir(parents=True, exist_ok=True)
        yield Stack(settings, f"http://127.0.0.1:{port}", store, receiver, shots, tmp)
    finally:
        if console is not None:
            console.terminate()
            try:
                console.wait(20)
            except subprocess.TimeoutExpired:
                console.kill()
        worker.stop()
        receiver.close()
        store.close()


@pytest.fixture(scope="session")
def axe_js() -> Path:
    """axe-core from npm; installed here when missing (CI runs on a fresh clone)."""
    if not AXE_JS.exists() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=False, capture_output=True, timeout=300)
    if not AXE_JS.exists():
        if IN_CI:
            pytest.fail("axe-core could not be installed (npm install in tests/browser)")
        pytest.skip("axe-core not installed (npm install in tests/browser)")
    return AXE_JS


@pytest.fixture(scope="module")
def chromium(stack: Stack) -> Iterator[Any]:
    """Headless Chromium, started after the stack: Playwright's sync API keeps an event loop
    running in this thread, where the broker fixture's ``asyncio.run`` could not start a broker."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM} (scripts/test installs Debian's chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield browser
        browser.close()
