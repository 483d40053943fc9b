"""The code that drives the whole system and scores it: the demo (broker + worker + synthetic
city + simulated duty operator), the run evaluation and its HTML report, and the benchmarks.
It uses ``streams`` (broker, worker process, Kafka helpers, records) and ``simulators``; the
runtime never imports it, only the CLI (``streams/cli/run.py``) does.
"""
