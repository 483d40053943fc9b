"""The direction rules of the house, read from the source with ``ast`` (nothing is imported).

Every ``import`` and ``from ... import`` in ``streams/``, ``signals/``, ``detection/``,
``forecasting/``, ``transit/`` and ``simulators/`` counts, absolute or relative, at module level or inside a
function (a lazy import is still an arrow). The test fails listing

* every import cycle between our modules (a strongly connected component of the import graph
  with more than one module, or a module importing itself), and
* every arrow against the rules:
  - the pure cores (``signals``, ``detection``, ``forecasting``, ``transit``) import nothing of ``streams``
    or ``simulators``, nor Faust, Kafka clients or a database client;
  - ``streams`` outside ``streams.cli`` imports nothing of ``simulators`` (the CLI is the
    composition root, the only place allowed to wire the simulators in).

A package's ``__init__`` is not counted as imported by its submodules (Python runs it first,
but that is not an arrow anyone wrote), so a package that re-exports its submodules is no cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "signals", "detection", "forecasting", "simulators", "transit")
CORES = ("signals", "detection", "forecasting", "transit")
# third-party top-level names the cores must not import: the stream engine, Kafka clients, DBs,
# the traffic simulator (a SUMO network is read in simulators/sumo/, the cores see model types)
FORBIDDEN_IN_CORES = (
    "sumolib",
    "traci",
    "libsumo",
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "confluent_kafka",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "asyncpg",
    "sqlalchemy",
    "sqlite3",
    "aiosqlite",
    "pymongo",
    "redis",
    "rocksdict",
    # GTFS and GTFS-Realtime readers: streams/transit_codec.py translates feeds into transit types
    "gtfs_kit",
    "google",
)

# Known violations still to remove: (importer, imported). Must match exactly: an entry that no
# longer occurs fails the test too, so this list only ever shrinks. Empty when the house is clean.
ALLOWED_ARROWS: set[tuple[str, str]] = set()
# Known cycles still to break, each as the sorted tuple of its modules; same exactness.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str  # a module of ours, or a third-party top-level name
    where: str  # path:line

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}  ({self.where})"


def _module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (None: third party)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _arrows(modules: dict[str, Path]) -> list[Arrow]:
    arrows: list[Arrow] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    if node.level > 1:
                        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import name`: name may be a submodule (an arrow to it) or an attribute
                targets = [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"] or [base]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for target in targets:
                ours = _resolve(target, modules)
                imported = ours if ours is not None else target.split(".")[0]
                if imported != module:
                    arrows.append(Arrow(module, imported, where))
    return list(dict.fromkeys(arrows))  # one arrow per statement and target


def _cycles(modules: dict[str, Path], arrows: list[Arrow]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for arrow in arrows:
        if arrow.imported in modules:
            graph[arrow.importer].add(arrow.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[tuple[str, ...]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(tuple(sorted(component)))
    return sorted(components)


def _top(name: str) -> str:
    return name.split(".")[0]


def _against_rules(modules: dict[str, Path], arrows: list[Arrow]) -> list[Arrow]:
    bad = []
    for arrow in arrows:
        src, dst = arrow.importer, arrow.imported
        if _top(src) in CORES:
            if dst in modules and _top(dst) in ("streams", "simulators"):
                bad.append(arrow)
            elif dst not in modules and _top(dst) in FORBIDDEN_IN_CORES:
                bad.append(arrow)
        elif _top(src) == "streams" and not (src == "streams.cli" or src.startswith("streams.cli.")):
            if dst in modules and _top(dst) == "simulators":
                bad.append(arrow)
    return bad


def test_the_walker_sees_lazy_and_relative_imports():
    modules = _module_files()
    arrows = _arrows(modules)
    assert len(modules) > 50
    # a relative import at module level and an absolute one inside a function body
    pairs = {(a.importer, a.imported) for a in arrows}
    assert ("streams.codec", "streams.records") in pairs
    assert any(a.importer == "streams.worker" and a.imported.startswith("streams.") for a in arrows)


def test_no_import_cycles():
    modules = _module_files()
    cycles = set(_cycles(modules, _arrows(modules)))
    unexpected = sorted(cycles - ALLOWED_CYCLES)
    gone = sorted(ALLOWED_CYCLES - cycles)
    message = [f"{len(unexpected)} import cycle(s):"] + ["  " + " <-> ".join(c) for c in unexpected]
    if gone:
        message += ["allow-listed cycles that no longer exist (remove them):"] + ["  " + " <-> ".join(c) for c in gone]
    assert not unexpected and not gone, "\n".join(message)


def test_no_arrows_against_the_direction_rules():
    modules = _module_files()
    bad = _against_rules(modules, _arrows(modules))
    unexpected = [a for a in bad if (a.importer, a.imported) not in ALLOWED_ARROWS]
    gone = sorted(ALLOWED_ARROWS - {(a.importer, a.imported) for a in bad})
    message = [f"{len(unexpected)} import(s) against the direction rules:"] + [f"  {a}" for a in unexpected]
    if gone:
        message += ["allow-listed arrows that no longer occur (remove them):"] + [f"  {a} -> {b}" for a, b in gone]
    assert not unexpected and not gone, "\n".join(message)
