"""`trainarena competitor ...` (being written)."""

import typer

app = typer.Typer(help="competitor commands", no_args_is_help=True)
