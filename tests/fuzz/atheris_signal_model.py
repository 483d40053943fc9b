"""Coverage-guided fuzzing of the signal-model loader (``signals.loader.intersection_from_json``),
the one ``leitstand signals configure`` uses; the control agent runs the same checks.

The contract, as in tests/unit/streams/agents/test_signal_control_fuzz.py: bytes in, either a model within the
RiLSA bounds whose fixed plan the safety validator passes, or ``ModelError`` with a one-line
message. Anything else (another exception, an unsafe model) is a crash libFuzzer reports.

Inputs: the first byte picks the mode. Mode 0 feeds the remaining bytes to the loader as they
are (parsing, shapes). Mode 1 uses them to edit the shipped example model - a path, then a value
(a number, NaN, an infinity, a huge integer, a string, null, a list) - and feeds the JSON text,
so the fuzzer spends its time in the checks of an almost valid model. Run by scripts/fuzz from
inside .leitstand/fuzz/atheris_signal_model/ (the project is imported by package name):

    python tests/fuzz/atheris_signal_model.py corpus -max_total_time=60
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.fuzzing
from tests.fuzzing import json_paths

with atheris.instrument_imports():
    import signals.loader as loader_module
    import signals.model as model_module
    import signals.timeline  # noqa: F401  (instrumented: the fixed plan is laid out on a timeline)
    import signals.validator as validator_module

ModelError = model_module.ModelError
EXAMPLE = json.loads((Path(model_module.__file__).parent / "examples" / "k101_four_arm.json").read_text())
SPECIAL = [float("nan"), float("inf"), float("-inf"), 10**400, -1, 0, 1e9, 2.9, 3, 5, 30, 180, 300, 301]


def _value(fdp: atheris.FuzzedDataProvider) -> Any:
    kind = fdp.ConsumeIntInRange(0, 7)
    if kind == 0:
        return SPECIAL[fdp.ConsumeIntInRange(0, len(SPECIAL) - 1)]
    if kind == 1:
        return fdp.ConsumeRegularFloat()
    if kind == 2:
        return fdp.ConsumeIntInRange(-(10**6), 10**6)
    if kind == 3:
        return fdp.ConsumeUnicodeNoSurrogates(8)
    if kind == 4:
        return None
    if kind == 5:
        return [_value(fdp) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 6:
        return fdp.ConsumeBool()
    return {fdp.ConsumeUnicodeNoSurrogates(6): _value(fdp)}


def _edited_example(fdp: atheris.FuzzedDataProvider) -> bytes:
    doc = json.loads(json.dumps(EXAMPLE))
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        paths = [p for p in json_paths(doc) if p]
        if not paths:
            break
        path = paths[fdp.ConsumeIntInRange(0, len(paths) - 1)]
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if fdp.ConsumeIntInRange(0, 4) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = _value(fdp)
    try:
        return json.dumps(doc).encode()  # NaN / Infinity become literals, as Python writes them
    except (ValueError, OverflowError):
        return b""


def _finite_numbers(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    items = value.values() if isinstance(value, dict) else value
    return all(_finite_numbers(v) for v in items)


def TestOneInput(data: bytes) -> None:  # the name is libFuzzer's name
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data)
    text = _edited_example(fdp) if fdp.ConsumeIntInRange(0, 1) else fdp.ConsumeBytes(len(data))
    try:
        x = loader_module.intersection_from_json(text)
    except ModelError as exc:
        if not str(exc) or "\n" in str(exc):
            raise AssertionError(f"ModelError is not one line: {exc!r}") from None
        return
    problems = model_module.rilsa_problems(x)
    if problems:
        raise AssertionError(f"loaded a model outside the bounds: {problems}")
    report = validator_module.SafetyValidator(x).check(x.fixed_plan)
    if not report.ok:
        raise AssertionError(f"loaded a model whose fixed plan is unsafe: {report.violations}")
    if not _finite_numbers(loader_module.intersection_to_dict(x)):
        raise AssertionError("loaded a model with a non-finite number")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
