"""The broker error an operator sees, shared by process management and the readiness probe
(kept here so neither imports the other for it)."""

from __future__ import annotations


class BrokerError(RuntimeError):
    """A broker could not be started, found or stopped; the message is for the operator."""
