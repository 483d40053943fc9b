"""Issue 10 #3 / #12: ``leitstand signals configure`` validates the whole model, fixed plan
included, before anything is produced, and any bad file is one line on stderr, non-zero exit.

Before: unsafe models (1 s greens, a starved group, a 1e9 s green) were sent with exit 0 and
crashed the control agent; a JSON array, a binary file or a NaN gave a traceback or got through.
Run as a real child process (``--dry-run`` prints the record that would be sent: nothing must be).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import leitstand, one_clean_line
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

DOC = json.loads(EXAMPLE.read_text())


def _model(edit: Callable[[dict[str, Any]], object]) -> str:
    d = copy.deepcopy(DOC)
    edit(d)
    return json.dumps(d)  # NaN is written as the literal NaN, as Python's json does


#: case -> (file content, what the one error line must say)
CASES: dict[str, tuple[str | bytes, str]] = {
    # 12: not a model object at all
    "array": ("[1, 2, 3]", "a model is a JSON object"),
    "string": ('"K101"', "got a string"),
    "invalid-json": ('{"schema": ', "not JSON"),
    "empty": ("", "not JSON"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
    "groups-not-objects": ('{"schema": "leitstand.intersection/1", "signal_groups": [1]}', "expected an object"),
    # 3: unsafe models
    "one-second-greens": (
        _model(lambda d: ([s.update(min_green_s=1, max_green_s=1) for s in d["stages"]], [p.update(green_s=1) for p in d["fixed_plan"]])),
        "min_green_s 1 s",
    ),
    "starved-group": (_model(lambda d: d["fixed_plan"].pop(1)), "fixed plan unsafe: starved"),
    "huge-green": (_model(lambda d: (d["stages"][0].update(max_green_s=1e9), d["fixed_plan"][0].update(green_s=1e9))), "1000000000.0"),
    # 2: NaN
    "nan-intergreen": (_model(lambda d: d["intergreen_s"]["K1"].update(K2=float("nan"))), "NaN"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_configure_refuses_bad_models_in_one_line_and_sends_nothing(tmp_path: Path, case: str) -> None:
    content, message = CASES[case]
    path = tmp_path / "model.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = leitstand("signals", "configure", str(path), "--dry-run")
    line = one_clean_line(proc)
    assert message in line and str(path) in line, line
    assert proc.stdout == ""


def test_configure_refuses_a_directory_and_a_nan_timeout_and_still_sends_the_example(tmp_path: Path) -> None:
    assert "cannot read" in one_clean_line(leitstand("signals", "configure", str(tmp_path), "--dry-run"))
    line = one_clean_line(leitstand("signals", "configure", str(EXAMPLE), "--approval-timeout", "nan", "--dry-run"))
    assert "--approval-timeout" in line
    line = one_clean_line(leitstand("signals", "configure", str(EXAMPLE), "--param", "recompute_every_cycles=nan", "--dry-run"))
    assert "--param" in line
    ok = leitstand("signals", "configure", str(EXAMPLE), "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["model"] == DOC
