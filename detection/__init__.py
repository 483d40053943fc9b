"""Pure anomaly detection (streaming detectors, pool water rules, alarm lifecycle).

Functional core: never imports Faust, Kafka or a database. Not built yet (issue 4).
"""
