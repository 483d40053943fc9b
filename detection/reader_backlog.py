"""How long have records waited unread by a consumer group? (pure; the shell samples offsets.)

Why this exists: the DIN 19643 water rules run in a worker role of their own (``water``). A
deployment that runs the other roles but no water worker, or whose water worker hangs, raises
no pH, chlorine or redox alarm and says nothing: the silent-sensor alarm lives in the same
worker. The critical worker therefore samples the water group's committed offsets against the
end offsets of ``sensors.pool`` and raises a system alarm when readings wait too long.

The measure is the age of the oldest record not yet committed, to the sampling interval: a
sample taken at ``t`` remembers each partition's end offset then; once the group's committed
offsets cover it, every record it saw has been read. The oldest sample not yet covered tells
how long at least one record has waited. This catches a group that never ran (nothing
committed), one that stopped, and one that reads but falls ever further behind; an idle topic
is never "behind". Committed offsets lag the reading by the group's commit interval (about 3 s
in Faust), so the threshold should be tens of seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .alarms import AlarmTrigger

#: samples kept while a group stays behind (85 minutes at the 10 s sampling of a 60 s threshold);
#: beyond that every second one is dropped, keeping the oldest and the newest. The age stays exact
#: while the oldest waits; once the group reads again it may be under-stated by the gap between
#: two kept samples, never over-stated
MAX_SAMPLES = 512


@dataclass(frozen=True)
class Sample:
    at: float
    ends: Mapping[int, int]  # partition -> end offset (the offset the next record will get)


@dataclass(frozen=True)
class Backlog:
    """What the watch remembers between samples, and what it last concluded."""

    samples: tuple[Sample, ...] = ()
    behind_s: float = 0.0  # age of the oldest sample whose records are not all committed
    waiting: int = 0  # records not yet committed at the last sample
    since: float | None = None  # when the oldest uncovered sample was taken


def covered(sample: Sample, committed: Mapping[int, int | None]) -> bool:
    """Every record the sample saw is committed (a partition never committed counts as 0)."""
    return all((committed.get(p) or 0) >= end for p, end in sample.ends.items())


def observe(state: Backlog, now: float, ends: Mapping[int, int], committed: Mapping[int, int | None]) -> Backlog:
    """Fold one sample of end and committed offsets taken at ``now``."""
    samples = [s for s in (*state.samples, Sample(now, dict(ends))) if not covered(s, committed)]
    if len(samples) > MAX_SAMPLES:
        samples = [*samples[:-1:2], samples[-1]]  # thin, keeping the oldest and the newest
    waiting = sum(max(0, end - (committed.get(p) or 0)) for p, end in ends.items())
    oldest = samples[0].at if samples else None
    return Backlog(tuple(samples), 0.0 if oldest is None else max(0.0, now - oldest), waiting, oldest)


Action = Literal["raise", "clear"]


@dataclass(frozen=True)
class Decision:
    action: Action | None
    raised: bool | None = field(default=None)  # what the watch believes is open afterwards


def decide(backlog: Backlog, raised: bool | None, after_s: float) -> Decision:
    """Raise once the oldest record has waited ``after_s``; clear once it is under half of that
    (hysteresis: a group hovering at the threshold does not flap). ``raised`` None means not
    known (the watch just started, an alarm of an earlier run may be open): the first sample
    under the threshold sends a clear, which changes nothing if none is open."""
    if backlog.behind_s >= after_s:
        return Decision("raise" if raised is not True else None, True)
    if backlog.behind_s < after_s / 2 and raised is not False:
        return Decision("clear", False)
    return Decision(None, raised)


#: the system alarm of the water path: kind ``evaluation_behind`` of subject ``water-rules``, type
#: ``system`` (not ``water_...``: those name a pool's water-limit alarms, and a report would count
#: this one as a pool's)
WATER_RULES_BEHIND = "evaluation_behind"
WATER_RULES_SUBJECT = "water-rules"


def water_rules_trigger(backlog: Backlog, now: float, topic: str, group: str) -> AlarmTrigger:
    """The alarm a supervisor reads: what is not happening, since when, and what to do."""
    since = backlog.since if backlog.since is not None else now
    return AlarmTrigger(
        WATER_RULES_SUBJECT,
        WATER_RULES_BEHIND,
        "major",
        f"behind-since:{since:.0f}",
        now,
        f"pool water readings have waited {backlog.behind_s:.0f} s unevaluated ({backlog.waiting} on {topic}): "
        f"no pH, free-chlorine or redox alarm is raised until a water worker reads them "
        f"(consumer group {group}; start or check `leitstand worker --role water`)",
        {"behind_s": round(backlog.behind_s, 1), "waiting_readings": backlog.waiting, "topic": topic, "group": group},
        subject_type="system",
    )
