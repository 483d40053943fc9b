"""Score alarms against injected ground truth: recall, precision, delay, false alarms per day.

An injected incident counts as *detected* when an alarm of its expected kind for the same
subject was raised between its start and its end plus a grace period (alarms confirm after a
minimum duration, so they can come shortly after a short incident). Alarms that match no
incident are false alarms; incidents that expect no alarm (a sensor spike must not look like
bad water) make any water alarm during them a false one too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RaisedAlarm:
    subject_id: str
    kind: str
    severity: str
    raised_at: float  # when the alarm was raised (wall or simulated clock of the run)


@dataclass(frozen=True)
class Truth:
    subject_id: str
    kind: str
    start: float
    end: float
    expected_alarm: str | None
    severity: str | None = None


def evaluate_alarms(
    truth: Sequence[Truth], raised: Iterable[RaisedAlarm], days: float, subjects: int, grace_s: float = 300.0
) -> dict[str, Any]:
    """Per alarm kind: incidents, detected, recall, false alarms, precision, delays (s)."""
    raised = sorted(raised, key=lambda a: a.raised_at)
    used: set[int] = set()
    hit: set[int] = set()
    per_kind: dict[str, dict[str, Any]] = {}
    for n_inc, inc in enumerate(truth):
        if inc.expected_alarm is None:
            continue
        row = per_kind.setdefault(inc.expected_alarm, {"incidents": 0, "detected": 0, "delays_s": [], "false_alarms": 0})
        row["incidents"] += 1
        for i, a in enumerate(raised):
            if i in used or a.subject_id != inc.subject_id or a.kind != inc.expected_alarm:
                continue
            if inc.start - 1.0 <= a.raised_at <= inc.end + grace_s:
                used.add(i)
                hit.add(n_inc)
                row["detected"] += 1
                row["delays_s"].append(round(a.raised_at - inc.start, 1))
                break
    for i, a in enumerate(raised):
        if i not in used:
            row = per_kind.setdefault(a.kind, {"incidents": 0, "detected": 0, "delays_s": [], "false_alarms": 0})
            row["false_alarms"] += 1
    for row in per_kind.values():
        n, d, f = row["incidents"], row["detected"], row["false_alarms"]
        row["recall"] = round(d / n, 3) if n else None
        row["precision"] = round(d / (d + f), 3) if d + f else None
        delays = sorted(row["delays_s"])
        row["delay_median_s"] = delays[len(delays) // 2] if delays else None
        row["delay_max_s"] = delays[-1] if delays else None
    water_false = sum(r["false_alarms"] for k, r in per_kind.items() if k.startswith("water_"))
    critical = [i for i, t in enumerate(truth) if t.severity == "critical" and t.expected_alarm]
    return {
        "per_kind": dict(sorted(per_kind.items())),
        "critical_incidents": len(critical),
        "critical_alarmed": sum(i in hit for i in critical),
        "critical_missed": [asdict(truth[i]) for i in critical if i not in hit],
        "false_water_alarms_per_subject_day": round(water_false / max(1e-9, days * subjects), 3),
    }
