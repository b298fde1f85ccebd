"""Output that reads at any terminal width, 80 columns included.

Tables have three kinds of column. Short values (numbers, statuses, times) keep their width. Handles,
the names and ids a user types back into another command, are never cut: where the handles alone do
not fit, their cells fold onto continuation lines, widest first. Free text (reasons, repositories,
paths) shrinks, widest first, to a readable minimum and is cut there with an ellipsis (at its start
where its end names it, as a repository's last folders do), one line per row; the ``show`` commands
print it whole. Free text gives way before a handle folds: where leaving out free-text columns (the
rightmost first, named under the table) keeps every handle on one line, they are left out; where even that would not, the handles fold and the free text keeps its readable
minimum. A short value holding several numbers folds between them, never inside one. Where a narrow
terminal leaves no room, free-text columns are left out before an id or a rank could be squeezed to
nothing.
Details views (``show`` commands) print ``key  value`` lines with the whole value, wrapped within the
width under the value column, and multi-line text as indented blocks.
Everything a user or a script wrote is printed as plain text, never parsed as rich markup, and with
its control characters escaped (``printable``): a script's stderr (a failure reason, a log tail) must not
move the cursor, erase lines, retitle the window or set the clipboard on the operator's terminal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.table import Table
from rich.text import Text

from trainarena.contract import SEED_MAX, STORE_INT_MAX
from trainarena.tasks import budget_problem
from trainarena.wording import ScoreColumn

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


# A handle folds at this width (or its header's) before free text gives up its readable minimum, and
# before a free-text column is left out.
HANDLE_FOLD_WIDTH = 8
# A details view's values narrower than this go on the lines below their key instead of beside it.
MIN_VALUE_WIDTH = 20


@dataclass(frozen=True)
class Col:
    """A column of a ``OneLineTable``: a short value (the default), a handle, or free text (``shrink_to``)."""

    header: str
    shrink_to: int | None = None  # free text: shrinks, cut with an ellipsis, first down to this, then to its header
    justify: JustifyMethod = "left"
    handle: bool = False  # typed back into commands (a name, an id): never cut, folds onto more lines instead
    # A short value read only whole (a timestamp), and found elsewhere too: never cut nor folded; left out
    # (named under the table) before any other column folds or is cut to keep it.
    optional: bool = False
    # Free text whose end says the most (a path's last folder): cut at its start, the ellipsis first.
    keep_end: bool = False

    def __post_init__(self) -> None:
        if self.handle and self.shrink_to is not None:
            raise ValueError(f"column {self.header!r}: a handle is never cut, so it takes no shrink_to")
        if self.optional and (self.handle or self.shrink_to is not None):
            raise ValueError(f"column {self.header!r}: an optional column is shown whole or left out, so it is no handle and takes no shrink_to")
        if self.keep_end and self.shrink_to is None:
            raise ValueError(f"column {self.header!r}: only free text is cut, so keep_end needs a shrink_to")

    def cell(self, value: str | Text) -> Text:
        """``value`` as this column's cell: free text cut with an ellipsis, anything else folded (a short
        value only between its words, such as the scores in "2.2276 2.7179")."""
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


def fit_columns(columns: Sequence[Col], natural: Sequence[int], unbroken: Sequence[int], available: int) -> list[int]:
    """The widths of ``columns`` in a table ``available`` cells wide, borders and padding included; 0 for
    a column left out. ``natural`` is each column's widest cell (header included), ``unbroken`` its
    longest word (header included), the narrowest a short value folds to without splitting a number.

    Short values keep their width; free text shrinks to its ``shrink_to``; where that is not enough, free
    text goes down to its header's width if that lets the handles fit whole. Else free text gives way
    before a handle folds: where leaving out free-text columns, the rightmost first, lets every handle
    and short value keep its whole width, as few as that takes are left out. Only where even that is not
    enough do the handles fold (``_folded_to_fit``), the free text keeping its readable width. Optional
    columns go first, the rightmost first: each is kept only where it and every other column that is no
    free text keep their whole width."""
    optional = [i for i, column in enumerate(columns) if column.optional]
    for count in range(len(optional) + 1):
        out, rest = _rightmost_out(optional, count, len(columns))
        fitted = _fit_shown([columns[i] for i in rest], [natural[i] for i in rest], [unbroken[i] for i in rest], available)
        widths = _with_left_out(fitted, out, len(columns))
        if all(widths[i] >= natural[i] for i in rest if columns[i].shrink_to is None):
            break
    return widths


def _rightmost_out(candidates: list[int], count: int, total: int) -> tuple[set[int], list[int]]:
    """The last ``count`` of ``candidates`` (column indices) left out, and the indices of the rest."""
    out = set(candidates[len(candidates) - count :])
    return out, [i for i in range(total) if i not in out]


def _with_left_out(shown_widths: Sequence[int], out: set[int], total: int) -> list[int]:
    """The widths of the shown columns, in order, spread over all ``total`` with 0 for those left out."""
    shown = iter(shown_widths)
    return [0 if i in out else next(shown) for i in range(total)]


def _fit_shown(columns: Sequence[Col], natural: Sequence[int], unbroken: Sequence[int], available: int) -> list[int]:
    """``fit_columns`` for the columns left once optional ones are out (an optional one here is a short value)."""
    widths = _folded_to_fit(columns, natural, unbroken, available)
    if all(width >= natural[i] for i, width in enumerate(widths) if columns[i].handle):
        return widths
    return _handles_kept_whole(columns, natural, available) or widths


def _free_text_shrunk(columns: Sequence[Col], natural: Sequence[int], content: int) -> tuple[list[int], list[int]]:
    """The widths where only free text shrinks to fit ``content``: down to its ``shrink_to``, and down to
    its header's width (if that is narrower); every other column keeps its natural width."""
    readable = fit_widths(natural, [column.shrink_to for column in columns], content)
    at_header = [None if column.shrink_to is None else min(column.shrink_to, len(column.header)) for column in columns]
    return readable, fit_widths(readable, at_header, content)


def _handles_kept_whole(columns: Sequence[Col], natural: Sequence[int], available: int) -> list[int] | None:
    """The widths with the fewest free-text columns left out (the rightmost first, 0 wide) that let every
    other column keep its natural width, free text shrinking as ``_free_text_shrunk`` does; None where
    leaving out all of it is not enough."""
    free = [i for i, column in enumerate(columns) if column.shrink_to is not None]
    for count in range(1, len(free) + 1):
        out, rest = _rightmost_out(free, count, len(columns))
        content = available - 3 * len(rest) - 1
        widths = next((w for w in _free_text_shrunk([columns[i] for i in rest], [natural[i] for i in rest], content) if sum(w) <= content), None)
        if widths is not None:
            return _with_left_out(widths, out, len(columns))
    return None


def _folded_to_fit(columns: Sequence[Col], natural: Sequence[int], unbroken: Sequence[int], available: int) -> list[int]:
    """``fit_columns``'s widths where the handles must fold: free text shrinks to its ``shrink_to`` (or to
    its header's width, if that lets the handles fit whole), the handles fold, down to
    ``HANDLE_FOLD_WIDTH``, then short values fold between their words. Where even that does not fit,
    free-text columns are left out, the rightmost first, before handles fold further (to one cell at
    the least) or anything is cut: an id or a rank is never squeezed out of its row."""
    content = available - 3 * len(columns) - 1  # one cell of padding either side, a border between and around
    headers = [len(column.header) for column in columns]
    free = [column.shrink_to is not None for column in columns]

    def floors(text: Sequence[int | None], handle: Sequence[int | None], short: Sequence[int | None]) -> list[int | None]:
        return [text[i] if free[i] else handle[i] if column.handle else short[i] for i, column in enumerate(columns)]

    kept = [None] * len(columns)
    handle_folded = [max(header, HANDLE_FOLD_WIDTH) for header in headers]
    readable, narrowest_text = _free_text_shrunk(columns, natural, content)
    handles_folded = fit_widths(readable, floors(kept, handle_folded, kept), content)
    shorts_folded = fit_widths(narrowest_text, floors(kept, handle_folded, unbroken), content)
    for widths in (readable, narrowest_text, handles_folded, shorts_folded):
        if sum(widths) <= content:
            return widths
    if any(free):
        out = max(i for i, is_free in enumerate(free) if is_free)
        rest = [i for i in range(len(columns)) if i != out]
        widths = fit_columns([columns[i] for i in rest], [natural[i] for i in rest], [unbroken[i] for i in rest], available)
        return [*widths[:out], 0, *widths[out:]]
    ones = [1] * len(columns)
    for plan in (floors(ones, headers, unbroken), floors(ones, ones, unbroken)):
        widths = fit_widths(natural, plan, content)
        if sum(widths) <= content:
            return widths
    return fit_widths(natural, ones, content)  # too narrow for whole numbers: fold inside them rather than lose a column


def longest_word(text: Text) -> int:
    """The cells of ``text``'s longest word: the narrowest it wraps to without folding inside a word."""
    return max((cell_len(word) for word in text.plain.split()), default=0)


class OneLineTable:
    """A rich table that cuts only free text, at any width (see the module's docstring): a row is one
    line unless a handle or a short value has to fold.

    rich itself would shrink wrapping columns to nothing and then crop the table's right side, which is
    how a column silently disappears or an id goes blank; here the widths are fitted first
    (``fit_columns``) and fixed, and a free-text column left out is named under the table."""

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
        headers = [one_line(column.header) for column in self.columns]
        natural = [max(cell.cell_len for cell in [header, *(row[i] for row in self.rows)]) for i, header in enumerate(headers)]
        unbroken = [max([header.cell_len, *(longest_word(row[i]) for row in self.rows)]) for i, header in enumerate(headers)]
        widths = fit_columns(self.columns, natural, unbroken, options.max_width)
        shown = [i for i, width in enumerate(widths) if width]
        left_out = [self.columns[i].header for i, width in enumerate(widths) if not width]
        # A title names things (a tournament, a task): it wraps rather than being cut.
        table = Table(title=None if self.title is None else Text(printable(self.title), style="bold"),
                      caption=Text(f"left out at this width: {', '.join(left_out)}", style="dim") if left_out else None)
        for i in shown:
            column, free = self.columns[i], self.columns[i].shrink_to is not None
            table.add_column(headers[i], justify=column.justify, width=widths[i], no_wrap=free, overflow="ellipsis" if free else "fold")
        for row in self.rows:
            table.add_row(*(_start_cut(row[i], widths[i]) if self.columns[i].keep_end else row[i] for i in shown))
        yield table


def _start_cut(text: Text, width: int) -> Text:
    """``text`` cut to ``width`` cells at its start, an ellipsis in place of what is cut (a ``keep_end`` cell)."""
    if text.cell_len <= width:
        return text
    start = 0
    while start < len(text.plain) and cell_len(text.plain[start:]) > width - 1:
        start += 1
    return Text("…").append_text(text[start:])


def scored_columns(columns: Sequence[Col], label: str, scores: ScoreColumn) -> tuple[Col, ...]:
    """``columns`` with the heading of the score column ``label`` saying which way is better
    (``score↓``), where every row's task type agrees (``ScoreColumn``)."""
    return tuple(replace(column, header=scores.heading(label)) if column.header == label else column for column in columns)


def labelled(label: str, style: str, message: str) -> Text:
    """``label: message`` with the label styled and the message as plain text (it may hold brackets)."""
    return Text.assemble((f"{label}:", style), f" {printable(message)}")


def _wrapped(console: Console, text: Text, width: int) -> list[Text]:
    """``text`` in lines of at most ``width`` cells, broken between words, or anywhere in a word longer
    than a line (a path, a URL): nothing is cut."""
    lines = [line.copy() for line in text.wrap(console, max(width, 1), overflow="fold", no_wrap=False)]
    for line in lines:
        line.rstrip()
    return lines or [Text()]


def print_wrapped(console: Console, text: str | Text, indent: str = "", hanging: str = BLOCK_INDENT) -> None:
    """``text`` (a sentence, a hint) wrapped at the console's width, its first line indented by ``indent``
    and the lines it continues on by ``indent + hanging``, so that they read as one item."""
    body = text if isinstance(text, Text) else Text(printable(text))
    lines = _wrapped(console, body, console.width - len(indent) - len(hanging))
    for number, line in enumerate(lines):
        console.print(Text(indent if number == 0 else indent + hanging) + line, soft_wrap=True)


def print_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    """``key  value`` lines, keys aligned; a long value wraps within the console's width under its own
    column (a hanging indent), never cut, since a details view is where the whole value is read or
    copied from. Where the keys leave a value too little room, each value goes under its key."""
    width = max((len(key) for key, _ in fields), default=0) + FIELD_GAP
    beside = console.width - width >= MIN_VALUE_WIDTH
    indent = " " * width if beside else BLOCK_INDENT
    for key, value in fields:
        lines = _wrapped(console, Text(printable(" ".join(value.splitlines()))), console.width - len(indent))
        if beside:
            first = Text(key.ljust(width), style="bold") + lines.pop(0)
            first.rstrip()  # an empty value leaves no trailing blanks
            console.print(first, soft_wrap=True)
        else:
            console.print(Text(key, style="bold"), soft_wrap=True)
        for line in lines:
            console.print(Text(indent) + line, soft_wrap=True)


def print_block(console: Console, heading: str, text: str) -> None:
    """A heading, wrapped within the console's width (a path in it, a run's log file, folds: nothing is
    cut), then ``text`` line by line, indented and never rewrapped (tracebacks keep their shape)."""
    for line in _wrapped(console, Text(printable(heading), style="bold"), console.width):
        console.print(line, soft_wrap=True)
    for line in text.splitlines():
        console.print(Text(BLOCK_INDENT + printable(line)), soft_wrap=True)


def print_reason(console: Console, summary: str, stderr_tail: str | None, tail_from: str | None) -> None:
    """A failed run's whole reason: the platform's summary, its sentences wrapped within the width, then
    the script's stderr tail, which keeps its shape."""
    if summary:
        print_block(console, "reason", "")
        for line in summary.splitlines():
            print_wrapped(console, line, indent=BLOCK_INDENT)
    if stderr_tail:
        print_block(console, f"stderr tail ({tail_from})" if tail_from else "stderr tail", stderr_tail)


def seconds_text(value: object) -> str:
    """A duration read back from the store (``"60 s"``), whatever it holds: a stored row written before a
    check refused it (an infinite budget kept as a string, a null) must not break a listing."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g} s"
    return f"{value} s" if isinstance(value, str) else "-"


def fail(message: str, json_output: bool = False, code: int = 1, **context: object) -> typer.Exit:
    """The error a command ends with: on stderr as text, or as ``{"ok": false, ...context, "error": ...}``
    on stdout when the command was asked for JSON; returned for the caller to raise."""
    if json_output:
        typer.echo(json.dumps({"ok": False, **context, "error": message}))
    else:
        Console(stderr=True).print(labelled("error", "red", message), highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def check_path(path: Path, option: str, *, folder: bool, must_exist: bool = True, json_output: bool = False,
               **context: object) -> None:
    """Raise ``fail`` (exit 2) with ``--option PATH: what is wrong`` where ``path`` is not the folder (or
    file) the option takes. Commands check their paths here rather than through typer's ``exists`` /
    ``file_okay`` / ``dir_okay``, which end with a usage box instead of the one line naming the path;
    ``must_exist=False`` for a path the command will write (only the wrong kind is refused)."""
    if path.exists() and path.is_dir() != folder:
        wrong = "a file, not a folder" if folder else "a folder, not a file"
    elif not path.exists() and must_exist:
        wrong = "no such folder" if folder else "no such file"
    else:
        return
    raise fail(f"{option} {path}: {wrong}", json_output, code=2, **context)


def budget_seconds_option(value: float | None) -> float | None:
    """typer callback of a ``--budget`` option: seconds a run can keep to, within the settings' bounds
    (``tasks.budget_problem``). typer's ``min`` lets inf through (and takes nan as out of range only by
    accident), and either gives a run no deadline."""
    if value is None or (problem := budget_problem(value)) is None:
        return value
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a finite number of seconds above 0, got {value:g}")
    raise typer.BadParameter(problem.replace("budget_seconds must be", "must be", 1))


# The largest count a command line takes (a --limit, a --tail): Python's sizes are 64-bit signed, and a
# larger one is an OverflowError traceback (from a deque's maxlen). Ids stop at the store's
# STORE_INT_MAX: past it PostgreSQL refuses the query itself, where a smaller unknown id gets "no run N".
WHOLE_MAX = 2**63 - 1


def _whole_in_range(least: int, most: int, what: str) -> Any:
    """A typer callback refusing a number outside ``least..most`` (a callback rather than typer's
    ``min``/``max``, whose range would fill every help line with its digits)."""

    def check(value: int | None) -> int | None:
        if value is not None and not least <= value <= most:
            raise typer.BadParameter(f"{what} from {least} to {most}, got {value}")
        return value

    return check


def id_argument(help: str) -> Any:
    """The typer argument of a stored thing's id (a run, a tournament): 1 to ``STORE_INT_MAX``, any other
    number refused as out of range; within it, an id that names nothing gets the command's "no run N"."""
    return typer.Argument(callback=_whole_in_range(1, STORE_INT_MAX, "an id is a whole number"), help=help)


def id_option(*names: str, help: str) -> Any:
    """``id_argument`` as an option (``--vector N``)."""
    return typer.Option(*names, callback=_whole_in_range(1, STORE_INT_MAX, "an id is a whole number"), help=help)


def count_option(*names: str, help: str, least: int = 1) -> Any:
    """The typer option of a count (``--limit``, ``--tail``): from ``least`` to ``WHOLE_MAX``."""
    return typer.Option(*names, callback=_whole_in_range(least, WHOLE_MAX, "a whole number"), help=help)


def seed_option(*names: str, help: str) -> Any:
    """The typer option of a seed (a task's, a tournament's, a simulation's): 0 to ``SEED_MAX``, as task files,
    the API and `trainarena run` take them (contract.SEED_MAX)."""
    return typer.Option(*names, min=0, max=SEED_MAX, help=help)


def make_output_folder(folder: Path, json_output: bool = False, **context: object) -> None:
    """Create ``folder`` (and the folders above it) for a command to write into, or raise ``fail`` with
    ``cannot create FOLDER: CAUSE``. Every command that writes a folder or file given on its command line
    prepares it here, so none ends with a traceback, and the cause is the real one: a file on the way is
    "Not a directory", where mkdir itself says "File exists" of a file standing at ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        in_the_way = next((part for part in (*reversed(folder.parents), folder) if part.exists() and not part.is_dir()), None)
        cause = error.strerror if in_the_way is None else f"Not a directory ({in_the_way} is a file)"
        raise fail(f"cannot create {folder}: {cause}", json_output, **context) from None


def parse_utc(value: str) -> datetime:
    """An ISO 8601 time given on the command line, UTC when it names no zone; ValueError saying how to
    write one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time; write e.g. 2026-12-07T00:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
