"""Rendering of tournament results and live progress with rich (shared by ``demo`` and ``tournament``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from trainarena.cli.output import Col, OneLineTable, longest_word, one_line, print_wrapped, printable, scored_columns, whole
from trainarena.contract import RunStatus
from trainarena.operations.serving import resumed_text
from trainarena.reporting.leaderboard import Leaderboard, RunLine
from trainarena.reporting.reasons import short_reason
from trainarena.runs import ProgressEvent
from trainarena.wording import BETTER_ARROWS, ScoreColumn

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "timed_out": "yellow", "invalid": "magenta"}
# Widest competitor name in a bracket line before it is cut (the result after it needs the room).
BRACKET_NAME_WIDTH = 24
PROGRESS_BAR_WIDTH = 20  # narrow enough to leave the run's name room at 80 columns
# A run's label is indented this far under its round's, on every line it folds onto (and a bar under
# its label, where the label has a line of its own).
RUN_LABEL_INDENT = 2
# The narrowest a label goes beside its bar; narrower, it has its own line (``_LabelledProgress``).
LABEL_MIN_WIDTH = 24
RUNS_SHOW_HINT = "trainarena runs show RUN_ID"
# The leaderboard's columns: names are whole (folded where they do not fit), scores fold between numbers,
# reasons shrink with an ellipsis.
LEADERBOARD_COLUMNS = (
    Col("#", justify="right"),
    Col("competitor", handle=True),
    Col("reached"),
    Col("ok", justify="right"),
    Col("scores"),  # numbers: folded between them, never cut (a cut score reads as another value)
    Col("failed because", shrink_to=14),
    Col("weight", justify="right"),
)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _run_result(line: RunLine) -> Text:
    """A success's score with its task type's arrow (``0.4200↓``: the bracket has no heading to say
    which way is better, and a tournament's tasks may differ in it), or a failure's status and reason."""
    style = _STATUS_STYLE.get(line.status, "white")
    if line.status == "succeeded":
        detail = f"{_score(line.score)}{BETTER_ARROWS.get(line.direction, '') if line.score is not None else ''}"
    else:
        detail = f"{line.status}: {short_reason(line.failure)}"
    return one_line(detail, style=style)


def _bracket_line(line: RunLine, id_width: int, name_width: int) -> Table:
    """One run on one line: its id, the competitor and its score or reason; a name wider than
    ``name_width`` folds onto more lines (it is what `runs list --competitor` takes), the reason is cut."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=id_width, no_wrap=True, justify="right")
    grid.add_column(width=name_width, overflow="fold")
    grid.add_column(no_wrap=False, overflow="ellipsis")  # takes what is left; the cell is cut, not wrapped
    grid.add_row(one_line(f"run {line.run_id}", style="dim"), whole(line.competitor), _run_result(line))
    return grid


def print_bracket(console: Console, board: Leaderboard) -> None:
    """Every round, match and task with each run's id, competitor and score or failure, one line each,
    then the round's byes (a round of byes alone is shown too)."""
    tree = Tree(whole(f"{board.tournament} ({board.kind})", style="bold"))
    played = [(line.round_index, line.stage) for line in board.runs]
    rounds = {key: tree.add(one_line(f"round {key[0] + 1}: {key[1]}", style="cyan"))
              for key in sorted({*played, *((bye.round_index, bye.stage) for bye in board.byes)})}
    tasks: dict[tuple[int, str, str], Tree] = {}
    id_width = max((len(f"run {line.run_id}") for line in board.runs), default=0)
    name_width = min(BRACKET_NAME_WIDTH, max((len(line.competitor) for line in board.runs), default=0))
    for line in board.runs:
        task_key = (line.round_index, line.match_id, line.task)
        if task_key not in tasks:
            tasks[task_key] = rounds[(line.round_index, line.stage)].add(whole(f"{line.match_id} · task {line.task}"))
        tasks[task_key].add(_bracket_line(line, id_width, name_width))
    for bye in board.byes:
        for name in bye.competitors:
            rounds[(bye.round_index, bye.stage)].add(whole(f"bye: {name} advances without playing"))
    console.print(tree)


def _failure_cell(lines: list[RunLine]) -> str:
    """The latest failed run's one-line reason, with its id (and how many other runs failed)."""
    failed = [line for line in lines if line.failed]
    if not failed:
        return ""
    latest = failed[-1]
    others = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"run {latest.run_id}{others}: {short_reason(latest.failure) or latest.status}"


def print_leaderboard(console: Console, board: Leaderboard) -> None:
    """One line per competitor: rank, how far it got, runs that succeeded, its scores, why it failed
    (the full text: `trainarena runs show RUN`), its weight."""
    directions = {line.task: line.direction for line in board.runs}
    scores = ScoreColumn(directions.values())
    table = OneLineTable(scored_columns(LEADERBOARD_COLUMNS, "scores", scores), title=f"Leaderboard — {board.tournament}")
    for standing in board.standings:
        own = [line for line in board.runs if line.competitor == standing.competitor]
        table.add_row([
            "-" if standing.rank is None else str(standing.rank),
            one_line(standing.competitor, style="bold" if standing.competitor == board.champion else ""),
            standing.reached,
            f"{standing.runs_ok}/{standing.runs}",
            " ".join(scores.cell(_score(score), directions.get(task)) for task, score in standing.scores.items()) or "-",
            _failure_cell(own),
            "-" if standing.weight is None else f"{standing.weight:.3f}",
        ])  # fmt: skip
    console.print(table)
    if any(line.failed for line in board.runs):
        print_wrapped(console, Text(f"a run's whole reason, stderr tail and files: {RUNS_SHOW_HINT}", style="dim"))
    retained = board.champion is not None and board.champion == board.champion_before
    held = "retained the title" if board.defender_reigned else "(the default defender, never crowned: nobody holds the title)"
    verdict = "crowned" if board.crowned else held if retained else ""
    print_wrapped(console, Text(f"Champion: {printable(board.champion or 'none')} {verdict}".rstrip(), style="bold green"))
    if board.reason:
        print_wrapped(console, Text(printable(board.reason), style="dim"))
    if board.undistributed is not None:
        console.print(Text(f"undistributed weight: {board.undistributed:.3f}", style="dim"))


class _LabelColumn(ProgressColumn):
    """A bar's label (the ``label`` field: a round, or a run's competitor and task), in the width the
    other columns leave, folded onto more lines where it is wider: the names in it are what a user types
    back (`task show`, `runs list --competitor`), so they are never cut. A run's label, continuation
    lines included, is indented under its round's."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(ratio=1, overflow="fold"))

    def render(self, task: Task) -> RenderableType:
        return Padding(task.fields["label"], (0, 0, 0, task.fields.get("indent", 0)))


class _LabelledProgress(Progress):
    """A progress display whose first column is a ``_LabelColumn``: beside the bars while that leaves the
    labels ``LABEL_MIN_WIDTH`` cells and their longest name whole on a line, else each label on its own
    lines (the terminal's whole width) with its bar indented under it, so that a name is not folded inside
    it where a line of its own would hold it. There the bar itself is left out where its line would not
    fit: the count says as much."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield _ProgressRows(self, [task for task in self.tasks if task.visible])


class _ProgressRows:
    """The rows of a ``_LabelledProgress``, laid out at the width they are rendered at."""

    def __init__(self, progress: _LabelledProgress, tasks: list[Task]) -> None:
        self.progress, self.tasks = progress, tasks

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        labels, *rest = self.progress.columns
        others = [column for column in rest if isinstance(column, ProgressColumn)]  # no format strings here
        assert isinstance(labels, _LabelColumn) and len(others) == len(rest)
        cells = [[column(task) for column in others] for task in self.tasks]
        widths = [max((Measurement.get(console, options, row[i]).maximum for row in cells), default=0) for i in range(len(others))]
        longest = max((task.fields.get("indent", 0) + longest_word(task.fields["label"]) for task in self.tasks), default=0)
        if options.max_width - sum(widths) - len(widths) >= max(LABEL_MIN_WIDTH, longest):  # one cell between columns
            yield self.progress.make_tasks_table(self.tasks)
            return
        indent = 2 * RUN_LABEL_INDENT  # every bar under a run's label, so that the counts line up
        shown = [i for i, column in enumerate(others) if not isinstance(column, BarColumn)
                 or indent + sum(widths) + len(widths) <= options.max_width]  # fmt: skip
        for task, row in zip(self.tasks, cells, strict=True):
            bar = Table.grid(padding=(0, 1, 0, 0))  # one cell after each column: ``indent`` in all
            bar.add_column(width=indent - 1)
            for i in shown:
                bar.add_column(width=widths[i], no_wrap=True)
            bar.add_row("", *(row[i] for i in shown))
            yield labels(task)
            yield bar


class LiveProgress:
    """A rich progress display fed by the orchestrator's events: one bar for the round, one per active
    run showing its budget being spent (time left = budget - elapsed)."""

    def __init__(self, console: Console) -> None:
        self._progress = _LabelledProgress(
            _LabelColumn(),
            BarColumn(bar_width=PROGRESS_BAR_WIDTH),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}", table_column=Column(no_wrap=True)),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self._round: TaskID | None = None
        self._runs: dict[tuple[str | None, str | None], tuple[TaskID, float, float]] = {}
        self._finished: list[TaskID] = []  # the bars of this round's finished runs
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> LiveProgress:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join(timeout=2)
        if self._progress.live.is_started:
            self._progress.stop()

    def _show(self) -> None:
        """Start the display at the first event, not on entry: stopped on a non-terminal, rich ends it
        with a line of its own, which was an empty line on stdout before anything else (an error
        included) when nothing had been drawn."""
        if not self._progress.live.is_started:
            self._progress.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for task_id, started, budget in self._runs.values():
                    elapsed = time.monotonic() - started
                    self._progress.update(task_id, completed=min(elapsed, budget), note=f"{max(0.0, budget - elapsed):4.0f}s left")

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self._show()
            if event.kind == "resumed":  # said as serve logs it; the bar counts the runs left, not "1/?"
                self._progress.console.print(Text(printable(resumed_text(event)), style="yellow"))
                if not event.runs_total:  # the round is played: the next one opens its own bar
                    return
            # A round's first event opens its bar: made, taken up where a drive left it, or (no resumed
            # event: an earlier driver's) its first run.
            if event.kind in ("round_created", "resumed") or (event.kind == "run_started" and self._round is None):
                # The finished runs of the rounds before leave the display (the bracket printed at the end
                # has them all): it stays within the terminal's height, where rich would cut its bottom.
                for task_id in self._finished:
                    self._progress.update(task_id, visible=False)
                self._finished.clear()
                label = whole(f"round {(event.round_index or 0) + 1} · {event.stage}", style="cyan")
                self._round = self._progress.add_task("", total=event.runs_total, note="", label=label)
            if event.kind == "run_started":
                budget = event.budget_seconds or 0.0
                label = whole(f"{event.competitor or ''} · {event.task_name or ''}")
                task_id = self._progress.add_task("", total=budget or None, note="", label=label, indent=RUN_LABEL_INDENT)
                self._runs[(event.competitor, event.task_name)] = (task_id, time.monotonic(), budget)
            elif event.kind in ("run_interrupted", "run_not_started"):  # tried again at once, under a new bar; or
                entry = self._runs.pop((event.competitor, event.task_name), None)  # no node could hold it
                if entry is not None:
                    note = "[yellow]interrupted[/yellow] tried again" if event.kind == "run_interrupted" else "[red]not started[/red]"
                    self._progress.update(entry[0], note=note)
            elif event.kind == "run_finished":
                entry = self._runs.pop((event.competitor, event.task_name), None)
                if entry is not None:  # a score is a success's note (green); a failure's is its status
                    style = _STATUS_STYLE.get(str(event.status), "white")
                    note = _score(event.score) if event.status == RunStatus.SUCCEEDED and event.score is not None else event.status
                    self._progress.update(entry[0], completed=entry[2], note=f"[{style}]{note}[/{style}]")
                    self._finished.append(entry[0])
                if self._round is not None:
                    self._progress.advance(self._round)
