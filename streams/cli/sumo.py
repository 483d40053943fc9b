"""``leitstand sumo eval|compare`` and the closed-loop benchmark that ``leitstand bench signals``
runs (:func:`signals_benchmark`): signal controllers driving SUMO.

SUMO, libsumo and matplotlib are imported inside the functions, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CliError
from .common import err, out, reachable_settings, shared_absent_note

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from simulators.sumo.evaluation import RunOptions
    from simulators.sumo.faults import FailureKind

app = typer.Typer(help="SUMO closed loop: evaluate and compare signal controllers.", no_args_is_help=True)

#: the real-city maps ``bench signals`` looks for under its --scenarios directory
DEV_SCENARIOS = ("cologne1", "cologne3", "ingolstadt1", "ingolstadt21")

Scenario = Annotated[Path, typer.Argument(metavar="SCENARIO.sumocfg", help="Any SUMO scenario with traffic lights.")]
FailedDetectors = Annotated[
    float,
    typer.Option(
        "--failed-detectors",
        min=0.0,
        max=1.0,
        metavar="SHARE",
        help="Share of detectors that fail (e.g. 0.1; how: --failure-kind), drawn per seed, the same for every controller.",
    ),
]
FailureKindOption = Annotated[
    str,
    typer.Option(
        "--failure-kind",
        metavar="dead|stuck|noisy",
        help="How the --failed-detectors fail: absent from every frame, repeating one reading, or perturbed readings.",
    ),
]
Breakdown = Annotated[
    bool,
    typer.Option("--breakdown", help="Where capacity went, per intersection: green served / standing / empty, switches, queues."),
]


def failure_kind_of(text: str, share: float) -> FailureKind:
    """The ``--failure-kind`` named, or a one-line error listing the kinds (or saying that a kind
    without ``--failed-detectors`` would break nothing)."""
    from simulators.sumo.faults import FailureKind

    try:
        kind = FailureKind(text.strip().lower())
    except ValueError:
        raise CliError(f"--failure-kind: unknown {text!r}; known: {', '.join(k.value for k in FailureKind)}") from None
    if kind is not FailureKind.DEAD and share <= 0:
        raise CliError(f"--failure-kind {kind.value} needs --failed-detectors SHARE (e.g. 0.1): no detector would fail")
    return kind


def parse_seeds(text: str) -> list[int]:
    """``1,2,3`` or ``1-5`` (or a mix); each seed once, in the given order."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if "-" in part[1:]:
                low_text, high_text = part.split("-", 1)
                low, high = int(low_text), int(high_text)
                if high < low:
                    raise ValueError
                seeds += range(low, high + 1)
            else:
                seeds.append(int(part))
    except ValueError:
        raise CliError(f"--seeds: {text!r} is not a list like 1,2,3 or 1-5") from None
    if not seeds:
        raise CliError("--seeds: give at least one seed")
    return list(dict.fromkeys(seeds))


def controller_names(text: str) -> list[str]:
    """Comma-separated controller names, each registered in ``signals.controllers``."""
    from signals.controllers import CONTROLLERS

    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTROLLERS]
    if unknown or not names:
        raise CliError(f"unknown controller {', '.join(unknown) or '(none)'}; known: {', '.join(sorted(CONTROLLERS))}")
    return names


def controller_params(controller: str, pairs: list[str]) -> tuple[tuple[str, float], ...]:
    """``KEY=VALUE`` pairs as the controller's keyword arguments, checked like a signal config's
    ``params`` (``signals.controllers.check_params``); one-line errors otherwise."""
    from signals.controllers import check_params

    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise CliError(f"--param {pair!r}: write KEY=VALUE, e.g. wait_scale_s=60")
        try:
            out[key.strip()] = float(text)
        except ValueError:
            raise CliError(f"--param {pair!r}: {text.strip()!r} is not a number") from None
    try:
        check_params(controller, out)
    except ValueError as exc:
        raise CliError(f"--param: {exc}") from None
    return tuple(sorted(out.items()))


def _params_text(params: tuple[tuple[str, float], ...]) -> str:
    return "".join(f" · {k}={v:g}" for k, v in params)


def checked_scenario(path: Path) -> Path:
    """Fail in one line, before SUMO starts, on a configuration, net or route file that cannot run."""
    from simulators.sumo.loop import ScenarioError, check_scenario

    try:
        check_scenario(path)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    return path


def runs_progress(quiet: bool = False) -> Progress:
    """The progress bar of SUMO runs on stderr (gone when done; off when ``quiet``)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"), TimeElapsedColumn())
    return Progress(*columns, transient=True, disable=quiet, console=err)


def parallel_runs(jobs: int | None, runs: int) -> int:
    """SUMO processes to run at once: ``--jobs`` (default: the CPUs), never more than the runs."""
    return max(1, min(jobs or (os.cpu_count() or 1), runs))


def evaluate_controller(
    scenario: Path,
    controller: str,
    seeds: list[int],
    jobs: int,
    via_kafka: bool,
    quiet: bool,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """One controller over the seeds (in process, or through the broker and a running worker),
    with a progress bar on stderr unless ``quiet``."""

    from simulators.sumo.evaluation import RunOptions, evaluate
    from simulators.sumo.loop import ScenarioError

    factory = None
    if via_kafka:
        from simulators.sumo.cosim import KafkaSource

        settings = reachable_settings()
        factory = lambda: KafkaSource(settings)  # noqa: E731
    with runs_progress(quiet) as progress:
        task = progress.add_task(f"{scenario.stem} · {controller}", total=len(seeds))
        try:
            return evaluate(
                scenario,
                controller,
                seeds,
                jobs=jobs,
                source_factory=factory,
                on_done=lambda _r: progress.advance(task),
                options=options or RunOptions(),
            )
        except ScenarioError as exc:
            raise CliError(str(exc)) from None


@app.command("eval")
def eval_cmd(
    scenario: Scenario,
    controller: Annotated[
        str | None,
        typer.Option(
            "--controller", "-c", help="fixed, webster, maxpressure or leitstand (default; fixed with --tsp, where any of them runs)."
        ),
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 1,2,3 or 1-5; delays are averaged over them.")] = "1",
    tsp: Annotated[
        str | None,
        typer.Option("--tsp", metavar="on|off", help="Bus lines, transit priority on or off: bus and general-traffic delay apart."),
    ] = None,
    via_kafka: Annotated[bool, typer.Option("--via-kafka", help="Frames and plans through the broker and a running worker.")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (in-process path; default: CPUs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the default is a short summary).")] = False,
    breakdown: Breakdown = False,
    failed_detectors: FailedDetectors = 0.0,
    failure_kind: FailureKindOption = "dead",
    frame_interval: Annotated[
        float,
        typer.Option(
            "--frame-interval",
            min=0.0,
            max=900.0,
            help="Seconds between the frames the controller gets (counts summed), e.g. 60 for per-minute detector data; 0: every step.",
        ),
    ] = 0.0,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="KEY=VALUE",
            help="Set one of the controller's constants (repeatable), e.g. wait_scale_s=60 for leitstand: sensitivity studies.",
        ),
    ] = None,
    control_workers: Annotated[
        int,
        typer.Option(
            "--control-workers",
            min=1,
            max=64,
            help="Spread the signals over this many control workers (by id, as Kafka does): a neighbour on another "
            "worker is seen one frame late, as the neighbour feed delivers it.",
        ),
    ] = 1,
) -> None:
    """One controller on a scenario: RESCO delay, trips, safety (with --tsp: buses and the rest)."""
    from simulators.sumo.evaluation import RunOptions

    seed_list = parse_seeds(seeds)
    kind = failure_kind_of(failure_kind, failed_detectors)
    if tsp is not None:
        if breakdown or failed_detectors or frame_interval or param or control_workers > 1:
            raise CliError(
                "--breakdown, --failed-detectors, --frame-interval, --param and --control-workers apply to a controller's run, not to --tsp"
            )
        on = tsp_flag(tsp, via_kafka)
        name = controller_names(controller or "fixed")[0]
        transit_eval(checked_scenario(scenario), on, name, seed_list, parallel_runs(jobs, len(seed_list)), as_json)
        return
    name = controller_names(controller or "leitstand")[0]
    runs_at_once = 1 if via_kafka else parallel_runs(jobs, len(seed_list))
    if frame_interval and via_kafka:
        raise CliError("--frame-interval applies to the in-process path; through Kafka the worker gets every step's frame")
    if param and via_kafka:
        raise CliError("--param applies to the in-process path; through Kafka the worker's controllers keep their constants")
    if control_workers > 1 and via_kafka:
        raise CliError("--control-workers applies to the in-process path; through Kafka run that many control workers")
    params = controller_params(name, param or [])
    options = RunOptions(
        breakdown=breakdown,
        failed_detectors=failed_detectors,
        failure_kind=kind,
        frame_s=frame_interval,
        params=params,
        control_workers=control_workers,
    )
    result = evaluate_controller(checked_scenario(scenario), name, seed_list, runs_at_once, via_kafka, quiet=as_json, options=options)
    result["path"] = "kafka" if via_kafka else "in-process"
    if params:
        result["params"] = dict(params)
    if control_workers > 1:
        result["control_workers"] = control_workers
    if as_json:
        print(json.dumps(result))
        return
    print(
        f"{result['scenario']} · {name}{_params_text(params)} · seeds {seeds}: delay {result['delay_mean']:.2f} s, time loss "
        f"{result['timeloss_mean']:.2f} s, {result['trips']} trips ({result['unfinished']} unfinished), "
        f"safety violations {result['safety_violations']}, {result['wall_s']:.1f} s wall"
    )
    blocked = [(seed, first) for seed, first in zip(seed_list, result["first_blockage_per_seed"], strict=True) if first]
    for seed, first in blocked:
        print(f"  seed {seed}: blocked approach {first['detector']} at {first['signal']}, {first['t_s']:g} s in (signals.blockage)")
    if breakdown:
        from rich.console import Console

        # a table this wide wraps into unreadable columns on an 80-column pipe: keep its width
        Console(width=max(out.width, 150), force_terminal=out.is_terminal).print(breakdown_table(result))


@app.command("trace")
def trace_cmd(
    scenario: Scenario,
    signals: Annotated[str, typer.Option("--signals", help="Traffic light ids to trace, comma-separated (as in the net file).")],
    controller: Annotated[str, typer.Option("--controller", "-c", help="fixed, webster, maxpressure or leitstand.")] = "leitstand",
    seed: Annotated[int, typer.Option("--seed", min=0, help="The run's seed.")] = 1,
    every: Annotated[float, typer.Option("--every", min=1.0, help="Seconds between rows of one signal.")] = 1.0,
    start: Annotated[float, typer.Option("--from", min=0.0, help="First row at this many seconds after the scenario's begin.")] = 0.0,
    until: Annotated[float | None, typer.Option("--until", min=1.0, help="Stop the run this many seconds after its begin.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON lines file to write ('-': standard output).")] = Path("-"),
    failed_detectors: FailedDetectors = 0.0,
    failure_kind: FailureKindOption = "dead",
) -> None:
    """Second by second for a few signals: the state shown, the controller's rule and expected
    effect, halted vehicles on each approach and exit lane, and vehicles standing inside the
    junction (where no detector sees them). For finding how a jam starts; see docs/signals.md."""
    from simulators.sumo.loop import ScenarioError
    from simulators.sumo.trace import UnknownSignalError, trace_run

    wanted = [s.strip() for s in signals.split(",") if s.strip()]
    if not wanted:
        raise CliError("--signals: name at least one traffic light")
    if until is not None and until <= start:
        raise CliError(f"--until ({until:g} s) must come after --from ({start:g} s)")
    name = controller_names(controller)[0]
    kind = failure_kind_of(failure_kind, failed_detectors)
    path = checked_scenario(scenario)
    try:
        sink = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--output {output}: {exc.strerror or exc}") from None
    try:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"))
        with Progress(*columns, TimeElapsedColumn(), transient=True, console=err) as progress:
            task = progress.add_task(f"{path.stem} · {name} · seed {seed}", total=until or 1.0)

            def write(row: dict[str, Any]) -> None:
                sink.write(json.dumps(row) + "\n")

            def advance(done: float, total: float) -> None:
                progress.update(task, completed=done, total=until or total)

            rows = trace_run(
                path,
                name,
                seed,
                wanted,
                write,
                every_s=every,
                from_s=start,
                until_s=until,
                failed_detectors=failed_detectors,
                failure_kind=kind,
                progress=advance,
            )
    except (UnknownSignalError, ScenarioError) as exc:
        raise CliError(str(exc)) from None
    finally:
        if sink is not sys.stdout:
            sink.close()
    if sink is not sys.stdout:
        err.print(f"{rows} rows written to {output}")


def breakdown_table(result: dict[str, Any]) -> Table:
    """Per intersection where the green went, what changes cost and where queues stood."""
    from rich.table import Table

    b = result["breakdown"]
    depart = result["delay_mean"] - result["timeloss_mean"]
    title = (
        f"{result['scenario']} · {result['controller']}: delay {result['delay_mean']:.1f} s = time loss "
        f"{result['timeloss_mean']:.1f} s + insertion delay {depart:.1f} s; vehicles waiting to enter: "
        f"mean {b['insertion_backlog_mean_veh']:.1f}, max {b['insertion_backlog_max_veh']}"
    )
    table = Table(
        title=title,
        caption="shares of the green group-seconds; sw/h: stage changes per hour; halt in / out: vehicle-hours standing "
        "on the approach / exit lanes per run (JSON: every field, full ids)",
    )
    for col in ("intersection", "served", "stand", "arrive", "empty", "sw/h", "change s", "halt in", "halt out", "top rule"):
        table.add_column(col, justify="left" if col in ("intersection", "top rule") else "right", no_wrap=True)
    rows = sorted(b["intersections"].items(), key=lambda kv: -kv[1]["approach_halted_veh_h"])
    for tid, r in rows:
        top = max(r["rules"].items(), key=lambda kv: kv[1], default=("-", 0))
        table.add_row(
            tid if len(tid) <= 16 else tid[:15] + "…",
            *(f"{r[k]:.0%}" for k in ("served_share", "standing_share", "arriving_share", "empty_share")),
            f"{r['switches_per_hour']:.0f}",
            f"{r['change_s']:.0f}",
            f"{r['approach_halted_veh_h']:.1f}",
            f"{r['exit_halted_veh_h']:.1f}",
            f"{top[0]} {top[1]}",
        )
    return table


def tsp_flag(text: str, via_kafka: bool) -> bool:
    """``--tsp on|off`` as a bool; the bus lines run in process."""
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise CliError(f"--tsp: {text!r} is neither on nor off")
    if via_kafka:
        raise CliError("--tsp runs in process; --via-kafka is not supported with it")
    return value == "on"


def transit_eval(scenario: Path, tsp: bool, controller: str, seeds: list[int], jobs: int, as_json: bool) -> None:
    """Bus lines with TSP on or off over the seeds; one summary line or one JSON object."""
    from simulators.sumo.evaluation import evaluate_transit
    from simulators.sumo.loop import ScenarioError

    try:
        result = evaluate_transit(scenario, seeds, tsp, controller=controller, jobs=jobs)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        print(json.dumps(result))
        return
    from signals.controllers import CONTROLLERS

    granted = "grants" if CONTROLLERS[controller].cyclic else "bus calls"
    print(
        f"{result['scenario']} · {controller} · TSP {'on' if tsp else 'off'} · seeds {','.join(map(str, seeds))}: bus delay "
        f"{result['bus_delay_mean']:.2f} s ({result['buses']} buses), general traffic {result['other_delay_mean']:.2f} s "
        f"({result['others']} vehicles), {granted} {result['grants']}, refusals {result['refusals']}, "
        f"safety violations {result['safety_violations']}, {result['wall_s']:.1f} s wall"
    )


@app.command("compare")
def compare_cmd(
    scenario: Scenario,
    controllers: Annotated[
        str,
        typer.Option(
            "--controllers",
            help="Comma-separated controller names.",
        ),
    ] = "fixed,webster,maxpressure,leitstand",
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 1,2,3 or 1-5.")] = "1,2,3",
    chart: Annotated[Path | None, typer.Option("--chart", help="Bar chart PNG (default: <scenario>-delay.png here).")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (default: CPUs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
    failed_detectors: FailedDetectors = 0.0,
    failure_kind: FailureKindOption = "dead",
    with_floor: Annotated[
        bool,
        typer.Option(
            "--floor",
            help="Also run every seed with all signals green and conflicts not enforced: the delay no signal timing removes, "
            "and per controller the share of fixed time's signal delay it leaves (needs fixed among the controllers).",
        ),
    ] = False,
) -> None:
    """Controllers side by side: table, delay chart, ratio to fixed."""
    from simulators.sumo.evaluation import RunOptions, bar_chart

    names = controller_names(controllers)
    seed_list = parse_seeds(seeds)
    checked_scenario(scenario)
    if with_floor and "fixed" not in names:
        raise CliError("--floor compares against fixed time: add fixed to --controllers")
    options = RunOptions(failed_detectors=failed_detectors, failure_kind=failure_kind_of(failure_kind, failed_detectors))
    results = [
        evaluate_controller(scenario, n, seed_list, parallel_runs(jobs, len(seed_list)), False, quiet=as_json, options=options)
        for n in names
    ]
    base = next((r["delay_mean"] for r in results if r["controller"] == "fixed"), None)
    for result in results:
        result["ratio_to_fixed"] = round(result["delay_mean"] / base, 3) if base else None
    floor = signal_floor(scenario, seed_list, parallel_runs(jobs, len(seed_list)), as_json) if with_floor else None
    if floor is not None and base is not None:
        from simulators.sumo.floor import signal_share

        for result in results:
            result["signal_share"] = signal_share(result["delay_mean"], base, floor["delay_mean"])
    png = bar_chart(results, chart or Path(f"{scenario.stem}-delay.png"), f"{scenario.stem}: mean delay per vehicle, seeds {seeds}")
    if as_json:
        print(json.dumps({"scenario": scenario.stem, "seeds": seed_list, "chart": str(png), "results": results, "floor": floor}))
        return
    from rich.console import Console

    # as for --breakdown: the table keeps its width on a narrow pipe rather than wrapping every cell
    Console(width=max(out.width, 120), force_terminal=out.is_terminal).print(
        comparison_table(f"{scenario.stem} · seeds {seeds}", results, floor)
    )
    if floor is not None:
        print(
            f"floor: every signal green, conflicts not enforced: {floor['delay_mean']:.2f} s "
            f"(seeds {', '.join(f'{d:g}' for d in floor['delay_per_seed'])}); "
            "signal share = (delay - floor) / (fixed - floor), the part of fixed time's signal delay left"
        )
    print(f"chart: {png}")


def signal_floor(scenario: Path, seeds: list[int], jobs: int, quiet: bool) -> dict[str, Any]:
    """:func:`simulators.sumo.floor.floor` over the seeds with a progress bar."""
    from simulators.sumo.floor import floor
    from simulators.sumo.loop import ScenarioError

    with runs_progress(quiet) as progress:
        task = progress.add_task(f"{scenario.stem} · floor", total=len(seeds))
        try:
            return floor(scenario, seeds, jobs=jobs, on_done=lambda _r: progress.advance(task))
        except ScenarioError as exc:
            raise CliError(str(exc)) from None


def comparison_table(title: str, results: list[dict[str, Any]], floor: dict[str, Any] | None = None) -> Table:
    """One row per controller: delay, its ratio to fixed time (and with a floor run, the share of
    fixed time's signal delay it leaves), time loss, waiting, unfinished, safety, wall time; the
    floor last."""
    from rich.table import Table

    table = Table(title=title)
    shares = floor is not None
    cols = (
        "controller",
        "delay s",
        "× fixed",
        *(("signal share",) if shares else ()),
        "time loss s",
        "waiting s",
        "unfinished",
        "safety",
        "wall s",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "controller" else "right")
    for r in results:
        share = r.get("signal_share")
        table.add_row(
            r["controller"],
            f"{r['delay_mean']:.2f}",
            f"{r['ratio_to_fixed']:.3f}" if r["ratio_to_fixed"] else "-",
            *((f"{share:.3f}" if share is not None else "-",) if shares else ()),
            f"{r['timeloss_mean']:.2f}",
            f"{r['waiting_mean']:.2f}",
            str(r["unfinished"]),
            str(r["safety_violations"]),
            f"{r['wall_s']:.1f}",
        )
    if floor is not None:
        base = next((r["delay_mean"] for r in results if r["controller"] == "fixed"), None)
        table.add_row(
            "floor (all green)",
            f"{floor['delay_mean']:.2f}",
            f"{floor['delay_mean'] / base:.3f}" if base else "-",
            "0.000",
            f"{floor['timeloss_mean']:.2f}",
            f"{floor['waiting_mean']:.2f}",
            str(floor["unfinished"]),
            "-",
            f"{floor['wall_s']:.1f}",
        )
    return table


def signals_benchmark(
    scenarios: Path,
    seeds: str,
    controllers: str,
    jobs: int | None,
    failed_detectors: float = 0.0,
    maps: str | None = None,
    failure_kind: str = "dead",
) -> dict[str, Any]:
    """Every controller (fixed time always, as the baseline) on each real-city map found under
    ``scenarios``; one line per map on stderr as it finishes. ``failed_detectors`` > 0 runs every
    controller but fixed time with that share of detectors failed as ``failure_kind`` says (fixed
    time reads none)."""
    from simulators.sumo.evaluation import RunOptions

    kind = failure_kind_of(failure_kind, failed_detectors)
    names = controller_names(controllers)
    if "fixed" not in names:
        names.insert(0, "fixed")
    seed_list = parse_seeds(seeds)
    wanted = [m.strip() for m in maps.split(",") if m.strip()] if maps else list(DEV_SCENARIOS)
    found = [scenarios / n / f"{n}.sumocfg" for n in wanted if (scenarios / n / f"{n}.sumocfg").is_file()]
    missing = [n for n in wanted if scenarios / n / f"{n}.sumocfg" not in found]
    if maps and missing:  # a typo in --maps must not quietly shrink the benchmark
        there = sorted(p.parent.name for p in scenarios.glob("*/*.sumocfg") if p.stem == p.parent.name)
        raise CliError(f"--maps: no {', '.join(m[:40] for m in missing)} under {scenarios} (there: {', '.join(there) or 'none'})")
    if not found:
        raise CliError(f"no scenarios under {scenarios} (expected {', '.join(DEV_SCENARIOS)}{shared_absent_note()}; pass --scenarios DIR)")
    result: dict[str, Any] = {
        "benchmark": "signals",
        "seeds": seed_list,
        "failed_detectors": failed_detectors,
        "failure_kind": str(kind),
        "scenarios": {},
    }
    options = RunOptions(failed_detectors=failed_detectors, failure_kind=kind)
    for scenario in found:
        rows = {
            n: evaluate_controller(scenario, n, seed_list, parallel_runs(jobs, len(seed_list)), False, quiet=False, options=options)
            for n in names
        }
        base = rows["fixed"]["delay_mean"]
        result["scenarios"][scenario.stem] = {n: _benchmark_row(r, base) for n, r in rows.items()}
        print(f"{scenario.stem}: " + ", ".join(f"{n} {r['delay_mean']:.1f} s" for n, r in rows.items()), file=sys.stderr)
    return result


def _benchmark_row(result: dict[str, Any], fixed_delay: float) -> dict[str, Any]:
    """The figures ``bench signals`` reports for one controller on one map."""
    return {
        "delay_mean": result["delay_mean"],
        "ratio_to_fixed": round(result["delay_mean"] / fixed_delay, 3),
        "delay_per_seed": result["delay_per_seed"],
        "unfinished": result["unfinished"],
        "teleports": result["teleports"],
        "safety_violations": result["safety_violations"],
        "rejected_decisions": result["rejected_decisions"],
        "wait_overrides": result.get("wait_overrides", 0),
        "blockages_per_seed": result.get("blockages_per_seed"),
        "wall_s": result["wall_s"],
        # per approach waits and the worst-against-median summary (docs/signals.md, Fairness)
        "fairness": result.get("fairness"),
    }


def _names(text: str, known: tuple[str, ...], option: str) -> list[str]:
    """Comma-separated names, each one of ``known``, in the given order."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CliError(f"{option}: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(known)}")
    return names


def heldout_benchmark(
    seeds: str,
    controllers: str,
    levels: str,
    networks: str,
    jobs: int | None,
    failed_detectors: float = 0.0,
    keep: Path | None = None,
    end_s: int | None = None,
    failure_kind: str = "dead",
) -> dict[str, Any]:
    """Every controller (fixed time always, as the baseline) on the generated held-out networks
    (:mod:`simulators.sumo.generated`) at each demand level; each seed builds its own demand.
    A progress bar and one line per finished (network, level, controller) cell on stderr."""
    import tempfile
    import time

    from simulators.sumo import generated
    from simulators.sumo.evaluation import RunOptions, run_many, summarise

    names = controller_names(controllers)
    if "fixed" not in names:
        names.insert(0, "fixed")
    seed_list = parse_seeds(seeds)
    level_list = _names(levels, generated.LEVELS, "--levels")
    network_list = _names(networks, generated.NETWORKS, "--networks")
    end = end_s or generated.END_S
    kind = failure_kind_of(failure_kind, failed_detectors)
    options = RunOptions(failed_detectors=failed_detectors, failure_kind=kind)
    result: dict[str, Any] = {
        "benchmark": "signals-heldout",
        "seeds": seed_list,
        "failed_detectors": failed_detectors,
        "failure_kind": str(kind),
        "end_s": end,
        "periods_s": {n: {lv: generated.PERIODS[n][lv] for lv in level_list} for n in network_list},
        "networks": {},
    }
    with tempfile.TemporaryDirectory(prefix="leitstand-heldout-") as tmp:
        root = keep or Path(tmp)
        cells = [(n, lv) for n in network_list for lv in level_list]
        with runs_progress() as progress:
            task = progress.add_task("held-out networks", total=len(cells) * len(names) * len(seed_list))
            for network, level in cells:
                try:
                    built = [generated.build(network, level, s, root / network, end_s=end) for s in seed_list]
                except RuntimeError as exc:
                    raise CliError(f"building {network} {level}: {exc}") from None
                rows: dict[str, dict[str, Any]] = {}
                for name in names:
                    progress.update(task, description=f"{network} · {level} · {name}")
                    started = time.perf_counter()
                    runs = run_many(
                        [(str(b.sumocfg), name, b.seed, options) for b in built],
                        parallel_runs(jobs, len(built)),
                        lambda _r: progress.advance(task),
                    )
                    rows[name] = summarise(f"{network}-{level}", name, seed_list, runs, time.perf_counter() - started)
                    r = rows[name]
                    progress.console.print(
                        f"{network} {level} {name}: delay {r['delay_mean']:.1f} s "
                        f"(seeds {', '.join(f'{d:.1f}' for d in r['delay_per_seed'])}), unfinished {r['unfinished']}, "
                        f"safety {r['safety_violations']}, {r['wall_s']:.0f} s wall"
                    )
                base = rows["fixed"]["delay_mean"]
                cell = {n: {k: v for k, v in _benchmark_row(r, base).items() if k != "fairness"} for n, r in rows.items()}
                cell["_demand"] = {"vehicles_per_seed": [b.vehicles for b in built], "period_s": generated.PERIODS[network][level]}
                result["networks"].setdefault(network, {})[level] = cell
    return result
