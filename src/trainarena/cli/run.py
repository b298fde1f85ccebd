"""`trainarena run`: a registered script or a working tree on one task file, outside any tournament,
through exactly the path a tournament takes (sandbox, artifact checks, hidden-split scoring); stored
in the record, and printed next to the task's references (the base model, the house script)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE, threads_per_run
from trainarena.cli.output import Col, OneLineTable, fail, labelled, print_fields, print_reason, printable, scored_columns
from trainarena.cluster import make_executor
from trainarena.contract import SEED_MAX, Direction
from trainarena.engine.comparison import relative_improvement, seed_spread
from trainarena.execution import SandboxUnavailable
from trainarena.reporting.references import ReferenceLine
from trainarena.reporting.run_detail import RESULT_TAIL_LINES, RunDetail, read_run_detail
from trainarena.runs import CompetitorInfo, RunNotStarted
from trainarena.settings import Settings
from trainarena.store import Store, get_competitor, open_store
from trainarena.store.models import RunOrigin
from trainarena.submissions import RegistrationError
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks import TaskFileError, load_task_file, with_local_path
from trainarena.tasks.base import DatasetError, TaskDefinition
from trainarena.wording import ScoreColumn
from trainarena.workbench import (
    RunStopped,
    Script,
    SeedsSummary,
    Workbench,
    WorkbenchExecutor,
    registered_script,
    unsupported,
    worktree_script,
)

# One line per seed when a script ran under several.
SEED_COLUMNS = (Col("run", justify="right"), Col("seed", justify="right"), Col("status"),
                Col("score", justify="right"), Col("vs house", justify="right"), Col("reason", shrink_to=8))  # fmt: skip


def _competitor(store: Store, name: str, json_output: bool) -> CompetitorInfo:
    with store.session() as session:
        row = get_competitor(session, name)
        if row is None:  # one line naming it, as a bad --repo or --task gets
            raise fail(f"--competitor {name}: no such competitor; register it with `trainarena competitor add`",
                       json_output, code=2, competitor=name)
        return CompetitorInfo(row.name, row.repo_url, row.commit, row.tree_hash, row.entrypoint)


def _check_options(settings: Settings, competitor: str | None, repo: Path | None, seeds: int, json_output: bool) -> None:
    """One line naming the option given wrong (exit 2), as a bad path gets: typer's checks end in a usage box."""
    script = "--competitor NAME (registered) or --repo PATH (a working tree)"
    if competitor is None and repo is None:
        raise fail(f"--competitor or --repo: give one: {script}", json_output, code=2)
    if competitor is not None and repo is not None:
        raise fail(f"--competitor and --repo: give one, not both: {script}", json_output, code=2)
    if seeds < 1:
        raise fail(f"--seeds {seeds}: at least 1", json_output, code=2)
    if seeds > settings.workbench.max_seeds:
        raise fail(f"--seeds {seeds}: at most {settings.workbench.max_seeds} (settings: workbench.max_seeds)", json_output, code=2)


def _script(settings: Settings, store: Store, competitor: str | None, repo: Path | None, json_output: bool) -> Script:
    if competitor is not None:
        return registered_script(_competitor(store, competitor, json_output))
    assert repo is not None
    try:
        return worktree_script(settings, repo)
    except RegistrationError as error:
        raise fail(f"--repo {repo}: {error}", json_output, code=2, repo=str(repo)) from error


def _check_dataset(settings: Settings, definition: TaskDefinition, task: Path, console: Console, json_output: bool) -> None:
    """The task's dataset loaded, validated and split as `task check` does (the preparation its runs
    reuse, cached), so a missing column is one line (exit 2) with nothing stored, not failed runs."""
    try:
        with console.status(Text(printable(f"checking {definition.name}'s dataset"))):
            TaskPreparer(settings).prepare(definition)
    except DatasetError as error:
        raise fail(f"--task {with_local_path(error, task.expanduser().absolute())}", json_output, code=2, task=str(task)) from None


def run_command(
    # Paths are checked by the command, not by typer: a bad one is one line naming it (as --repo's
    # problems are), not a usage box.
    task: Annotated[Path, typer.Option(help="A task file (TOML or JSON): type, base model, dataset, budget.")],
    competitor: Annotated[str | None, typer.Option(help="A registered competitor's name.")] = None,
    repo: Annotated[Path | None, typer.Option(help="A working tree to run as it is, committed or not, without registering it.")] = None,
    seeds: Annotated[int, typer.Option(help="Run this many times (1 to settings workbench.max_seeds), with the task's seed, seed + 1, ...; runs the house script on the same seeds (cached per seed) and prints mean, spread and the lead over it, paired by seed, with its confidence interval.")] = 1,
    no_reference: Annotated[bool, typer.Option("--no-reference", help="Skip the references (base model, house script).")] = False,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run without a sandbox (only for scripts you trust).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a script on one task, store the run, and print its score next to the base model's and the house script's."""
    console = Console(stderr=json_output, highlight=False)
    settings = threads_per_run(Settings(), 1)  # a run alone, as in a tournament of one run slot: every core
    _check_options(settings, competitor, repo, seeds, json_output)
    try:
        definition = load_task_file(task, settings)
    except TaskFileError as error:  # it names the file
        raise fail(f"--task {error}", json_output, code=2, task=str(task)) from error
    if definition.seed + seeds - 1 > SEED_MAX:  # run k takes the task's seed + k
        raise fail(f"--seeds {seeds}: the task's seed {definition.seed} leaves room for {SEED_MAX - definition.seed + 1} "
                   f"(seeds end at {SEED_MAX})", json_output, code=2)  # fmt: skip
    with open_store(settings) as store:
        script = _script(settings, store, competitor, repo, json_output)
        if (refused := unsupported(settings, script, definition)) is not None:  # before any run is stored
            raise fail(f"{script.info.name}: {refused}", json_output, code=2, task=str(task))
        _check_dataset(settings, definition, task, console, json_output)
        try:
            executor = make_executor(settings, unsafe=unsafe)
        except SandboxUnavailable as error:
            console.print(labelled("error", "red", str(error)), soft_wrap=True)
            raise typer.Exit(code=2) from error
        try:
            runs, summary = play(settings, store, executor, console, script, definition, seeds=seeds, references=not no_reference)
        except RegistrationError as error:
            console.print(labelled("error", "red", str(error)), soft_wrap=True)
            raise typer.Exit(code=2) from error
        except RunNotStarted as error:  # the platform's (a full disk, no node): the run is not stored; say why
            raise fail(str(error), json_output, task=str(task)) from None
        except RunStopped as stopped:  # the run is stored, logs and all: say which, as a shell's Ctrl-C exits
            console.print(labelled("interrupted", "yellow", str(stopped)), soft_wrap=True)
            raise typer.Exit(code=EXIT_STOPPED_AT_ONCE) from None
        finally:
            executor.close()
    if json_output:
        data = {"runs": [run.to_json() for run in runs], "summary": None if summary is None else _summary_json(summary)}
        typer.echo(json.dumps(data, indent=2))
    else:
        print_result(Console(highlight=False), runs, summary, references_skipped=no_reference)
    if any(run.status != "succeeded" for run in runs):
        raise typer.Exit(code=1)


def play(settings: Settings, store: Store, executor: WorkbenchExecutor, console: Console, script: Script,
         definition: TaskDefinition, *, seeds: int, references: bool) -> tuple[list[RunDetail], SeedsSummary | None]:  # fmt: skip
    """References first (computed once per task), then the script's runs, read back from the store;
    with several seeds, their summary."""
    status = console.status("")

    def say(message: str) -> None:
        status.update(Text(printable(message)))

    bench = Workbench(settings, store, executor, say)
    with status:
        # A script whose manifest refuses the task type was refused before (`run_command`).
        reference_ids = bench.references(definition) if references else {}
        # Several seeds are compared seed by seed: the house script runs on each of them too.
        house_ids = bench.house_runs(definition, seeds) if seeds > 1 and RunOrigin.HOUSE in reference_ids else []
        run_ids = bench.run(script, definition, seeds)
    with store.session() as session:
        runs = [read_run_detail(session, run_id, tail_lines=RESULT_TAIL_LINES) for run_id in run_ids]
    if not references:  # none asked for: no line of them, not a house line saying it is "not run on this seed"
        runs = [replace(run, references=()) for run in runs]
    summary = bench.summarize(run_ids, house_ids) if seeds > 1 else None
    return runs, summary


def _summary_json(summary: SeedsSummary) -> dict[str, Any]:
    spread, lead = summary.spread, summary.house_lead
    house = [score for score in summary.house_scores if score is not None]
    return {
        "runs_scored": spread.runs, "mean": spread.mean, "std": spread.std, "min": spread.minimum, "max": spread.maximum,
        "house_scores": list(summary.house_scores),
        "house_mean": None if not house else seed_spread(house).mean,
        "lead_over_house": None if lead is None else {
            "estimate": lead.estimate, "low": lead.low, "high": lead.high, "confidence": lead.confidence,
            "paired_by_seed": True, "seeds_paired": summary.pairs, "paired_per_example": lead.paired, "clear": lead.clear,
        },
    }  # fmt: skip


def _improvement(line: ReferenceLine) -> str:
    if line.improvement is None:
        return "-"
    return f"{abs(line.improvement):.1%} {'better' if line.improvement >= 0 else 'worse'}"


def _compared(line: ReferenceLine) -> str:
    if line.missing is not None:
        return line.missing
    if line.improvement is None:
        return f"{line.score:.4f} (no comparison: the run has no score)"
    if line.kind == RunOrigin.BASE_MODEL and line.improvement == 0:  # "0.0% better" read as a run that did nothing
        # e.g. the house script's GRPO guard keeping the base weights, which its last stdout line says
        return f"{line.score:.4f}, exactly the script's score: it saved the base weights or a model scoring as they do (its stdout log may say why)"
    return f"{line.score:.4f}, the script is {_improvement(line)}"


def _print_run(console: Console, run: RunDetail, references_skipped: bool) -> None:
    score = "-" if run.score is None else f"{run.score:.4f} ({run.direction} is better)"
    where = run.repo_url if run.commit in (None, "") else f"{run.repo_url} at {run.commit[:12]}"
    if run.dirty:
        where += " with uncommitted changes"
    fields = [("run", f"{run.run_id} (`trainarena runs show {run.run_id}`)"), ("script", f"{run.competitor} ({where})"),
              ("task", f"{run.task} ({run.task_type}, budget {run.budget_seconds:g} s, seed {run.seed})"),
              ("status", run.status), ("score", score)]  # fmt: skip
    fields += [(line.label, _compared(line)) for line in run.references]
    if references_skipped:
        fields.append(("references", "skipped (--no-reference)"))
    fields += [("wall time", "-" if run.wall_seconds is None else f"{run.wall_seconds:.1f} s"),
               ("artifact", run.artifact_path or "-"), ("logs", run.log_path or "-")]  # fmt: skip
    print_fields(console, fields)
    print_reason(console, run.summary, run.stderr_tail if run.status != "succeeded" else None, None)


def print_result(console: Console, runs: list[RunDetail], summary: SeedsSummary | None, *, references_skipped: bool = False) -> None:
    """One run in full; several seeds as one line each, then their spread and lead over the house script
    (``references_skipped``: `--no-reference` was given, and one line says so instead)."""
    if len(runs) == 1:
        _print_run(console, runs[0], references_skipped)
        return
    columns = scored_columns(SEED_COLUMNS, "score", ScoreColumn(run.direction for run in runs))
    table = OneLineTable(columns, title=f"{runs[0].competitor} on {runs[0].task}, {len(runs)} seeds")
    for run in runs:
        # Each run's house reference is the house run on its own seed, which the verdict pairs it with.
        house = next((line for line in run.references if line.kind == RunOrigin.HOUSE), None)
        table.add_row([str(run.run_id), str(run.seed), run.status, "-" if run.score is None else f"{run.score:.4f}",
                       "-" if house is None else _improvement(house), run.reason or "-"])  # fmt: skip
    console.print(table)
    if summary is None:
        console.print("no run scored: nothing to summarise")
        return
    spread, lead = summary.spread, summary.house_lead
    lines = [("mean", f"{spread.mean:.4f} over {spread.runs} scored runs"),
             ("spread", f"std {spread.std:.4f}, min {spread.minimum:.4f}, max {spread.maximum:.4f}")]  # fmt: skip
    direction = Direction(next(run.direction for run in runs if run.direction))
    for reference in runs[0].references:
        if reference.kind != RunOrigin.HOUSE and reference.score is not None:  # the house script's is its mean over the seeds, below
            change = replace(reference, improvement=relative_improvement(spread.mean, reference.score, direction))
            lines.append((reference.label, f"{reference.score:.4f}, the mean is {_improvement(change)}"))
    house_scores = [score for score in summary.house_scores if score is not None]
    if house_scores:
        house_spread = seed_spread(house_scores)
        # The mean against the house script's mean over the same seeds, not one seed's house run.
        over = f"the same {len(runs)}" if len(house_scores) == len(runs) else f"{len(house_scores)} of the {len(runs)}"
        change = relative_improvement(spread.mean, house_spread.mean, direction)
        lines.append(("house script", f"{house_spread.mean:.4f} over {over} seeds, the mean is "
                      f"{abs(change):.1%} {'better' if change >= 0 else 'worse'}"))  # fmt: skip
        lines.append(("house seeds", f"mean {house_spread.mean:.4f}, std {house_spread.std:.4f} over {house_spread.runs} runs"))
    if lead is not None:
        verdict = "a clear difference" if lead.clear else "within the noise"
        lines.append(("vs house", f"lead {lead.estimate:+.4f}, paired by seed: {verdict}"))
        if lead.low is None or lead.high is None:
            lines.append(("interval", "none (one pair, no per-example scores)"))
        else:
            paired = ", paired per example" if lead.paired else ""
            lines.append(("interval", f"{lead.confidence:.0%}: {lead.low:+.4f} to {lead.high:+.4f}{paired}"))
            # Run k is set against the house run on the same seed: both sides' seed noise is inside.
            lines.append(("covers", f"both scripts' seed noise, over {summary.pairs} seeds run by both"))
    print_fields(console, lines)
