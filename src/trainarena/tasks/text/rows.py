"""Rows of the text task types (instruct, chat, DPO, GRPO): reading a local file or a Hugging Face
dataset, the seeded train/hidden split, writing a prepared split, and cleaning rows to a spec's columns.
Every problem raises :class:`DatasetError` naming the file, the column or the row (1-based, as a person
counts them), never a bare KeyError. Shared by the text plugins, so none of them imports another."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path
from typing import Any, Protocol

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError, PreparedTask

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


def load_rows(spec: SourceSpec) -> list[dict[str, Any]]:
    """Raw rows of the source: a local file when the path exists or looks like one, else a hub dataset."""
    path = Path(spec.source)
    if path.exists() or path.suffix.lower() in FILE_SUFFIXES:
        return _read_file(path)
    return _read_hub(spec)


def split_rows(rows: list[Row], rules: DataRules) -> tuple[list[Row], list[Row]]:
    """``(train, hidden)``: a seeded random ``test_fraction`` of rows (capped at ``test_max_rows``) is
    hidden; both keep the source order, so the split depends only on the row count and the seed."""
    hidden_count = min(rules.test_max_rows, max(rules.test_min_rows, round(len(rows) * rules.test_fraction)))
    hidden_count = min(hidden_count, len(rows) - 1)  # always leave something to train on
    order = list(range(len(rows)))
    random.Random(rules.split_seed).shuffle(order)
    hidden = set(order[:hidden_count])
    return (
        [row for i, row in enumerate(rows) if i not in hidden],
        [row for i, row in enumerate(rows) if i in hidden],
    )


def write_jsonl(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_split(train: list[Row], hidden: list[Row], script_spec: dict[str, Any], train_dir: Path, hidden_dir: Path) -> PreparedTask:
    """Write a text task's split: train rows and the script's spec beside them, hidden rows apart."""
    train_file, hidden_file = Path(train_dir) / TRAIN_FILE, Path(hidden_dir) / HIDDEN_FILE
    write_jsonl(train, train_file)
    write_jsonl(hidden, hidden_file)
    (Path(train_dir) / SPEC_FILE).write_text(json.dumps(script_spec, indent=2, sort_keys=True))
    return PreparedTask(train_file, script_spec, hidden_file, len(train), len(hidden))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: line {number} is a {type(row).__name__}, not a JSON object")
            rows.append(row)
    return rows


def clean_rows(
    source: str, raw: list[dict[str, Any]], columns: dict[str, str], required: tuple[str, ...], rules: DataRules
) -> tuple[list[Row], int]:
    """``(rows, dropped)``: rows reduced to ``columns`` (role -> column name) as strings; rows where a
    ``required`` role is empty or missing are dropped and logged with their 1-based row numbers."""
    present = set().union(*(row.keys() for row in raw)) if raw else set()
    for role, column in columns.items():
        if column not in present:
            raise DatasetError(f"{source}: missing column '{column}' (field_{role}); columns present: {sorted(present)}")
    rows: list[Row] = []
    dropped: list[int] = []
    for number, row in enumerate(raw, start=1):
        clean = _clean_row(source, number, row, columns)
        if any(not clean[columns[role]].strip() for role in required):
            dropped.append(number)
        else:
            rows.append(clean)
    if dropped:
        shown = ", ".join(str(n) for n in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        log.warning("%s: dropped %d row(s) with an empty required field (rows %s)", source, len(dropped), shown)
    if len(rows) < rules.min_rows:
        raise DatasetError(
            f"{source}: {len(rows)} usable rows ({len(dropped)} dropped for an empty field), "
            f"fewer than the minimum of {rules.min_rows}"
        )
    return rows, len(dropped)


def _clean_row(source: str, number: int, row: dict[str, Any], columns: dict[str, str]) -> Row:
    clean: Row = {}
    for column in columns.values():
        value = row.get(column)
        if value is None:
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
            with open(path, encoding="utf-8", newline="") as handle:
                return list(csv.DictReader(handle))
        import pyarrow.parquet as parquet

        return parquet.read_table(path).to_pylist()
    except DatasetError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read the file ({type(error).__name__}: {error})") from None


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DatasetError(f"{path}: a .json dataset must be a list of objects")
    return data


def _read_hub(spec: SourceSpec) -> list[dict[str, Any]]:
    """A Hugging Face dataset id (needs a network; never used by the tests)."""
    import datasets

    try:
        return datasets.load_dataset(spec.source, split=spec.split).to_list()
    except Exception as error:  # the hub raises many unrelated types; the message is what matters
        raise DatasetError(f"{spec.source}: cannot load the Hugging Face dataset ({type(error).__name__}: {error})") from None
