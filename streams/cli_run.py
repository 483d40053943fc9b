"""Commands that run things for a while: simulate, demo, bench (registered on the CLI)."""
from __future__ import annotations
import typer
def register(app: typer.Typer, simulate_app: typer.Typer, bench_app: typer.Typer) -> None:
    pass
