"""Grafana dashboards and provisioning as code. Not built yet (storage/dashboard issues)."""
