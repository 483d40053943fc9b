"""``leitstand signals``: configure an intersection's control, approve / reject a plan, set a mode.

The commands publish records straight onto the broker (``signals.config``, ``signals.approvals``),
like any other client; the control agent applies them and writes the outcome to
``signals.plans`` and ``signals.audit`` (refused commands appear there as ``command_refused``).
``signals pending`` asks a worker's HTTP API. ``--dry-run`` prints the record instead of sending.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeGuard

import msgspec
import typer

from ..errors import CliError
from ..records import IntersectionConfig, SignalAction, SignalCommand, SignalMode, encode
from .common import cli_settings, reachable_settings

if TYPE_CHECKING:
    from signals.model import Intersection

app = typer.Typer(help="Signal control: configure, approve, reject, set modes.", no_args_is_help=True)

MODES: tuple[SignalMode, ...] = ("automatic", "advisory", "off")
Actor = Annotated[str, typer.Option("--actor", help="Your duty account (written to the audit log).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the record instead of sending it.")]
#: the record's bound on approval_timeout_s (streams/records.py IntersectionConfig)
MAX_APPROVAL_TIMEOUT_S = 86_400.0


def is_mode(value: str) -> TypeGuard[SignalMode]:
    """Whether ``value`` names a control mode (the records accept no other)."""
    return value in MODES


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=timezone.utc)


def parse_params(items: list[str]) -> dict[str, float]:
    params: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            number = float(value)
            if not math.isfinite(number):  # NaN would travel as null and fail in the agent
                raise ValueError
            params[name] = number
        except ValueError:
            raise CliError(f"--param: {item!r} is not NAME=NUMBER with a finite number (e.g. recompute_every_cycles=1)") from None
    return params


#: a model travels inside one signals.config record, and records are limited to 1 MiB
MAX_MODEL_BYTES = 1 << 20


def read_model(model_path: Path) -> tuple[dict[str, Any], Intersection]:
    """The model document and the checked model (RiLSA bounds, fixed plan validated), exactly
    as the control agent will build it; anything else is a one-line ``CliError``."""
    from signals.loader import intersection_from_dict, model_document
    from signals.model import ModelError

    try:
        if model_path.exists() and not model_path.is_file():  # a FIFO or /dev/urandom never ends
            raise CliError(f"cannot read {model_path}: not a regular file")
        with model_path.open("rb") as f:
            data = f.read(MAX_MODEL_BYTES + 1)
        if len(data) > MAX_MODEL_BYTES:
            raise CliError(
                f"{model_path} is too large for a model (over {MAX_MODEL_BYTES // 1024} KiB): "
                "a signals.config record must fit the broker's 1 MiB limit"
            )
    except FileNotFoundError:
        raise CliError(f"no such file: {model_path}") from None
    except OSError as exc:
        raise CliError(f"cannot read {model_path}: {exc.strerror or exc}") from None
    try:
        doc = model_document(data)
        return doc, intersection_from_dict(doc)
    except ModelError as exc:
        raise CliError(f"{model_path}: {exc}") from None


def config_record(
    model_path: Path, *, controller: str, mode: SignalMode, session: str, approval_timeout_s: float, params: dict[str, float]
) -> IntersectionConfig:
    """The ``signals.config`` record for a model file, checked as the agent will check it: the
    whole model, fixed plan included, is validated before anything is sent."""
    from signals.control import IntersectionControl

    if not 0 < approval_timeout_s <= MAX_APPROVAL_TIMEOUT_S:  # also False for NaN
        raise CliError(f"--approval-timeout must be in (0, {MAX_APPROVAL_TIMEOUT_S:g}] s, not {approval_timeout_s!r}")
    doc, intersection = read_model(model_path)
    try:
        IntersectionControl(intersection, controller, mode, approval_timeout_s, **params)
    except (ValueError, TypeError) as exc:
        raise CliError(f"{model_path}: {exc}") from None
    return IntersectionConfig(
        schema_version=1,
        event_time=_now(),
        intersection_id=intersection.id,
        model=doc,
        controller=controller,
        mode=mode,
        session=session,
        approval_timeout_s=approval_timeout_s,
        params=params,
    )


def command_record(
    intersection: str, action: SignalAction, actor: str, *, plan_id: str | None = None, mode: str | None = None, reason: str = ""
) -> SignalCommand:
    """The ``signals.approvals`` record of an operator's decision; a bad mode or id is one line."""
    checked_mode: SignalMode | None = None
    if mode is not None:
        if not is_mode(mode):
            raise CliError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        checked_mode = mode
    try:
        return SignalCommand(
            schema_version=1,
            event_time=_now(),
            intersection_id=intersection,
            action=action,
            actor=actor,
            plan_id=plan_id,
            mode=checked_mode,
            reason=reason,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _publish(topic: str, key: str, record: msgspec.Struct, dry_run: bool) -> None:
    data = encode(record)
    try:  # msgspec checks length and range bounds only when decoding: decode it as the agent will
        msgspec.json.decode(data, type=type(record))
    except msgspec.ValidationError as exc:
        raise CliError(f"the {topic} record would be refused by the worker: {exc}") from None
    if dry_run:
        sys.stdout.buffer.write(data + b"\n")
        return
    from ..kafka_io import produce_to

    settings = reachable_settings()
    asyncio.run(produce_to(settings, settings.topic(topic), [(key.encode(), data)]))
    print(f"sent to {settings.topic(topic)} (key {key}); the outcome appears on signals.plans / signals.audit", file=sys.stderr)


@app.command("configure")
def configure(
    model: Annotated[Path, typer.Argument(help="Intersection model JSON (schema leitstand.intersection/1).")],
    controller: Annotated[str, typer.Option(help="fixed, webster, maxpressure, ...")] = "webster",
    mode: Annotated[str, typer.Option(help="automatic, advisory or off.")] = "advisory",
    session: Annotated[str, typer.Option(help="A new session restarts the control loop.")] = "default",
    approval_timeout: Annotated[float, typer.Option(help="Seconds a proposal waits for approval.")] = 120.0,
    param: Annotated[list[str] | None, typer.Option(help="Controller parameter NAME=NUMBER (repeatable).")] = None,
    dry_run: DryRun = False,
) -> None:
    """Publish an intersection's control config on signals.config."""
    if not is_mode(mode):
        raise CliError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    record = config_record(
        model, controller=controller, mode=mode, session=session, approval_timeout_s=approval_timeout, params=parse_params(param or [])
    )
    _publish("signals.config", record.intersection_id, record, dry_run)


@app.command("approve")
def approve(intersection: str, plan_id: str, actor: Actor, dry_run: DryRun = False) -> None:
    """Approve a pending plan (advisory mode); for leitstand or max-pressure, whose proposals are
    requests to drive (mandate_s in `pending`), this lets the controller drive for 15 minutes."""
    _publish("signals.approvals", intersection, command_record(intersection, "approve", actor, plan_id=plan_id), dry_run)


@app.command("reject")
def reject(
    intersection: str,
    plan_id: str,
    actor: Actor,
    reason: Annotated[str, typer.Option(help="Why (written to the audit log).")] = "",
    dry_run: DryRun = False,
) -> None:
    """Reject a pending plan (advisory mode)."""
    _publish("signals.approvals", intersection, command_record(intersection, "reject", actor, plan_id=plan_id, reason=reason), dry_run)


@app.command("mode")
def set_mode(
    intersection: str,
    mode: str,
    actor: Actor,
    reason: Annotated[str, typer.Option(help="Why (written to the audit log).")] = "",
    dry_run: DryRun = False,
) -> None:
    """Set an intersection's mode: automatic, advisory or off. Advisory set again while leitstand or
    max-pressure drives under a mandate ends the mandate."""
    _publish("signals.approvals", intersection, command_record(intersection, "set_mode", actor, mode=mode, reason=reason), dry_run)


@app.command("pending")
def pending(url: Annotated[str, typer.Option(help="A control worker's HTTP address.")] = "http://127.0.0.1:6066") -> None:
    """List the pending proposals a control worker holds (JSON lines).

    Reads need a token: LEITSTAND_API_READ_TOKEN, else LEITSTAND_API_TOKEN."""
    from urllib.parse import urlsplit

    settings = cli_settings()
    token = settings.api_read_token or settings.api_token
    if token is None:
        raise CliError("reading plans needs a token: set LEITSTAND_API_READ_TOKEN (or LEITSTAND_API_TOKEN)")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise CliError(f"--url {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CliError(f"--url {url!r}: give the worker's address as http(s)://host:port")
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        # the token (possibly the write token) would cross the network in clear text (stop 55's probe)
        raise CliError(f"--url {url}: a token is sent only over https, or over http to this machine (127.0.0.1)")
    req = urllib.request.Request(
        f"{url.rstrip('/')}/signals/plans?status=pending", headers={"Authorization": f"Bearer {token.get_secret_value()}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310 - an operator-given worker address
            body: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CliError(f"{url} refused: HTTP {exc.code}" + (" (wrong token?)" if exc.code in (401, 403) else "")) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"no answer from {url}: {exc}") from None
    for plan in body.get("plans", []):
        print(json.dumps(plan))
