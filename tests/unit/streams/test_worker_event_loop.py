"""The worker's event loop: uvloop by default, the standard library's on request (streams/worker.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.settings import Settings

PROBE = (
    "import asyncio, sys, threading; from streams.worker import _install_event_loop; _install_event_loop(sys.argv[1]);"
    "main = type(asyncio.new_event_loop()).__module__;"
    "seen = [];"
    "t = threading.Thread(target=lambda: seen.append(type(asyncio.new_event_loop()).__module__)); t.start(); t.join();"
    "print(main, seen[0])"
)


@pytest.mark.parametrize(("kind", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")])
def test_the_chosen_loop_is_made_in_every_thread(kind: str, module: str) -> None:
    """Faust's loop and its consumer thread's loop are both made after the policy is set: both
    must be of the chosen kind (a child process: a policy cannot be taken back)."""
    out = subprocess.run([sys.executable, "-c", PROBE, kind], capture_output=True, text=True, check=True).stdout.split()
    assert out == [module, module]


def test_uvloop_is_the_default_and_anything_else_is_refused(tmp_path) -> None:
    assert Settings(_env_file=None, data_dir=tmp_path).event_loop == "uvloop"
    with pytest.raises(ValueError, match="uvloop"):
        Settings(_env_file=None, data_dir=tmp_path, event_loop="trio")
