"""The operator console (issue 16): people act on alarms, signal plans and silences as themselves.

``leitstand console`` runs it as its own process: it reads the state topics, serves the pages and
writes people's commands to ``alerts.acks``, ``signals.approvals`` and ``alerts.silences``.
docs/operators.md describes it for each role.
"""
