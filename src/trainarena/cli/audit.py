"""`trainarena audit RUN_ID`: run a stored run again from its signed record and compare the new score
with the recorded one, against the noise band measured for the task type (``records.audit``).

Exit codes: 0 consistent; 1 outside the band, or the audit run failed; 2 the run cannot be audited (no
record, the tree gone, an input changed); 3 a difference with no measured band to judge it by (too
few repeated runs of the task type yet: every audit adds one), which a cron job should not read as a
failure."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.demo import threads_per_run
from trainarena.cli.output import fail, id_argument, print_fields, print_wrapped
from trainarena.cluster import make_executor
from trainarena.execution import SandboxUnavailable
from trainarena.records.audit import AuditReport, CannotAudit, Comparison, NoiseBand, Verdict, audit_run
from trainarena.records.bundle import audit_left_out
from trainarena.runs import RunNotStarted
from trainarena.settings import Settings
from trainarena.store import open_store

CANNOT_AUDIT = 2
EXIT_CODES = {Verdict.CONSISTENT: 0, Verdict.UNJUDGED: 3}  # any other verdict: 1 (see the module docstring)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _difference(comparison: Comparison) -> str:
    if comparison.difference is None:
        return "-"
    if comparison.difference == 0:
        return "none (the same score)"
    relative = "" if comparison.relative is None else f" ({comparison.relative:+.2%})"
    return f"{comparison.difference:+.4f}{relative}, {'better' if comparison.better else 'worse'}"


def _band(band: NoiseBand) -> str:
    """The band in one short line: the quantile of pair differences, and how many runs it came from."""
    if band.relative is None:
        return f"unknown for {band.task_type} tasks ({band.runs} repeated runs, {band.min_runs} needed)"
    groups = "1 tree on 1 task" if band.groups == 1 else f"{band.groups} tree-task groups"
    return f"±{band.relative:.2%} ({band.quantile:.0%} of pair gaps; {band.runs} runs, {groups})"


def _script(submission: dict[str, Any]) -> str:
    if submission.get("kind") == "registered":
        return f"{submission['name']} ({submission['repo']} at {submission['commit'][:12]})"
    commit = f"at {submission['commit'][:12]}" if submission.get("commit") else "not a git commit"
    return f"working tree {submission['path']} ({commit})"


def print_report(console: Console, report: AuditReport) -> None:
    comparison, task = report.comparison, report.task
    verdict = comparison.verdict.value
    if comparison.verdict == Verdict.FAILED:
        verdict += f" ({report.audit_status}: {report.failure_reason or 'no score'})"
    record = report.record
    fields = [
        ("run", f"{report.run_id} (attempt {record.attempt}, log entries {record.run_index} and {record.evaluation_index})"),
        ("script", _script(report.submission)),
        ("task", f"{task.name} ({task.task_type.value}, budget {task.budget_seconds:g} s, seed {task.seed})"),
        ("recorded", f"{_score(comparison.recorded)} ({comparison.direction.value} is better)"),
        ("new", f"{_score(comparison.new)} (run {report.audit_run_id}, `trainarena runs show {report.audit_run_id}`)"),
        ("difference", _difference(comparison)),
        ("noise band", _band(report.band)),
        ("verdict", verdict),
    ]
    print_fields(console, fields)


def audit_command(
    run_id: Annotated[int, id_argument("The run to audit (`trainarena runs list`).")],
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run without a sandbox (only for scripts you trust).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a stored run again from its signed record and compare the new score with the recorded one.

    Exits 0 consistent, 1 outside the noise band or the audit run failed, 2 cannot audit or could not run it, 3 no band yet."""
    console = Console(stderr=json_output, highlight=False)
    settings = threads_per_run(Settings(), 1)  # as `trainarena run`: a run alone gets every core
    with open_store(settings) as store:
        try:
            executor = make_executor(settings, unsafe=unsafe)
        except SandboxUnavailable as error:
            raise fail(str(error), json_output, CANNOT_AUDIT, run_id=run_id) from error
        status = console.status("")
        try:
            with status:
                report = audit_run(settings, store, executor, run_id, say=lambda message: status.update(Text(message)))
        except CannotAudit as error:
            raise fail(f"cannot audit run {run_id}: {error}", json_output, CANNOT_AUDIT, run_id=run_id) from error
        except RunNotStarted as error:  # the platform's (a full disk, no node): nothing ran, nothing is stored
            raise fail(f"cannot audit run {run_id}: {error}", json_output, CANNOT_AUDIT, run_id=run_id) from None
        finally:
            executor.close()
        with store.session() as session:
            left_out = audit_left_out(session, report.audit_run_id)
    if json_output:
        left_out_json = None if left_out is None else left_out.to_json()
        typer.echo(json.dumps({"ok": True, **report.to_json(), "left_out_of_bundle": left_out_json}, indent=2))
    else:
        print_report(Console(highlight=False), report)
    if left_out is not None:  # on stderr with --json: the operator would believe `export` carries it
        print_wrapped(console, f"note: audit run {report.audit_run_id}'s records will not join the bundle of its "
                               f"tournament (`trainarena export`): {left_out.reason}")
    code = EXIT_CODES.get(report.comparison.verdict, 1)
    if code:
        raise typer.Exit(code=code)
