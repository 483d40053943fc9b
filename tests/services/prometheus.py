"""Prometheus on loopback for the tests (filled in by the metrics work)."""
