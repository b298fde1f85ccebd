"""sha256 digests of what a stored task is made of (its base model, its dataset, its hidden split),
so an auditor can tell whether a file changed after the task was added."""

from __future__ import annotations

import hashlib
from pathlib import Path

from trainarena.execution.artifacts import FileDigest, artifact_and_file_digests, artifact_digest

_READ_CHUNK = 1 << 20


def path_digest(path: Path) -> str:
    """sha256 hex of a file's bytes, or of a folder's files (sorted relative paths, sizes, contents)."""
    path = Path(path)
    if path.is_dir():
        return artifact_digest(path, _folder_files(path))
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_and_file_digests(folder: Path) -> tuple[str, list[FileDigest]]:
    """:func:`path_digest` of ``folder`` and each of its files' own sha256 and size, every file read once."""
    return artifact_and_file_digests(folder, _folder_files(folder))


def _folder_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]
