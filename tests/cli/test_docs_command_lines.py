"""Every `trainarena ...` command line that README.md and docs/*.md show, in a shell block or as inline code,
names a command the CLI has, options that command takes and, for an option with a fixed set of values, one
of those values. Users type the docs literally; a renamed command or option must take its docs along.

Positional arguments are not checked: the docs write them as placeholders (NAME_OR_ID, DIR). An inline span
may name an option without its value (`trainarena run --seeds`), as prose does."""

from __future__ import annotations

import re
import shlex
import typing
from enum import Enum
from pathlib import Path

import pytest
import typer

from trainarena.cli import app

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console", "text", ""}  # text and bare blocks show commands too
FENCE = re.compile(r"^\s*```(\S*)")
SHELL_PUNCTUATION = {"|", "||", "&", "&&", ";", "(", ")", "$"}


def _shell_lines(text: str) -> list[str]:
    """The lines of the document's shell blocks, a backslash continuation joined to its line."""
    lines: list[str] = []
    language = None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence:
            language = fence.group(1) if language is None else None
        elif language in SHELL_FENCES:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line.strip()
            else:
                lines.append(line)
    return lines


def _prose(text: str) -> str:
    """The document without its fenced blocks, where inline code spans live."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def _invocations(line: str) -> list[list[str]]:
    """The argument lists after each `trainarena` (or `.venv/bin/trainarena`) program of a shell line."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    tokens = list(lexer)
    found = []
    for index, token in enumerate(tokens):
        if Path(token).name == "trainarena" and (token == "trainarena" or "/" in token):
            arguments = []
            for argument in tokens[index + 1 :]:
                if argument in SHELL_PUNCTUATION or argument.endswith("$"):
                    break
                arguments.append(argument.strip("[]"))  # [--hotkey SS58]: an optional part, written as usage does
            found.append(arguments)
    return found


def documented_command_lines() -> list[tuple[str, list[str], bool]]:
    """(where, arguments, inline) of every command line in the docs."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        name = document.relative_to(REPO).as_posix()
        for line in _shell_lines(text):
            # Output excerpts in text blocks name the program too; a command starts its line (after variables).
            if re.match(r"^\s*(\w+=\S*\s+)*(\S*/)?trainarena\s+[a-z]", line) or "trainarena " in line.split("#")[0]:
                found += [(f"{name}: {line.strip()}", arguments, False) for arguments in _invocations(line)]
        for span in re.findall(r"`((?:\S*/)?trainarena [^`]+)`", _prose(text)):
            span = " ".join(span.split())  # a span folded over two lines
            found += [(f"{name}: `{span}`", arguments, True) for arguments in _invocations(span)]
    return found


def _command_of(arguments: list[str]):  # noqa: ANN202 - typer's own click, which it does not export
    """The (sub)command the arguments name, the names leading to it and the arguments left after them."""
    command = typer.main.get_command(app)
    path, rest = [], list(arguments)
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):  # a group
        context = command.context_class(command)
        sub = command.get_command(context, rest[0])
        assert sub is not None, f"`trainarena {' '.join([*path, rest[0]])}` is no command; there are {command.list_commands(context)}"
        command, path = sub, [*path, rest.pop(0)]
    return command, path, rest


def _dataset_keys(task_type: str) -> set[str]:
    """A task type's `[dataset]` keys, which `task add` takes as flags, as docs/contract.md's table of the
    type lists them (tests/submissions/test_contract_doc.py holds that table to the type's spec)."""
    contract = (REPO / "docs" / "contract.md").read_text(encoding="utf-8")
    start = contract.index(f"### `[dataset]` of `{task_type}` tasks")
    return set(re.findall(r"^\| `([a-z_]+)` \|", contract[start : contract.index("\n### ", start + 1)], flags=re.MULTILINE))


def _choices(option) -> list[str] | None:  # noqa: ANN001 - typer's own click option
    """The values an option takes when they are a fixed set (an Enum or a Literal), else None."""
    kind = getattr(getattr(option, "type_descriptor", None), "annotation", None)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return [member.value for member in kind]
    return list(typing.get_args(kind)) if typing.get_origin(kind) is typing.Literal else None


def check_command_line(arguments: list[str], inline: bool) -> None:
    """Raises AssertionError naming what the CLI does not have."""
    command, path, rest = _command_of(arguments)
    options = {name: param for param in command.params if param.param_type_name == "option"
               for name in (*param.opts, *param.secondary_opts)}  # fmt: skip
    options["--help"] = None
    shown = f"trainarena {' '.join(path)}"
    for index, token in enumerate(rest):
        if not token.startswith("-") or token == "-" or re.fullmatch(r"-\d.*", token):
            continue
        name, _, attached = token.partition("=")
        if name not in options and "--type" in rest and command.context_settings.get("ignore_unknown_options"):  # task add
            task_type = rest[rest.index("--type") + 1]
            key = name.removeprefix("--").replace("-", "_")
            assert key in _dataset_keys(task_type), f"`{shown}`: {task_type} tasks have no dataset key {key} ({name})"
            continue
        assert name in options, f"`{shown}` has no option {name}; it has {sorted(options)}"
        choices = _choices(options[name])
        value = attached or (rest[index + 1] if index + 1 < len(rest) else None)
        if choices is None or (value is None and inline):  # free values, or prose naming the option alone
            continue
        assert value in choices or (value or "").isupper(), f"`{shown} {name}` takes {choices}, not {value!r}"


COMMAND_LINES = documented_command_lines()


def test_the_docs_are_read_for_command_lines() -> None:
    """The extraction finds what it should: a shell block's, a continued line's and an inline span's."""
    where = [where for where, _, _ in COMMAND_LINES]
    assert len(COMMAND_LINES) > 100
    assert any(w.startswith("README.md: .venv/bin/trainarena task add sums --type instruct") and "--pool weekly" in w for w in where)
    assert any(w.startswith("README.md: `trainarena competitor add NAME REPO COMMIT [--hotkey SS58]`") for w in where)
    assert any(arguments[:2] == ["keys", "create"] for _, arguments, _ in COMMAND_LINES)  # inside $( ... | jq ...)


@pytest.mark.parametrize(("where", "arguments", "inline"), COMMAND_LINES, ids=[w for w, _, _ in COMMAND_LINES])
def test_every_documented_command_line_names_what_the_cli_has(where: str, arguments: list[str], inline: bool) -> None:
    check_command_line(arguments, inline)


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [(["tournament", "simulat"], "is no command"), (["task", "add", "--fields", "x"], "has no option --fields"),
     (["weights", "export", "--format", "xml"], "takes"), (["tournament", "create", "--kind=sound"], "takes"),
     (["task", "add", "x", "--type", "dpo", "--field-instruction", "q"], "no dataset key field_instruction")],
)
def test_a_drifted_command_line_is_caught(arguments: list[str], missing: str) -> None:
    with pytest.raises(AssertionError, match=missing):
        check_command_line(arguments, inline=False)
