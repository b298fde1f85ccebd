"""Reads back the details views the CLI prints (``cli.output.print_fields``), checking their shape."""

from __future__ import annotations

import re

_FIELD = re.compile(r"(\S(?:\S| (?! ))*)( {2,})(\S.*)")  # a key (single spaces inside), a gap, its value


def read_fields(output: str, width: int) -> tuple[dict[str, str], list[str]]:
    """The ``key  value`` fields at the start of ``output``, each value whole, and the lines after them.
    A value wrapped under its column is joined again: with a space where it wrapped between words, with
    nothing where a word was folded at the line's end. Checks that every field's line is within ``width``
    and that each continuation line starts exactly at its value's column (a hanging indent)."""
    lines = output.splitlines()
    fields: dict[str, str] = {}
    column, key, last = 0, "", ""
    for at, line in enumerate(lines):
        if key and line.startswith(" " * column) and line[column:column + 1].strip():
            assert len(line) <= width, output
            piece = line[column:]
            fields[key] += ("" if len(last) == width else " ") + piece
            last = line
            continue
        match = _FIELD.fullmatch(line)
        if not match:
            return fields, lines[at:]
        assert len(line) <= width, output
        key, column, last = match[1], len(match[1]) + len(match[2]), line
        assert key not in fields, output
        fields[key] = match[3]
    return fields, []


def read_block(lines: list[str], width: int) -> tuple[str, list[str], list[str]]:
    """The block (``cli.output.print_block``) at the start of ``lines``: its heading whole again, its body's
    lines without their indent, and the lines after it. The heading is the unindented lines before the
    body, joined as ``read_fields`` joins a value; checks that each of them is within ``width``."""
    at = 0
    heading, last = "", ""
    while at < len(lines) and not lines[at].startswith("  "):
        assert len(lines[at]) <= width, "\n".join(lines)
        heading += ("" if not last or len(last) == width else " ") + lines[at]
        last = lines[at]
        at += 1
    body = []
    while at < len(lines) and lines[at].startswith("  "):
        body.append(lines[at][2:])
        at += 1
    return heading, body, lines[at:]
