"""What each automated decision maker declares about itself for the algorithm register.

One :class:`Entry` per component id. The ids are not typed here by hand and trusted: the
register (:mod:`streams.transparency.registry`) derives the list of components from the code's
own registries (``signals.controllers.CONTROLLERS``, ``detection.registry.DETECTOR_NAMES``,
``forecasting.FORECASTER_NAMES``) plus the fixed rule sets, and a test fails when the two lists
differ or an entry's ``code`` names nothing importable. Measured performance is not written
here either: each entry names the benchmark command and the place in its JSON output, and the
export reads the figures from the benchmark outputs it is given.

No input of any component is personal data: detectors count vehicles per lane, pool sensors
measure water, camera events arrive as anonymous event kinds (the camera system does the
vision; no image reaches Leitstand), operators' acknowledgements carry a role or account name,
which *is* personal data of staff and is said so where it occurs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Evidence:
    """Where a measured figure comes from: the command, its output file, the JSON path in it."""

    command: str
    file: str
    path: tuple[str, ...]
    what: str
    held_out: bool = False


@dataclass(frozen=True)
class Entry:
    """One component's declared facts (ATRS tier 2: description, decision process, tool, risks)."""

    title: str
    code: str  # "module:attribute" the component is, resolvable by import
    kind: str  # signal controller, safety rule set, detector, rule set, forecaster, policy
    purpose: str
    inputs: tuple[tuple[str, str], ...]  # (input, personal data statement)
    outputs: str
    acted_on_by: str
    parameters: str  # how the constants were chosen: data, procedure, date
    limitations: str
    oversight: str  # human oversight mode
    docs: str
    evidence: tuple[Evidence, ...] = field(default=())


NO_PD = "no personal data (aggregate counts and sensor values, no identifiers of people or vehicles)"
WATER_IN = (("pool water readings (free chlorine, pH, redox, turbidity, temperature)", "no personal data (water chemistry)"),)
FRAMES_IN = (("one detector frame per intersection and interval (counts, occupancy, speed, queue)", NO_PD),)
DETECTOR_SERIES_IN = (("one sensor's readings over time (time, value), e.g. counts, speeds, water chemistry, temperatures", NO_PD),)


def _signals(name: str) -> tuple[Evidence, ...]:
    found = (
        Evidence(
            "leitstand bench signals --seeds 1-5",
            "signals.json",
            ("scenarios", "*", name),
            "RESCO delay (timeLoss+departDelay) per vehicle on the development maps cologne1, cologne3, ingolstadt1, ingolstadt21",
        ),
        Evidence(
            "leitstand bench fairness --seeds 1-5",
            "fairness.json",
            ("scenarios", "*", name, "worst_to_median"),
            "fairness: the worst approach's p95 wait over the median approach's (1.0 = even)",
        ),
        Evidence(
            "leitstand bench fairness --seeds 1-5",
            "fairness.json",
            ("scenarios", "*", name, "target"),
            "fairness target: every approach's p95 wait <= 1.5 x fixed time's on the same approach",
        ),
    )
    return found[:2] if name == "fixed" else found  # fixed time is the target's baseline, not judged by it


def _detector(name: str) -> tuple[Evidence, ...]:
    """The development-set figures of ``bench nab-table`` (docs/detection.md): in sample, with
    the threshold chosen on the other categories (held out), and realTraffic on its own."""
    row = ("detectors", name)
    return (
        Evidence(
            "leitstand bench nab-table",
            "nab-table.json",
            (*row, "dev_in_sample"),
            "NAB standard-profile score, 24 development files of four kinds, one threshold for all (in sample)",
        ),
        Evidence(
            "leitstand bench nab-table",
            "nab-table.json",
            (*row, "dev_cross_validated_by_category"),
            "the same files, each category scored with the threshold chosen on the other three",
            held_out=True,
        ),
        Evidence(
            "leitstand bench nab-table",
            "nab-table.json",
            (*row, "realTraffic"),
            "NAB realTraffic (7 traffic detector series), one threshold chosen there (in sample)",
        ),
    )


def _forecaster(name: str) -> tuple[Evidence, ...]:
    return (
        Evidence(
            "leitstand bench forecast-accuracy --prophet",
            "forecast-accuracy.json",
            ("results", f"model={name}"),
            "day-ahead MASE and 80 % interval coverage, Metro Interstate I-94, 52 rolling origins",
            held_out=True,
        ),
    )


_CONTROL_OVERSIGHT = (
    "human-on-the-loop: the operator sets the mode per intersection (automatic, advisory, off: the fixed program); "
    "in advisory mode every plan waits for an operator's approval (the console, or POST "
    "/signals/{intersection}/plans/{plan_id}/approve) and expires unapproved; an acyclic controller (leitstand, "
    "max-pressure), which decides every second, asks instead for a 15-minute mandate to drive, which the operator "
    "approves, lets expire or takes back; every decision passes the safety validator and is written to signals.audit"
)
_CONTROL_OUT = "a stage plan per intersection on signals.plans; the signal adapter drives it after the safety validator"
_CONTROL_ACT = "the signal adapter (field controller); operators in advisory mode"
_ALARM_OVERSIGHT = "human-in-the-loop: an alarm informs the person on duty, who acknowledges, resolves or escalates; nothing is switched"

ENTRIES: dict[str, Entry] = {
    "signals.controller.fixed": Entry(
        "Fixed-time signal plan",
        "signals.controllers.fixed:FixedTimeController",
        "signal controller",
        "Runs the intersection's configured fixed plan: the baseline and the fallback of every adaptive mode.",
        FRAMES_IN,
        _CONTROL_OUT,
        _CONTROL_ACT,
        "The plan is the traffic engineer's, taken from the intersection model (SUMO tlLogic or the city's plan); none learnt.",
        "Does not react to demand; long waits at low demand.",
        _CONTROL_OVERSIGHT,
        "docs/signals.md",
        _signals("fixed"),
    ),
    "signals.controller.webster": Entry(
        "Webster cycle and split",
        "signals.controllers.webster:WebsterController",
        "signal controller",
        "Recomputes cycle length and green splits from measured flows with Webster's formula.",
        FRAMES_IN,
        _CONTROL_OUT,
        _CONTROL_ACT,
        "Webster (1958) formula; saturation flow and lost times are textbook defaults (RiLSA bounds), not fitted.",
        "Assumes undersaturated, stationary demand; on the cologne3 map it was slower than fixed time.",
        _CONTROL_OVERSIGHT,
        "docs/signals.md",
        _signals("webster"),
    ),
    "signals.controller.maxpressure": Entry(
        "Max-pressure",
        "signals.controllers.maxpressure:MaxPressureController",
        "signal controller",
        "Gives green to the stage with the largest queue difference between approach and exit (Varaiya 2013).",
        FRAMES_IN,
        _CONTROL_OUT,
        _CONTROL_ACT,
        "Published algorithm; minimum green and decision interval set to RiLSA bounds, not fitted.",
        "Uses queue estimates from 75 m detectors; a stage with a short queue can wait up to the maximum wait.",
        _CONTROL_OVERSIGHT,
        "docs/signals.md",
        _signals("maxpressure"),
    ),
    "signals.controller.leitstand": Entry(
        "Leitstand adaptive controller",
        "signals.controllers.leitstand:LeitstandController",
        "signal controller",
        "Extends or ends the current green from queues and arrivals, bounded by minimum green and maximum wait.",
        FRAMES_IN,
        _CONTROL_OUT,
        _CONTROL_ACT,
        "A sweep of about a dozen settings on seed 1 of the SUMO development maps (cologne1, cologne3, ingolstadt1), "
        "then frozen and checked on networks it never saw (netgenerate networks; docs/signals.md). Version 1.1 adds "
        "two rules without new tuned constants: an exit covered half by standing vehicles is full (jam density), and a "
        "dead approach detector's queue is estimated from the working loops and the fixed program's split. Later "
        "versions (1.3-1.8.2) add rules, none with a tuned constant: a frozen reading is estimated or read through a "
        "neighbour's detector on the same zone; on a link of 20 m or less between two signals nothing is sent into the "
        "far signal's red, permissive turners off it are protected, and the far signal holds its stage while the near "
        "one still sends vehicles onto it; frames slower than half a cycle hand over to the fixed program; while the "
        "field controller is found not following, it plans on from the stage the street shows (1.8.2). Version 1.8.3 "
        "weighs a late bus's call as 30 queued vehicles on its stage (one constant, chosen by cross-validation across "
        "two maps; docs/transit.md), not while every exit of that stage is full.",
        "Tested on four real maps and generated networks; sensitive to stranded_weight; decides per intersection, "
        "seeing neighbours on another control worker through the topics, up to a frame late; locks of two signals on a "
        "very short link are made rarer, not ruled out (since 1.8.1 none of fifteen development runs with failed "
        "detectors locks, one held-out run with noisy detectors still does); a noisy detector is believed, and one "
        "stuck empty reads as an empty lane; with bus lines on cologne3 it locked the GS cluster in 3 of 10 runs "
        "(priority on or off), where the fixed program did not.",
        _CONTROL_OVERSIGHT,
        "docs/signals.md",
        _signals("leitstand"),
    ),
    "signals.safety_validator": Entry(
        "Signal safety validator",
        "signals.validator:SafetyValidator",
        "safety rule set",
        "Rejects any plan that breaks conflicting greens, intergreens, sequence, minimum green, cycle or maximum wait rules.",
        (("the proposed plan and the intersection model", "no personal data"),),
        "accept, or reject with coded reasons (the last safe plan stays)",
        "the signal control loop; rejections are in signals.audit",
        "Rules and constants from RiLSA 2015 and StVO §37; not learnt.",
        "Checks the plan, not the field: the SafetyMonitor checks shown states in simulation only.",
        "automatic, no override: an operator cannot approve a plan the validator rejects",
        "docs/signals.md",
    ),
    "detection.water_rules": Entry(
        "DIN 19643 water rules",
        "detection.water_rules:evaluate",
        "rule set",
        "Raises water-quality alarms when a parameter leaves its DIN 19643 band for a minimum duration.",
        WATER_IN,
        "alarm commands on alerts.lifecycle",
        "the pool's duty staff",
        "Bands from DIN 19643; per-pool overrides from settings; minimum duration LEITSTAND_WATER_MIN_DURATION_S (30 s), "
        "scored on simulated pool days (`leitstand bench pool-day`).",
        "Trusts calibrated sensors; a drifting probe is caught only by the sensor-fault screen.",
        _ALARM_OVERSIGHT,
        "docs/alarms.md",
        (Evidence("leitstand bench pool-day", "pool-day.json", ("leitstand",), "alarm precision/recall and delay on simulated pool days"),),
    ),
    "detection.reader_backlog": Entry(
        "Water-path watch",
        "detection.reader_backlog:observe",
        "rule set",
        "Raises a system alarm when pool water readings wait unread by the water worker, so missing water alarms are not silent.",
        (("the end offsets of sensors.pool and the water worker's committed offsets", "no personal data"),),
        "a system alarm (evaluation_behind of water-rules) on alerts.lifecycle, and its clear",
        "whoever is on duty for system alarms (the default contacts)",
        "Threshold LEITSTAND_WATER_WATCH_AFTER_S (60 s): twice the water rules' own minimum duration, well above Faust's "
        "3 s commit interval; not learnt.",
        "Sees that readings wait, not why; a water worker that reads but skips its rules is not caught.",
        _ALARM_OVERSIGHT,
        "docs/alarms.md",
    ),
    "detection.pool_watch": Entry(
        "Pool supervision and crowding watch",
        "detection.pool_watch:reading_outcome",
        "rule set",
        "Turns camera events (motionless swimmer) and visitor counts into alarms; screens sensors before judging water.",
        (
            ("camera event kinds from the pool's camera system", "no personal data: no images, only an event kind, a pool id and a time"),
            ("visitor counts", "no personal data (a count)"),
        ),
        "alarm commands on alerts.lifecycle",
        "the lifeguard on duty",
        "Capacities from settings; the motionless-swimmer rule raises on the first event (no threshold to tune).",
        "Depends on the camera vendor's detection quality, which Leitstand does not measure.",
        _ALARM_OVERSIGHT,
        "docs/alarms.md",
    ),
    "detection.probe_warning": Entry(
        "Early warning of an unusual water course",
        "detection.probe_warning:PoolWarnings",
        "detector",
        "Warns the pool's duty staff (minor alarm unusual_<parameter>) when free chlorine, pH or redox take a course the "
        "pool has not shown before, so a stopped dosing pump can be checked before the water leaves its DIN 19643 band.",
        WATER_IN,
        "minor alarm commands on alerts.lifecycle (never cleared by the detector: a person resolves them)",
        "the pool's duty staff",
        "The general anomaly detector (detection.detector.default) unchanged, per pool and parameter; threshold "
        "LEITSTAND_PROBE_WARNING_THRESHOLD (0.8) chosen on one seed of the simulated city's pools as the lowest with at most "
        "one false warning per pool-month, then run once on two unseen seeds (4, 5); warm-up LEITSTAND_PROBE_WARNING_WARMUP_S (2 days).",
        "Warns of about a third to a half of simulated pump failures (slow drifts are learnt as they come); simulated water, "
        "not a real pool's; silent for two days after a pool's first reading.",
        _ALARM_OVERSIGHT,
        "docs/alarms.md",
        tuple(
            Evidence(
                "leitstand bench probe-warning",
                "probe-warning.json",
                ("seeds", f"seed={seed}", "detector", "0.8"),
                f"simulated city seed {seed}: pump failures warned, lead before the band violation, false warnings per pool-day"
                + (" (the seed the threshold was chosen on)" if seed == 1 else " (unseen)" if seed > 3 else " (seen while exploring)"),
                held_out=seed > 3,
            )
            for seed in (1, 2, 3, 4, 5)
        ),
    ),
    "detection.incidents": Entry(
        "Traffic incident and detector-fault watch",
        "detection.incidents:frame_outcome",
        "rule set",
        "Flags approaches whose occupancy and speed leave their learned hourly profile, and detectors that fail.",
        FRAMES_IN,
        "incident and detector-fault alarm commands",
        "the traffic control room operator",
        "Profile per hour of day learned online (EWMA); thresholds are the IncidentConfig defaults (occupancy +0.20 over "
        "profile, 1.8x the other approaches, speed below 55 %), set by judgement and scored in the demo evaluation.",
        "Learns 'normal' from the stream itself: a long-standing problem becomes normal.",
        _ALARM_OVERSIGHT,
        "docs/alarms.md",
    ),
    "signals.blockage": Entry(
        "Blocked-approach watch",
        "signals.blockage:BlockageWatch",
        "rule set",
        "Flags an approach whose vehicles stood through three greens in a row without one crossing the stop line "
        "(a junction locked by vehicles inside it, an exit blocked further on, or a stop-line loop that stopped counting).",
        FRAMES_IN + (("the greens each signal showed (the control desk's driven plans)", NO_PD),),
        "blocked-approach alarm commands",
        "the traffic control room operator",
        "Not learnt: three starved greens of at least 5 s (RiLSA's minimum green), set by argument; measured on the "
        "development SUMO maps (no alarm on clean runs, every locked run flagged).",
        "Sees only what the frames and the driven plan say: a permissive turn that finds no gap three times in a row "
        "under heavy oncoming flow raises it too; which of the three causes it is, a person has to look.",
        _ALARM_OVERSIGHT,
        "docs/signals.md",
    ),
    "detection.alarm_escalation": Entry(
        "Alarm escalation policy",
        "detection.alarms:EscalationPolicy",
        "policy",
        "Escalates an unacknowledged alarm to the next contact level after a deadline per severity.",
        (("alarm transitions; acknowledgements", "operators' account names (staff personal data, needed for accountability)"),),
        "escalation transitions on alerts; notifications",
        "the deputy / manager on the next level",
        "Deadlines are settings (LEITSTAND_ALARM_ACK_TIMEOUT_*_S; defaults critical 30 s, major 10 min, minor 1 h), "
        "set by the operator's duty rules; not learnt.",
        "Does not know whether a person is actually reachable; delivery failures are logged.",
        "automatic escalation, human response",
        "docs/alarms.md",
    ),
    "detection.data_quality": Entry(
        "Data-quality watch",
        "detection.data_quality:DataQualityState",
        "rule set",
        "Marks sensor streams with missing data, stuck or out-of-range values, clock skew and drift against their own history.",
        FRAMES_IN + WATER_IN,
        "leitstand_data_quality_* metrics; the state decisions cite when their data was degraded",
        "operators and maintenance staff",
        "Thresholds from settings (dq_*): 3 missed intervals, 30 identical readings, 120 s skew; drift (water only) when the "
        "recent mean leaves the long-run mean by 4x the stream's own noise. Set by judgement, not fitted; unit-tested cases.",
        "Traffic quantities are not judged for drift (their daily cycle would look like one); after a worker outage the "
        "backlog shows as clock skew; false-flag rate on field data not measured yet.",
        "information only: flags data, switches nothing",
        "docs/transparency.md",
    ),
}

_DETECTOR_TEXT = {
    "default": (
        "Default anomaly detector (general)",
        "detection.adaptive:AdaptiveDetector",
        "seasonality, scale and tails learned per series",
    ),
    "traffic": (
        "Traffic anomaly detector (per-kind)",
        "detection.ensemble:default_detector",
        "hour-of-day profiles, for traffic detector series",
    ),
    "seasonal": ("Seasonal residual detector", "detection.seasonal:SeasonalResidualDetector", "hour-of-week residuals"),
    "level_shift": ("Level-shift detector", "detection.changepoint:LevelShiftDetector", "CUSUM-like level shifts"),
    "sensor_fault": ("Sensor-fault detector", "detection.sensor_faults:SensorFaultDetector", "stuck and out-of-range values"),
    "zscore": ("Rolling z-score", "detection.ensemble:RollingZScore", "the simple baseline"),
}
for _name, (_title, _code, _how) in _DETECTOR_TEXT.items():
    ENTRIES[f"detection.detector.{_name}"] = Entry(
        _title,
        _code,
        "anomaly detector",
        f"Scores each reading of a sensor series for anomaly ({_how}).",
        DETECTOR_SERIES_IN,
        "an anomaly score in [0, 1] per reading of a sensor series (`leitstand detect`, over a CSV)"
        + (
            "; live, it scores pool probes for the early warning, which has its own entry (detection.probe_warning)"
            if _name == "default"
            else "; it raises no alarm: the live alarm paths use their own rules (traffic incidents, water limits, sensor faults)"
        ),
        "the analyst who runs it on a sensor's history",
        "Constants and one threshold per set chosen on NAB's development files; the figure to quote is the one "
        "with each category held out (`leitstand bench nab-table`, docs/detection.md).",
        "Scores describe unusual, not wrong; NAB is a small public corpus, and a new kind of sensor may behave unlike it.",
        "human-in-the-loop: a person reads the scores and decides what to look into; nothing is switched, no alarm raised",
        "docs/detection.md",
        _detector(_name),
    )

_FORECASTER_TEXT = {
    "boosted": ("Boosted-trees load forecast (default)", "forecasting.boosted:BoostedForecaster"),
    "naive_weekly": ("Weekly seasonal naive forecast", "forecasting.naive:WeeklyNaive"),
    "naive_daily": ("Daily seasonal naive forecast", "forecasting.naive:DailyNaive"),
    "prophet": ("Prophet forecast", "forecasting.prophet_model:ProphetForecaster"),
    "prophet_traffic": ("Prophet with traffic regressors", "forecasting.prophet_model:TrafficProphet"),
}
for _name, (_title, _code) in _FORECASTER_TEXT.items():
    ENTRIES[f"forecasting.forecaster.{_name}"] = Entry(
        _title,
        _code,
        "forecaster",
        "Forecasts hourly vehicles per intersection or pool visitors 24 h ahead with an 80 % interval.",
        (("hourly sums of detector counts or mean pool visitors", NO_PD), ("holidays and announced events", "no personal data")),
        "a Forecast record on the forecasts topic",
        "planners and the duty manager (staffing, event planning); no automatic action",
        "Model choice and constants by rolling-origin backtest on Metro Interstate I-94 (docs/forecasting.md).",
        "Below 28 days of history falls back to a naive; trained on one US highway series.",
        "advisory: people read forecasts, nothing is switched by them",
        "docs/forecasting.md",
        _forecaster(_name),
    )
