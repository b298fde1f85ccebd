"""`trainarena task list | show | check | add | remove`: the task files to try, one described, any one
validated without running anything; tasks stored in pools for tournaments (cli/stored_tasks.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainarena.cli import stored_tasks
from trainarena.cli.leaderboards import find_played_task, print_played_task, print_task_board, stored_task_board
from trainarena.cli.output import Col, OneLineTable, fail
from trainarena.reporting.task_board import TaskBoard
from trainarena.runs import task_key
from trainarena.settings import Settings
from trainarena.store.competitors import StoreError
from trainarena.tasks import DatasetError, TaskFileError, load_task_file, with_local_path
from trainarena.tasks.base import count_dropped, describe_dropped
from trainarena.tasks.builtin_assets import ASSET_PREFIX, is_builtin
from trainarena.tasks.catalog import TaskDescription, describe_task, examples_folder, find_task_file, list_tasks, task_files
from trainarena.tasks.check import SHOWN_SHARED_KEYS, TaskCheck, check_task

app = typer.Typer(help="Task files to try, described and checked before anything runs; tasks stored in pools.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# One line per task file: the name is never cut (it is what `task show` takes); model and dataset
# shrink with an ellipsis. Built-in assets are shown by their name alone (a footnote says so).
LIST_COLUMNS = (
    Col("name", handle=True),
    Col("type"),
    Col("base model", shrink_to=10),
    Col("dataset", shrink_to=12),
    Col("budget", justify="right"),
)
FILE_COLUMN = Col("file", handle=True)
BUILTIN_NOTE = f"model and dataset: a built-in asset ({ASSET_PREFIX}NAME) is shown as NAME"


CHECK_HELP = (
    "Load, validate and split a task's dataset as a tournament would, then check that no prompt (or image) is "
    "on both sides of the split, and say when a stored task has the same dataset (`task add` refuses it). Nothing is "
    "trained and nothing is written to the data dir. Exits 1 with the problem when the task cannot be prepared."
)


@app.command("check", help=CHECK_HELP, short_help="Validate a task file and its dataset without running anything.")
def check_command(
    task_file: Annotated[Path, typer.Argument(help="A task file (TOML or JSON): type, base model, dataset, budget.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    settings = Settings()
    # A stored task's name is no file: it was checked as it was added, and what that found is in `task show`.
    stored = None if task_file.suffix or task_file.expanduser().exists() else stored_tasks.stored_task(str(task_file))
    if stored is not None:
        raise fail(f"{task_file} is a stored task (pool {stored['pool']}), not a task file: it was checked when it was "
                   f"added; `trainarena task show {task_file}` shows its rows, split and digests", json_output, file=str(task_file))
    try:
        check = check_task(load_task_file(task_file, settings), settings)
        data_warning = stored_tasks.data_warning(settings, check.task)
    except (TaskFileError, DatasetError) as error:
        raise fail(str(with_local_path(error, task_file.expanduser().absolute())), json_output, file=str(task_file)) from None
    if json_output:
        typer.echo(json.dumps(check.to_json() | {"data_warning": data_warning}, indent=2))
    else:
        _print_summary(check, data_warning)
    if not check.leak_free:
        raise typer.Exit(code=1)


def _print_grid(rows: list[tuple[str, str]]) -> None:
    """``key  value`` rows whose long values wrap within the terminal, under their own column."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, Text(value))  # Text: a path or a reason with [brackets] is not markup
    Console(highlight=False).print(table)


def _print_summary(check: TaskCheck, data_warning: str | None) -> None:
    task, dropped = check.task, count_dropped(check.dropped)
    leak = "passed: no group key on both sides"
    if not check.leak_free:
        leak = "FAILED: on both sides: " + ", ".join(repr(key) for key in check.shared_groups[:SHOWN_SHARED_KEYS])
    _print_grid([
        ("task", f"{task.name} ({task.task_type.value})"),
        ("dataset", str(task.dataset.get("source"))),
        ("base model", task.base_model),
        ("rows", f"{check.train_rows + check.hidden_rows + dropped:,}: {check.train_rows:,} train, "
                 f"{check.hidden_rows:,} hidden, {dropped:,} dropped"),
        ("groups", f"{check.train_groups:,} train, {check.hidden_groups:,} hidden"),
        ("dropped", describe_dropped(check.dropped) or "none"),
        ("leak check", leak),
        *([("reused data", f"{data_warning}; `task add` refuses it without --allow-reused-data")] if data_warning else []),
    ])


app.command("add", help=stored_tasks.ADD_HELP, short_help="Store a task in a pool (checked, secret split, digests).",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(stored_tasks.add_command)
app.command("remove", short_help="Remove a stored task (refused when a tournament drew it).")(stored_tasks.remove_command)

LIST_HELP = (
    "List the task files of a folder (default: examples/tasks of this checkout): name, type, base model, "
    "dataset and budget, as the files are written. Nothing is built or read beyond the files. --stored lists the "
    "tasks stored in pools instead (--pool POOL: one pool's)."
)


@app.command("list", help=LIST_HELP, short_help="List the task files to try, or the stored tasks.")
def list_command(
    folder: Annotated[Path | None, typer.Argument(help="A folder of task files (default: examples/tasks).", show_default=False)] = None,
    stored: Annotated[bool, typer.Option("--stored", help="List the tasks stored in pools instead of task files.")] = False,
    pool: Annotated[str | None, typer.Option("--pool", help="List the stored tasks of this pool (implies --stored).")] = None,
    json_output: JsonFlag = False,
) -> None:
    if stored or pool is not None:
        try:
            rows = stored_tasks.stored_rows(pool)
        except StoreError as error:
            raise fail(str(error), json_output, pool=str(pool)) from None
        if json_output:
            typer.echo(json.dumps(rows, indent=2))
        else:
            stored_tasks.print_stored(rows, pool)
        return
    default = folder is None
    folder = folder or examples_folder()
    try:
        listings = list_tasks(folder)
    except TaskFileError as error:
        hint = " (examples/tasks ships with a checkout of the repository; name a folder of task files)" if default else ""
        raise fail(f"{error}{hint}", json_output, folder=str(folder)) from None
    if json_output:
        typer.echo(json.dumps([listing.to_json() for listing in listings], indent=2))
        return
    if not listings:
        typer.echo(f"no task files (.toml, .json) in {folder}")
        return
    # `task show NAME` finds the examples by name; a task file elsewhere is shown by its path, so
    # another folder's table has the file column that path is made of.
    columns = LIST_COLUMNS if default else (LIST_COLUMNS[0], FILE_COLUMN, *LIST_COLUMNS[1:])
    table, builtin_shown = OneLineTable(columns, title=f"Tasks in {folder}"), False
    for listing in listings:
        task, file = listing.task, [] if default else [listing.file.name]
        if task is None:
            table.add_row([listing.file.stem if default else "-", *file, "-", "-", "-", "-"])
            continue
        model, dataset = task.base_model, str(task.dataset.get("source", "-"))
        builtin_shown = builtin_shown or is_builtin(model) or is_builtin(dataset)
        table.add_row([task.name, *file, task.task_type.value, model.removeprefix(ASSET_PREFIX),
                       dataset.removeprefix(ASSET_PREFIX), f"{task.budget_seconds:g} s"])
    console = Console(highlight=False)
    console.print(table)
    if builtin_shown:
        console.print(Text(BUILTIN_NOTE), soft_wrap=True)
    shown_as = "NAME" if default else str(folder / "FILE")  # wrapped: a folder's path can be long
    console.print(Text(f"describe one: trainarena task show {shown_as}"))
    warnings = Console(stderr=True, highlight=False, soft_wrap=True)
    for listing in listings:
        if listing.error is not None:
            warnings.print(Text.assemble(("warning: ", "yellow"), listing.error))


SHOW_HELP = (
    "Describe a task: its type, base model, dataset, rows and the train/hidden split sizes (prepared exactly as "
    "`task check` does, nothing trained), its budget, what the score is and which way is better, and the field "
    "mapping. NAME is a stored task (see `task list --stored`: shown with its pool and digests), a file stem in "
    "examples/tasks (see `trainarena task list`), a path to any task file, or a task runs were made on (as a "
    "tournament's bracket or `runs list` names it, or a prefix of its digest): shown as it was played. The "
    "first use of a built-in asset builds it (up to a minute). --leaderboard adds every run ever stored on the "
    "task (tournament runs, ad-hoc runs, the references), best score per entrant."
)


@app.command("show", help=SHOW_HELP, short_help="Describe a task: data, split sizes, budget, score.")
def show_command(
    name: Annotated[str, typer.Argument(help="A name from `trainarena task list` or a bracket, a digest prefix, or a path to a task file.")],
    leaderboard: Annotated[bool, typer.Option("--leaderboard", help="Also rank every stored run on this task.")] = False,
    json_output: JsonFlag = False,
) -> None:
    settings = Settings()
    stored = None if Path(name).suffix else stored_tasks.stored_task(name)
    if stored is not None:
        stored_board = stored_task_board(settings, str(stored["task_digest"])) if leaderboard else None
        if json_output:
            typer.echo(json.dumps(stored | ({"leaderboard": _board_json(stored_board)} if leaderboard else {}), indent=2))
            return
        stored_tasks.print_stored_task(stored)
        if leaderboard:
            _print_board(stored_board, f"no run is stored on this task yet: it is played in pool {stored['pool']}'s tournaments")
        # The stored task wins the name; the example file's runs (`trainarena run --task`) are under its path.
        shadowed = next((path for path in task_files(examples_folder()) if path.stem == name), None)
        if shadowed is not None:
            Console(stderr=True, highlight=False).print(Text(
                f"note: the task file {shadowed} has this name too: `trainarena task show {shadowed}"
                f"{' --leaderboard' if leaderboard else ''}` shows it"), soft_wrap=True)
        return
    try:
        path = find_task_file(name, examples_folder())
    except TaskFileError as error:
        # A task a tournament drew (as its bracket names it) or an ad-hoc run trained on: no file, no pool.
        played = find_played_task(settings, name)
        if played is None:
            raise fail(f"{error}, nor a task stored or run on in this store", json_output, name=name) from None
        if json_output:
            typer.echo(json.dumps(played.to_json() | ({"leaderboard": played.board.to_json()} if leaderboard else {}), indent=2))
        else:
            print_played_task(Console(highlight=False), played, name, leaderboard)
        return
    try:
        with Console(stderr=True).status(Text(f"preparing {name} (a first use of a built-in asset builds it)")):
            description = describe_task(path, settings)
        board = stored_task_board(settings, task_key(description.check.task)) if leaderboard else None
    except (TaskFileError, DatasetError) as error:
        raise fail(str(with_local_path(error, path.absolute())), json_output, name=name) from None
    details = description.to_json() | {"task_digest": task_key(description.check.task)}  # what `runs list --task` takes
    if json_output:
        if leaderboard:
            details["leaderboard"] = _board_json(board)
        typer.echo(json.dumps(details, indent=2))
        return
    _print_description(description)
    if leaderboard:
        _print_board(board, f"no run is stored on this task yet: trainarena run --repo PATH --task {path}")


def _board_json(board: TaskBoard | None) -> dict[str, Any] | None:
    return None if board is None else board.to_json()


def _print_board(board: TaskBoard | None, empty: str) -> None:
    console = Console(highlight=False)
    if board is None:
        console.print(Text(empty), soft_wrap=True)
    else:
        print_task_board(console, board)


def _print_description(description: TaskDescription) -> None:
    details, task = description.to_json(), description.task_file
    rows = [("task", f"{details['name']} ({details['type']})"), ("file", details["file"])]
    for label, key in (("base model", "base_model"), ("dataset", "dataset")):
        written, resolved = details[key], details[f"{key}_path"]
        rows.append((label, written if written == resolved else f"{written}\n{resolved}"))
    rows += [
        ("rows", f"{details['rows']:,}: {details['train_rows']:,} train, {details['hidden_rows']:,} hidden "
                 f"(scored), {details['dropped_rows']:,} dropped"),
        ("budget", f"{task.budget_seconds:g} s, seed {task.seed}"),
        ("score", f"{description.metric + ', ' if description.metric else ''}{description.direction} is better: "
                  f"{description.score_meaning}"),
        ("fields", "\n".join(f"{key} = {_field_value(key, value)}" for key, value in description.fields.items()) or "-"),
    ]
    _print_grid(rows)


def _field_value(key: str, value: object) -> str:
    """A dataset value as TOML-like text; reward functions by name and weight."""
    if key == "reward_functions" and isinstance(value, list):
        return ", ".join(f"{f['name']} (weight {f['weight']:g})" for f in value)
    return json.dumps(value)
