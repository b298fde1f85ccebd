"""`trainarena champions`: the champion history per kind (who, since when, which tournament, margin)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from trainarena.cli.output import Col, OneLineTable
from trainarena.operations.history import champion_reigns
from trainarena.settings import Settings
from trainarena.store import open_store

COLUMNS = (Col("kind"), Col("champion", shrink_to=8), Col("since"), Col("tournament", shrink_to=8), Col("margin", shrink_to=10))


def champions_command(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: text or image.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every crowning, oldest first: the latest of each kind is its reigning champion."""
    settings = Settings()
    with open_store(settings) as store, store.session() as session:
        reigns = champion_reigns(session, settings.rules, kind)
    if json_output:
        typer.echo(json.dumps([reign.to_json() for reign in reigns], indent=2))
        return
    if not reigns:
        typer.echo("no champion crowned yet")
        return
    table = OneLineTable(COLUMNS, title="Champions")
    for reign in reigns:
        tournament = "-" if reign.tournament is None else f"{reign.tournament} ({reign.tournament_id})"
        table.add_row([reign.kind, reign.champion, reign.since.strftime("%Y-%m-%d %H:%M"), tournament, reign.margin])
    Console(highlight=False).print(table)
