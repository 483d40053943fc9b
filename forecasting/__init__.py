"""Pure load forecasting (models, regressors, backtesting).

Functional core: never imports Faust, Kafka or a database. Not built yet (issue 5).
"""
