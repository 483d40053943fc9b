"""``leitstand sumo eval|compare`` and ``leitstand bench signals``: controllers in closed loop.

SUMO, libsumo and matplotlib are imported inside the commands, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CliError

REPO = Path(__file__).resolve().parents[2]
DEV_SCENARIOS = ("cologne1", "cologne3", "ingolstadt1")


def parse_seeds(text: str) -> list[int]:
    """``1,2,3`` or ``1-5`` (or a mix); each seed once, in the given order."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                seeds += range(lo, hi + 1)
            else:
                seeds.append(int(part))
    except ValueError:
        raise CliError(f"--seeds: {text!r} is not a list like 1,2,3 or 1-5") from None
    if not seeds:
        raise CliError("--seeds: give at least one seed")
    return list(dict.fromkeys(seeds))


def _controllers(text: str) -> list[str]:
    from signals.controllers import CONTROLLERS

    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTROLLERS]
    if unknown or not names:
        raise CliError(f"unknown controller {', '.join(unknown) or '(none)'}; known: {', '.join(sorted(CONTROLLERS))}")
    return names


def _scenario(path: Path) -> Path:
    """Fail in one line, before SUMO starts, on a configuration, net or route file that cannot run."""

    from simulators.sumo.loop import ScenarioError, check_scenario

    try:
        check_scenario(path)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    return path


def _jobs(jobs: int | None, runs: int) -> int:
    return max(1, min(jobs or (os.cpu_count() or 1), runs))


def _evaluate(scenario: Path, controller: str, seeds: list[int], jobs: int, via_kafka: bool, quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulators.sumo.evaluation import evaluate
    from simulators.sumo.loop import ScenarioError

    from .common import err

    factory = None
    if via_kafka:
        from simulators.sumo.cosim import KafkaSource

        from .common import _reachable_settings

        settings = _reachable_settings()
        factory = lambda: KafkaSource(settings)  # noqa: E731
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        transient=True,
        disable=quiet,
        console=err,
    ) as progress:
        task = progress.add_task(f"{scenario.stem} · {controller}", total=len(seeds))
        try:
            return evaluate(scenario, controller, seeds, jobs=jobs, source_factory=factory, on_done=lambda _r: progress.advance(task))
        except ScenarioError as exc:
            raise CliError(str(exc)) from None


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    sumo_app = typer.Typer(help="SUMO closed loop: evaluate and compare signal controllers.", no_args_is_help=True)
    app.add_typer(sumo_app, name="sumo")

    @sumo_app.command("eval")
    def eval_cmd(
        scenario: Annotated[Path, typer.Argument(metavar="SCENARIO.sumocfg", help="Any SUMO scenario with traffic lights.")],
        controller: Annotated[str, typer.Option("--controller", "-c", help="fixed, webster, maxpressure or leitstand.")] = "leitstand",
        seeds: Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 1,2,3 or 1-5; delays are averaged over them.")] = "1",
        via_kafka: Annotated[bool, typer.Option("--via-kafka", help="Frames and plans through the broker and a running worker.")] = False,
        jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (in-process path; default: CPUs).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the default is a short summary).")] = False,
    ) -> None:
        """One controller on a scenario: RESCO delay, trips, safety."""
        name = _controllers(controller)[0]
        seed_list = parse_seeds(seeds)
        result = _evaluate(_scenario(scenario), name, seed_list, 1 if via_kafka else _jobs(jobs, len(seed_list)), via_kafka, quiet=as_json)
        result["path"] = "kafka" if via_kafka else "in-process"
        if as_json:
            print(json.dumps(result))
        else:
            print(
                f"{result['scenario']} · {name} · seeds {seeds}: delay {result['delay_mean']:.2f} s, time loss "
                f"{result['timeloss_mean']:.2f} s, {result['trips']} trips ({result['unfinished']} unfinished), "
                f"safety violations {result['safety_violations']}, {result['wall_s']:.1f} s wall"
            )

    @sumo_app.command("compare")
    def compare_cmd(
        scenario: Annotated[Path, typer.Argument(metavar="SCENARIO.sumocfg", help="Any SUMO scenario with traffic lights.")],
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
    ) -> None:
        """Controllers side by side: table, delay chart, ratio to fixed."""
        from rich.table import Table

        from simulators.sumo.evaluation import bar_chart

        from .common import out

        names = _controllers(controllers)
        seed_list = parse_seeds(seeds)
        _scenario(scenario)
        results = [_evaluate(scenario, n, seed_list, _jobs(jobs, len(seed_list)), False, quiet=as_json) for n in names]
        base = next((r["delay_mean"] for r in results if r["controller"] == "fixed"), None)
        for r in results:
            r["ratio_to_fixed"] = round(r["delay_mean"] / base, 3) if base else None
        png = bar_chart(results, chart or Path(f"{scenario.stem}-delay.png"), f"{scenario.stem}: mean delay per vehicle, seeds {seeds}")
        if as_json:
            print(json.dumps({"scenario": scenario.stem, "seeds": seed_list, "chart": str(png), "results": results}))
            return
        table = Table(title=f"{scenario.stem} · seeds {seeds}")
        for col in ("controller", "delay s", "× fixed", "time loss s", "waiting s", "unfinished", "safety", "wall s"):
            table.add_column(col, justify="left" if col == "controller" else "right")
        for r in results:
            table.add_row(
                r["controller"],
                f"{r['delay_mean']:.2f}",
                f"{r['ratio_to_fixed']:.3f}" if r["ratio_to_fixed"] else "-",
                f"{r['timeloss_mean']:.2f}",
                f"{r['waiting_mean']:.2f}",
                str(r["unfinished"]),
                str(r["safety_violations"]),
                f"{r['wall_s']:.1f}",
            )
        out.print(table)
        print(f"chart: {png}")

    @bench_app.command("signals")
    def bench_signals(
        scenarios: Annotated[
            Path,
            typer.Option(
                "--scenarios",
                help="Directory holding <name>/<name>.sumocfg.",
            ),
        ] = REPO.parent / "shared" / "scenarios",
        seeds: Annotated[str, typer.Option("--seeds", help="Seeds per scenario and controller.")] = "1-5",
        controllers: Annotated[
            str,
            typer.Option(
                "--controllers",
                help="Controllers; fixed is the baseline.",
            ),
        ] = "fixed,webster,maxpressure,leitstand",
        jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (default: CPUs).")] = None,
    ) -> None:
        """Controllers on the real-city maps vs fixed time (JSON)."""
        names = _controllers(controllers)
        if "fixed" not in names:
            names.insert(0, "fixed")
        seed_list = parse_seeds(seeds)
        found = [scenarios / n / f"{n}.sumocfg" for n in DEV_SCENARIOS if (scenarios / n / f"{n}.sumocfg").is_file()]
        if not found:
            raise CliError(f"no scenarios under {scenarios} (expected {', '.join(DEV_SCENARIOS)}; pass --scenarios DIR)")
        out: dict[str, Any] = {"benchmark": "signals", "seeds": seed_list, "scenarios": {}}
        for sc in found:
            rows = {n: _evaluate(sc, n, seed_list, _jobs(jobs, len(seed_list)), False, quiet=False) for n in names}
            base = rows["fixed"]["delay_mean"]
            out["scenarios"][sc.stem] = {
                n: {
                    "delay_mean": r["delay_mean"],
                    "ratio_to_fixed": round(r["delay_mean"] / base, 3),
                    "delay_per_seed": r["delay_per_seed"],
                    "unfinished": r["unfinished"],
                    "teleports": r["teleports"],
                    "safety_violations": r["safety_violations"],
                    "rejected_decisions": r["rejected_decisions"],
                    "wall_s": r["wall_s"],
                }
                for n, r in rows.items()
            }
            print(f"{sc.stem}: " + ", ".join(f"{n} {r['delay_mean']:.1f} s" for n, r in rows.items()), file=sys.stderr)
        print(json.dumps(out))
