"""`trainarena task add | remove`, and the stored-task side of `task list` and `task show`: tasks an
operator stored in pools for tournaments to draw from (operations/pools.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, budget_seconds_option, fail, print_fields, seconds_text, seed_option
from trainarena.operations.pools import TaskRefused, add_task, definition_data_reuse, stored_task_json, task_from_flags
from trainarena.settings import Settings, sqlite_file
from trainarena.store import StoredTask, get_stored_task, list_stored_tasks, open_store, remove_stored_task
from trainarena.store.competitors import StoreError
from trainarena.tasks import TaskFileError, read_task_file
from trainarena.tasks.base import TaskDefinition

# The name and the pool are what `task stored show` and `--pool` take: never cut.
STORED_COLUMNS = (
    Col("name", handle=True),
    Col("pool", handle=True),
    Col("type"),
    Col("dataset", shrink_to=12),
    Col("rows", justify="right"),
    Col("budget", justify="right"),
)

ADD_HELP = (
    "Store a task in a pool for tournaments to draw from. Give a task file (--file, the schema of examples/tasks) or "
    "NAME with --type, --base-model, --dataset and the dataset's field mapping as flags named after the task file's "
    "dataset keys (--field-instruction COL --field-output COL, --format TEXT ...; a table or list key in JSON: "
    "--role-map '{\"human\": \"user\"}', --reward-functions '[{\"source\": \"...\"}]'). The base model must load, the "
    "dataset must validate and split as `task check` does; the hidden split uses a seed derived from the operator's "
    "secret, and the task records the digests of its base model, dataset and hidden split. The pool (default: the "
    "task's kind, text or image) is made on first use and holds one kind. A dataset a stored task is made of "
    "already (the same digest) is refused: each task splits it with its own secret key, so the other's scripts "
    "trained on most of its hidden rows; --allow-reused-data stores it anyway, with a warning on both tasks."
)



def dataset_flags(extra: list[str]) -> dict[str, str]:
    """``--field-instruction COL --format TEXT`` as dataset keys (``field_instruction``, ``format``)."""
    keys: dict[str, str] = {}
    words = iter(extra)
    for word in words:
        if not word.startswith("--") or len(word) < 3:
            raise TaskFileError(f"unexpected argument {word!r}: dataset keys are given as --KEY VALUE")
        key, _, value = word[2:].partition("=")
        if not _:
            value = next(words, None)
            if value is None:
                raise TaskFileError(f"{word} needs a value")
        keys[key.replace("-", "_")] = value
    return keys


def add_command(
    context: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The task's name (with flags; with --file, it replaces the name the file gives).", show_default=False)] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="instruct, chat, dpo, grpo or image.")] = None,
    base_model: Annotated[str | None, typer.Option("--base-model", help="A save_pretrained folder or a Hugging Face model id.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="JSONL, JSON, CSV or Parquet file, a save_to_disk folder, an image folder or zip, or a hub dataset id.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", callback=budget_seconds_option, help="Training budget in seconds (with --file: instead of the file's; without: default settings pools.default_budget_seconds).")] = None,
    seed: Annotated[int | None, seed_option("--seed", help="The seed `trainarena run` of the task hands the script (with --file: instead of the file's; without: default 0); in a tournament each run gets a seed drawn from the tournament's.")] = None,
    task_file: Annotated[Path | None, typer.Option("--file", help="A task file (TOML or JSON) instead of the flags.")] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="The pool to add it to (default: text or image, by the task's kind).")] = None,
    allow_reused_data: Annotated[bool, typer.Option("--allow-reused-data", help="Store it even when a stored task has the same dataset (its hidden split is then no secret: see docs/rules.md).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the stored task as JSON.")] = False,
) -> None:
    settings = Settings()
    try:
        if task_file is not None:
            if task_type or base_model or dataset or context.args:
                raise TaskFileError("give either --file (NAME, if given, renames the file's task) or NAME with --type/--base-model/--dataset, not both")
            spec = read_task_file(task_file, settings)
            if name:  # NAME renames the file's task (the same data again is refused: add_task)
                spec = replace(spec, name=name)
            if budget is not None:  # as NAME renames the file's task, --budget and --seed set its own
                spec = replace(spec, budget_seconds=budget)
            if seed is not None:
                spec = replace(spec, seed=seed)
        else:
            if not (name and task_type and base_model and dataset):
                raise TaskFileError("give NAME, --type, --base-model and --dataset (or --file TASK_FILE)")
            fields = {"source": dataset, **dataset_flags(context.args)}
            spec = task_from_flags(name, task_type, base_model, fields, budget or settings.pools.default_budget_seconds, seed,
                                   rules=settings.data)
    except TaskFileError as error:
        raise fail(str(error), json_output, name=name) from None
    with open_store(settings) as store, store.transaction() as session:
        try:
            with Console(stderr=True).status(Text(f"checking {spec.name}: base model, dataset, split")):
                added = add_task(session, settings, spec, pool, allow_reused_data=allow_reused_data)
        except TaskRefused as error:
            raise fail(str(error), json_output, name=spec.name) from None
        details = stored_task_json(session, added.stored)
    if json_output:
        typer.echo(json.dumps({"ok": True, **details}, indent=2))
        return
    console = Console(highlight=False)
    console.print(Text(f"stored {details['name']} in pool {details['pool']} ({details['kind']}): "
                       f"{details['train_rows']:,} train rows, {details['hidden_rows']:,} hidden (secret split)"), soft_wrap=True)
    if details["data_warning"]:
        Console(stderr=True, highlight=False).print(Text(f"warning: {details['data_warning']}"), soft_wrap=True)


def remove_command(
    name: Annotated[str, typer.Argument(help="A stored task's name (see `trainarena task list --stored`).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Remove a stored task; refused when a tournament drew it."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        try:
            remove_stored_task(session, name)
        except StoreError as error:
            raise fail(str(error), json_output, name=name) from None
    typer.echo(json.dumps({"ok": True, "removed": name}) if json_output else f"removed {name}")


def stored_rows(pool: str | None) -> list[dict[str, object]]:
    """The stored tasks (of one pool) as JSON-ready rows; StoreError when the pool does not exist."""
    with open_store(Settings()) as store, store.session() as session:
        return [stored_task_json(session, task) for task in list_stored_tasks(session, pool)]


def print_stored(rows: list[dict[str, object]], pool: str | None) -> None:
    console = Console(highlight=False)
    if not rows:
        console.print(Text("no stored tasks" + (f" in pool {pool}" if pool else "") + ": add one with `trainarena task add`"))
        return
    table = OneLineTable(STORED_COLUMNS, title="Stored tasks" + (f" in pool {pool}" if pool else ""))
    for row in rows:
        table.add_row([str(row["name"]), str(row["pool"]), str(row["type"]), str(row["dataset"]),
                       f"{row['train_rows']}+{row['hidden_rows']}", seconds_text(row['budget_seconds'])])
    console.print(table)
    console.print(Text("rows: train+hidden · describe one: trainarena task show NAME"), soft_wrap=True)
    for row in rows:  # a task whose whole dataset another stored task has too: its hidden split is no secret
        if row["data_warning"]:
            console.print(Text(f"warning: {row['name']}: {row['data_warning']}"), soft_wrap=True)


def stored_task(name: str) -> dict[str, object] | None:
    """The stored task named ``name`` as JSON, or None when no task of that name is stored."""
    with open_store(Settings()) as store, store.session() as session:
        task: StoredTask | None = get_stored_task(session, name)
        return None if task is None else stored_task_json(session, task)


def data_warning(settings: Settings, definition: TaskDefinition) -> str | None:
    """Why `task add` would refuse a checked task's dataset: a stored task has the same one (None: none has,
    or there is no store yet: a check makes no data directory)."""
    database = sqlite_file(settings.db_url)
    if database is not None and not database.exists():
        return None
    with open_store(settings) as store, store.session() as session:
        return definition_data_reuse(session, settings, definition)


def print_stored_task(details: dict[str, object]) -> None:
    digests = details["digests"]
    assert isinstance(digests, dict)
    print_fields(Console(highlight=False), [
        ("task", f"{details['name']} ({details['type']}), pool {details['pool']} ({details['kind']})"),
        ("base model", str(details["base_model"])),
        ("dataset", str(details["dataset"])),
        ("rows", f"{details['train_rows']:,} train, {details['hidden_rows']:,} hidden (secret split)"),
        ("budget", seconds_text(details["budget_seconds"])),
        ("score", f"{details['direction']} is better" if details["direction"] else "-"),
        ("added", str(details["created_at"])),
        ("model sha256", str(digests["base_model"])),
        ("data sha256", str(digests["dataset"])),
        ("hidden sha256", str(digests["hidden_split"])),
        *([("warning", str(details["data_warning"]))] if details["data_warning"] else []),
    ])
