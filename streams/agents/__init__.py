"""Faust agents: a few lines of wiring each; the logic they call lives elsewhere."""
