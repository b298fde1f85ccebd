"""What `status`, `competitor list | show`, `run` and the demo's bracket, leaderboard and progress print at
80 and 120 columns: names whole in tables (folded onto continuation lines where they do not fit), long
free text cut with an ellipsis instead of wrapping word by word, no column dropped or cropped, and
details views with every value whole."""

from __future__ import annotations

import math
import re
from io import StringIO
from pathlib import Path

import pytest
from box_table import read_table
from cli_store import COMPETITORS, CRASH_REASON, CRASH_TAIL, LONG_NAME, LONG_URL, FinishedStore
from field_lines import read_fields
from rich.console import Console
from sqlalchemy import event
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.cli import run as run_module
from trainarena.cli.output import Col, fit_columns, fit_widths
from trainarena.cli.results import BRACKET_NAME_WIDTH, LiveProgress, print_bracket, print_leaderboard
from trainarena.contract import RunStatus
from trainarena.engine.model import Stage
from trainarena.operations.history import tournament_detail
from trainarena.reporting.leaderboard import Leaderboard, build_leaderboard
from trainarena.reporting.reasons import short_reason
from trainarena.runs import ProgressEvent, RunReport
from trainarena.settings import Settings
from trainarena.store import load_tournament, open_store, tournament_runs
from trainarena.wording import BETTER_ARROWS

WIDTHS = (80, 120)


def _invoke(args: list[str], width: int, exit_code: int = 0) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == exit_code, result.output
    return result.stdout


def _shown(cell: str, value: str) -> bool:
    """The cell holds the value whole, or its beginning cut with an ellipsis."""
    return cell == value or (cell.endswith("…") and len(cell) > 1 and value.startswith(cell[:-1]))


def _board(finished_store: FinishedStore) -> Leaderboard:
    with open_store(Settings()) as store, store.session() as session:
        return build_leaderboard(session, load_tournament(session, finished_store.tournament_id), finished_store.finished)


def _render(width: int, draw) -> str:
    console = Console(file=StringIO(), width=width)
    draw(console)
    return console.file.getvalue()


def test_fit_widths_shrinks_the_widest_first_never_below_a_floor() -> None:
    assert fit_widths([5, 40, 30], [None, 10, 10], 100) == [5, 40, 30]
    assert fit_widths([5, 40, 30], [None, 10, 10], 55) == [5, 25, 25]
    assert fit_widths([5, 40, 12], [None, 10, 10], 40) == [5, 23, 12]
    assert fit_widths([5, 40, 30], [None, 10, 10], 10) == [5, 10, 10]  # too narrow: the floors hold


def test_fit_columns_cuts_or_leaves_out_free_text_before_it_folds_handles_and_before_an_id_goes() -> None:
    columns = [Col("id"), Col("name", handle=True), Col("reason", shrink_to=10)]
    natural, unbroken = [4, 30, 40], [4, 30, 40]
    # The widths given are the table's: 3 cells of padding and border per column, and one more.
    assert fit_columns(columns, natural, unbroken, 110) == [4, 30, 40]
    assert fit_columns(columns, natural, unbroken, 54) == [4, 30, 10]  # the reason shrinks, the name stays whole
    assert fit_columns(columns, natural, unbroken, 50) == [4, 30, 6]  # to its header, when that keeps the name whole
    assert fit_columns(columns, natural, unbroken, 44) == [4, 30, 0]  # else it gives way, where that keeps the name whole
    assert fit_columns(columns, natural, unbroken, 40) == [4, 16, 10]  # else the name folds; the reason stays readable
    assert fit_columns(columns, natural, unbroken, 28) == [4, 8, 6]  # the name folds at 8, the reason at its header
    assert fit_columns(columns, natural, unbroken, 24) == [4, 13, 0]  # narrower: the reason is left out, not the id
    assert fit_columns(columns, natural, unbroken, 14) == [4, 3, 0]  # the name folds below its header last


def test_fit_columns_leaves_out_as_little_free_text_as_keeps_the_handles_whole() -> None:
    columns = [Col("name", handle=True), Col("repository", shrink_to=14), Col("commit"), Col("types", shrink_to=5)]
    natural = [56, 60, 12, 20]
    assert fit_columns(columns, natural, natural, 100) == [56, 14, 12, 5]  # all fits, the free text at its minimum
    assert fit_columns(columns, natural, natural, 94) == [56, 16, 12, 0]  # the rightmost gives way; the other is readable
    assert fit_columns(columns, natural, natural, 85) == [56, 0, 12, 0]  # then the next
    assert fit_columns(columns, natural, natural, 74) == [30, 14, 12, 5]  # where nothing keeps the name whole, it folds
    # free text gives way to a handle only: a table of short values folds them before it leaves out its text
    assert fit_columns([Col("what was checked", shrink_to=24), Col("items")], [40, 30], [40, 10], 40) == [16, 17]


def test_an_optional_column_is_shown_whole_or_left_out_before_anything_folds() -> None:
    """A timestamp was cut ("12-02 …") or kept its width while the handles beside it folded."""
    columns = [Col("id", handle=True), Col("name", handle=True), Col("score"), Col("created", optional=True)]
    natural, unbroken = [20, 30, 12, 11], [20, 30, 5, 7]
    assert fit_columns(columns, natural, unbroken, 86) == [20, 30, 12, 11]  # it all fits
    assert fit_columns(columns, natural, unbroken, 85) == [20, 30, 12, 0]  # one cell short: left out, not cut
    assert fit_columns(columns, natural, unbroken, 60) == [19, 19, 12, 0]  # out before the handles fold
    with pytest.raises(ValueError, match="shown whole or left out"):
        Col("created", optional=True, shrink_to=5)


def test_fit_columns_folds_numbers_between_them_never_inside_one() -> None:
    columns = [Col("#"), Col("name", handle=True), Col("scores")]
    natural, unbroken = [2, 20, 13], [2, 20, 6]  # scores such as "2.2276 2.7179"
    assert fit_columns(columns, natural, unbroken, 40) == [2, 15, 13]  # the name folds first
    assert fit_columns(columns, natural, unbroken, 30) == [2, 9, 9]  # then the scores, between numbers
    assert fit_columns(columns, natural, unbroken, 25) == [2, 6, 6]  # no narrower than a number while a name can fold
    with pytest.raises(ValueError, match="a handle is never cut"):
        Col("name", shrink_to=8, handle=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_status_keeps_the_champion_and_where_whole_and_cuts_or_leaves_out_the_outcome(finished_store: FinishedStore, width: int) -> None:
    output = _invoke(["status"], width)
    headers = ["id", "name", "kind", "status", "where", "runs", "champion", "outcome"]
    if width == 120:  # leaving the outcome out keeps the long champion on one line: it gives way
        headers.remove("outcome")
        assert "left out at this width: outcome" in output
    (row,) = read_table(output, width, headers)
    assert row[1:5] == ["week-1", "text", "finished", "round 1 (knockout)"]  # where it stands, whole (folded at 80)
    assert row[6] == LONG_NAME  # `competitor show NAME` takes it
    if width == 80:  # the champion folds whatever is left out: the outcome keeps its readable minimum
        assert _shown(row[7], finished_store.finished.reason) and row[7].endswith("…")


@pytest.mark.parametrize("width", WIDTHS)
def test_competitor_list_keeps_names_whole_and_cuts_the_repository_at_its_start(finished_store: FinishedStore, width: int) -> None:
    output = _invoke(["competitor", "list"], width)
    headers = ["name", "repository", "commit", "entrypoint", "types", "registered"]
    if width == 120:  # leaving out the rightmost free text (entrypoint) leaves the name room on one line: it gives way
        headers.remove("entrypoint")
        assert "left out at this width: entrypoint" in output
        assert any(line.startswith(f"│ {LONG_NAME} │") for line in output.splitlines())
    else:  # the day of registration (in `competitor show`) gives way before the name folds further
        headers.remove("registered")
        assert "left out at this width: registered" in output
    rows = [dict(zip(headers, row, strict=True)) for row in read_table(output, width, headers, key="commit")]
    long_row = rows[0]
    assert long_row["name"] == LONG_NAME
    # The end of a repository names it (its owner and folder): the start is what is cut.
    assert long_row["repository"].startswith("…") and LONG_URL.endswith(long_row["repository"][1:])
    assert long_row["commit"] == "0" * 12 and long_row["types"] == "all"
    assert [row["name"] for row in rows[1:]] == list(COMPETITORS)[1:]
    assert all(f"https://github.com/x/{row['name']}".endswith(row["repository"].lstrip("…")) for row in rows[1:])


@pytest.mark.parametrize("width", WIDTHS)
def test_competitor_show_prints_every_value_whole(finished_store: FinishedStore, width: int) -> None:
    fields, after = read_fields(_invoke(["competitor", "show", LONG_NAME], width), width)
    assert after == []  # nothing but fields, each wrapped within the width under its value column
    assert fields["name"] == LONG_NAME and fields["repo_url"] == LONG_URL and fields["commit"] == "0" * 40


@pytest.mark.parametrize("width", WIDTHS)
def test_leaderboard_keeps_one_line_per_competitor_with_the_failed_run_id(finished_store: FinishedStore, width: int) -> None:
    board = _board(finished_store)
    output = _render(width, lambda console: print_leaderboard(console, board))
    headers = ["#", "competitor", "reached", "ok", "scores↓", "failed because", "weight"]
    rows = {row[1]: row for row in read_table(output, width, headers)}
    assert sorted(rows) == sorted(COMPETITORS)  # every name whole
    assert rows[LONG_NAME][0] == "1" and rows[LONG_NAME][5] == ""
    crasher_run = next(line.run_id for line in board.runs if line.competitor == "crasher")
    assert _shown(rows["crasher"][5], f"run {crasher_run}: {short_reason(CRASH_REASON)}")
    assert rows["crasher"][5].endswith("…")  # the reason is long: cut, not wrapped
    assert "trainarena runs show RUN_ID" in output


def test_a_tournament_read_back_in_full_reads_its_runs_once(finished_store: FinishedStore) -> None:
    """`tournament show` and GET /v1/tournaments/{id}: the leaderboard's run lines come from the record the
    replay loaded (they read the runs and their attempts a second time); in play order, as the store's."""

    def run_reads(read) -> list[str]:  # type: ignore[no-untyped-def]
        """The statements ``read(session)`` runs that read runs or attempts."""
        statements: list[str] = []

        def keep(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:  # type: ignore[no-untyped-def]
            if re.search(r"\bFROM (run|run_attempt)\b", statement):
                statements.append(" ".join(statement.split()))

        with open_store(Settings()) as store, store.session() as session:
            event.listen(store.engine, "before_cursor_execute", keep)
            try:
                read(session)
            finally:
                event.remove(store.engine, "before_cursor_execute", keep)
        return statements

    tournament_id = finished_store.tournament_id
    assert run_reads(lambda session: tournament_detail(session, tournament_id, Settings().rules)) == \
        run_reads(lambda session: load_tournament(session, tournament_id))
    with open_store(Settings()) as store, store.session() as session:
        detail = tournament_detail(session, tournament_id, Settings().rules)
        in_play_order = [(run.id, run.competitor.name) for run in tournament_runs(session, tournament_id)]
    assert [(line.run_id, line.competitor) for line in detail.board.runs] == in_play_order


@pytest.mark.parametrize("width", WIDTHS)
def test_bracket_shows_each_run_with_its_id_and_the_whole_name(finished_store: FinishedStore, width: int) -> None:
    board = _board(finished_store)
    lines = _render(width, lambda console: print_bracket(console, board)).splitlines()
    rounds = {(line.round_index, line.stage) for line in board.runs}
    tasks = {(line.round_index, line.match_id, line.task) for line in board.runs}
    name_width = min(BRACKET_NAME_WIDTH, max(len(name) for name in COMPETITORS))
    run_lines = sum(math.ceil(len(run.competitor) / name_width) for run in board.runs)  # a long name folds
    assert len(lines) == 1 + len(rounds) + len(tasks) + run_lines  # nothing else wrapped
    assert all(len(line) <= width for line in lines)
    for run in board.runs:
        (at,) = [i for i, line in enumerate(lines) if f"run {run.run_id} " in line]
        start = lines[at].index(f"run {run.run_id} ") + len(f"run {run.run_id} ")
        name = lines[at][start : start + name_width].strip()
        for follow in lines[at + 1 :]:
            if not set(follow[:start]) <= set(" │"):  # the next run, task or round
                break
            name += follow[start : start + name_width].strip()
        assert name == run.competitor
        # The bracket has no heading: each score says which way is better.
        expected = f"1.0000{BETTER_ARROWS[run.direction]}" if run.status == "succeeded" else f"{run.status}: {short_reason(run.failure)}"
        assert _shown(lines[at][start + name_width :].strip(), expected)


# What follows a bar's label on its line: the bar, the count, a note (a run's status and score), the time.
_BAR_LINE_END = re.compile(r"\s*[━╸╺]*\s*\d+/\d+\s.*\d+:\d\d:\d\d\s*$")


@pytest.mark.parametrize("width", [*WIDTHS, 60, 40])
def test_live_progress_shows_each_run_s_competitor_and_task_whole(width: int) -> None:
    runs = [(LONG_NAME, "instruction-following-on-a-long-named-dataset-instruct-r1-k001-0"),
            ("overtime", "preference_units_custom-3178"), ("crasher", "instruct-r1-k001-0")]  # fmt: skip

    def play(console: Console) -> None:
        with LiveProgress(console) as progress:
            progress(ProgressEvent("round_created", "t", round_index=0, stage=Stage.KNOCKOUT, runs_total=3))
            for name, task in runs:
                progress(ProgressEvent("run_started", "t", competitor=name, task_name=task, budget_seconds=30))
            progress(ProgressEvent("run_finished", "t", competitor="crasher", task_name=runs[-1][1], status=RunStatus.FAILED))

    lines = _render(width, play).splitlines()
    assert all(len(line) <= width for line in lines)
    # every label whole, in order, folded where it is wider than its column (or than a line of its own)
    labels = "".join(_BAR_LINE_END.sub("", line).strip() for line in lines)
    assert labels.replace(" ", "") == "".join(["round 1 · knockout", *(f"{name} · {task}" for name, task in runs)]).replace(" ", "")
    if width >= 80:  # a line holds each name: none is folded inside it (the labels take lines of their own)
        assert all(any(name in line for line in lines) for run in runs for name in run)
    counts = [line for line in lines if _BAR_LINE_END.search(line)]
    assert len(counts) == 4 and "30/30" in counts[-1] and "failed" in counts[-1]  # no column pushed out
    assert all(" 0/30" in line for line in counts[1:3])


def test_live_progress_keeps_the_round_in_play_and_the_earlier_rounds_bars() -> None:
    def play(console: Console) -> None:
        with LiveProgress(console) as progress:
            for round_index, names in enumerate((["crasher", LONG_NAME], [LONG_NAME])):
                progress(ProgressEvent("round_created", "t", round_index=round_index, stage=Stage.KNOCKOUT, runs_total=len(names)))
                for name in names:
                    progress(ProgressEvent("run_started", "t", competitor=name, task_name=f"task-r{round_index + 1}", budget_seconds=30))
                progress(ProgressEvent("run_finished", "t", competitor=names[0], task_name=f"task-r{round_index + 1}",
                                       status=RunStatus.SUCCEEDED, score=1.25))  # fmt: skip

    text = " ".join(_render(120, play).split())
    # round 1's finished run left the display (the bracket printed after has it), its run in flight stays
    assert "crasher" not in text and f"{LONG_NAME} · task-r1" in text and f"{LONG_NAME} · task-r2" in text
    assert "round 1 · knockout" in text and "round 2 · knockout" in text and "1.2500" in text


def test_live_progress_of_a_resumed_tournament_says_so_and_counts_the_runs_left() -> None:
    """Taken up mid-round, the round's bar read "1/?" (its first run opened it, without a total) and
    nothing said the tournament was resumed, which serve logs."""
    def play(console: Console) -> None:
        with LiveProgress(console) as progress:
            progress(ProgressEvent("resumed", "week-1", tournament_id=2, round_index=0, stage=Stage.KNOCKOUT,
                                   runs_total=1, runs_interrupted=1, cut_short=("lowrank on q1",)))
            progress(ProgressEvent("run_started", "week-1", competitor="lowrank", task_name="q1", budget_seconds=30))
            progress(ProgressEvent("run_finished", "week-1", competitor="lowrank", task_name="q1",
                                   status=RunStatus.SUCCEEDED, score=1.25))

    text = " ".join(_render(80, play).split())
    assert "week-1 (id 2): resumed at knockout round 1: 1 run left, 1 of them cut short and run again (lowrank on q1)" in text
    assert "?" not in text and re.search(r"round 1 · knockout \S* 1/1", text), text


@pytest.mark.parametrize("width", WIDTHS)
def test_run_prints_one_line_per_field_and_the_whole_reason(
    finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, width: int
) -> None:
    class CrashingExecutor:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            pass

        def run_task(self, *_args: object) -> RunReport:
            return RunReport(RunStatus.FAILED, 1.0, 2.5, log_path=tmp_path / "logs", failure_reason=CRASH_REASON)

        def close(self) -> None:
            pass

    monkeypatch.setattr(run_module, "make_executor", CrashingExecutor)
    task = tmp_path / "task.toml"
    task.write_text('name = "arith-1"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 5\n[dataset]\nsource = "x.jsonl"\n'
                    'field_instruction = "q"\nfield_output = "a"\n')
    (tmp_path / "x.jsonl").write_text("".join(f'{{"q": "{n}+1", "a": "{n + 1}"}}\n' for n in range(30)))  # `run` checks it first

    output = _invoke(["run", "--competitor", "crasher", "--task", str(task), "--no-reference"], width, exit_code=1)

    # one field a key, its value wrapped under its column where it is longer than the line (the logs'
    # path is as long as pytest's temporary folder)
    fields, lines = read_fields(output, width)
    assert lines[0] == "reason"
    assert fields["status"] == "failed" and fields["task"].startswith("arith-1 ") and fields["logs"] == str(tmp_path / "logs")
    assert lines[1] == "  exited with code 1."
    assert lines[lines.index("stderr tail") + 1 :] == ["  " + line for line in CRASH_TAIL.splitlines()]
