"""The synthetic city: a pure, seeded generator of every sensor stream with its ground truth.

``generator`` composes the calendar, traffic, bus and pool modules into one run; ``types`` holds
the values they share; ``pool_day`` and ``frames`` are the smaller single-stream sources the city
grew out of (still used by ``bench pool-day`` and the quick ``simulate frames``).
"""

from .generator import (
    City,
    CityConfig,
    CityHistory,
    Emission,
    GroundTruth,
    city_stream,
    city_truth,
    demand_profile,
    load_school_holidays,
    truth_jsonl,
    write_truth,
)

__all__ = [
    "City",
    "CityConfig",
    "CityHistory",
    "Emission",
    "GroundTruth",
    "city_stream",
    "city_truth",
    "demand_profile",
    "load_school_holidays",
    "truth_jsonl",
    "write_truth",
]
