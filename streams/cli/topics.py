"""``leitstand topics create|list``: the catalogue topics on the broker."""

from __future__ import annotations

import asyncio

import typer

from .common import out, reachable_settings

app = typer.Typer(help="Create or list the Kafka topics.", no_args_is_help=True)


@app.command("create")
def topics_create() -> None:
    """Create the catalogue topics that are missing."""
    from ..kafka_io import ensure_topics

    created = asyncio.run(ensure_topics(reachable_settings()))
    out.print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else " (all existed)"))


@app.command("list")
def topics_list() -> None:
    """List the topics on the broker."""
    from ..kafka_io import list_topics

    for topic in asyncio.run(list_topics(reachable_settings())):
        out.print(topic)
