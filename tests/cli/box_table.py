"""Reads back the box tables the CLI prints (``cli.output.OneLineTable``), checking their shape on the way."""

from __future__ import annotations

LEFT_BORDERS, RIGHT_BORDERS = "┏┃┡│└", "┓┃┩│┘"


def _cells(row: str) -> list[str]:
    return row[1:-1].split(row[0])


def read_table(output: str, width: int, headers: list[str], key: str | None = None, headers_cut: bool = False) -> list[list[str]]:
    """The rows of the one box table in ``output`` (from its top border to its bottom one), each cell
    whole: a cell folded onto continuation lines is joined again (with a space where it wrapped between
    words, with nothing where a word was folded at the column's edge). Checks that every line of the
    table is within ``width`` and closed by its right border (nothing cropped) and that the header is
    one line with every column's name whole (or, ``headers_cut``, its beginning and an ellipsis). A row starts on a line whose ``key`` cell (the first
    column unless told) is filled: a column every row fills, which never folds (an id, a rank)."""
    lines = output.splitlines()
    tops = [i for i, line in enumerate(lines) if line.startswith("┏")]
    assert len(tops) == 1, output
    bottom = next(i for i in range(tops[0], len(lines)) if lines[i].startswith("└"))
    table = lines[tops[0] : bottom + 1]
    assert all(line and line[0] in LEFT_BORDERS for line in table), output
    assert all(len(line) <= width and line[-1] in RIGHT_BORDERS for line in table), output
    header = [line for line in table if line.startswith("┃")]
    assert len(header) == 1, output
    shown = [cell.strip() for cell in _cells(header[0])]
    assert len(shown) == len(headers), output
    for cell, name in zip(shown, headers, strict=True):
        assert cell == name or (headers_cut and cell.endswith("…") and name.startswith(cell[:-1])), output
    key_index = headers.index(key) if key else 0
    rows: list[list[str]] = []
    last_pieces: list[str] = []
    for line in (line for line in table if line.startswith("│")):
        raw = _cells(line)
        assert len(raw) == len(headers), output
        pieces = [cell.strip() for cell in raw]
        if pieces[key_index]:
            rows.append(pieces)
            last_pieces = list(pieces)
            continue
        assert rows, output
        for i, piece in enumerate(pieces):
            if piece:
                folded = len(last_pieces[i]) == len(raw[i]) - 2  # the piece above filled its column
                rows[-1][i] += ("" if folded else " ") + piece
                last_pieces[i] = piece
    return rows
