"""The ``slow`` marker stays true: every test module that starts the CLI in a child process or
runs SUMO declares it, so ``pytest -m 'not slow'`` is a quick loop that skips exactly those."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import REPO

#: imports that mean a module starts child processes or runs SUMO
SLOW_IMPORTS = ("tests.cli_helpers", "tests.sumo_nets", "simulators.sumo", "libsumo", "traci")
#: modules under those that run nothing (pure functions on records): importing them is quick
PURE = ("simulators.sumo.faults",)


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _declares_slow(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return "mark.slow" in ast.unparse(node.value)
    return False


def _needs_slow(tree: ast.Module) -> bool:
    return any(m == s or m.startswith(s + ".") for m in _imports(tree) - set(PURE) for s in SLOW_IMPORTS)


def _modules() -> list[Path]:
    return sorted((REPO / "tests").rglob("test_*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO / "tests")))
def test_modules_that_start_processes_or_sumo_are_marked_slow(path: Path) -> None:
    tree = ast.parse(path.read_text())
    if _needs_slow(tree):
        assert _declares_slow(tree), f"{path.name} imports one of {SLOW_IMPORTS}: add pytest.mark.slow to its pytestmark"


def test_the_rule_sees_an_unmarked_cli_module() -> None:
    unmarked = ast.parse("from tests.cli_helpers import leitstand\n\ndef test_x():\n    leitstand('--help')\n")
    marked = ast.parse("import pytest\nfrom tests.cli_helpers import leitstand\npytestmark = [pytest.mark.integration, pytest.mark.slow]\n")
    assert _needs_slow(unmarked) and not _declares_slow(unmarked)
    assert _declares_slow(marked)
