"""``leitstand registry export DIR``: the algorithm register (JSON after the UK ATRS tier 2 and
an HTML page), generated from the code's registries and the benchmark outputs; and the
fairness benchmark ``leitstand bench fairness`` calls (its logic is in
``simulators/sumo/evaluation.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CliError
from .common import cli_settings, out, shared_absent_note
from .sumo import DEV_SCENARIOS, controller_names, parallel_runs, parse_seeds


def fairness_benchmark_cli(scenarios: Path, seeds: str, controllers: str, jobs: int | None) -> dict[str, Any]:
    """The development maps found under ``scenarios``, each controller against fixed time."""
    from simulators.sumo.evaluation import fairness_benchmark
    from simulators.sumo.loop import ScenarioError

    seed_list = parse_seeds(seeds)
    names = controller_names(controllers)
    found = [scenarios / n / f"{n}.sumocfg" for n in DEV_SCENARIOS if (scenarios / n / f"{n}.sumocfg").is_file()]
    if not found and scenarios.is_file():
        found = [scenarios]
    if not found:
        raise CliError(f"no scenarios under {scenarios} (expected {', '.join(DEV_SCENARIOS)}{shared_absent_note()}; pass --scenarios DIR)")
    try:
        return fairness_benchmark(found, seed_list, names, parallel_runs(jobs, len(seed_list)))
    except ScenarioError as exc:
        raise CliError(str(exc)) from None


app = typer.Typer(help="The algorithm register (UK ATRS): export JSON and HTML.", no_args_is_help=True)


@app.command("export")
def export_register(
    directory: Annotated[Path, typer.Argument(help="Where register.json and register.html are written.")],
    bench: Annotated[
        Path | None,
        typer.Option("--bench", help="Directory of benchmark outputs (signals.json, fairness.json, nab.json, ...) to cite."),
    ] = None,
) -> None:
    """Write the register of every automated decision maker, generated from the code."""
    from ..transparency.registry import RegisterIncomplete, export

    if bench is not None and not bench.is_dir():
        raise typer.BadParameter(f"{bench} is not a directory", param_hint="--bench")
    settings = cli_settings()
    owner = {
        "organisation": settings.transparency_organisation,
        "role": settings.transparency_responsible_role,
        "contact": settings.transparency_contact,
    }
    try:
        js, page = export(directory, owner, bench)
    except RegisterIncomplete as exc:
        raise CliError(f"the register is incomplete: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write the register to {directory}: {exc.strerror or exc}") from None
    out.print(f"wrote {js} and {page}", markup=False)
