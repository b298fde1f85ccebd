"""Output that reads at any terminal width, 80 columns included.

Tables keep one line per row: every cell is cut with an ellipsis instead of wrapping; short columns
(ids, statuses, numbers) keep their width; long ones (names, URLs, reasons) shrink, widest first, but
never below a readable minimum, so no column disappears. Details views (``show`` commands) print one
``key  value`` line per field with the whole value, and multi-line text as indented blocks.
Everything a user or a script wrote is printed as plain text, never parsed as rich markup, and with
its control characters escaped (``printable``): a script's stderr (a failure reason, a log tail) must not
move the cursor, erase lines, retitle the window or set the clipboard on the operator's terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import typer
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.table import Table
from rich.text import Text

# Gap between a details view's keys and values.
FIELD_GAP = 2
# Indentation of a details view's text blocks (a reason, a stderr tail).
BLOCK_INDENT = "  "


# C0 controls but tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with each control character written as a visible ``\\xNN`` escape (tab and newline kept),
    so that no escape sequence in it reaches the terminal. Every helper here prints text through it."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def one_line(value: str | None, style: str = "") -> Text:
    """A cell that never wraps: a multi-line value is joined into one line, and the cell is cut with an
    ellipsis where its column is narrower than the value."""
    joined = " ".join(part.strip() for part in (value or "").splitlines() if part.strip())
    return Text(printable(joined), style=style, no_wrap=True, overflow="ellipsis")


@dataclass(frozen=True)
class Col:
    """A column of a ``OneLineTable``."""

    header: str
    shrink_to: int | None = None  # None: always as wide as its widest cell; else shrinks, not below this
    justify: JustifyMethod = "left"


def fit_widths(natural: Sequence[int], floors: Sequence[int | None], available: int) -> list[int]:
    """Column widths that fit ``available``: fixed columns (floor None) keep their natural width; the
    others are cut down to a common level, widest first, but never below their floor (nor their own
    natural width). Where even the floors do not fit, the floors are returned."""
    def at_level(level: int) -> list[int]:
        return [width if floor is None else min(width, max(floor, level)) for width, floor in zip(natural, floors, strict=True)]

    level = max(natural, default=0)
    while level > 0 and sum(at_level(level)) > available:
        level -= 1
    return at_level(level)


class OneLineTable:
    """A rich table whose rows are one line each at any width (see the module's docstring).

    rich itself would shrink wrapping columns to nothing and then crop the table's right side, which is
    how a column silently disappears; here the widths are fitted first (``fit_widths``) and fixed."""

    def __init__(self, columns: Sequence[Col], title: str | None = None) -> None:
        self.columns = tuple(columns)
        self.title = title
        self.rows: list[list[Text]] = []

    def add_row(self, cells: Iterable[str | Text]) -> None:
        row = [cell if isinstance(cell, Text) else one_line(cell) for cell in cells]
        if len(row) != len(self.columns):
            raise ValueError(f"a row of {len(row)} cells in a table of {len(self.columns)} columns")
        self.rows.append(row)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table(title=None if self.title is None else one_line(self.title, style="bold"))
        # Each column costs one cell of padding on either side, plus a border between and around columns.
        available = options.max_width - 3 * len(self.columns) - 1
        headers = [one_line(column.header) for column in self.columns]
        natural = [max(cell.cell_len for cell in [header, *(row[i] for row in self.rows)]) for i, header in enumerate(headers)]
        widths = fit_widths(natural, [column.shrink_to for column in self.columns], available)
        for column, header, width in zip(self.columns, headers, widths, strict=True):
            table.add_column(header, justify=column.justify, width=width, no_wrap=True, overflow="ellipsis")
        for row in self.rows:
            table.add_row(*row)
        yield table


def labelled(label: str, style: str, message: str) -> Text:
    """``label: message`` with the label styled and the message as plain text (it may hold brackets)."""
    return Text.assemble((f"{label}:", style), f" {printable(message)}")


def print_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    """``key  value`` lines, keys aligned; a long value runs on (the terminal wraps it) rather than
    being cut, since a details view is where the whole value is read or copied from."""
    width = max((len(key) for key, _ in fields), default=0) + FIELD_GAP
    for key, value in fields:
        line = Text(key.ljust(width), style="bold")
        line.append(printable(" ".join(value.splitlines())))
        console.print(line, soft_wrap=True)


def print_block(console: Console, heading: str, text: str) -> None:
    """A heading, then ``text`` line by line, indented and never rewrapped (tracebacks keep their shape)."""
    console.print(Text(heading, style="bold"), soft_wrap=True)
    for line in text.splitlines():
        console.print(Text(BLOCK_INDENT + printable(line)), soft_wrap=True)


def print_reason(console: Console, summary: str, stderr_tail: str | None, tail_from: str | None) -> None:
    """A failed run's whole reason: the platform's summary, then the script's stderr tail."""
    if summary:
        print_block(console, "reason", summary)
    if stderr_tail:
        print_block(console, f"stderr tail ({tail_from})" if tail_from else "stderr tail", stderr_tail)


def fail(message: str, json_output: bool = False, code: int = 1, **context: object) -> typer.Exit:
    """The error a command ends with: on stderr as text, or as ``{"ok": false, ...context, "error": ...}``
    on stdout when the command was asked for JSON; returned for the caller to raise."""
    if json_output:
        typer.echo(json.dumps({"ok": False, **context, "error": message}))
    else:
        Console(stderr=True).print(labelled("error", "red", message), highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def parse_utc(value: str) -> datetime:
    """An ISO 8601 time given on the command line, UTC when it names no zone; ValueError saying how to
    write one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time; write e.g. 2026-12-07T00:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
