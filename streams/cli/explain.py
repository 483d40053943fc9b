"""``leitstand explain signals INTERSECTION --at TIME`` and ``leitstand explain alarm ALARM_ID``:
reconstruct a decision from the logs (the topics, or the PostgreSQL history with ``--db``).
The reconstruction is streams/transparency/explain.py; this module parses and prints."""

from __future__ import annotations

import asyncio
import json
import math
import unicodedata
from typing import Annotated, Any

import orjson
import typer

from ..errors import CliError
from ..timeparse import parse_time
from .common import cli_settings, out, reachable_settings

app = typer.Typer(help="Explain a past signal decision or alarm from the audit log.", no_args_is_help=True)

Db = Annotated[bool, typer.Option("--db", help="Read the PostgreSQL history (LEITSTAND_POSTGRES_DSN) instead of the topics.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the whole explanation as JSON.")]


def at_seconds(text: str) -> float:
    """``--at``: ISO 8601 (naive means UTC) or epoch seconds."""
    t = parse_time(text)
    if not math.isfinite(t):
        raise typer.BadParameter(f"{text!r} is neither ISO 8601 nor epoch seconds")
    return t


def show(found: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    """The explanation (JSON or a few lines); a question the log cannot answer is an error."""
    if as_json:
        print(json.dumps(orjson.loads(orjson.dumps(found, default=str)), indent=1))
    if not found.get("found"):
        raise CliError(str(found.get("reason", "not found")))
    if not as_json:
        for line in lines:
            out.print(shown_text(line), markup=False)


def shown_text(line: str) -> str:
    """A line for the terminal: control and format characters (escape sequences, line breaks,
    direction overrides) from the records are shown escaped, so an alarm message cannot forge a
    line such as "acknowledged by chief" or retitle the terminal (stop 54's probe)."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf") else c.encode("unicode_escape").decode() for c in line)


def _run(coro: Any) -> dict[str, Any]:
    from ..transparency.sources import ExplainSourceError

    try:
        result: dict[str, Any] = asyncio.run(coro)
    except ExplainSourceError as exc:
        raise CliError(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a record of an unexpected shape
        raise CliError(f"a record on the topics is not what the explanation reads ({type(exc).__name__}: {str(exc)[:200]})") from None
    return result


@app.command("signals")
def explain_signals(
    intersection: Annotated[str, typer.Argument(help="Intersection id.")],
    at: Annotated[str, typer.Option("--at", help="When: ISO 8601 (naive = UTC) or epoch seconds.")],
    db: Db = False,
    as_json: AsJson = False,
) -> None:
    """What the signal saw, which controller and rule decided, the alternatives, who approved."""
    from ..transparency.sources import explain_signal_from

    at_s = at_seconds(at)
    settings = cli_settings() if db else reachable_settings()
    found = _run(explain_signal_from(settings, intersection, at_s, db))
    d = found.get("decided_by") or {}
    lines = [
        f"{intersection} at {at}: {found.get('status')} plan {(found.get('plan') or {}).get('plan_id')} (mode {found.get('mode')})",
        f"decided by {d.get('controller')} {d.get('version')}, rule {d.get('rule')}: {found.get('expected_effect')}",
        f"seen: {json.dumps(found.get('seen', {}).get('inputs', {}))}",
        f"alternatives: {json.dumps(found.get('alternatives'))}",
        f"approved/rejected by: {json.dumps(found.get('approved_by'))}; mode set by: {json.dumps(found.get('mode_set_by'))}",
        f"data quality: {found.get('data_quality_note')}",
    ]
    show(found, as_json, lines)


@app.command("alarm")
def explain_alarm(
    alarm_id: Annotated[str, typer.Argument(help="Alarm id (kind@subject~digest).")],
    db: Db = False,
    as_json: AsJson = False,
) -> None:
    """What raised the alarm, on which evidence, its transitions, who acknowledged or resolved it."""
    from ..transparency.sources import explain_alarm_from

    settings = cli_settings() if db else reachable_settings()
    found = _run(explain_alarm_from(settings, alarm_id, db))
    lines = [
        f"{alarm_id}: {found.get('severity')} {found.get('kind')} on {json.dumps(found.get('subject'))}",
        f"raised by {(found.get('decided_by') or {}).get('rule_set')}: {(found.get('decided_by') or {}).get('message')}",
        f"seen: {json.dumps(found.get('seen'), default=str)}",
        *(f"  {t['at']} {t['transition']} (level {t['level']})" for t in found.get("timeline", [])),
        f"acknowledged by {found.get('acknowledged_by')}, resolved by {found.get('resolved_by')}",
    ]
    show(found, as_json, lines)
