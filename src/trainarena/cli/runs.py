"""`trainarena runs show | list`: one tournament run in full (its whole failure reason, stderr tail,
files, score and timings), or the runs of the store as one line each."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.named_tournaments import NAME_OR_ID
from trainarena.cli.output import (
    Col,
    OneLineTable,
    count_option,
    fail,
    id_argument,
    print_fields,
    print_reason,
    print_wrapped,
    printable,
    scored_columns,
)
from trainarena.contract import RunStatus
from trainarena.reporting.references import REFERENCE_LABELS
from trainarena.reporting.run_detail import RESULT_TAIL_LINES, RunDetail, UnknownRunError, read_run_detail
from trainarena.reporting.run_list import AD_HOC, RunSummary, list_runs, run_filter_problem
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.driving import Driving
from trainarena.store.models import RunOrigin
from trainarena.store.shown_status import ShownStatus
from trainarena.wording import ScoreColumn

app = typer.Typer(help="Look at runs, in tournaments and ad hoc: one in full (reason, stderr tail, files, score, references, timings), or a list.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
# Lines of the stderr log `runs show` prints unless told otherwise (as many as result.json holds).
DEFAULT_TAIL_LINES = RESULT_TAIL_LINES
# A line per run: the names the filters take are whole (folded where they do not fit), the round a short
# value (folded between its words), the reason shrinks with an ellipsis (`runs show` has it whole). The result is the score of a
# run that succeeded, else its status (`no driver` for a run marked running that is not training): a column of each would
# leave the three names 24 cells at 80.
LIST_COLUMNS = (
    Col("run", justify="right"),
    Col("tournament", handle=True),
    Col("round"),
    Col("task", handle=True),
    Col("competitor", handle=True),
    Col("result", justify="right"),
    Col("reason", shrink_to=8),
)
# The tries of a run that was interrupted and run again; the one that counts is marked. The start time
# is short (the run's fields above have its year and zone) so that it stays whole at 80 columns. Each
# attempt's reason is printed whole under the table (`runs show` shows the run in full).
ATTEMPT_COLUMNS = (
    Col("#", justify="right"),
    Col("status"),
    Col("driver", shrink_to=8),
    Col("started"),
    Col("wall", justify="right"),
    Col("score", justify="right"),
)

# What lists the names each filter of `runs list` takes, for the error of a filter that names none.
FILTER_LISTS = {
    "tournament": "`trainarena status` lists the tournaments",
    "competitor": "`trainarena competitor list` lists the competitors, `trainarena runs list` every name it shows",
    "task": "`trainarena task list --stored` lists the stored tasks, `trainarena runs list` the tasks runs were made on",
}


def _time(moment: datetime | None, form: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    return "-" if moment is None else moment.strftime(form)


def _steps(steps: dict[str, float] | None) -> list[tuple[str, str]]:
    """The platform's seconds per step of the run, when its folder recorded them."""
    return [("steps (s)", ", ".join(f"{name} {seconds:.2f}" for name, seconds in steps.items()))] if steps else []


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _outside(run: RunDetail) -> str:
    """What a run outside tournaments is: a `trainarena run`, an audit's re-run, a reference or a job."""
    if run.origin == RunOrigin.ADHOC:
        return "ad hoc (`trainarena run`)"
    if run.origin == RunOrigin.AUDIT:
        audited = run.audit_of
        return "audit of " + ("a deleted run" if audited is None else f"run {audited} (`trainarena audit {audited}`)")
    if run.origin == RunOrigin.JOB:  # a customer's training, no reference: its task is named after the job
        return f"a customer's training job ({run.task}; `trainarena jobs show {run.task}`)"
    return f"reference: {REFERENCE_LABELS.get(run.origin, run.origin)}"


def _place(run: RunDetail) -> list[tuple[str, str]]:
    if run.tournament is None:
        return [("played", _outside(run))]
    return [("tournament", f"{run.tournament} (id {run.tournament_id})"),
            ("round", f"{run.round} ({run.stage}), match {run.match_id}")]  # fmt: skip


def _driver(driving: Driving | None) -> list[tuple[str, str]]:
    """Who drives the tournament of a running run: none, and the run is not training though it says running."""
    if driving is None:
        return []
    return [("driver", driving.describe() if driving.alive else f"not training: {driving.idle_note()}")]


def _source(run: RunDetail) -> str:
    if run.repo_url is None:
        return run.competitor
    where = run.repo_url if not run.commit else f"{run.repo_url} at {run.commit}"
    state = {True: ", with uncommitted changes", False: ", clean"}.get(run.dirty, "") if run.dirty is not None else ""
    return f"{run.competitor} ({where}{state})"


def _print_detail(console: Console, run: RunDetail) -> None:
    score = run.not_scored or ("-" if run.score is None else f"{run.score:.6f} ({run.direction} is better)")
    references = []
    for line in run.references:
        if line.missing is not None:
            references.append((line.label, line.missing))
            continue
        change = "" if line.improvement is None else f", this run {abs(line.improvement):.1%} {'better' if line.improvement >= 0 else 'worse'}"
        references.append((line.label, f"{line.score:.6f} (run {line.run_id}{change})"))
    task_seed = "" if run.seed is None or run.tournament is not None else f", seed {run.seed}"
    print_fields(
        console,
        [
            ("run", str(run.run_id)),
            *_place(run),
            ("task", f"{run.task} ({run.task_type} on {run.base_model}, budget {_seconds(run.budget_seconds)}{task_seed})"),
            ("competitor", _source(run)),
            *([("snapshot", run.snapshot_path)] if run.snapshot_path else []),
            ("status", run.status),
            *_driver(run.driver),
            ("attempts", str(run.attempts)),
            ("score", score),
            *references,
            ("started", _time(run.started_at)),
            ("finished", _time(run.finished_at)),
            ("wall time", _seconds(run.wall_seconds)),
            *_steps(run.steps),
            ("log path", run.log_path or "-"),
            ("artifact", run.artifact_path or "-"),
            ("artifact digest", run.artifact_digest or "-"),
        ],
    )
    if run.lists_attempts:
        table = OneLineTable(scored_columns(ATTEMPT_COLUMNS, "score", ScoreColumn([run.direction])), title="attempts")
        for line in run.attempt_history:
            score = "-" if line.score is None else f"{line.score:.4f}"
            table.add_row([str(line.number), line.status + (" (counts)" if line.counts else ""), line.driver,
                           _time(line.started_at, "%m-%d %H:%M"), _seconds(line.wall_seconds), score])
        console.print(table)
        print_fields(console, [(f"attempt {line.number}", line.reason) for line in run.attempt_history if line.reason])
    print_reason(console, run.summary, run.stderr_tail, run.stderr_tail_from)


@app.command("show")
def show_command(
    run_id: Annotated[int, id_argument("The run's id, as the bracket, the leaderboard and `runs list` show it.")],
    tail: Annotated[int, count_option("--tail", least=0, help="Lines of the stderr log to print (0: none).")] = DEFAULT_TAIL_LINES,
    as_json: JsonFlag = False,
) -> None:
    """Show one run in full: its whole failure reason, stderr tail, log path, artifact digest, score, timings and every attempt."""
    with open_store(Settings()) as store, store.session() as session:
        try:
            run = read_run_detail(session, run_id, tail_lines=tail, private=True)  # the operator's own machine
        except UnknownRunError as error:
            raise fail(f"{error}; `trainarena runs list` lists the runs", as_json, run_id=run_id) from error
    if as_json:
        typer.echo(json.dumps(run.to_json(), indent=2))
        return
    _print_detail(Console(highlight=False), run)


# The result cell of a run marked running that no driver plays, in place of its status: it is not
# training. A short value, never cut (the reason column is cut first, to "no dr…" at 80 columns); the
# note under the table says it in full (`print_idle_drivers`).
NO_DRIVER = "no driver"


def _result(run: RunSummary) -> str:
    if run.driver is not None and not run.driver.alive:
        return NO_DRIVER
    return f"{run.score:.4f}" if run.status == RunStatus.SUCCEEDED and run.score is not None else run.status


def list_row(run: RunSummary, scores: ScoreColumn) -> list[str]:
    if run.tournament is None:
        audited = "-" if run.audit_of is None else f"of run {run.audit_of}"  # the round column names the audited run
        where, round_text = {RunOrigin.ADHOC: ("ad hoc", "-"), RunOrigin.AUDIT: ("audit", audited)}.get(run.origin, ("reference", "-"))
    else:
        where, round_text = run.tournament, f"r{run.round} {run.stage}"  # cut to its width, the number stays
    return [str(run.run_id), where, round_text, run.task, run.competitor, scores.cell(_result(run), run.direction), run.reason]


def runs_table(runs: list[RunSummary], title: str) -> OneLineTable:
    """``runs`` one line each; the result's heading says which way scores are better (``result↓``), or
    each score does where the runs' task types disagree."""
    scores = ScoreColumn(run.direction for run in runs)
    table = OneLineTable(scored_columns(LIST_COLUMNS, "result", scores), title=title)
    for run in runs:
        table.add_row(list_row(run, scores))
    return table


def print_idle_drivers(console: Console, runs: list[RunSummary]) -> None:
    """Under a list: for each tournament whose runs marked running no driver plays, why and what resumes it."""
    idle = {run.driver.tournament_id: (run.tournament, run.driver) for run in runs if run.driver is not None and not run.driver.alive}
    for name, driving in idle.values():
        print_wrapped(console, Text(printable(f"{name}: its runs marked running are not training: {driving.idle_note()}"), style="yellow"))


@app.command("list")
def list_command(
    tournament: Annotated[str | None, typer.Option(help=f"Only the runs of this tournament ({NAME_OR_ID}), or '{AD_HOC}' for those outside tournaments ('reference', 'audit': those alone).")] = None,
    competitor: Annotated[str | None, typer.Option(help="Only the runs of this competitor (its name), working tree ('NAME (tree)', or its path) or reference ('house script', 'base model').")] = None,
    status: Annotated[ShownStatus | None, typer.Option(help="Only runs with this status as listed: cancelled selects the runs a cancelled tournament left unfinished (never pending or running).")] = None,
    task: Annotated[str | None, typer.Option(help="Only the runs of this task (its name, or a prefix of 6 or more characters of its digest).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List runs, one line each: tournament runs in play order, then ad-hoc runs and references; `trainarena runs show RUN_ID` prints one in full."""
    with open_store(Settings()) as store, store.session() as session:
        problem = run_filter_problem(session, tournament=tournament, competitor=competitor, task=task, operator=True)
        if problem is not None:
            raise fail(f"{problem.message} ({FILTER_LISTS[problem.field]})", as_json, **{problem.field: problem.value})
        runs = list_runs(session, tournament=tournament, competitor=competitor, status=None if status is None else status.value, task=task)
    if as_json:
        typer.echo(json.dumps([run.to_json() for run in runs], indent=2))
        return
    if not runs:
        filtered = any(value is not None for value in (tournament, competitor, status, task))
        typer.echo("no runs match the filters" if filtered else "no runs yet; `trainarena run` or `trainarena demo` makes some")
        return
    console = Console()
    console.print(runs_table(runs, "Runs"))
    print_idle_drivers(console, runs)
