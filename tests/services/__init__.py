"""Real services the integration tests start on loopback (PostgreSQL, Prometheus), as pytest plugins."""
