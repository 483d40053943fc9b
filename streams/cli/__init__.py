"""The ``leitstand`` command line: the composition root, the only part of ``streams`` that may
import ``simulators``.

One module per command group, each with its own typer ``app`` and every command a module-level
function: ``runtime`` (config, worker, produce, tail), ``run`` (replay, evaluate, report, demo) and
``detect`` (detect) sit at the root; ``broker``, ``topics``, ``simulate``, ``bench``, ``forecast``
(with ``forecast_input``), ``events``, ``sumo`` and ``signals`` are groups. ``main`` builds the root
app and mounts them; ``common`` holds what they share (consoles, settings, errors, ``../shared``).
"""

from .main import app, main

__all__ = ["app", "main"]
