"""The CLI's layout (issue 11): one typer app per command group, each command a module-level
function of its module, no ``register()`` closures, and no command lost on the way.

The commands expected are those ``leitstand --help`` listed before the layout changed (the names
below, in their help order); they are compared with the click tree typer builds from the apps.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import typer
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from streams.cli import app
from tests.paths import REPO

CLI_DIR = REPO / "streams" / "cli"

#: ``leitstand --help`` and each group's ``--help`` (COLUMNS=120) before the split, in help order
EXPECTED: dict[str, list[str]] = {
    "": [
        "config",
        "worker",
        "produce",
        "tail",
        "replay",
        "evaluate",
        "report",
        "demo",
        "detect",
        "broker",
        "topics",
        "simulate",
        "bench",
        "forecast",
        "events",
        "sumo",
        "signals",
    ],
    "bench": [
        "pool-day",
        "alarm-latency",
        "decode",
        "pipeline",
        "nab",
        "detectors",
        "forecast-accuracy",
        "forecast-refresh",
        "signals",
    ],
    "broker": ["start", "stop", "status"],
    "topics": ["create", "list"],
    "simulate": ["frames", "city"],
    "forecast": ["backtest"],
    "events": ["import"],
    "sumo": ["eval", "compare"],
    "signals": ["configure", "approve", "reject", "mode", "pending"],
}

#: the decorators that make a function a command (or a group's callback)
COMMAND_DECORATORS = {"command", "callback"}


def _modules() -> list[Path]:
    return sorted(CLI_DIR.glob("*.py"))


def _group(path: str) -> TyperGroup:
    """The click group typer builds for ``leitstand <path>`` (typer vendors its own click)."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    group = root if not path else root.commands[path]
    assert isinstance(group, TyperGroup), path
    return group


def _listed(group: TyperGroup) -> list[str]:
    return list(group.list_commands(typer.Context(group)))


def _is_command_decorator(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr in COMMAND_DECORATORS


def test_no_module_defines_register() -> None:
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "register"
    ]
    assert offenders == [], f"register() functions are back: {offenders}"


def test_every_command_is_defined_at_module_level() -> None:
    nested = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(_is_command_decorator(d) for d in node.decorator_list):
                if id(node) not in top_level:
                    nested.append(f"{path.name}:{node.lineno} {node.name}")
    assert nested == [], f"commands defined inside another function: {nested}"


def test_every_command_callback_is_importable_from_its_module() -> None:
    """What typer runs is the module-level function itself: importable, readable and testable alone."""

    def callbacks(command: object) -> list[tuple[str, object]]:
        if isinstance(command, TyperGroup):
            return [found for sub in command.commands.values() for found in callbacks(sub)]
        return [(getattr(command, "name", ""), getattr(command, "callback", None))]

    for name, callback in callbacks(_group("")):
        original = getattr(callback, "__wrapped__", callback)
        qualname, module_name = getattr(original, "__qualname__", ""), getattr(original, "__module__", "")
        assert "<locals>" not in qualname, f"{name}: {module_name}.{qualname} is a closure"
        assert module_name.startswith("streams.cli."), (name, module_name)
        assert getattr(importlib.import_module(module_name), qualname) is original, (name, module_name, qualname)


def test_no_command_or_group_disappears_and_the_help_order_holds() -> None:
    for path, expected in EXPECTED.items():
        listed = _listed(_group(path))
        missing = [name for name in expected if name not in listed]
        assert missing == [], f"leitstand {path}: commands disappeared: {missing}"
        assert [name for name in listed if name in expected] == expected, f"leitstand {path}: help order changed"


def test_root_help_lists_every_command_the_apps_define() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    assert listed == _listed(_group("")), listed


def test_shared_dir_helper_names_the_places_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``../shared`` is looked for beside the checkout; when it is absent the error says so."""
    from streams.cli import common
    from streams.errors import CliError

    assert common.checkout_dir() == CLI_DIR.parents[1]
    assert CLI_DIR.parents[2] / "shared" in common.shared_dirs()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "checkout_dir", lambda: tmp_path / "clone")
    with pytest.raises(CliError) as raised:
        common.find_shared("data/x.csv", None, Path.is_file, "X data", "pass --data FILE")
    message = str(raised.value)
    assert message.startswith("X data not found (looked in ") and "../shared is absent" in message
    assert message.endswith("; pass --data FILE")
