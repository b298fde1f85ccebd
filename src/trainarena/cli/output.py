"""Output that reads at any terminal width, 80 columns included.

Tables have three kinds of column. Short values (numbers, statuses, times) keep their width. Handles,
the names and ids a user types back into another command, are never cut: where the handles alone do
not fit, their cells fold onto continuation lines, widest first. Free text (reasons, repositories,
paths) shrinks, widest first, to a readable minimum and is cut there with an ellipsis, one line per
row; the ``show`` commands print it whole. No column disappears.
Details views (``show`` commands) print one ``key  value`` line per field with the whole value, and
multi-line text as indented blocks.
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
    return Text(printable(_joined(value)), style=style, no_wrap=True, overflow="ellipsis")


def whole(value: str | None, style: str = "") -> Text:
    """A handle's cell (a name, an id): one line where it fits, else folded onto more lines, never cut."""
    return Text(printable(_joined(value)), style=style, no_wrap=False, overflow="fold")


def _joined(value: str | None) -> str:
    return " ".join(part.strip() for part in (value or "").splitlines() if part.strip())


# A handle folds at this width (or its header's) before free text gives up its readable minimum.
HANDLE_FOLD_WIDTH = 8


@dataclass(frozen=True)
class Col:
    """A column of a ``OneLineTable``: a short value (the default), a handle, or free text (``shrink_to``)."""

    header: str
    shrink_to: int | None = None  # free text: shrinks, cut with an ellipsis, first down to this, then to its header
    justify: JustifyMethod = "left"
    handle: bool = False  # typed back into commands (a name, an id): never cut, folds onto more lines instead

    def __post_init__(self) -> None:
        if self.handle and self.shrink_to is not None:
            raise ValueError(f"column {self.header!r}: a handle is never cut, so it takes no shrink_to")

    def cell(self, value: str | Text) -> Text:
        """``value`` as this column's cell: free text cut with an ellipsis, anything else folded (a short
        value only folds where even the headers do not fit)."""
        free = self.shrink_to is not None
        if not isinstance(value, Text):
            return one_line(value) if free else whole(value)
        text = value.copy()
        text.no_wrap, text.overflow = (True, "ellipsis") if free else (False, "fold")
        return text


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


def fit_columns(columns: Sequence[Col], natural: Sequence[int], available: int) -> list[int]:
    """The widths of ``columns`` at ``available`` cells. Short values keep theirs; free text shrinks to its
    ``shrink_to``; where that is not enough, free text goes down to its header's width if that lets the
    handles fit whole, else the handles fold, down to ``HANDLE_FOLD_WIDTH`` (free text keeping its
    ``shrink_to``), then everything down to its header's width."""
    headers = [len(column.header) for column in columns]
    text_floors = [column.shrink_to for column in columns]
    text_at_header = [None if floor is None else min(floor, header) for floor, header in zip(text_floors, headers, strict=True)]
    handle_at_header = [header if column.handle else None for column, header in zip(columns, headers, strict=True)]
    handle_folded = [None if header is None else max(header, HANDLE_FOLD_WIDTH) for header in handle_at_header]

    readable = fit_widths(natural, text_floors, available)
    if sum(readable) <= available:
        return readable
    narrowest_text = fit_widths(readable, text_at_header, available)
    if sum(narrowest_text) <= available:
        return narrowest_text
    folded = fit_widths(readable, handle_folded, available)
    return folded if sum(folded) <= available else fit_widths(narrowest_text, handle_at_header, available)


class OneLineTable:
    """A rich table that cuts only free text, at any width (see the module's docstring): a row is one
    line unless a handle has to fold.

    rich itself would shrink wrapping columns to nothing and then crop the table's right side, which is
    how a column silently disappears; here the widths are fitted first (``fit_columns``) and fixed."""

    def __init__(self, columns: Sequence[Col], title: str | None = None) -> None:
        self.columns = tuple(columns)
        self.title = title
        self.rows: list[list[Text]] = []

    def add_row(self, cells: Iterable[str | Text]) -> None:
        values = list(cells)
        if len(values) != len(self.columns):
            raise ValueError(f"a row of {len(values)} cells in a table of {len(self.columns)} columns")
        self.rows.append([column.cell(value) for column, value in zip(self.columns, values, strict=True)])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # A title names things (a tournament, a task): it wraps rather than being cut.
        table = Table(title=None if self.title is None else Text(printable(self.title), style="bold"))
        # Each column costs one cell of padding on either side, plus a border between and around columns.
        available = options.max_width - 3 * len(self.columns) - 1
        headers = [one_line(column.header) for column in self.columns]
        natural = [max(cell.cell_len for cell in [header, *(row[i] for row in self.rows)]) for i, header in enumerate(headers)]
        widths = fit_columns(self.columns, natural, available)
        for column, header, width in zip(self.columns, headers, widths, strict=True):
            free = column.shrink_to is not None
            table.add_column(header, justify=column.justify, width=width, no_wrap=free, overflow="ellipsis" if free else "fold")
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
