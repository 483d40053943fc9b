"""The test oracle for window aggregation (simulators/harness/window_oracle.py: the recovery
benchmark judges against the same one)."""

from simulators.harness.window_oracle import detector_windows

__all__ = ["detector_windows"]
