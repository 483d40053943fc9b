"""PostgreSQL on loopback for the tests (filled in by the history-database work)."""
