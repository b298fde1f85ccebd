"""`trainarena task check`: validate a task file and its dataset without running anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainarena.settings import Settings
from trainarena.tasks import DatasetError, TaskFileError, load_task_file
from trainarena.tasks.base import count_dropped, describe_dropped
from trainarena.tasks.check import SHOWN_SHARED_KEYS, TaskCheck, check_task

app = typer.Typer(help="Check task files before a tournament uses them; see the leaderboard of a task.", no_args_is_help=True)


CHECK_HELP = (
    "Load, validate and split a task's dataset as a tournament would, then check that no prompt (or image) is "
    "on both sides of the split. Nothing is trained and nothing is written to the data dir. Exits 1 with the "
    "problem when the task cannot be prepared."
)


@app.command("check", help=CHECK_HELP, short_help="Validate a task file and its dataset without running anything.")
def check_command(
    task_file: Annotated[Path, typer.Argument(help="A task file (TOML or JSON): type, base model, dataset, budget.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    try:
        check = check_task(load_task_file(task_file), Settings())
    except (TaskFileError, DatasetError) as error:
        if json_output:
            typer.echo(json.dumps({"ok": False, "file": str(task_file), "error": str(error)}, indent=2))
        else:
            Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "red"), str(error)))
        raise typer.Exit(code=1) from None
    if json_output:
        typer.echo(json.dumps(check.to_json(), indent=2))
    else:
        _print_summary(check)
    if not check.leak_free:
        raise typer.Exit(code=1)


def _print_summary(check: TaskCheck) -> None:
    task, dropped = check.task, count_dropped(check.dropped)
    leak = "passed: no group key on both sides"
    if not check.leak_free:
        leak = "FAILED: on both sides: " + ", ".join(repr(key) for key in check.shared_groups[:SHOWN_SHARED_KEYS])
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for name, value in (
        ("task", f"{task.name} ({task.task_type.value})"),
        ("dataset", str(task.dataset.get("source"))),
        ("base model", task.base_model),
        ("rows", f"{check.train_rows + check.hidden_rows + dropped:,}: {check.train_rows:,} train, "
                 f"{check.hidden_rows:,} hidden, {dropped:,} dropped"),
        ("groups", f"{check.train_groups:,} train, {check.hidden_groups:,} hidden"),
        ("dropped", describe_dropped(check.dropped) or "none"),
        ("leak check", leak),
    ):
        table.add_row(name, Text(value))  # Text: a path or a reason with [brackets] is not markup
    Console(highlight=False).print(table)


@app.command("leaderboard")
def leaderboard_command(
    name: Annotated[str, typer.Argument(help="The task's name (as in its task file) or a prefix of its digest.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every run ever made on a task, tournament and ad hoc, best score per entrant, with the references."""
    # Temporary home: to be wired as `trainarena task show NAME --leaderboard`.
    from trainarena.cli.leaderboards import show_task_board

    show_task_board(name, json_output)
