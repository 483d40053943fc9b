"""SUMO in closed loop: detectors -> frames -> control -> signal states -> SUMO, every step.

Loads any ``.sumocfg``, derives the intersections from the network's traffic lights
(:mod:`simulators.sumo.network`), places a lane-area detector on every approach lane (the last 75 m up
to the stop line) and every exit lane (its first 75 m), and an induction loop at every stop
line, then runs begin..end with ``--time-to-teleport -1``. Each step it builds one
``IntersectionFrame`` per traffic light from what those detectors measure (counts, occupancy,
speed, queue and vehicles in the area: nothing a city's detectors would not see), hands it to a
:class:`DecisionSource` (in-process control or the broker and a running worker), drives the
returned plan through a :class:`~signals.adapter.StageAdapter`, checks the states actually shown
with a :class:`~signals.monitor.SafetyMonitor`, and finally reads tripinfo.

``delay_mean`` is the RESCO benchmark's definition: per vehicle ``timeLoss + departDelay`` from
tripinfo, averaged over all vehicles including those unfinished at the end.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Protocol, TypedDict

import msgspec
import sumolib

from signals.adapter import StageAdapter
from signals.blockage import BlockageWatch
from signals.control import IntersectionControl, Mode
from signals.controllers import DetectorObservation
from signals.corridor import Corridor, ShownGreens
from signals.explain import StageDecision
from signals.loader import intersection_to_dict
from signals.monitor import SafetyMonitor
from signals.timeline import SignalState
from simulators.sumo.breakdown import Breakdown
from simulators.sumo.faults import DetectorFaults, FailureKind
from simulators.sumo.network import APPROACH_M, SumoSignals, detection_zone, intersections_from_sumo, load_sumo_net
from streams.records import DetectorReading, IntersectionConfig, IntersectionFrame
from streams.signal_codec import decision_from_message, observation_from_frame, plan_message
from streams.stores import key_partition


def sim_epoch(end_s: float, now: float | None = None) -> float:
    """Epoch seconds of simulation second 0: the scenario's *end* is the current whole minute.

    Frames carry real timestamps like field data, close enough to the wall clock that a worker's
    clock-skew check accepts them. A closed loop runs faster than real time, so its frames lie in
    the past, never in the future: a worker refuses event times more than LEITSTAND_CLOCK_AHEAD_S
    ahead of now (a device clock running ahead). Whole seconds keep every step time exact.
    """
    wall = time.time() if now is None else now
    return float(int(wall // 60) * 60) - float(math.ceil(end_s))


CHAR = {SignalState.GREEN: "G", SignalState.YELLOW: "y", SignalState.RED: "r", SignalState.RED_YELLOW: "u"}


class ScenarioError(ValueError):
    """The scenario cannot be run (missing files, no traffic lights): one line for the CLI."""


@dataclass(frozen=True)
class Scenario:
    config: Path
    net_file: Path
    begin_s: float
    end_s: float
    additional: tuple[Path, ...] = ()
    routes: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.config.stem


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def read_scenario(sumocfg: str | Path) -> Scenario:
    """The parts of a ``.sumocfg`` the loop needs; :class:`ScenarioError` for anything unusable."""
    cfg = Path(sumocfg)
    if not cfg.is_file():
        raise ScenarioError(f"no such scenario file: {cfg}")
    try:
        root = ET.parse(cfg).getroot()
    except ET.ParseError as exc:
        raise ScenarioError(f"{cfg}: not a SUMO configuration ({exc})") from None
    except (OSError, UnicodeError) as exc:
        raise ScenarioError(f"{cfg}: cannot be read ({_one_line(exc)})") from None

    def value(*names: str) -> str | None:
        for n in names:
            el = root.find(f".//{n}")
            if el is not None and el.get("value") is not None:
                return el.get("value")
        return None

    def files(*names: str) -> tuple[Path, ...]:
        return tuple(cfg.parent / a.strip() for a in (value(*names) or "").split(",") if a.strip())

    def seconds(name: str, text: str) -> float:
        try:
            t = float(text)
        except ValueError:
            raise ScenarioError(f"{cfg}: {name} {text!r} is not a number of seconds") from None
        if not math.isfinite(t):
            raise ScenarioError(f"{cfg}: {name} {text!r} is not a finite number of seconds")
        return t

    net = value("net-file", "n")
    if net is None or not net.strip():
        raise ScenarioError(f"{cfg}: names no net-file")
    begin = seconds("begin", value("begin", "b") or "0")
    end = value("end", "e")
    if end is None:
        raise ScenarioError(f"{cfg}: names no end time (an open-ended run cannot be scored)")
    end_s = seconds("end", end)
    if end_s <= begin:
        raise ScenarioError(f"{cfg}: end {end_s:g} s is not after begin {begin:g} s")
    return Scenario(cfg, cfg.parent / net.strip(), begin, end_s, files("additional-files", "a"), files("route-files", "r"))


def _check_xml(path: Path, role: str) -> None:
    """Well-formed XML, read through once (route files are streamed: they can be large)."""
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(f"{path}: not a well-formed {role} file ({exc})") from None
    except (OSError, UnicodeError) as exc:
        raise ScenarioError(f"{path}: {role} file cannot be read ({_one_line(exc)})") from None


def load_network(scenario: Scenario) -> tuple[object, dict[str, SumoSignals]]:
    """The net and its traffic lights, or one :class:`ScenarioError` naming the net file.

    sumolib reports a bad file with whatever its parser trips over (``SAXParseException``,
    ``KeyError: 'version'``, ``ValueError`` ...), so every exception here means "not a network".
    """
    path = scenario.net_file
    if not path.is_file():
        raise ScenarioError(f"{scenario.config}: its net file {path} does not exist")
    try:
        net = load_sumo_net(path)
    except KeyError as exc:  # sumolib indexes attributes blindly: a required one is missing
        raise ScenarioError(f"{path}: not a SUMO network (an element lacks the attribute {exc.args[0]!r})") from None
    except Exception as exc:  # any failure of the third-party parser is a bad input file
        raise ScenarioError(f"{path}: not a SUMO network ({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        signals = intersections_from_sumo(net)
    except Exception as exc:  # ModelError and whatever an odd tlLogic makes sumolib raise
        raise ScenarioError(f"{path}: its traffic lights cannot be modelled ({_one_line(exc)})") from None
    if not signals:
        raise ScenarioError(f"{path} has no traffic light with two or more green stages")
    return net, signals


def check_scenario(sumocfg: str | Path) -> Scenario:
    """Everything that can be checked without starting SUMO, so a bad input fails in a second.

    The configuration parses and names a net, an end and (optionally) route and additional
    files; every named file exists; route and additional files are well-formed XML; the net
    loads and has a controllable traffic light. What only SUMO can judge (a route over an edge
    the net lacks) still fails at start, as a :class:`ScenarioError` too (see :func:`run`).
    """
    scenario = read_scenario(sumocfg)
    for role, paths in (("net", (scenario.net_file,)), ("route", scenario.routes), ("additional", scenario.additional)):
        for p in paths:
            if not p.is_file():
                raise ScenarioError(f"{scenario.config}: its {role} file {p} does not exist")
    for role, paths in (("route", scenario.routes), ("additional", scenario.additional)):
        for p in paths:
            _check_xml(p, role)
    load_network(scenario)
    return scenario


class DecisionSource(Protocol):
    """Where decisions come from: in-process control, or the broker and a running worker.

    A source may also take ``report_stages(shown, at_s)``: after every step, each traffic light's
    stage as its cabinet shows it and since when (the broker's source sends them on
    ``signals.state``, so the worker checks the street follows its plans)."""

    def start(self, scenario: Scenario, signals: Mapping[str, SumoSignals], controller: str, session: str, epoch_s: float) -> None: ...

    def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]: ...

    def close(self) -> None: ...


class InProcessSource:
    """The control loop in this process, through the same record conversions as the agent."""

    def __init__(self, mode: Mode = "automatic", params: Mapping[str, float] | None = None, control_workers: int = 1) -> None:
        self.mode = mode
        #: the controller's constants where they differ from its defaults (``sumo eval --param``)
        self.params = dict(params or {})
        #: control workers the intersections are spread over (by id, as Kafka's partitioner
        #: spreads frames): a neighbour on another worker is seen through its previous frame, as
        #: the worker's neighbour feed delivers it after the worker decided its own
        self.control_workers = control_workers
        self.worker_of: dict[str, int] = {}
        self.previous: dict[str, DetectorObservation] = {}
        self.controls: dict[str, IntersectionControl] = {}
        self.corridor = Corridor({}, {}, {})
        #: each intersection's latest decision: what its neighbours on a short link see it show
        self.shown: dict[str, StageDecision] = {}
        self.greens = ShownGreens()
        self.session = ""

    def start(self, scenario: Scenario, signals: Mapping[str, SumoSignals], controller: str, session: str, epoch_s: float) -> None:
        self.session = session
        self.controls = {
            tid: IntersectionControl(
                s.intersection,
                controller,
                self.mode,
                **self.params,
            )
            for tid, s in signals.items()
        }
        self.corridor = Corridor.of(s.intersection for s in signals.values())
        self.shown = {}
        self.worker_of = {tid: key_partition(tid.encode(), self.control_workers) for tid in signals}
        self.previous = {}

    def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
        """Every intersection's decision on this step's frames; each sees its neighbours' frames
        of the same step where they share a zone (as the worker's control desk does), and what
        its neighbours on a short link showed after the previous step."""
        out = {}
        latest = {f.intersection_id: observation_from_frame(f) for f in frames}
        views = {w: self._view(w, latest) for w in set(self.worker_of.values())} if self.control_workers > 1 else {}
        for tid, own in latest.items():
            obs = self.corridor.seen_by(own, views.get(self.worker_of.get(tid, 0), latest), self._green)
            step = self.controls[tid].on_observation(obs)
            msg = plan_message(step.drive, self.session, changed=step.changed, now_s=obs.time_s)
            out[tid] = decision_from_message(msg)
        self.shown.update(out)
        self.previous = latest
        return out

    def _view(self, worker: int, latest: Mapping[str, DetectorObservation]) -> dict[str, DetectorObservation]:
        """The frames one worker holds when it decides: its own intersections' of this step,
        the others' of the step before (delivered by its neighbour feed meanwhile)."""
        view = {tid: obs for tid, obs in self.previous.items() if self.worker_of.get(tid) != worker}
        view.update((tid, obs) for tid, obs in latest.items() if self.worker_of.get(tid) == worker)
        return view

    def _green(self, tid: str, t: float) -> frozenset[str] | None:
        shown = self.shown.get(tid)
        return None if shown is None else self.greens.green(self.controls[tid].intersection, shown, t)

    @property
    def rejections(self) -> int:
        return sum(c.rejections for c in self.controls.values())

    def close(self) -> None:
        pass


def config_records(
    signals: Mapping[str, SumoSignals], controller: str, session: str, at: datetime, mode: Mode = "automatic"
) -> list[IntersectionConfig]:
    """What a worker needs to control these traffic lights (published on ``signals.config``)."""
    return [
        IntersectionConfig(
            schema_version=1,
            event_time=at,
            intersection_id=tid,
            model=intersection_to_dict(s.intersection),
            controller=controller,
            mode=mode,
            session=session,
        )
        for tid, s in signals.items()
    ]


@dataclass
class RunResult:
    scenario: str
    controller: str
    seed: int
    delay_mean: float
    timeloss_mean: float
    duration_mean: float
    waiting_mean: float
    trips: int
    unfinished: int
    teleports: int
    safety_violations: int
    rejected_decisions: int
    stage_changes: int
    wall_s: float
    #: stage changes the adapter made against the plan because a group's maximum wait ran out
    #: (:class:`signals.adapter.StageAdapter`): a plan handover that would have starved a group
    wait_overrides: int = 0
    violations: list[str] = field(default_factory=list)
    #: detectors that failed in this run (``failed_detectors``), sorted
    failed_detectors: list[str] = field(default_factory=list)
    #: how they failed (:class:`~simulators.sumo.faults.FailureKind`)
    failure_kind: str = "dead"
    #: where capacity went (:mod:`simulators.sumo.breakdown`), when asked for
    breakdown: dict[str, object] | None = None
    #: blockages raised and cleared on approaches (:mod:`signals.blockage`, fed the frames the
    #: controllers saw and the greens actually shown), in time order
    blockages: list[dict[str, object]] = field(default_factory=list)


def write_detectors(signals: Mapping[str, SumoSignals], net: sumolib.net.Net, path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Lane-area detectors on approach and exit lanes, induction loops at stop lines.

    A detection zone covers up to the last ``APPROACH_M`` before the stop line (exits: the first
    ``APPROACH_M`` after the junction). SUMO maps split roads at geometry nodes, so a lane can be
    a 0.9 m stub before the stop line, where no camera would measure a queue: the zone of a lane
    shorter than ``STUB_M`` continues over the lanes that lead into it (exits: out of it) while
    the way is unambiguous: one lane, through a junction without signals.
    Returns per traffic light: detector id -> (lane-area detector id, induction loop id or "").
    """
    root = ET.Element("additional")
    placed: dict[str, tuple[str, str]] = {}
    per_tls: dict[str, dict[str, tuple[str, str]]] = {}
    for tid, s in signals.items():
        per_tls[tid] = {}
        for det, (lane_id, kind) in sorted(s.detectors.items()):
            if det not in placed:
                lane = net.getLane(lane_id)
                chain = detection_zone(lane, upstream=kind == "in")
                e2 = f"e2_{len(placed)}"
                if kind == "in":
                    covered = sum(x.getLength() for x in chain[1:])
                    pos, end = max(0.0, chain[0].getLength() - (APPROACH_M - covered)), lane.getLength()
                else:
                    covered = sum(x.getLength() for x in chain[:-1])
                    pos, end = 0.0, min(chain[-1].getLength(), APPROACH_M - covered)
                ET.SubElement(
                    root,
                    "laneAreaDetector",
                    id=e2,
                    lanes=" ".join(x.getID() for x in chain),
                    pos=f"{pos:.2f}",
                    endPos=f"{end:.2f}",
                    period="86400",
                    file=os.devnull,
                )
                e1 = ""
                if kind == "in":
                    e1 = f"e1_{len(placed)}"
                    ET.SubElement(
                        root,
                        "inductionLoop",
                        id=e1,
                        lane=lane_id,
                        pos=f"{max(0.0, lane.getLength() - 1.0):.2f}",
                        period="86400",
                        file=os.devnull,
                    )
                placed[det] = (e2, e1)
            per_tls[tid][det] = placed[det]
    ET.ElementTree(root).write(path)
    return per_tls


def run(
    sumocfg: str | Path,
    controller: str,
    seed: int,
    source: DecisionSource | None = None,
    *,
    session: str | None = None,
    progress: Callable[[float, float], None] | None = None,
    keep_dir: Path | None = None,
    breakdown: bool = False,
    failed_detectors: float = 0.0,
    failure_kind: FailureKind = FailureKind.DEAD,
    frame_s: float = 0.0,
) -> RunResult:
    """One seeded run of a scenario under one controller (libsumo: in this process, one at a time).

    ``failed_detectors`` is the share of detectors (approach and exit lane areas with their
    stop-line loops) that fail, drawn at random from the run's seed; ``failure_kind`` says how
    (:mod:`simulators.sumo.faults`: dead, absent from every frame; stuck, repeating one reading;
    noisy). ``breakdown`` adds :mod:`simulators.sumo.breakdown`'s account (of the true
    measurements, failed detectors included). ``frame_s`` sends the controllers one frame every so
    many seconds instead of every simulation step (detector systems that aggregate per minute):
    counts summed over the interval, the other readings as at its last step; the plans run in
    between.
    """
    import libsumo as traci  # one simulation per process: imported where it is used

    scenario = read_scenario(sumocfg)
    net, signals = load_network(scenario)
    source = source or InProcessSource()
    session = session or f"{scenario.name}-{controller}-{seed}-{os.getpid()}-{time.time_ns()}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leitstand-sumo-") as tmp:
        work = keep_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        det_file = work / "leitstand.det.add.xml"
        tripinfo = work / "tripinfo.xml"
        detectors = write_detectors(signals, net, det_file)
        failed = pick_failed(detectors, failed_detectors, seed)
        faults = DetectorFaults.draw(FailureKind(failure_kind), failed, seed, scenario.begin_s, scenario.end_s)
        account = Breakdown({tid: x.intersection for tid, x in signals.items()}) if breakdown else None
        _start_sumo(traci, scenario, seed, tripinfo, (*scenario.additional, det_file))
        try:
            epoch = sim_epoch(scenario.end_s)
            source.start(scenario, signals, controller, session, epoch)
            driver = _SignalDriver(signals)
            watch = _BlockageLog(signals, epoch + scenario.begin_s)
            teleports = _closed_loop(traci, scenario, detectors, source, driver, epoch, progress, faults, account, frame_s, watch)
        finally:
            traci.close()
            source.close()
        stats = read_tripinfo(tripinfo)
    violations = driver.violations()
    return RunResult(
        scenario=scenario.name,
        controller=controller,
        seed=seed,
        teleports=teleports,
        safety_violations=len(violations),
        rejected_decisions=getattr(source, "rejections", 0),
        stage_changes=driver.stage_changes(),
        wait_overrides=driver.wait_overrides(),
        wall_s=round(time.perf_counter() - started, 2),
        violations=violations[:20],
        failed_detectors=sorted(failed),
        failure_kind=str(faults.kind),
        breakdown=account.finish({tid: a.stage_changes for tid, a in driver.adapters.items()}) if account else None,
        blockages=watch.events,
        **stats,
    )


def pick_failed(detectors: Mapping[str, Mapping[str, tuple[str, str]]], share: float, seed: int) -> frozenset[str]:
    """The detectors that fail in a run: ``share`` of all of them (rounded), drawn from ``seed``,
    so every controller of a comparison meets the same failures."""
    if not 0.0 <= share <= 1.0 or math.isnan(share):
        raise ScenarioError(f"failed detectors must be a share between 0 and 1, got {share}")
    every = sorted({d for dets in detectors.values() for d in dets})
    return frozenset(random.Random(f"failed-detectors/{seed}").sample(every, round(share * len(every))))


def _start_sumo(
    traci: ModuleType, scenario: Scenario, seed: int, tripinfo: Path, additional: tuple[Path, ...], extra: tuple[str, ...] = ()
) -> None:
    """Start SUMO on the scenario: no teleports (a jam must show as delay), tripinfo with the
    unfinished vehicles (they count in the delay), our detectors added to the scenario's files;
    ``extra``: further SUMO options."""
    try:
        traci.start(
            [
                "sumo",
                "-c",
                str(scenario.config),
                "--seed",
                str(seed),
                "--time-to-teleport",
                "-1",
                "--tripinfo-output",
                str(tripinfo),
                "--tripinfo-output.write-unfinished",
                "true",
                *(("--additional-files", ",".join(str(p) for p in additional)) if additional else ()),
                "--no-step-log",
                "true",
                "--no-warnings",
                "true",
                "--duration-log.disable",
                "true",
                *extra,
            ]
        )
    except traci.TraCIException as exc:  # SUMO refused a file (a route over an unknown edge, ...)
        raise ScenarioError(f"{scenario.config}: SUMO cannot load the scenario ({_one_line(exc)})") from None


class _SignalDriver:
    """Turns each traffic light's decisions into the states SUMO shows, and checks them.

    One :class:`StageAdapter` (the plan as signal states, transitions included) and one
    :class:`SafetyMonitor` (what is actually shown, judged independently) per traffic light;
    a state string is sent to SUMO only when it changes.
    """

    def __init__(self, signals: Mapping[str, SumoSignals]) -> None:
        self.signals = signals
        self.adapters = {tid: StageAdapter(s.intersection) for tid, s in signals.items()}
        self.monitors = {tid: SafetyMonitor(s.intersection) for tid, s in signals.items()}
        self.shown: dict[str, str] = {}
        #: the states each traffic light showed in the last step
        self.states: dict[str, Mapping[str, SignalState]] = {}

    def apply(self, traci: ModuleType, decisions: Mapping[str, StageDecision], t: float, clock: float, step_s: float = 1.0) -> None:
        """Step every traffic light to simulation second ``t`` (``clock`` in epoch seconds)."""
        for tid, s in self.signals.items():
            states = self.adapters[tid].step(decisions[tid], clock, step_s)
            self.states[tid] = states
            self.monitors[tid].observe(t, states)
            rygs = _state_string(s, states, self.adapters[tid])
            if self.shown.get(tid) != rygs:
                traci.trafficlight.setRedYellowGreenState(tid, rygs)
                self.shown[tid] = rygs

    def shown_stages(self) -> dict[str, tuple[str, float]]:
        """Per traffic light the stage its adapter shows (the old one through a change) and since
        when (epoch seconds): what a field controller reports on ``signals.state``."""
        return {tid: (a.stage, a.green_start_s) for tid, a in self.adapters.items() if a.stage is not None}

    def violations(self) -> list[str]:
        return [str(v) for m in self.monitors.values() for v in m.violations]

    def stage_changes(self) -> int:
        return sum(a.stage_changes for a in self.adapters.values())

    def wait_overrides(self) -> int:
        return sum(a.wait_overrides for a in self.adapters.values())


def _closed_loop(
    traci: ModuleType,
    scenario: Scenario,
    detectors: Mapping[str, Mapping[str, tuple[str, str]]],
    source: DecisionSource,
    driver: _SignalDriver,
    epoch: float,
    progress: Callable[[float, float], None] | None,
    faults: DetectorFaults | None = None,
    account: Breakdown | None = None,
    frame_s: float = 0.0,
    watch: _BlockageLog | None = None,
) -> int:
    """Every step until the scenario's end: frames -> decisions (every ``frame_s`` when set) ->
    shown states -> one SUMO step. Returns the number of teleports (none expected: teleporting is
    switched off)."""
    step_s = traci.simulation.getDeltaT()
    every = max(1, round(frame_s / step_s)) if frame_s > 0 else 1
    counted: dict[tuple[str, str], int] = defaultdict(int)
    decisions: dict[str, StageDecision] = {}
    teleports = 0
    k = 0
    report = getattr(source, "report_stages", None)
    t = traci.simulation.getTime()
    while t < scenario.end_s - 1e-9:
        frames = [_frame(traci, tid, detectors[tid], epoch + t, step_s) for tid in driver.signals]
        if every > 1:
            for f in frames:
                for r in f.detectors:
                    counted[f.intersection_id, r.detector_id] += r.count
        if k % every == 0:
            # each frame covers the whole interval before it, the first too: a city's detector
            # system reports on its own clock, and before the simulation began nothing passed in
            # this world. (Stop 38 labelled the first frame one step long; leitstand 1.7, which
            # reads the frame rate from the frames, then started with a second's plan, held its
            # first stage to the next frame and, on ingolstadt21 seed 3 at 60 s frames, that
            # start alone gridlocked the network: 301.7 s, against 134.6 s begun in step.)
            sent = [_aggregated(f, counted, every * step_s) for f in frames] if every > 1 else frames
            counted.clear()
            seen = [faults.apply(f, t) for f in sent] if faults is not None and faults.failed else sent
            if watch is not None:
                watch.observe(seen)
            decisions = source.decide(seen)
        k += 1
        clock = epoch + t  # decisions are timed in epoch seconds, like field data
        driver.apply(traci, decisions, t, clock, step_s)
        if report is not None:  # a source that checks the street follows its plans (the broker's)
            report(driver.shown_stages(), clock)
        if watch is not None:
            watch.shown(driver.states, step_s)
        if account is not None:
            for f in frames:
                tid = f.intersection_id
                account.observe(f, driver.states[tid], driver.adapters[tid].transition is not None, decisions[tid], step_s)
            account.network(len(traci.simulation.getPendingVehicles()), step_s)
        traci.simulationStep()
        teleports += traci.simulation.getStartingTeleportNumber()
        t = traci.simulation.getTime()
        if progress is not None:
            progress(t - scenario.begin_s, scenario.end_s - scenario.begin_s)
    return teleports


class _BlockageLog:
    """A :class:`signals.blockage.BlockageWatch` per traffic light, fed each frame the controllers
    saw with the seconds each group showed green during the interval that frame covers."""

    def __init__(self, signals: Mapping[str, SumoSignals], begin: float) -> None:
        self.watches = {tid: BlockageWatch(s.intersection) for tid, s in signals.items()}
        self.greens: dict[str, dict[str, float]] = {tid: {} for tid in signals}
        self.begin = begin  # epoch seconds of the scenario's begin: events are timed from it
        self.events: list[dict[str, object]] = []

    def shown(self, states: Mapping[str, Mapping[str, SignalState]], step_s: float) -> None:
        for tid, groups in states.items():
            acc = self.greens[tid]
            for g, state in groups.items():
                if state == SignalState.GREEN:
                    acc[g] = acc.get(g, 0.0) + step_s

    def observe(self, frames: Sequence[IntersectionFrame]) -> None:
        for f in frames:
            tid = f.intersection_id
            for e in self.watches[tid].observe(observation_from_frame(f), self.greens[tid]):
                self.events.append(
                    {
                        "t_s": round(e.time_s - self.begin, 1),
                        "signal": tid,
                        "detector": e.detector,
                        "raised": e.raised,
                        "greens": e.greens,
                        "green_s": e.green_s,
                        "queue_veh": e.queue_veh,
                        "summary": e.summary(),
                    }
                )
            self.greens[tid] = {}


def _aggregated(frame: IntersectionFrame, counted: Mapping[tuple[str, str], int], interval_s: float) -> IntersectionFrame:
    """``frame`` (the interval's last step) as a frame of the whole interval: its counts summed."""
    tid = frame.intersection_id
    readings = [msgspec.structs.replace(r, count=counted.get((tid, r.detector_id), r.count)) for r in frame.detectors]
    return msgspec.structs.replace(frame, interval_s=interval_s, detectors=readings)


def _frame(traci: ModuleType, tid: str, detectors: Mapping[str, tuple[str, str]], clock: float, step_s: float) -> IntersectionFrame:
    readings = []
    area, loop = traci.lanearea, traci.inductionloop
    for det, (e2, e1) in detectors.items():
        speed = area.getLastStepMeanSpeed(e2)
        readings.append(
            DetectorReading(
                detector_id=det,
                count=loop.getLastStepVehicleNumber(e1) if e1 else 0,
                occupancy=min(1.0, max(0.0, area.getLastStepOccupancy(e2) / 100.0)),
                speed_kmh=min(300.0, speed * 3.6) if speed >= 0 else None,
                queue_veh=float(area.getJamLengthVehicle(e2)),
                vehicles=float(area.getLastStepVehicleNumber(e2)),
            )
        )
    return IntersectionFrame(
        schema_version=1, event_time=datetime.fromtimestamp(clock, tz=UTC), intersection_id=tid, interval_s=step_s, detectors=readings
    )


def _state_string(s: SumoSignals, states: Mapping[str, SignalState], adapter: StageAdapter) -> str:
    """SUMO's per-link characters: ``G``/``g`` as the stage drives the group, ``y``, ``r``, ``u``."""
    tr = adapter.transition
    stage = adapter.stage if tr is None else tr.from_stage
    assert stage is not None, "the adapter has stepped: it shows a stage"
    chars = []
    for i, g in enumerate(s.link_groups):
        if g is None:
            chars.append(s.constant[i])
            continue
        st = states[g]
        if st is SignalState.GREEN:  # during a transition only groups of both stages are green
            chars.append(s.green_chars[stage].get(g, "G"))
        else:
            chars.append(CHAR[st])
    return "".join(chars)


class TripStats(TypedDict):
    """The tripinfo figures of one run (the fields of :class:`RunResult` that SUMO measures)."""

    delay_mean: float
    timeloss_mean: float
    duration_mean: float
    waiting_mean: float
    trips: int
    unfinished: int


def read_tripinfo(path: Path) -> TripStats:
    """RESCO's delay (timeLoss + departDelay) and the usual means, unfinished vehicles included."""
    n = unfinished = 0
    delay = loss = duration = waiting = 0.0
    for _, el in ET.iterparse(path, events=("end",)):
        if el.tag != "tripinfo":
            continue
        n += 1
        loss_v = float(el.get("timeLoss", 0.0))
        delay += loss_v + float(el.get("departDelay", 0.0))
        loss += loss_v
        duration += float(el.get("duration", 0.0))
        waiting += float(el.get("waitingTime", 0.0))
        if float(el.get("arrival", -1.0)) < 0:
            unfinished += 1
        el.clear()
    if n == 0:
        raise ScenarioError("the run produced no trips (empty demand or no tripinfo)")
    return {
        "delay_mean": round(delay / n, 3),
        "timeloss_mean": round(loss / n, 3),
        "duration_mean": round(duration / n, 3),
        "waiting_mean": round(waiting / n, 3),
        "trips": n,
        "unfinished": unfinished,
    }
