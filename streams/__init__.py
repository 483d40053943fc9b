"""The shell of Leitstand: settings, records, the Faust app, agents, brokers and the CLI.

Everything that talks to Kafka, a database or the operator lives here; the intelligence
lives in the pure packages ``signals``, ``detection`` and ``forecasting``.
"""
