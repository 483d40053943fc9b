"""Does the signal show what we drive? The field controller's reported stage (``signals.state``)
against the plan the desk drives.

Everything after a decision assumes the street shows it: the next decision starts from the stage
the plan left, the blockage watch judges the greens the plan gave, and a neighbour on a short link
reads this signal's plan to know whether its far end is red (docs/signals.md, "A very short link
is one junction"). A field controller stops following for good reasons (a police officer on
manual control, a cabinet switched to local or flashing operation, a technician at work) and bad
ones (the cabinet refused the plan, a communication fault), and the plans on ``signals.plans``
look just as right either way. The control room has to know.

The rule: the stage a report names is compared with the stage the driven plan asks for at the
report's time, and again at every frame while that report is the latest (a controller that
reports only when its stage changes is still judged while it holds one). Following signals
disagree only for a transition's length, since the plan asks for the next stage from the start of
the change and the controller reports the old one until its green; so a signal counts as not
following only after ``GRACE_S`` of disagreement without one agreeing look. Agreement alone does
not clear it: a controller stuck on one stage agrees whenever the plan comes round to that stage.
It counts as following again once it has *changed* stage in step with the plan (its green
starting within ``STEP_S`` of the plan's) ``SYNCED_CHANGES`` times in a row, with no look in
between that disagrees outside a change the plan began, and ``GRACE_S`` has passed since the
first. One such change is not enough: while the alarm is raised the desk has the controller plan
from the stage the street shows (``street``), so an acyclic controller's attempts to switch come
every few seconds and one of them often lands in step with a cabinet running its own program
(docs/signals.md, "Does the street follow the plan?", has the figures). A report older than
``REPORT_VALID_S`` says nothing any more: a reporter that fell silent must not turn every later
plan change into an alarm.

The cabinet stamps its reports with its own clock. One running a few seconds ahead of the
detectors' looks, to an acyclic plan with 5 s greens, like a signal that lags every change, and
one off by more than ``STEP_S`` never changes "in step", so an alarm raised during local operation
would never clear. When the cabinet says its change times are its own (``exact``: not the time a
poller first saw the stage, which lags each change by up to its polling interval and would look
like a clock ahead), the watch learns the clock's offset from the changes it reports
(``clock_offset_s``: each change against the nearest green start of that stage the plan reached
from the same stage, within ``MAX_OFFSET_S``; their median once most of the last
``OFFSET_CHANGES`` agree within ``OFFSET_SPREAD_S``, or at once when two changes in a row agree
on a step of the clock) and reads the cabinet's times on the detectors' clock with it; until it
knows the clock, such a cabinet's first alarm waits ``CLOCK_WAIT_S``. A cabinet running its own
program agrees with the plan's changes by chance only, so its offsets scatter and rarely teach
anything; one whose program is shifted by less than ``MAX_OFFSET_S`` is indistinguishable from a
skewed clock and is read as one (it shows the plan's stages that many seconds late).

Pure: driven decisions and reports in, events out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from detection.alarms import AlarmTrigger
from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import EPS, StageLayout

#: seconds of disagreement (or, once raised, of following since the first change in step) before
#: the state changes: longer than any stage change RiLSA allows (yellow 3-5 s and intergreens of
#: a few seconds) plus a frame
GRACE_S = 20.0
#: a reported change of stage is in step with the plan's when the green starts at most this far
#: from where the plan's green starts (an intergreen rounded to the second, two devices' clocks)
STEP_S = 3.0
#: changes in step with the plan's, in a row, before a signal found not following counts as
#: following again: one can be chance (a cabinet in local operation changing stage just as the
#: plan does), and a controller told what the street shows plans from it, so it is not rare
SYNCED_CHANGES = 3
#: a report counts as the controller's current stage for this long after its time at most
REPORT_VALID_S = 300.0
#: driven decisions remembered to judge a report that arrives after later frames
HISTORY = 16
#: changes of the reported stage from after the newest frame kept until the frames catch up (a
#: backlog of frames, after a restart, lets a whole hour of reports overtake them; reports of the
#: same stage in a row are kept as one, and past this many changes the oldest are dropped)
AHEAD = 64
#: reported stage runs kept for the groups' last greens (several cycles of any junction)
RUNS = 32
#: the largest clock offset learned: a cabinet further off is a fault to fix, not to allow for, and
#: a wider search would take a neighbouring green of the same stage for the one it started
MAX_OFFSET_S = 10.0
#: changes whose offsets are kept; the offset moves when at least ``OFFSET_AGREE`` of them and
#: ``OFFSET_SHARE`` of those kept agree within ``OFFSET_SPREAD_S`` (a following cabinet starts each
#: green when the plan's change ends, so its offsets differ by a step's rounding; a cabinet running
#: its own program lands near the plan's green starts by chance: with two agreeing changes enough,
#: 18 of 120 local operations on the example junction taught an offset, with three 7)
OFFSET_CHANGES = 8
OFFSET_AGREE = 3
OFFSET_SHARE = 0.75
OFFSET_SPREAD_S = 1.0
#: a cabinet that times its changes itself is judged from its first report on, but its first alarm
#: waits this long after that report unless its clock is known before: a following cabinet's
#: first three changes (and so its clock) take 52-72 s under the acyclic controllers on the example
#: junction, and a clock 5-8 s ahead looks like a lagging signal until then; the price is that a
#: cabinet already stuck when the watch starts (a desk start, a new model) is raised up to 70 s later
CLOCK_WAIT_S = 90.0
#: the alarm kind (one per intersection)
KIND = "signal_not_following"


@dataclass(frozen=True)
class FollowEvent:
    """The signal stopped (``raised``) or resumed following the driven plan."""

    intersection_id: str
    raised: bool
    time_s: float
    #: the stage the controller reports, and the stage the plan asked for then
    reported: str
    driven: str
    #: since when the disagreement (raised) or the agreement (cleared) lasted
    since_s: float
    #: why it is cleared without agreement (the intersection's new model), or ""
    why: str = ""
    #: how far the cabinet's clock runs ahead of the detectors' (learned; negative: behind)
    clock_offset_s: float = 0.0

    @property
    def kind(self) -> str:
        return KIND

    def trigger(self) -> AlarmTrigger:
        """Major, for the traffic control room: the street is not under the plan it sees."""
        return AlarmTrigger(
            self.intersection_id,
            KIND,
            "major",
            f"{self.since_s:.3f}",
            self.time_s,
            self.summary(),
            {"reported_stage": self.reported, "driven_stage": self.driven, "since_s": self.since_s, "clock_offset_s": self.clock_offset_s},
            subject_type="intersection",
        )

    def summary(self) -> str:
        """One sentence for the operator on duty."""
        if self.raised:
            return (
                f"{self.intersection_id} shows stage {self.reported} while the plan drives {self.driven}, for "
                f"{self.time_s - self.since_s:.0f} s: the field controller is not following (manual or local control, "
                f"flashing, a refused plan or a communication fault); neighbours no longer rely on its plan{self._clock()}"
            )
        if self.why:
            return f"{self.intersection_id}: no longer compared with the plan ({self.why})"
        return (
            f"{self.intersection_id} follows the plan again (stage {self.reported} as driven for "
            f"{self.time_s - self.since_s:.0f} s){self._clock()}"
        )

    def _clock(self) -> str:
        """The clock offset the watch reads the cabinet with, when there is one worth telling: a
        technician should set the clock (a plan carried out on it is that late), and a cabinet
        running its own program a few seconds off the plan's can teach one too."""
        if abs(self.clock_offset_s) < 1.0:
            return ""
        way = "ahead of" if self.clock_offset_s > 0 else "behind"
        return f"; its clock is read as {abs(self.clock_offset_s):.0f} s {way} the detectors' (learned from its stage changes)"


@dataclass(frozen=True)
class Street:
    """What a signal not following its plan shows: ``stage`` since ``since_s``, and when each
    other group's last green ended as reported (absolute seconds; groups not seen are missing)."""

    stage: str
    since_s: float
    last_green: dict[str, float]


@dataclass
class FollowWatch:
    """One intersection: the decisions it drove, the latest report, the state of the alarm."""

    intersection: Intersection
    raised: bool = False
    #: how far the cabinet's clock runs ahead of the detectors' (learned from its exact reports)
    clock_offset_s: float = 0.0
    #: (decision time, decision) driven, oldest first
    _driven: deque[tuple[float, StageDecision]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    #: the latest report judged: (time, stage)
    _report: tuple[float, str] | None = None
    #: the reported stages and since when (a report's ``started_s``, else its time), oldest first:
    #: the latest is what ``street`` says is shown, the others give the groups' last greens
    _runs: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=RUNS))
    #: reports newer than the newest frame (on the cabinet's clock), a run of the same stage as one:
    #: [first time, stage, started, last time, exact]
    _ahead: deque[list] = field(default_factory=lambda: deque(maxlen=AHEAD))
    #: time of the newest frame
    _clock_s: float = -math.inf
    #: changes of the reported stage in step with the plan's, in a row, with no disagreement since
    _synced: int = 0
    #: when the first of those changes happened
    _synced_since: float = -math.inf
    #: start of the current run of disagreeing looks, None when there is none
    _apart_since: float | None = None
    _last_look_s: float = -math.inf
    #: the offsets of the last changes the cabinet reported exactly (its clock minus the plan's)
    _offsets: deque[float] = field(default_factory=lambda: deque(maxlen=OFFSET_CHANGES))
    #: when the first report saying its change time is the cabinet's own was judged, and whether
    #: the offset has been settled since (the first alarm waits for one or ``CLOCK_WAIT_S``)
    _first_exact_s: float | None = None
    _clock_known: bool = False

    def __post_init__(self) -> None:
        self._stages = frozenset(s.id for s in self.intersection.stages)
        #: plans' stage windows and the changes between stages
        self._layout = StageLayout(self.intersection)

    def drove(self, decision: StageDecision) -> None:
        """The decision the signal drives from ``decision.time_s`` on."""
        if self._driven and decision.time_s < self._driven[-1][0]:
            return
        self._driven.append((decision.time_s, decision))

    def report(self, stage: str, at_s: float, started_s: float | None = None, exact: bool = False) -> list[FollowEvent]:
        """The controller reported ``stage`` at ``at_s`` (shown since ``started_s``, if it says;
        ``exact``: that is the cabinet's own time of the change, not when it was first seen). A
        report from after the newest frame waits for the frames to reach its time (reports and
        frames travel on different topics, and the plan for a time is known only once its frame
        was decided); one older than the latest judged is ignored (a redelivery, or reports
        overtaking each other). Times are the cabinet's clock; the watch reads them on the
        detectors' with the offset it learned."""
        if not math.isfinite(at_s):
            return []
        if at_s - self.clock_offset_s > self._clock_s:
            last = self._ahead[-1] if self._ahead else None
            if last is not None and last[1] == stage and at_s >= last[0]:
                last[3] = max(last[3], at_s)
            else:
                self._ahead.append([at_s, stage, started_s, at_s, exact])
            return []
        return self._judge(stage, at_s, started_s, exact)

    def _judge(self, stage: str, at_s: float, started_s: float | None, exact: bool) -> list[FollowEvent]:
        if started_s is None or not math.isfinite(started_s):
            started_s, exact = None, False  # no change time: nothing to learn the clock from
        changed_raw = at_s if started_s is None else min(started_s, at_s)
        if exact and self._first_exact_s is None:
            self._first_exact_s = at_s - self.clock_offset_s
        if exact and self._report is not None and stage != self._report[1]:
            self._learn_offset(self._report[1], stage, changed_raw)
        at_s, changed = at_s - self.clock_offset_s, changed_raw - self.clock_offset_s
        if self._report is not None and at_s < self._report[0]:
            return []
        if self._report is None or stage != self._report[1]:
            self._runs.append((stage, changed))
        if self._report is not None and stage != self._report[1]:
            if self._in_step(stage, changed):
                self._synced += 1
                self._synced_since = changed if self._synced == 1 else self._synced_since
            else:
                self._synced = 0
        self._report = (at_s, stage)
        return self._look(at_s)

    def _learn_offset(self, before: str, stage: str, changed: float) -> None:
        """A change from ``before`` to ``stage`` the cabinet timed itself at ``changed`` (its
        clock): its offset from the nearest green start of that stage in the plan that the plan
        also reached from ``before``, if within ``MAX_OFFSET_S``; the clock offset moves to the
        median of the offsets once most of the last ones agree (a cabinet ignoring the plan
        scatters them and moves nothing)."""
        if stage not in self._stages or before not in self._stages:
            return
        change = self._layout.change(before, stage)
        near: float | None = None
        for k in range(-math.ceil(MAX_OFFSET_S), math.ceil(MAX_OFFSET_S) + 1):  # every window lasts > 1 s
            start = self._green_start(changed + k)
            if start is None or start[0] != stage or (near is not None and abs(changed - start[1]) >= abs(near)):
                continue
            came_from = self._green_start(start[1] - change - 0.5)
            if abs(changed - start[1]) <= MAX_OFFSET_S and came_from is not None and came_from[0] == before:
                near = changed - start[1]
        if near is None:
            return
        self._offsets.append(near)
        ordered = sorted(self._offsets)
        middle = ordered[len(ordered) // 2]
        agree = [d for d in ordered if abs(d - middle) <= OFFSET_SPREAD_S]
        if len(agree) >= max(OFFSET_AGREE, OFFSET_SHARE * len(ordered)):
            self._clock_known = True
            if agree[len(agree) // 2] != self.clock_offset_s:
                self._move_clock(agree[len(agree) // 2])
            return
        last = list(self._offsets)[-2:]
        if self._clock_known and len(last) == 2 and abs(last[0] - last[1]) <= OFFSET_SPREAD_S and abs(near - self.clock_offset_s) > STEP_S:
            # a clock set right (or reset) after the offset was learned: two changes in a row at
            # the new offset, both out of step with the old one, and the older offsets are history
            self._offsets = deque(last, maxlen=OFFSET_CHANGES)
            self._move_clock(max(last))

    def _move_clock(self, offset_s: float) -> None:
        """Read the cabinet's clock with a new offset from now on: the times kept move with it,
        a run of disagreement judged on the old reading starts again, and the changes that taught
        the offset do not also count as changes in step with it."""
        delta, self.clock_offset_s = offset_s - self.clock_offset_s, offset_s
        if self._report is not None:
            self._report = (self._report[0] - delta, self._report[1])
        if self._first_exact_s is not None:
            self._first_exact_s -= delta
        self._runs = deque(((stage, since - delta) for stage, since in self._runs), maxlen=RUNS)
        self._last_look_s = min(self._last_look_s - delta, self._clock_s)  # never past the newest frame
        self._apart_since, self._synced = None, 0

    def at(self, now_s: float) -> list[FollowEvent]:
        """A frame at ``now_s``: the reports that waited for it, then the latest one, if still
        valid, judged against the plan now."""
        out: list[FollowEvent] = []
        if now_s > self._clock_s:
            self._clock_s = now_s
            offset = self.clock_offset_s
            due = sorted((r for r in self._ahead if r[0] - offset <= now_s), key=lambda r: r[0])
            if due:
                self._ahead = deque((r for r in self._ahead if r[0] - offset > now_s), maxlen=AHEAD)
                for k, (first_s, stage, started_s, last_s, exact) in enumerate(due):
                    if first_s - self.clock_offset_s > now_s:
                        # the offset moved while judging the ones before: the rest wait for their frames
                        self._ahead.extendleft(reversed(due[k:]))
                        break
                    out += self._judge(stage, first_s, started_s, exact)
                    if self._report == (first_s - self.clock_offset_s, stage):  # the run's later reports, as far as the frames are
                        self._report = (min(last_s - self.clock_offset_s, now_s), stage)
        if self._report is None or not now_s - self._report[0] <= REPORT_VALID_S:
            return out
        return out + self._look(now_s)

    def street(self, now_s: float) -> Street | None:
        """While the alarm is raised: what the street shows instead of the plan's stage at
        ``now_s`` (for the controller to plan on from it, ``resync``); None when the signal is not
        known to ignore its plan, shows what the plan asks, is still in the change the plan began,
        or its latest report is no longer valid. Call after ``at(now_s)``."""
        if not self.raised or self._report is None or not now_s - self._report[0] <= REPORT_VALID_S:
            return None
        stage = self._report[1]
        start = self._green_start(now_s)
        if start is None or start[0] == stage or self._changing(now_s, stage, start):
            return None
        return Street(stage, self._runs[-1][1], self._last_greens())

    def _last_greens(self) -> dict[str, float]:
        """When each group's last green ended, from the reported stages (a green ends a change's
        length before the next stage's starts); groups not seen green in the runs kept are left
        out, and so are those of the stage shown now."""
        out: dict[str, float] = {}
        runs = list(self._runs)
        for (stage, _since), (following, next_since) in zip(runs, runs[1:], strict=False):
            if stage in self._stages:
                change = self._layout.change(stage, following) if following in self._stages else 0.0
                for g in self.intersection.stage(stage).groups:
                    out[g] = next_since - change
        if runs and runs[-1][0] in self._stages:
            for g in self.intersection.stage(runs[-1][0]).groups:
                out.pop(g, None)
        return out

    def carry(self, raised: bool) -> None:
        """Take over an alarm raised before this watch existed (a restart, a new model): it stays
        raised until the signal is seen following again (``SYNCED_CHANGES`` changes in step)."""
        self.raised = self.raised or raised

    def known_clock(self) -> float | None:
        """The cabinet's clock offset once learned from its exact reports (None: not known), as
        saved with the intersection."""
        return self.clock_offset_s if self._clock_known else None

    def carry_clock(self, offset_s: float | None) -> None:
        """Take over a clock offset learned before this watch existed (a restart, a new model of
        the same cabinet), so its first alarm does not wait for it again; a clock set right in
        the meantime is a step the next two changes show. Nothing (None), or an offset outside
        ``MAX_OFFSET_S``, is ignored."""
        if offset_s is not None and math.isfinite(offset_s) and abs(offset_s) <= MAX_OFFSET_S and not self._clock_known:
            self._move_clock(offset_s)
            self._clock_known = True

    def _wanted(self, t: float) -> str | None:
        """The stage the decision in force at ``t`` asks for then (None: nothing driven yet), as
        a field adapter reads the plan (``StageAdapter.target_stage``)."""
        start = self._green_start(t)
        return None if start is None else start[0]

    def _changing(self, t: float, reported: str, wanted: tuple[str, float]) -> bool:
        """The plan's green of the stage it asks for at ``t`` (``wanted``: that stage and its
        green start, ``_green_start(t)``) starts within the change from ``reported`` after ``t``,
        or began at most ``STEP_S`` before it: a controller following the plan is still in that
        change and shows ``reported``. Such a look neither agrees nor disagrees for the clear; a
        controller that stays on the old stage disagrees once the change is over."""
        if reported not in self._stages:  # a stage the model does not know: no change of the plan's leads there
            return False
        stage, start = wanted
        return start - self._layout.change(reported, stage) <= t <= start + STEP_S

    def _in_step(self, stage: str, changed: float) -> bool:
        """Did the controller change to ``stage`` at ``changed`` as the plan asked: the plan asked
        for it then, and its green in the plan starts within ``STEP_S`` of the reported one (a
        following controller starts it when the plan's change ends, give or take an intergreen
        rounded to the second and the clocks of two devices)."""
        start = self._green_start(changed)
        return start is not None and start[0] == stage and abs(changed - start[1]) <= STEP_S

    def _green_start(self, t: float) -> tuple[str, float] | None:
        """The stage the plan in force at ``t`` asks for then, and when its green starts in that
        plan (absolute seconds)."""
        chosen = None
        for time_s, decision in self._driven:
            if time_s <= t or chosen is None:
                chosen = decision
        if chosen is None:
            return None
        plan, tau = chosen.plan, t - chosen.origin_s
        windows, length = self._layout.windows(plan)
        base = chosen.origin_s
        if plan.cyclic:
            base += (tau // length) * length
            tau %= length
        # the first window whose green ends after tau: inside it, or in the change towards it
        stage, start, _end = next((w for w in windows if tau < w[2] - EPS), windows[0] if plan.cyclic else windows[-1])
        if plan.cyclic and tau >= windows[-1][2] - EPS:
            start += length  # in the change towards the next cycle's first stage
        return stage, base + start

    def _look(self, t: float) -> list[FollowEvent]:
        if t < self._last_look_s or self._report is None:
            return []
        self._last_look_s = t
        start = self._green_start(t)
        if start is None:
            return []
        wanted, reported = start[0], self._report[1]
        if reported == wanted:
            self._apart_since = None
            if self.raised and self._synced >= SYNCED_CHANGES and t - self._synced_since >= GRACE_S:
                self.raised = False
                return [
                    FollowEvent(self.intersection.id, False, t, reported, wanted, self._synced_since, clock_offset_s=self.clock_offset_s)
                ]
            return []
        if not self._changing(t, reported, start):
            # in the change the plan began, a following controller shows the old stage until the
            # change ends: that does not end its run of following (it still counts towards a raise)
            self._synced = 0
        self._apart_since = t if self._apart_since is None else self._apart_since
        waiting = not self._clock_known and self._first_exact_s is not None and t - self._first_exact_s < CLOCK_WAIT_S
        if not self.raised and t - self._apart_since >= GRACE_S and not waiting:
            self.raised = True
            return [FollowEvent(self.intersection.id, True, t, reported, wanted, self._apart_since, clock_offset_s=self.clock_offset_s)]
        return []
