"""What ``trainarena models verify`` is given from files: a model as ``GET /v1/models/{id}`` answers
it, a run's log entry as ``GET /v1/records/entries/{index}`` answers it, and the operator's public key.
They are saved by hand, so they may be cut short, edited or crafted: each is read within a size bound
and checked field by field before anything uses it, and one that is not what the API answers is refused
with a MalformedInput naming the first field that is wrong (never a traceback). A message names a
field by its place (``files[2].sha256``) and its value by its JSON type, never repeating the value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Far above a model's answer or a run's record (kilobytes; more for a run that left many files): a
# bigger file is no saved answer, and is not read into memory whole.
MAX_INPUT_BYTES = 16 * 1024 * 1024

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "true or false", type(None): "null"}  # fmt: skip


class MalformedInput(ValueError):
    """A file given to ``models verify`` that cannot be read as what it should be; the message names
    the field (the caller names the file)."""


def read_text_file(path: Path) -> str:
    """``path``'s UTF-8 text, refused past :data:`MAX_INPUT_BYTES` and when it is no regular file (a
    FIFO would wait for a writer, a device never end)."""
    if not path.is_file():
        raise MalformedInput("is not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as error:
        raise MalformedInput(f"cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise MalformedInput(f"is larger than {MAX_INPUT_BYTES >> 20} MiB, far more than any saved answer of the API")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedInput(f"is not UTF-8 text (byte {error.start})") from None


def read_json_file(path: Path) -> Any:
    """The JSON value in ``path`` (see :func:`read_text_file`)."""
    text = read_text_file(path)
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedInput("is JSON nested too deeply to be an answer of the API") from None
    except ValueError as error:
        raise MalformedInput(f"is not JSON ({error})") from None


def typed(value: Any, where: str, *expected: type) -> Any:
    """``value`` if it is of one of the JSON types ``expected`` (true and false are no integers), and a
    string only of Unicode text (JSON's ``\\ud800`` escape is a lone surrogate, which no terminal prints)."""
    if type(value) not in expected:
        wanted = " or ".join(_JSON_TYPES[kind] for kind in expected)
        raise MalformedInput(f"{where} is {_JSON_TYPES.get(type(value), type(value).__name__)}, not {wanted}")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise MalformedInput(f"{where} holds a lone surrogate (\\u{ord(value[error.start]):04x}), not text") from None
    return value


def member(parent: Mapping[str, Any], where: str, key: str, *expected: type, required: bool = True) -> Any:
    """``parent[key]`` (``where`` names ``parent``; empty at the top), of one of the types ``expected``;
    None when it is absent and not ``required``."""
    name = f"{where}.{key}" if where else key
    if key not in parent:
        if required:
            raise MalformedInput(f"{name} is missing")
        return None
    return typed(parent[key], name, *expected)


def checked_model(value: Any) -> dict[str, Any]:
    """A model as ``GET /v1/models/{id}`` (or ``models show --json``) answers it, with what
    ``registry.download_check`` reads of it checked: ``digest``, every file's ``path`` and ``sha256``
    (``artifact_path`` a string or null), ``run_id``, ``artifact_digest`` and ``score`` (each may be null)."""
    model = typed(value, "the model", dict)
    member(model, "", "digest", str)
    for index, file in enumerate(member(model, "", "files", list)):
        where = f"files[{index}]"
        typed(file, where, dict)
        member(file, where, "path", str)
        member(file, where, "sha256", str)
        member(file, where, "artifact_path", str, type(None), required=False)
    member(model, "", "run_id", int, type(None), required=False)
    member(model, "", "artifact_digest", str, type(None), required=False)
    member(model, "", "score", int, float, type(None), required=False)
    return model


def checked_run_statement(statement: dict[str, Any]) -> dict[str, Any]:
    """A run statement with what ``registry.download_check`` reads of it checked: every subject's
    ``name`` and ``digest.sha256``, ``predicate.run.id``, ``predicate.artifact_sha256`` (may be null)."""
    for index, subject in enumerate(member(statement, "statement", "subject", list)):
        where = f"statement.subject[{index}]"
        typed(subject, where, dict)
        member(subject, where, "name", str)
        member(member(subject, where, "digest", dict), f"{where}.digest", "sha256", str)
    predicate = member(statement, "statement", "predicate", dict)
    member(member(predicate, "statement.predicate", "run", dict), "statement.predicate.run", "id", int)
    member(predicate, "statement.predicate", "artifact_sha256", str, type(None), required=False)
    return statement


def checked_evaluation_statement(statement: dict[str, Any]) -> dict[str, Any]:
    """An evaluation statement with what ``registry.record_claims`` reads of it checked:
    ``predicate.run`` (``id``, ``attempt`` and the ``statement`` reference's ``payload_sha256``) and
    ``predicate.score`` (a number, or null for a failed evaluation)."""
    predicate = member(statement, "statement", "predicate", dict)
    run = member(predicate, "statement.predicate", "run", dict)
    member(run, "statement.predicate.run", "id", int)
    member(run, "statement.predicate.run", "attempt", int)
    reference = member(run, "statement.predicate.run", "statement", dict)
    member(reference, "statement.predicate.run.statement", "payload_sha256", str)
    member(predicate, "statement.predicate", "score", int, float, type(None))
    return statement


def checked_tree_head(value: Any) -> dict[str, Any]:
    """A signed tree head as ``GET /v1/records/tree-head`` answers it (or its bare envelope): the envelope."""
    head = typed(value, "the tree head", dict)
    return typed(head.get("envelope", head), "envelope", dict)
