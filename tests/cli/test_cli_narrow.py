"""What the CLI prints at 80 columns and at narrow terminals (60, 50): a number is never cut inside it (a
cell of several folds between them), an id or a rank never ends up blank (a free-text column is left out
first, and named under the table), and details views wrap within the width under their value column
with nothing lost."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from box_table import read_table
from cli_store import LONG_NAME, LONG_TOURNAMENT, FinishedStore, build_finished_store, long_named_task
from field_lines import read_block, read_fields
from rich.console import Console
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.cli.output import Col, OneLineTable, print_block, print_reason
from trainarena.cli.results import LEADERBOARD_COLUMNS

WIDTHS = (80, 60, 50)
WIDE = 400  # no value wraps: the reference the narrow output is read against
RUN_HEADERS = ["run", "tournament", "round", "task", "competitor", "result↓", "reason"]
LEFT_OUT = "left out at this width: "


def _squeezed(fields: dict[str, str]) -> dict[str, str]:
    """Each value without its blanks: where a line ends exactly at the width, a reader cannot tell a
    word folded there from one wrapped after it, but every character must be there, in order."""
    return {key: "".join(value.split()) for key, value in fields.items()}


def _invoke(args: list[str], width: int) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def _shown_headers(output: str, headers: list[str]) -> list[str]:
    """The ``headers`` of the columns the table in ``output`` shows (its header cells, read in order),
    checking that the note under it names the ones left out."""
    cells = next(line for line in output.splitlines() if line.startswith("┃"))[1:-1].split("┃")
    remaining = iter(headers)
    shown = [next(header for header in remaining if header.startswith(cell.strip().removesuffix("…"))) for cell in cells]
    left_out = [header for header in headers if header not in shown]
    if left_out:
        assert LEFT_OUT + ", ".join(left_out) in " ".join(output.split()), output  # the note may wrap
    return shown


@pytest.fixture
def long_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FinishedStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_finished_store(tmp_path / "data", tournament=LONG_TOURNAMENT, task_source=long_named_task)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_cell_of_several_numbers_folds_between_them_and_the_rank_stays(width: int) -> None:
    headers = [column.header for column in LEADERBOARD_COLUMNS]
    table = OneLineTable(LEADERBOARD_COLUMNS)
    scores = "2.2276 2.7179 0.5650"
    table.add_row(["1", LONG_NAME, "boss r3", "3/3", scores, "", "0.600"])
    table.add_row(["10", "crasher", "knockout r1", "0/1", "-", "run 4: exited with code 1 after the whole budget", "0.000"])
    console = Console(file=StringIO(), width=width)
    console.print(table)
    output = console.file.getvalue()
    rows = read_table(output, width, _shown_headers(output, headers), headers_cut=True)
    assert [[row[0], row[1], "".join(row[4].split())] for row in rows] == [["1", LONG_NAME, scores.replace(" ", "")],
                                                                           ["10", "crasher", "-"]]  # fmt: skip
    assert all(any(f" {score} " in line for line in output.splitlines()) for score in scores.split())  # each one whole


def test_a_table_too_narrow_for_its_free_text_leaves_it_out_and_says_so() -> None:
    table = OneLineTable([Col("run", justify="right"), Col("competitor", handle=True), Col("reason", shrink_to=8)])
    table.add_row(["12345", LONG_NAME, "exited with code 1"])
    console = Console(file=StringIO(), width=22)
    console.print(table)
    output = console.file.getvalue()
    assert LEFT_OUT + "reason" in " ".join(output.split())
    assert read_table(output, 22, ["run", "competitor"], headers_cut=True) == [["12345", LONG_NAME]]


@pytest.mark.parametrize("width", WIDTHS)
def test_a_block_heading_holding_a_long_path_folds_within_the_width(width: int) -> None:
    heading = f"stderr tail (/srv/trainarena/data/runs/tournament-12/run-345/attempt-2/logs/{LONG_NAME}/stderr.log)"
    console = Console(file=StringIO(), width=width)
    print_block(console, heading, "Traceback (most recent call last):\n  ZeroDivisionError")
    shown, body, rest = read_block(console.file.getvalue().splitlines(), width)
    assert "".join(shown.split()) == "".join(heading.split()) and rest == []
    assert body == ["Traceback (most recent call last):", "  ZeroDivisionError"]  # the text itself keeps its shape


@pytest.mark.parametrize("width", WIDTHS)
def test_a_reason_wraps_within_the_width_and_the_stderr_tail_keeps_its_shape(width: int) -> None:
    """The platform's reason ("artifact: the output directory is empty: write safetensors weights ...",
    130 characters) ran past 80 columns, the terminal carrying it on from column 0 (QA)."""
    summary = ("artifact: the output directory is empty: write safetensors weights into --output-dir (/output) "
               "before exiting; see docs/contract.md")  # fmt: skip
    tail = "  File \"/submission/train.py\", line 3, in <module> raise RuntimeError('a message longer than the narrowest width')"
    console = Console(file=StringIO(), width=width)
    print_reason(console, summary, tail, None)
    heading, body, rest = read_block(console.file.getvalue().splitlines(), width)
    assert heading == "reason" and all(len(line) + 2 <= width for line in body) and len(body) > 1
    assert " ".join(line.strip() for line in body) == summary  # every word, in order, continuations indented
    assert all(line.startswith("  ") for line in body[1:])
    assert read_block(rest, width)[1:] == ([tail], [])  # a traceback's line is never rewrapped


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_list_never_leaves_a_run_id_blank(long_names: FinishedStore, width: int) -> None:
    output = _invoke(["runs", "list"], width)
    runs = json.loads(_invoke(["runs", "list", "--json"], width))
    rows = read_table(output, width, _shown_headers(output, RUN_HEADERS), headers_cut=True)
    assert [[row[0], row[1], row[3], row[4]] for row in rows] == [
        [str(run["run_id"]), run["tournament"], run["task"], run["competitor"]] for run in runs
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_leaderboard_keeps_every_rank(long_names: FinishedStore, width: int) -> None:
    output = _invoke(["tournament", "show", str(long_names.tournament_id)], width)
    headers = ["#", "competitor", "reached", "ok", "scores↓", "failed because", "weight"]
    board = json.loads(_invoke(["tournament", "show", str(long_names.tournament_id), "--json"], width))
    rows = read_table(output[output.index("Leaderboard") :], width, _shown_headers(output, headers), headers_cut=True)
    assert [row[:2] for row in rows] == [["-" if line["rank"] is None else str(line["rank"]), line["competitor"]]
                                         for line in board["leaderboard"]]  # fmt: skip
    assert [row[4] for row in rows] == [" ".join(f"{score:.4f}" for score in line["scores"].values()) or "-"
                                        for line in board["leaderboard"]]  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
def test_details_views_wrap_within_the_width_and_lose_nothing(long_names: FinishedStore, width: int) -> None:
    run_id = json.loads(_invoke(["runs", "list", "--json"], width))[0]["run_id"]
    for args in (["runs", "show", str(run_id)], ["competitor", "show", LONG_NAME],
                 ["tournament", "show", str(long_names.tournament_id)]):  # fmt: skip
        narrow, _ = read_fields(_invoke(args, width), width)
        wide, _ = read_fields(_invoke(args, WIDE), WIDE)
        assert _squeezed(narrow) == _squeezed(wide) and len(narrow) >= 3


@pytest.mark.parametrize("width", WIDTHS)
def test_status_and_champions_fit_the_width(long_names: FinishedStore, width: int) -> None:
    status = _invoke(["status"], width)
    assert all(len(line) <= width for line in status.splitlines()), status
    first = status[: status.index("Tournaments")]
    assert "".join(first.split()) == "".join(_invoke(["status"], WIDE).splitlines()[0].split())
    champions = _invoke(["champions"], width)
    assert all(len(line) <= width for line in champions.splitlines()), champions
    code = champions[champions.index("its code") :].split("\n", 1)[1]
    wide = _invoke(["champions"], WIDE).split("its code\n", 1)[1]
    assert _squeezed(read_fields(code, width)[0]) == _squeezed(read_fields(wide, WIDE)[0])
