"""Customers' uploaded datasets: received as a stream under a size limit, checked with the task
plugins' own loaders (the checks ``trainarena task check`` runs), then kept under
``settings.uploads_dir`` with their row in the store. A file that fails any check leaves nothing behind.

Formats: ``.jsonl``, ``.json``, ``.csv``, ``.parquet`` for text task types; a ``.zip`` of images with a
``captions.jsonl`` (the layout image tasks take, ``tasks/image``) for image tasks, checked against
zip bombs and path traversal first (``jobs.archives``, which also bounds what a parquet file decodes
to). Without a field mapping an upload is checked as rows (every row readable, within the size
limits, enough of them); with a task type and a
mapping it is also prepared as that task type would be, so a customer learns of a missing column
before creating a job. Messages name the uploaded file (never the server's path), the row and the
column; ``details`` carry them for programs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.contract import TaskType
from trainarena.jobs.archives import check_parquet, check_zip
from trainarena.jobs.errors import InvalidInput, JobsError, TooLarge
from trainarena.settings import Settings
from trainarena.tasks import registered_task_types
from trainarena.tasks.base import DatasetError, TaskDefinition, UnknownSpecKeys
from trainarena.tasks.check import TaskCheck, check_task
from trainarena.tasks.text.rows import load_rows
from trainarena.wording import counted

TEXT, IMAGE = "text", "image"
# File suffix -> (kind, format).
FORMATS = {".jsonl": (TEXT, "jsonl"), ".json": (TEXT, "json"), ".csv": (TEXT, "csv"), ".parquet": (TEXT, "parquet"),
           ".zip": (IMAGE, "zip")}  # fmt: skip
# What an image upload is checked as when no mapping is given (the kind and model type do not change the checks).
DEFAULT_IMAGE_MAPPING = {"kind": "style", "model_type": "sd"}
_WHERE = (("row", re.compile(r"\b(?:row|line) (\d+)")), ("column", re.compile(r"column '([^']+)'")))


def kind_of(task_type: TaskType | str) -> str:
    return IMAGE if TaskType(task_type) == TaskType.IMAGE else TEXT


def file_format(filename: str, kind: str | None) -> tuple[str, str]:
    """``(kind, format)`` of an upload named ``filename``: from its suffix, which must agree with
    ``kind`` when one is given."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"{filename}: unsupported file type {suffix or '(none)'!r}; upload one of "
                           f"{', '.join(FORMATS)}", field="file", filename=filename)  # fmt: skip
    found_kind, fmt = FORMATS[suffix]
    if kind is not None and kind not in (TEXT, IMAGE):  # before the suffix: "audio datasets are none" named no fix
        raise InvalidInput(f"kind must be {TEXT} or {IMAGE}, got {kind!r}", field="kind", kind=kind)
    if kind is not None and kind != found_kind:
        allowed = [s for s, (k, _f) in FORMATS.items() if k == kind]
        raise InvalidInput(f"{filename}: a {suffix} file is not {'an' if kind == IMAGE else 'a'} {kind} dataset; {kind} datasets "
                           f"are {', '.join(allowed)}", field="kind", kind=kind)  # fmt: skip
    return found_kind, fmt


class UploadSink:
    """Where an upload's bytes go as they arrive: a staging file under the uploads folder, its size
    bounded (past ``limit`` the file is removed and :class:`TooLarge` raised), each chunk's size passed
    to ``count`` (which may refuse it, as the key's quota does: the file is removed then too) and its
    SHA-256 taken."""

    def __init__(self, uploads_dir: Path, limit: int, filename: str, count: Callable[[int], None] | None = None) -> None:
        uploads_dir.mkdir(parents=True, exist_ok=True)
        suffix = Path(filename).suffix.lower()  # the loaders read a file by its suffix
        self.path = uploads_dir / f".incoming-{secrets.token_hex(8)}{suffix if suffix in FORMATS else ''}"
        self.size = 0
        self._limit = limit
        self._count = count
        self._hash = hashlib.sha256()
        self._out = self.path.open("wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        try:
            if self.size > self._limit:
                raise TooLarge(f"the upload is larger than {self._limit:,} bytes (api.upload_max_bytes); split the "
                               "dataset or ask the operator for a larger limit", limit_bytes=self._limit)  # fmt: skip
            if self._count is not None:
                self._count(len(chunk))
        except JobsError:
            self.discard()
            raise
        self._hash.update(chunk)
        self._out.write(chunk)

    def finish(self) -> str:
        """Close the file; its SHA-256 (hex)."""
        self._out.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class CheckedFile:
    kind: str
    format: str
    rows: int  # records (text) or images (image)
    columns: tuple[str, ...]  # column names (text); () for image


@dataclass(frozen=True)
class _Source:  # what tasks.text.rows.load_rows reads: a local file
    source: str
    split: str = "train"


def check_file(path: Path, filename: str, kind: str, fmt: str, settings: Settings,
               task_type: str | None = None, field_mapping: dict[str, Any] | None = None) -> CheckedFile:  # fmt: skip
    """Check the bytes at ``path`` (named ``filename`` by the customer); InvalidInput naming the row
    and column otherwise. With ``task_type`` (and its ``field_mapping``) the file is also prepared
    as that task type."""
    if field_mapping and task_type is None:
        raise InvalidInput("field_mapping was sent without task_type: send task_type too (the file is then checked as "
                           "that task type with this mapping), or leave both out", field="task_type")  # fmt: skip
    if task_type is not None and task_type in {t.value for t in registered_task_types()} and kind_of(task_type) != kind:
        raise InvalidInput(f"{filename}: a {kind} file cannot train a {task_type} task", field="task_type")
    if kind == IMAGE:
        return _check_images(path, filename, fmt, settings, field_mapping if task_type is not None else None)
    with _named(path, filename):
        if fmt == "parquet":
            check_parquet(path, filename, settings.api)
        rows = load_rows(_Source(str(path)), settings.data)
    if len(rows) < settings.data.min_rows:
        raise InvalidInput(f"{filename}: {counted(len(rows), 'row')}, fewer than the minimum of {settings.data.min_rows} "
                           "(data.min_rows)", field="file", rows=len(rows))  # fmt: skip
    if task_type is not None:
        check_dataset(settings, parse_task_type(task_type), path, filename, field_mapping or {}, base_model="")
    return CheckedFile(kind, fmt, len(rows), tuple(dict.fromkeys(column for row in rows for column in row)))


def _check_images(path: Path, filename: str, fmt: str, settings: Settings, field_mapping: dict[str, Any] | None) -> CheckedFile:
    """The zip's safety first (nothing is inflated before), then the images and captions as image tasks load them."""
    with _named(path, filename):
        members = check_zip(path, filename, settings.api)
    if members == 0:
        raise InvalidInput(f"{filename}: the zip is empty", field="file")
    # Without a mapping sent, the default one cannot be what is wrong: the problem is laid at the file.
    report = check_dataset(settings, TaskType.IMAGE, path, filename, field_mapping or DEFAULT_IMAGE_MAPPING, base_model="",
                           field="field_mapping" if field_mapping else "file")  # fmt: skip
    return CheckedFile(IMAGE, fmt, report.train_rows + report.hidden_rows, ())


def parse_task_type(value: str) -> TaskType:
    known = [t.value for t in registered_task_types()]
    if value not in known:
        raise InvalidInput(f"task_type {value!r} is not one of {known}", field="task_type")
    return TaskType(value)


def check_dataset(settings: Settings, task_type: TaskType, path: Path, filename: str, field_mapping: dict[str, Any],
                  base_model: str, field: str = "field_mapping") -> TaskCheck:  # fmt: skip
    """Prepare the file as a ``task_type`` task with ``field_mapping`` into a scratch folder (``task
    check``); InvalidInput naming ``field`` (the request's part a problem is laid at), the row and the
    column when it cannot be."""
    if not isinstance(field_mapping, dict) or "source" in field_mapping or "split" in field_mapping:
        raise InvalidInput("field_mapping must be an object of the task type's dataset fields (without 'source' or "
                           "'split': the file is the source, all of it)", field="field_mapping")  # fmt: skip
    longest = settings.jobs.field_mapping_text_max_chars
    for key, text in field_mapping.items():
        if isinstance(text, str) and len(text) > longest:
            raise InvalidInput(f"field_mapping.{key} is {len(text):,} characters, over the most allowed, {longest:,} "
                               "(settings jobs.field_mapping_text_max_chars); shorten it", field="field_mapping", limit=longest)  # fmt: skip
    task = TaskDefinition(name=f"upload-{filename}", task_type=task_type, base_model=base_model,
                          dataset={**field_mapping, "source": str(path)}, budget_seconds=1.0)  # fmt: skip
    with _named(path, filename, field=field):
        try:
            return check_task(task, settings, customer_upload=True)
        except UnknownSpecKeys as error:  # the file is the source, all of it: the mapping may not name either
            raise error.without(("source", "split")) from None


class _named:
    """Turns a DatasetError about ``path`` into InvalidInput about ``filename`` (row and column in details)."""

    def __init__(self, path: Path, filename: str, field: str = "file") -> None:
        self._path, self._filename, self._field = str(path), filename, field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _tb: object) -> bool:
        if isinstance(error, DatasetError | TypeError):
            raise dataset_problem(str(error).replace(self._path, self._filename), self._field) from None
        return False


def dataset_problem(message: str, field: str) -> InvalidInput:
    """An InvalidInput whose details name the row and column the message names."""
    details: dict[str, Any] = {"field": field}
    for key, pattern in _WHERE:
        found = pattern.search(message)
        if found:
            details[key] = int(found.group(1)) if key == "row" else found.group(1)
    return InvalidInput(message, **details)
