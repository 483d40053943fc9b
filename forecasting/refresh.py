"""When a live series is refitted: the refresh rules, as plain values over plain clocks.

The forecasting agent (``streams/agents/forecasting.py``) asks every second which series are
due and hands their histories to a process pool. The rules:

* every series is refitted every ``refresh_s`` seconds (trigger ``schedule``);
* a series an announced event affects is refitted at once (trigger ``event``; ``trigger()``),
  whatever its schedule;
* a series with fewer than ``min_history_h`` hours of known values is not fitted; it is looked
  at again after ``RECHECK_S`` (or ``refresh_s`` if that is shorter), not every second: building
  pandas series for thousands of young series each second would eat the worker. The cheap test
  (hours recorded at all) comes first, the exact one (hours with a value) only when it passes;
  neither builds a pandas object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import NamedTuple, TypeVar

T = TypeVar("T")

#: how soon a series too short to fit is looked at again (seconds)
RECHECK_S = 30.0


def recheck_mark(now: float, refresh_s: float) -> float:
    """The "last refreshed" time that makes a series due again ``min(refresh_s, RECHECK_S)``
    seconds from ``now``."""
    return now - refresh_s + min(refresh_s, RECHECK_S)


def scheduled(series: Iterable[str], refreshed_at: Mapping[str, float], now: float, refresh_s: float) -> dict[str, str]:
    """Series whose refresh is due by the clock (never refreshed: due), as series -> ``schedule``."""
    return {s: "schedule" for s in series if now - refreshed_at.get(s, 0.0) >= refresh_s}


class RefreshSchedule:
    """The refresh clock of every series one worker forecasts (kept in memory: after a restart
    every series is due once, which is what a fresh worker wants anyway)."""

    def __init__(self, refresh_s: float, min_history_h: int) -> None:
        self.refresh_s = refresh_s
        self.min_history_h = min_history_h
        self.refreshed_at: dict[str, float] = {}
        self.triggered: dict[str, str] = {}

    def trigger(self, series: Iterable[str], why: str) -> None:
        """Refit these series at the next look, whatever their schedule."""
        for series_id in series:
            self.triggered[series_id] = why

    def due(self, series: Iterable[str], now: float) -> dict[str, str]:
        """Series to refit now and why; triggered series are handed out once."""
        due = scheduled(series, self.refreshed_at, now, self.refresh_s)
        due.update(self.triggered)
        self.triggered.clear()
        return due

    def select(
        self,
        due: Mapping[str, str],
        hours_recorded: Callable[[str], int],
        known_hours: Callable[[str], int],
        snapshot: Callable[[str], T],
        now: float,
    ) -> dict[str, tuple[str, T]]:
        """The due series long enough to fit: series -> (trigger, ``snapshot(series)``). Each is
        marked refreshed now; each too short is marked for a recheck (see the module docstring).
        ``known_hours`` counts the complete hours with a value; the snapshot is what the fit
        process turns into a pandas series, so no pandas work happens on the caller's event loop."""
        jobs: dict[str, tuple[str, T]] = {}
        for series_id, trigger in due.items():
            if hours_recorded(series_id) <= self.min_history_h or known_hours(series_id) < self.min_history_h:
                self.refreshed_at[series_id] = recheck_mark(now, self.refresh_s)
                continue
            self.refreshed_at[series_id] = now
            jobs[series_id] = (trigger, snapshot(series_id))
        return jobs


class Forecasted(NamedTuple):
    """What a forecast said for one hour: the value and its interval."""

    yhat: float
    lower: float
    upper: float


def forecast_by_hour(points: Iterable[tuple[str, Forecasted]]) -> dict[str, Forecasted]:
    """``(ISO timestamp, forecast)`` pairs as hour epoch (text, as the history keys hours) ->
    forecast, to score each forecast hour once it is complete."""
    return {str(int(datetime.fromisoformat(ts).timestamp())): f for ts, f in points}


def band_outcome(actual: float, forecasted: Forecasted) -> str:
    """Where an hour's actual value fell against the forecast's interval: ``inside``, ``below``
    or ``above``. Counted live, inside / all is the interval's coverage a planner can check
    against its nominal level (80 %, ``forecasting.intervals``)."""
    if actual < forecasted.lower:
        return "below"
    if actual > forecasted.upper:
        return "above"
    return "inside"
