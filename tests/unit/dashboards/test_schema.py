"""Every dashboard type-checks against Grafana's published schema (the ``Dashboard`` type of the
npm package ``@grafana/schema`` and the option types of the panel plugins we use), with ``tsc``.

Grafana's server cannot run here, so its own schema package is the validator: each dashboard is
written as an object literal typed ``CheckedDashboard`` (tools/grafana-schema/dashboard.ts) and
``tsc --noEmit`` must accept it. A broken dashboard is shown to fail, so the check can fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streams.dashboards import load
from tests.paths import REPO

pytestmark = [pytest.mark.slow]  # npm and tsc are child processes

TOOL = REPO / "tools" / "grafana-schema"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """tools/grafana-schema/node_modules from package-lock.json (``npm ci``, once per lock)."""
    npm = shutil.which("npm")
    if npm is None:
        if IN_CI:
            pytest.fail("npm is not installed (scripts/bootstrap installs Node.js)")
        pytest.skip("npm is not installed")
    installed = TOOL / "node_modules" / ".package-lock.json"
    lock = json.loads((TOOL / "package-lock.json").read_text())
    if not installed.exists() or json.loads(installed.read_text()).get("packages", {}).keys() != {k for k in lock["packages"] if k}:
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TOOL, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed: {done.stderr[-2000:]}"
    return TOOL / "node_modules"


def tsc(node_modules: Path, work: Path, models: dict[str, dict]) -> subprocess.CompletedProcess[str]:
    """Type-check ``models`` (name -> dashboard JSON) in a scratch copy of the tool."""
    work.mkdir()
    for name in ("dashboard.ts", "tsconfig.json"):
        shutil.copyfile(TOOL / name, work / name)
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    (work / "generated").mkdir()
    for name, model in models.items():
        literal = json.dumps(model, ensure_ascii=False, indent=1)
        source = f"import type {{ CheckedDashboard }} from '../dashboard';\nexport const dashboard: CheckedDashboard = {literal};\n"
        (work / "generated" / f"{name}.ts").write_text(source, encoding="utf-8")
    compiler = node_modules / "typescript" / "bin" / "tsc"
    return subprocess.run(["node", str(compiler), "--noEmit", "-p", "tsconfig.json"], cwd=work, capture_output=True, text=True, timeout=300)


def test_dashboards_satisfy_grafanas_schema(node_modules: Path, tmp_path: Path) -> None:
    done = tsc(node_modules, tmp_path / "ok", {d.name: d.model for d in load()})
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_version_is_the_packages_current_one(node_modules: Path) -> None:
    gen = (node_modules / "@grafana" / "schema" / "dist" / "esm" / "raw" / "dashboard" / "x" / "types.gen.mjs").read_text()
    current = int(re.search(r"schemaVersion: (\d+)", gen).group(1))  # type: ignore[union-attr]
    assert {d.model["schemaVersion"] for d in load()} == {current}


def _broken(change: str) -> dict:
    model = json.loads(json.dumps(load()[0].model))
    first = next(p for p in model["panels"] if p["type"] == "timeseries")
    if change == "enum":
        first["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"  # not a ThresholdsMode
    elif change == "target":
        first["targets"][0]["rawsql"] = first["targets"][0].pop("rawSql")  # a misspelt query field
    elif change == "dashboard":
        model["refesh"] = "10s"  # an unknown dashboard property
    elif change == "options":
        first["options"]["legend"]["placement"] = "left"  # not a LegendPlacement
    elif change == "required":
        del model["schemaVersion"]
    return model


def test_broken_dashboards_fail_the_check(node_modules: Path, tmp_path: Path) -> None:
    """tsc reports the first problem per literal, so each breakage is a dashboard of its own."""
    changes = {"enum": '"absolut"', "target": "rawsql", "dashboard": "refesh", "options": '"left"', "required": "schemaVersion"}
    done = tsc(node_modules, tmp_path / "broken", {name: _broken(name) for name in changes})
    assert done.returncode != 0
    # one error per line starting with its file, continued on indented lines
    errors = re.split(r"\n(?=\S)", done.stdout)
    for name, needle in changes.items():
        reported = [e for e in errors if e.startswith(f"generated/{name}.ts")]
        assert reported and needle in "\n".join(reported), (name, done.stdout)
