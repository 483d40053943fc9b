"""The algorithm register, generated from the code and the benchmark outputs.

Schema: the UK Algorithmic Transparency Recording Standard (ATRS) v3.0, tier 1 and the five
tier-2 sections (owner and responsibility; description and rationale; decision-making process;
tool specification; risks, mitigations and impact assessments), plus its metadata block.
https://www.gov.uk/government/collections/algorithmic-transparency-recording-standard-hub
Field names follow the ATRS template's section and field titles in snake case; where a field
does not apply, the record says so instead of leaving it out.

What makes it hard to drift: the list of components is read from the code's registries
(:func:`components`), each component's declared facts are in ``entries.py`` beside the list,
``check_complete`` (and its test) fails when the two differ or an entry names no importable
object, and measured figures are copied from the benchmark JSON outputs at export time.
"""

from __future__ import annotations

import html
import importlib
import json
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .entries import ENTRIES, Entry, Evidence

SCHEMA = "UK Algorithmic Transparency Recording Standard (ATRS) v3.0, tier 1 + tier 2"
SCHEMA_URL = "https://www.gov.uk/government/collections/algorithmic-transparency-recording-standard-hub"

#: the rule sets and policies that are single objects, not entries of a name registry
SINGLE_COMPONENTS = (
    "signals.safety_validator",
    "detection.water_rules",
    "detection.reader_backlog",
    "detection.pool_watch",
    "detection.probe_warning",
    "detection.incidents",
    "signals.blockage",
    "detection.alarm_escalation",
    "detection.data_quality",
)


class RegisterIncomplete(ValueError):
    """A registered component has no entry, an entry no component, or an entry names nothing."""


def components() -> list[str]:
    """Every automated decision maker, read from the registries the runtime itself uses."""
    from detection.registry import DETECTOR_NAMES
    from forecasting import FORECASTER_NAMES
    from signals.controllers import CONTROLLERS

    ids = [f"signals.controller.{n}" for n in CONTROLLERS]
    ids += [f"detection.detector.{n}" for n in DETECTOR_NAMES]
    ids += [f"forecasting.forecaster.{n}" for n in FORECASTER_NAMES]
    return ids + list(SINGLE_COMPONENTS)


def resolve(code: str) -> Any:
    """The object ``module:attribute`` names; :class:`RegisterIncomplete` if there is none."""
    module, _, attr = code.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise RegisterIncomplete(f"entry code {code!r} names nothing ({exc})") from None
    return obj


def check_complete(entries: Mapping[str, Entry] = ENTRIES) -> None:
    """Raise :class:`RegisterIncomplete` with every problem on one line, or return."""
    registered = set(components())
    problems = [f"{c}: registered, no entry" for c in sorted(registered - set(entries))]
    problems += [f"{c}: entry, no such component" for c in sorted(set(entries) - registered)]
    for cid, entry in sorted(entries.items()):
        empty = [k for k, v in vars(entry).items() if k != "evidence" and not v]
        if empty:
            problems.append(f"{cid}: empty {', '.join(empty)}")
        try:
            resolve(entry.code)
        except RegisterIncomplete as exc:
            problems.append(f"{cid}: {exc}")
    if problems:
        raise RegisterIncomplete("; ".join(problems))


def pick(data: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in a benchmark's JSON: ``*`` maps over a dict, ``k=v`` filters a list."""
    if not path:
        return data
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(data, dict):
        found = {k: pick(v, rest) for k, v in data.items()}
        return {k: v for k, v in found.items() if v is not None} or None
    if "=" in head and isinstance(data, list):
        key, _, value = head.partition("=")
        rows = [pick(r, rest) for r in data if isinstance(r, dict) and str(r.get(key)) == value]
        return rows or None
    if isinstance(data, dict) and head in data:
        return pick(data[head], rest)
    return None


def measured(evidence: tuple[Evidence, ...], bench_dir: Path | None) -> list[dict[str, Any]]:
    """Each evidence item with its figures from ``bench_dir``, or a note that it was not run."""
    out = []
    for ev in evidence:
        item: dict[str, Any] = {
            "what": ev.what,
            "reproduce_with": ev.command,
            "held_out": ev.held_out,
            "source_file": ev.file,
        }
        path = bench_dir / ev.file if bench_dir else None
        figures = None
        if path is not None and path.is_file():
            try:
                figures = pick(json.loads(path.read_text(), parse_constant=_not_a_number), ev.path)
            except (OSError, ValueError):  # NaN / Infinity too: register.json must stay JSON
                figures = None
        item["figures"] = figures
        if figures is None:
            item["note"] = f"no output of '{ev.command}' in the export's benchmark directory: run it and export again"
        out.append(item)
    return out


def build_info() -> dict[str, str]:
    """Package version and the checkout's commit (``unknown`` outside a git checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("leitstand")
    except PackageNotFoundError:
        pkg = "unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
        commit = done.stdout.strip() if done.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"package_version": pkg, "commit": commit}


def record(cid: str, entry: Entry, owner: Mapping[str, str], build: Mapping[str, str], bench_dir: Path | None) -> dict[str, Any]:
    """One component as an ATRS record (metadata, tier 1, the five tier-2 sections)."""
    obj = resolve(entry.code)
    return {
        "metadata": {"id": cid, "schema": SCHEMA, "schema_url": SCHEMA_URL, "code": entry.code},
        "tier_1": {
            "name": entry.title,
            "description": entry.purpose,
            "website": entry.docs,
            "contact_email": owner["contact"],
        },
        "owner_and_responsibility": {
            "organisation": owner["organisation"],
            "team": "traffic and pool control room",
            "senior_responsible_owner": owner["role"],
            "external_supplier": "none: developed as the Leitstand open-source project",
        },
        "description_and_rationale": {
            "detailed_description": entry.purpose,
            "scope": entry.kind,
            "benefit": entry.outputs,
        },
        "decision_making_process": {
            "process_integration": entry.outputs,
            "provided_information": entry.acted_on_by,
            "human_decisions_and_review": entry.oversight,
            "appeals_and_review": "complaints are traced to the decision with `leitstand explain` (docs/transparency.md)",
        },
        "tool_specification": {
            "component_version": str(getattr(obj, "version", "n/a (versioned with the package)")),
            "package_version": build["package_version"],
            "commit": build["commit"],
            "model_type": entry.kind,
            "parameter_choice": entry.parameters,
            "performance": measured(entry.evidence, bench_dir),
        },
        "data_specification": {
            "inputs": [{"input": name, "personal_data": pd} for name, pd in entry.inputs],
            "personal_data_in_inputs": any("no personal data" not in pd for _, pd in entry.inputs),
        },
        "risks_mitigations_and_impact_assessments": {
            "known_limitations": entry.limitations,
            "human_oversight": entry.oversight,
        },
    }


def build_register(owner: Mapping[str, str], bench_dir: Path | None, now: datetime | None = None) -> dict[str, Any]:
    """The whole register: checked complete first, so an incomplete one is never written."""
    check_complete()
    build = build_info()
    return {
        "schema": SCHEMA,
        "schema_url": SCHEMA_URL,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "build": build,
        "benchmark_outputs": str(bench_dir) if bench_dir else None,
        "records": [record(cid, ENTRIES[cid], owner, build, bench_dir) for cid in components()],
    }


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return f"<pre>{html.escape(json.dumps(value, indent=1))}</pre>"
    return html.escape(str(value))


def render_html(register: Mapping[str, Any]) -> str:
    """A readable page: one section per component, every field, all text escaped."""
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Leitstand algorithm register</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}th{text-align:left;vertical-align:top;width:16rem}"
        "pre{white-space:pre-wrap;font-size:.8rem}section{border-top:1px solid #999;margin-top:1.5rem}</style>",
        "<h1>Leitstand algorithm register</h1>",
        f"<p>Schema: <a href='{html.escape(SCHEMA_URL)}'>{html.escape(SCHEMA)}</a>. Generated {html.escape(register['generated_at'])} "
        f"from commit {html.escape(register['build']['commit'])}.</p><ul>",
    ]
    parts += [f"<li><a href='#{html.escape(r['metadata']['id'])}'>{html.escape(r['tier_1']['name'])}</a></li>" for r in register["records"]]
    parts.append("</ul>")
    for r in register["records"]:
        parts.append(f"<section id='{html.escape(r['metadata']['id'])}'><h2>{html.escape(r['tier_1']['name'])}</h2>")
        for name, block in r.items():
            parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3><table>")
            parts += [f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{_cell(v)}</td></tr>" for k, v in block.items()]
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</html>")
    return "\n".join(parts)


def export(directory: Path, owner: Mapping[str, str], bench_dir: Path | None) -> tuple[Path, Path]:
    """Write register.json and register.html into ``directory``; return their paths."""
    register = build_register(owner, bench_dir)
    directory.mkdir(parents=True, exist_ok=True)
    js, page = directory / "register.json", directory / "register.html"
    js.write_text(json.dumps(register, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    page.write_text(render_html(register), encoding="utf-8")
    return js, page


def _not_a_number(name: str) -> Any:
    """A benchmark file's ``NaN`` / ``Infinity``: register.json must stay JSON any reader takes
    (json wrote them through, and orjson refused the register; stop 54's probe)."""
    raise ValueError(f"{name} is not a JSON number")
