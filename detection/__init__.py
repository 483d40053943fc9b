"""Pure anomaly detection (streaming detectors, pool water rules, alarm lifecycle).

Functional core: never imports Faust, Kafka or a database.

Streaming detectors (``score_one`` / ``learn_one``, docs/detection.md): ``detection.base``
(interface), ``detection.registry`` (names, ``make_detector``, ``restore``, ``score_series``),
``seasonal``, ``changepoint``, ``sensor_faults``, ``ensemble``; NAB scoring in ``detection.nab``.
The names below are exported lazily, so importing another ``detection``
module (water rules, alarms) does not pull in numpy.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Detector": "base",
    "DETECTOR_NAMES": "registry",
    "make_detector": "registry",
    "restore": "registry",
    "score_series": "registry",
    "SeasonalResidualDetector": "seasonal",
    "LevelShiftDetector": "changepoint",
    "SensorFaultDetector": "sensor_faults",
    "AlarmEpisodes": "ensemble",
    "MaxOf": "ensemble",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
