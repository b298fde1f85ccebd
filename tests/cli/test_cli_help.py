"""Every command's ``--help`` at 80 columns: rewrapped by typer, never broken mid-sentence by a hard
line break in a docstring or a help string (typer's rich mode keeps those)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from trainarena.cli import app

HELP_WIDTH = 80


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command`` (typer's own click types: groups have ``commands``)."""
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(app))


def _blocks(help_text: str) -> list[tuple[bool, list[str]]]:
    """Runs of consecutive non-blank lines of one kind: (True, rows of a panel without its borders) or
    (False, plain text)."""
    blocks: list[tuple[bool, list[str]]] = []
    previous = None
    for line in help_text.splitlines():
        panel = line.startswith("│")
        if not panel and (not line.strip() or line[0] in "╭╰"):
            previous = None
            continue
        if panel != previous:
            blocks.append((panel, []))
        blocks[-1][1].append((line[1:-1] if panel else line).rstrip())
        previous = panel
    return blocks


def _hard_breaks(help_text: str) -> list[str]:
    """Pairs of lines where the second goes on with the first's text at the same column although its first
    word would have fitted on the first line (within the block's widest line): a wrapper never leaves that
    room, a hard newline in the source does."""
    found = []
    for panel, block in _blocks(help_text):
        right_edge = max(len(line) for line in block)
        # In a panel a line at the leftmost column starts a new row (a command), not a continuation.
        row_start = min(len(line) - len(line.lstrip()) for line in block) if panel else -1
        for first, second in zip(block, block[1:], strict=False):
            words = second.split()
            if not words or words[0].startswith("["):  # typer sets [default: ...] apart on purpose
                continue
            column = len(second) - len(second.lstrip())
            new_row = panel and words[0][0] in "-*"  # an option's row, not a wrapped help text
            goes_on = not new_row and row_start < column < len(first) and first[column - 1] == " " and first[column] != " "
            if goes_on and len(first) + 1 + len(words[0]) <= right_edge:
                found.append(f"{first.strip()!r} / {second.strip()!r}")
    return found


def test_every_command_is_checked() -> None:
    assert {("demo",), ("status",), ("run",), ("competitor", "list"), ("runs", "show"), ("runs", "list")} <= set(COMMAND_PATHS)


def test_the_check_finds_a_hard_break() -> None:
    broken = typer.Typer()

    @broken.command()
    def play() -> None:
        """Play a whole small tournament on the CPU with example competitors (honest, crashing, over-budget
        and hostile), and tasks built offline."""

    @broken.command()
    def other() -> None:
        """Another command."""

    text = CliRunner().invoke(broken, ["--help"], env={"COLUMNS": str(HELP_WIDTH)}).output
    assert _hard_breaks(text) and "and hostile" in _hard_breaks(text)[0]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "trainarena")
def test_help_has_no_sentence_broken_by_a_hard_newline(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(HELP_WIDTH)})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= HELP_WIDTH for line in result.output.splitlines())
    assert _hard_breaks(result.output) == []
