"""``leitstand ingest gtfs-rt FILE_OR_URL [--interval S]``: GTFS-Realtime vehicle positions onto
``sensors.bus``.

Once, or every ``--interval`` seconds (a feed URL is polled; a file is re-read, for a feed a
script rewrites). A position already sent (same vehicle, same timestamp) is not sent again, so
polling a feed that has not changed sends nothing. A feed that cannot be fetched or parsed ends
a single read with one line; while polling it is a warning, and the next poll tries again.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CliError
from .common import err, reachable_settings

if TYPE_CHECKING:
    from ..records import BusPosition
    from ..settings import Settings

app = typer.Typer(help="Bring external feeds onto the input topics.", no_args_is_help=True)

#: a GTFS-Realtime feed larger than this is refused (a city's full feed is a few MB)
MAX_FEED_BYTES = 64 * 1024 * 1024
FETCH_TIMEOUT_S = 20.0


def shown_source(source: str) -> str:
    """The source as messages show it: a URL's password and query values hidden (a feed's key
    is often in either; the probe of stop 55 saw both printed on every failed poll)."""
    from ..settings import mask_url

    return mask_url(source) if source.startswith(("http://", "https://")) else source


def feed_request(source: str) -> urllib.request.Request:
    """The request for a feed URL; credentials in the URL (``https://user:pass@host/...``) go into
    a Basic ``Authorization`` header, since urllib would take them for part of the host name."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(source)
    if parts.username is None:
        return urllib.request.Request(source)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)))
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    return request


def read_source(source: str) -> bytes:
    """The feed's bytes from an http(s) URL or a file; one line on failure."""
    shown = shown_source(source)
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(feed_request(source), timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
                data: bytes = response.read(MAX_FEED_BYTES + 1)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise CliError(f"cannot fetch {shown}: {getattr(exc, 'reason', exc)}") from None
    elif "://" in source:
        raise CliError(f"{source}: only http://, https:// or a file path")
    else:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"no such file: {source}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_FEED_BYTES:
        raise CliError(f"{shown}: larger than {MAX_FEED_BYTES // 2**20} MiB")
    return data


def new_positions(records: list[BusPosition], seen: dict[str, float]) -> list[BusPosition]:
    """The records not sent before (by vehicle and timestamp); updates ``seen``."""
    out = []
    for r in records:
        t = r.event_time.timestamp()
        if seen.get(r.vehicle_id) == t:
            continue
        seen[r.vehicle_id] = t
        out.append(r)
    return out


def ingest_once(settings: Settings, source: str, seen: dict[str, float]) -> tuple[int, dict[str, int]]:
    """Read, decode and send one feed: (positions sent, entities skipped by reason)."""
    from ..kafka_io import produce_to
    from ..records import encode
    from ..topics import SENSORS_BUS
    from ..transit_codec import FeedError, decode_gtfs_rt

    try:
        decoded = decode_gtfs_rt(read_source(source))
    except FeedError as exc:
        raise CliError(f"{shown_source(source)}: {exc}") from None
    fresh = new_positions(decoded.records, seen)
    items = [(r.vehicle_id.encode(), encode(r)) for r in fresh]
    sent = asyncio.run(produce_to(settings, settings.topic(SENSORS_BUS), items)) if items else 0
    return sent, decoded.skipped


@app.command("gtfs-rt")
def gtfs_rt(
    source: Annotated[str, typer.Argument(metavar="FILE_OR_URL", help="GTFS-Realtime FeedMessage (protobuf): a file or an http(s) URL.")],
    interval: Annotated[float | None, typer.Option(min=1.0, max=3600.0, help="Poll every S seconds (default: read once).")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many polls (with --interval).")] = None,
) -> None:
    """Decode GTFS-Realtime vehicle positions and publish them on sensors.bus (keyed by vehicle)."""
    settings = reachable_settings()
    seen: dict[str, float] = {}
    polls = 0
    while True:
        started = time.monotonic()
        polls += 1
        try:
            sent, skipped = ingest_once(settings, source, seen)
            note = f"; skipped {sum(skipped.values())} ({', '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else ""
            err.print(f"sent {sent} positions to {settings.topic('sensors.bus')}{note}", markup=False)
        except CliError as exc:
            if interval is None:
                raise
            err.print(f"warning: {exc}; trying again in {interval:g} s", markup=False)
        if interval is None or (count is not None and polls >= count):
            return
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
