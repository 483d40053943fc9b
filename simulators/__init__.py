"""Producers of realistic streams with known ground truth.

Simulators may use ``streams`` records and settings, never the other way round.
"""
