"""`trainarena doctor`: which isolation features this host gives competitor runs, and what is missing.

A thin shell over ``execution.capabilities.probe_capabilities``: one table row per feature (one line
each at 80 columns), then each missing feature with its consequence and fix; ``--json`` prints the
same data as one object. Exits 1 when the configured backend cannot isolate runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainarena.execution.capabilities import Capabilities, probe_capabilities
from trainarena.settings import Settings

_TABLE_CHROME = 10  # a 3-column rich table: 4 borders and 2 spaces of padding per column


def print_doctor(console: Console, capabilities: Capabilities) -> None:
    table = Table(title=f"Isolation on this host (backend: {capabilities.backend})", title_justify="left")
    widest = max(len(feature.name) for feature in capabilities.features)
    table.add_column("feature", no_wrap=True, min_width=widest)
    table.add_column("state", no_wrap=True, min_width=len("MISSING"))
    # What is left of the line once the two narrow columns, the borders and the padding are drawn.
    room = max(20, console.width - widest - len("MISSING") - _TABLE_CHROME)
    table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=room)
    for feature in capabilities.features:
        if feature.ok:
            state = "[green]ok[/green]"
        else:
            state = "[red]MISSING[/red]" if feature.required else "[yellow]no[/yellow]"
        table.add_row(feature.name, state, escape(feature.detail))
    console.print(table)
    for feature in capabilities.missing():
        console.print(f"- [bold]{escape(feature.name)}[/bold]: {escape(feature.consequence)}. "
                      f"Fix: {escape(feature.fix)}.")
    colour = "green" if capabilities.can_isolate else "red"
    console.print(f"[{colour}]{escape(capabilities.verdict)}[/{colour}]")


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show which isolation features (bwrap, namespaces, cgroups, disk caps, GPUs, docker) are active here and what is missing; exit 1 when the configured backend cannot isolate runs."""
    capabilities = probe_capabilities(Settings().sandbox)
    if as_json:
        typer.echo(json.dumps(capabilities.to_dict()))
    else:
        print_doctor(Console(), capabilities)
    if not capabilities.can_isolate:
        raise typer.Exit(1)
