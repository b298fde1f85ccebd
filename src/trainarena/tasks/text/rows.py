"""Rows of the text task types (instruct, chat, DPO, GRPO): reading a local file or a Hugging Face
dataset with its size limits, cleaning rows to a spec's columns (dropping rows with an empty required
field, within ``DataRules.max_dropped_fraction``), and writing and reading a prepared split. Every
problem raises :class:`DatasetError` naming the file, the column or the row (1-based, as a person
counts them), never a bare KeyError. Shared by the text plugins, so none of them imports another."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError, DroppedRows, PreparedTask, describe_dropped
from trainarena.tasks.text.hub_rows import read_hub_rows
from trainarena.wording import counted

log = logging.getLogger(__name__)
Row = dict[str, str]
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
TRAIN_FILE = "train.jsonl"
HIDDEN_FILE = "hidden.jsonl"
SPEC_FILE = "dataset_spec.json"


class SourceSpec(Protocol):
    """What every text dataset spec names: a local file or a hub id, and the hub split."""

    source: str
    split: str


def load_rows(spec: SourceSpec, rules: DataRules) -> list[dict[str, Any]]:
    """Raw rows of the source (a local file when the path exists or looks like one, else a hub dataset):
    refused when there are none or when a row or a text field is over the size limits."""
    path = Path(spec.source)
    local = path.exists() or path.suffix.lower() in FILE_SUFFIXES
    rows = (_read_saved(path, spec.split) if path.is_dir() else _read_file(path)) if local else read_hub_rows(spec.source, spec.split)
    if not rows:
        raise DatasetError(f"{spec.source}: the {'file' if local else 'dataset'} is empty (no rows)")
    for number, row in enumerate(rows, start=1):
        check_row_size(spec.source, number, row, rules)
    return rows


def check_row_size(source: str, number: int, row: dict[str, Any], rules: DataRules) -> None:
    """Each text value within ``max_field_bytes`` and the whole row (as JSON) within ``max_row_bytes``."""
    for column, value in row.items():
        if isinstance(value, str):
            check_text_size(f"{source}: row {number}, column '{column}'", value, rules)
    size = len(json.dumps(row, ensure_ascii=False, default=str).encode())
    if size > rules.max_row_bytes:
        raise DatasetError(
            f"{source}: row {number} is {size:,} bytes, over the limit of {rules.max_row_bytes:,} bytes per row "
            "(data.max_row_bytes); shorten it or leave it out"
        )


def check_text_size(where: str, text: str, rules: DataRules) -> None:
    size = len(text.encode())
    if size > rules.max_field_bytes:
        raise DatasetError(
            f"{where} is {size:,} bytes, over the limit of {rules.max_field_bytes:,} bytes per field "
            "(data.max_field_bytes); shorten it or leave the row out"
        )


def text_problem(row: dict[str, Any], column: str) -> str | None:
    """Why a required text field is unusable, or None: missing (the key is absent), null, or empty (only whitespace)."""
    if column not in row:
        return f"column '{column}' is missing"
    value = row[column]
    if value is None:
        return f"column '{column}' is null"
    if isinstance(value, str) and not value.strip():
        return f"column '{column}' is empty"
    return None


def write_jsonl(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_split(
    train: list[Row],
    hidden: list[Row],
    script_spec: dict[str, Any],
    train_dir: Path,
    hidden_dir: Path,
    dropped: tuple[DroppedRows, ...] = (),
) -> PreparedTask:
    """Write a text task's split: train rows and the script's spec beside them, hidden rows apart."""
    train_file, hidden_file = Path(train_dir) / TRAIN_FILE, Path(hidden_dir) / HIDDEN_FILE
    write_jsonl(train, train_file)
    write_jsonl(hidden, hidden_file)
    (Path(train_dir) / SPEC_FILE).write_text(json.dumps(script_spec, indent=2, sort_keys=True))
    return PreparedTask(train_file, script_spec, hidden_file, len(train), len(hidden), dropped)


def written_keys(prepared: PreparedTask, group_key: Callable[[dict[str, Any]], str]) -> tuple[list[str], list[str]]:
    """The group key of every row of a written text split: ``(train keys, hidden keys)``."""
    return [group_key(row) for row in read_jsonl(prepared.train_file)], [group_key(row) for row in read_jsonl(prepared.hidden_file)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _number, row in parse_jsonl(str(path), Path(path).read_bytes())]


def _json_loads(text: str, where: str) -> Any:
    """``json.loads``, but a number longer than Python converts (``sys.get_int_max_str_digits``), or
    arrays and objects nested past Python's recursion limit (a RecursionError: an upload's 500), are a
    DatasetError in plain words, where Python's ValueError told the customer to call a Python function."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise DatasetError(f"{where} holds arrays or objects nested deeper than a dataset's values may be") from None
    except ValueError:  # the only other ValueError json.loads raises: the integer digits limit
        raise DatasetError(f"{where} holds a number of more than {sys.get_int_max_str_digits()} digits, longer than a "
                           "dataset's numbers may be; write it in quotes if it is text") from None


def parse_jsonl(where: str, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line of UTF-8 JSON Lines; errors name ``where`` and the line."""
    rows = []
    for number, line in enumerate(decode_text(where, data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = _json_loads(line, f"{where}: line {number}")
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: line {number} is a {type(row).__name__}, not a JSON object")
        rows.append((number, row))
    return rows


def read_csv(where: str, data: bytes) -> list[dict[str, Any]]:
    """Rows of UTF-8 CSV with a header line, blank lines skipped. A row with more or fewer fields than
    the header is refused, naming its line: csv.DictReader would file extra fields under a column named
    None and fill missing ones with None, which reads as a null the file does not have. A header naming
    a column twice is refused: the later column would silently replace the earlier one."""
    reader = csv.reader(io.StringIO(decode_text(where, data), newline=""))
    header = next(reader, [])
    repeated = next((column for column in header if header.count(column) > 1), None)
    if repeated is not None:  # dict(zip(...)) would keep the last column of the name and drop the others
        times = header.count(repeated)
        raise DatasetError(f"{where}: line 1 names column {repeated!r} {'twice' if times == 2 else f'{times} times'}; "
                           "give each column its own name")
    rows = []
    line = reader.line_num
    try:
        for fields in reader:
            first, line = line + 1, reader.line_num  # a quoted field may span lines: name the row's first
            if not fields:
                continue
            if len(fields) != len(header):
                raise DatasetError(f"{where}: line {first} has {counted(len(fields), 'field')}, the header has {len(header)}")
            rows.append(dict(zip(header, fields, strict=True)))
    except csv.Error as error:  # it was "cannot read the file (Error: field larger than field limit (131072))"
        raise DatasetError(f"{where}: line {line + 1} {_csv_problem(error)}") from None
    return rows


def _csv_problem(error: csv.Error) -> str:
    """What is wrong with a line the csv module refuses, in the words of the other refusals of a row."""
    if "field limit" in str(error):
        return (f"has a field longer than {csv.field_size_limit():,} characters, over the limit per field "
                "(data.max_field_bytes); shorten it or leave the row out")
    return f"is not valid CSV ({error})"


def decode_text(where: str, data: bytes) -> str:
    """UTF-8 text (a leading byte-order mark dropped); an invalid byte is named by line and offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DatasetError(
            f"{where}: line {line} is not valid UTF-8 (byte offset {error.start}: {error.reason}); save the file as UTF-8"
        ) from None


def clean_rows(
    source: str, raw: list[dict[str, Any]], columns: dict[str, str], required: tuple[str, ...], rules: DataRules,
    unusable: Callable[[Row], str | None] | None = None,
) -> tuple[list[Row], tuple[DroppedRows, ...]]:
    """``(rows, dropped)``: rows reduced to ``columns`` (role -> column name) as strings; rows where a
    ``required`` role is absent, null or empty are dropped, within ``rules.max_dropped_fraction``, and
    so are those the task type finds ``unusable`` (it says why, given the cleaned row)."""
    present = set().union(*(row.keys() for row in raw)) if raw else set()
    for role, column in columns.items():
        if column not in present:
            raise DatasetError(f"{source}: missing column '{column}' (field_{role}); columns present: {sorted(present)}")
    rows: list[Row] = []
    dropped: list[tuple[int, str]] = []
    for number, row in enumerate(raw, start=1):
        problem = next(filter(None, (text_problem(row, columns[role]) for role in required)), None)
        if not problem:
            clean = _clean_row(source, number, row, columns)
            problem = unusable(clean) if unusable is not None else None
        if problem:
            dropped.append((number, problem))
        else:
            rows.append(clean)
    return rows, accept_dropped(source, dropped, len(raw), rules)


def accept_dropped(source: str, dropped: list[tuple[int, str]], total: int, rules: DataRules) -> tuple[DroppedRows, ...]:
    """``(row number, reason)`` pairs grouped by reason, after checking that they are few enough:
    more than ``max_dropped_fraction`` of ``total`` rows refuses the dataset, naming the first ones.
    Fewer than ``min_rows`` rows left is refused too."""
    groups = group_dropped(dropped)
    if dropped:  # recorded on the prepared task; the log is for whoever follows along
        log.info("%s: dropped %s: %s", source, counted(len(dropped), "row"), describe_dropped(groups))
    if len(dropped) > rules.max_dropped_fraction * total:
        raise DatasetError(
            f"{source}: {len(dropped)} of {total} rows ({len(dropped) / total:.0%}) are unusable, more than the "
            f"{rules.max_dropped_fraction:.0%} allowed (data.max_dropped_fraction): {describe_dropped(groups)}"
        )
    if total - len(dropped) < rules.min_rows:
        raise DatasetError(
            f"{source}: {counted(total - len(dropped), 'usable row')} ({len(dropped)} dropped), fewer than the minimum of {rules.min_rows}"
        )
    return groups


def group_dropped(dropped: Iterable[tuple[int, str]]) -> tuple[DroppedRows, ...]:
    by_reason: dict[str, list[int]] = {}
    for number, reason in dropped:
        by_reason.setdefault(reason, []).append(number)
    return tuple(DroppedRows(reason, tuple(numbers)) for reason, numbers in by_reason.items())


def _clean_row(source: str, number: int, row: dict[str, Any], columns: dict[str, str]) -> Row:
    clean: Row = {}
    for column in columns.values():
        value = row.get(column)
        if value is None:  # an optional column (required ones were checked): absent or null reads as no text
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DatasetError(f"{source}: row {number}, column '{column}' is a {type(value).__name__} ({value!r:.40}), not text")
        clean[column] = str(value)
    return clean


def _read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DatasetError(f"{path}: unsupported file type '{suffix}'; use one of {', '.join(FILE_SUFFIXES)}")
    try:
        if suffix == ".jsonl":
            return read_jsonl(path)
        if suffix == ".json":
            return _read_json(path)
        if suffix == ".csv":
            return read_csv(str(path), path.read_bytes())
        import pyarrow.parquet as parquet

        return parquet.read_table(path).to_pylist()
    except DatasetError:
        raise
    except (OSError, ValueError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read the file ({type(error).__name__}: {error})") from None


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = _json_loads(decode_text(str(path), path.read_bytes()), str(path))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DatasetError(f"{path}: a .json dataset must be a list of objects")
    return data


def _read_saved(path: Path, split: str) -> list[dict[str, Any]]:
    """A folder written by ``datasets``' ``save_to_disk``: a Dataset, or a DatasetDict read at ``split``."""
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except (OSError, ValueError, FileNotFoundError) as error:
        raise DatasetError(f"{path}: a folder, but not one written by datasets' save_to_disk ({error})") from None
    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DatasetError(f"{path}: the saved dataset has no split {split!r}; splits: {sorted(saved)} (set dataset.split)")
        saved = saved[split]
    return saved.to_list()
