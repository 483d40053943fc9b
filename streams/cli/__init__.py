"""The ``leitstand`` command line: the composition root, the only part of ``streams`` that may
import ``simulators``. ``main`` builds the root typer app and mounts one module per command
group (``run``: simulate, replay, demo, evaluate, report and their benchmarks; ``detect``;
``forecast``: forecast and events; ``sumo``; ``signals``); ``common`` holds what they share.
"""

from .main import app, main

__all__ = ["app", "main"]
