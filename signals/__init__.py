"""Pure signal-timing library (intersection model, safety validator, controllers).

Functional core: never imports Faust, Kafka or a database. Not built yet (issue 3).
"""
