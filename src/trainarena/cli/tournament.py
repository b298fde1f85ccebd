"""`trainarena tournament ...` (being written)."""

import typer

app = typer.Typer(help="tournament commands", no_args_is_help=True)
