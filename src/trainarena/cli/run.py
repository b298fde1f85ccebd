"""`trainarena run`: one registered script on one task file, outside any tournament, through exactly
the path a tournament takes (sandbox, artifact checks, hidden-split scoring)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import labelled, print_fields, print_reason
from trainarena.execution import SandboxUnavailable, make_backend
from trainarena.pipeline import SandboxedExecutor
from trainarena.reporting.run_detail import split_reason
from trainarena.runs import CompetitorInfo
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store
from trainarena.tasks import TaskFileError, load_task_file


def _competitor(settings: Settings, name: str) -> CompetitorInfo:
    with open_store(settings) as store, store.session() as session:
        row = get_competitor(session, name)
        if row is None:
            raise typer.BadParameter(f"no competitor named {name!r}; register it with `trainarena competitor add`", param_hint="--competitor")
        return CompetitorInfo(row.name, row.repo_url, row.commit, row.tree_hash, row.entrypoint)


def run_command(
    competitor: Annotated[str, typer.Option(help="A registered competitor's name.")],
    task: Annotated[Path, typer.Option(help="A task file (TOML or JSON): type, base model, dataset, budget.", exists=True, dir_okay=False)],
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run without a sandbox (only for scripts you trust).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run one competitor's script on one task and print its status, score, artifact and logs."""
    console = Console(stderr=json_output)
    settings = Settings()
    try:
        definition = load_task_file(task)
    except TaskFileError as error:
        raise typer.BadParameter(str(error), param_hint="--task") from error
    info = _competitor(settings, competitor)
    try:
        backend = make_backend(settings, unsafe=unsafe)
    except SandboxUnavailable as error:
        console.print(labelled("error", "red", str(error)), soft_wrap=True)
        raise typer.Exit(code=2) from error
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = settings.work_dir / "adhoc" / f"{info.name}-{stamp}"
    executor = SandboxedExecutor(settings, backend)
    try:
        with console.status(Text(f"running {info.name} on {definition.name} (budget {definition.budget_seconds:g} s)")):
            report = executor.run_task(info, definition, run_dir, f"adhoc-{info.name}-{stamp}")
    finally:
        executor.close()
    evaluation = report.evaluation
    result = {
        "competitor": info.name,
        "task": definition.name,
        "status": report.status.value,
        "score": None if evaluation is None else evaluation.score,
        "direction": None if evaluation is None else evaluation.direction.value,
        "failure_reason": report.failure_reason,
        "wall_seconds": round(report.wall_seconds, 2),
        "artifact_path": None if report.artifact_path is None else str(report.artifact_path),
        "artifact_digest": report.artifact_digest,
        "log_path": None if report.log_path is None else str(report.log_path),
    }
    if json_output:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_run_result(console, result)
    if report.status.value != "succeeded":
        raise typer.Exit(code=1)


def print_run_result(console: Console, result: dict[str, Any]) -> None:
    """One ``key  value`` line per field, then a failure's whole reason and stderr tail as blocks."""
    print_fields(console, [(key, "-" if value is None else str(value)) for key, value in result.items() if key != "failure_reason"])
    summary, stderr_tail = split_reason(result["failure_reason"])
    print_reason(console, summary, stderr_tail, None)
