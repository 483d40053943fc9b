"""``leitstand dashboards``: the Grafana dashboards of ``dashboards/`` exported with their
provisioning (for a Grafana that reads files) or pushed through Grafana's HTTP API.

The logic is in ``streams/dashboards.py``; these commands only parse flags and print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from ..dashboards import DEFAULT_SOURCE, DashboardError, export, load, push
from ..errors import CliError
from .common import out

app = typer.Typer(help="Grafana dashboards as code: export or push them.", no_args_is_help=True)

SourceOption = Annotated[
    Path,
    typer.Option("--source", help="The dashboards directory (JSON in json/, provisioning/, prometheus.yml)."),
]


@app.command("export")
def export_command(
    dest: Annotated[Path, typer.Argument(help="Directory to write json/, provisioning/ and prometheus.yml into.")],
    source: SourceOption = DEFAULT_SOURCE,
) -> None:
    """Write the dashboards and Grafana's provisioning files into DEST (created if missing)."""
    if dest.exists() and not dest.is_dir():
        raise typer.BadParameter(f"{dest} exists and is not a directory", param_hint="DEST")
    try:
        written = export(dest, source)
    except DashboardError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {dest}: {exc.strerror or exc}") from None
    for path in written:
        out.print(str(path), markup=False)
    out.print(f"{len(written)} files written to {dest}", markup=False)


@app.command("push")
def push_command(
    url: Annotated[str, typer.Option("--url", help="Grafana's base URL, e.g. http://localhost:3000.")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="A Grafana service-account token (default: $GRAFANA_TOKEN)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Basic-auth user instead of a token; the password is read from $GRAFANA_PASSWORD."),
    ] = None,
    source: SourceOption = DEFAULT_SOURCE,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.", min=0.1, max=300)] = 10.0,
) -> None:
    """Upload every dashboard (by uid, overwriting) into Grafana's 'Leitstand' folder."""
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("must start with http:// or https://", param_hint="--url")
    if "?" in url or "#" in url:  # grafana-client reads ?verify=false from it: TLS off, silently
        raise typer.BadParameter("takes no query or fragment (TLS is always verified)", param_hint="--url")
    from ..settings import mask_url

    shown = mask_url(url.rstrip("/"), mask_all_query=False)  # a user:password in it is not printed
    token = token or os.environ.get("GRAFANA_TOKEN") or None
    basic = None
    if token is None:
        password = os.environ.get("GRAFANA_PASSWORD")
        if not user or not password:
            raise CliError("no credentials: give --token (or $GRAFANA_TOKEN), or --user with $GRAFANA_PASSWORD")
        basic = (user, password)
    try:
        results = push(url, load(source), token=token, basic=basic, timeout_s=timeout)
    except DashboardError as exc:
        raise CliError(str(exc).replace(url, shown).replace(url.rstrip("/"), shown)) from None
    site = "{0.scheme}://{0.netloc}".format(urlsplit(shown))  # Grafana's links hold its sub-path already
    for r in results:
        out.print(f"{r.title} ({r.uid}) -> {site}{r.url} version {r.version}", markup=False)
