"""A model folder as a tar stream, written as it is read: no temporary file, a chunk at a time, so a
download of a large model costs a buffer, not its size (``GET /v1/models/{id}/download``). Checked
first (:func:`folder_problem`): once the stream has begun, the answer's status is sent, so a folder
that is gone would otherwise arrive as an empty archive with 200."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.registry.models import ModelFile, model_files, stored_artifact_digest
from trainarena.store.models import RegisteredModel
from trainarena.tasks.digests import path_digest

CHUNK_BYTES = 1 << 20
_BLOCK = tarfile.BLOCKSIZE


def folder_problem(folder: Path, files: Sequence[ModelFile]) -> str | None:
    """Why ``folder`` is not the model whose registered ``files`` are given: missing, or a file missing
    or of another size (sizes only: hashing every file on each download would cost its size in reads);
    None when it is whole. The reason names files inside the folder, never the server's paths."""
    if not folder.is_dir():
        return "its folder is missing"
    broken = []
    for file in files:
        path = folder / file.path
        if not path.is_file() or path.is_symlink():
            broken.append(f"{file.path} is missing")
        elif path.stat().st_size != file.size:
            broken.append(f"{file.path} is {path.stat().st_size} bytes, registered as {file.size}")
    return _differs(broken) if broken else None


def tar_chunks(folder: Path, root_name: str, chunk_bytes: int = CHUNK_BYTES, *, git_modes: bool = False) -> Iterator[bytes]:
    """The bytes of a tar archive of ``folder``'s files under ``root_name/`` (sorted, the files' own
    modification times): a model folder's regular files only, mode 0644; with ``git_modes``, a code
    tree's files as git keeps them, executables 0755 and links as links, so that the unpacked archive
    has the commit's tree hash (``git_tree_hash``)."""
    for path in sorted(p for p in folder.rglob("*") if (p.is_symlink() and git_modes) or (p.is_file() and not p.is_symlink())):
        info = tarfile.TarInfo(f"{root_name}/{path.relative_to(folder).as_posix()}")
        stat = path.lstat()
        info.mtime = int(stat.st_mtime)
        if path.is_symlink():
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            continue
        info.size, info.mode = stat.st_size, 0o755 if git_modes and stat.st_mode & 0o111 else 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        with path.open("rb") as fh:
            while written < info.size and (chunk := fh.read(min(chunk_bytes, info.size - written))):
                written += len(chunk)
                yield chunk
        if written != info.size:
            raise OSError(f"{path} changed size while it was being archived")
        yield b"\0" * (-info.size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)  # the end-of-archive marker


class ModelFilesMissing(Exception):
    """A registered model whose folder is not the one registered: it cannot be downloaded or exported."""


class ModelDeleted(ModelFilesMissing):
    """A registered model that was deleted (``registry.deletion``): its files are gone on purpose, and
    whatever a deletion cut short left of them is not served."""


def _refused(row: RegisteredModel, doing: str, problem: str) -> ModelFilesMissing:
    return ModelFilesMissing(f"model {row.id} cannot be {doing}: {problem}; an operator must restore the folder "
                             "(from a backup, or the run's artifact) or remove the model")  # fmt: skip


def _differs(broken: Sequence[str]) -> str:
    shown = "; ".join(broken[:5]) + (f"; and {len(broken) - 5} more" if len(broken) > 5 else "")
    return f"its folder differs from its registration: {shown}"


def whole_folder(row: RegisteredModel, doing: str) -> Path:
    """The folder of the registered model ``row``, checked (:func:`folder_problem`): ModelFilesMissing,
    saying what differs, when it is not the registered one, so that it is not ``doing`` (downloaded,
    exported) in part; ModelDeleted for a model that was deleted, whatever is left of its folder."""
    if row.deleted_at is not None:
        raise ModelDeleted(f"model {row.id} cannot be {doing}: it was deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC and "
                           "its files were removed with it; its record stays (`models show`, GET /v1/models/{id})")  # fmt: skip
    problem = folder_problem(Path(row.path), model_files(row))
    if problem is not None:
        raise _refused(row, doing, problem)
    return Path(row.path)


def model_archive(row: RegisteredModel) -> Iterator[bytes]:
    """The registered model ``row`` as a tar stream under ``<model id>/``, its folder checked before
    the first byte."""
    return tar_chunks(whole_folder(row, "downloaded"), row.id)


def download_headers(session: Session, row: RegisteredModel) -> dict[str, str]:
    """The HTTP headers of a download of ``row`` (the API's and the dashboard's): the file name, and the
    digests it is checked with: the model folder's (``trainarena models verify`` recomputes it from the
    unpacked folder) and the artifact digest of the signed run record its weights were copied from
    (``stored_artifact_digest``: a model registered before it was kept, its run's)."""
    headers = {"Content-Disposition": f'attachment; filename="{row.id}.tar"', "X-Trainarena-Model-Digest": row.digest}
    artifact = stored_artifact_digest(session, row)
    return headers if artifact is None else {**headers, "X-Trainarena-Artifact-Digest": artifact}


def export_model(row: RegisteredModel, destination: Path) -> list[ModelFile]:
    """Copy the registered files of ``row`` into the folder ``destination`` (`trainarena models export`),
    the folder checked first as for a download: a copy that silently lacked the tokenizer was reported
    as whole. Returns the files written.

    Unlike a download, which can only check sizes before its stream begins, each copy's sha256 is checked
    against the registration too: a file changed since (same size, other bytes) was exported without a
    word. The copy is hashed as written, just after the kernel copied it, so the second read comes from
    the page cache: the cost is sha256's CPU time, about 1 s per GiB on one core (measured on a 1 GiB
    file: 0.3-0.4 s to copy, 1.1-1.5 s to copy and hash). Reading a model that is not cached from a
    disk slower than that (about 0.9 GB/s) takes longer than hashing it, so a large export stays bound
    by its I/O. On a mismatch nothing is left in ``destination``: ModelFilesMissing names the files that
    differ."""
    folder = whole_folder(row, "exported")
    files = model_files(row)
    written: list[Path] = []
    broken = []
    for file in files:
        target = destination / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(target)
        shutil.copyfile(folder / file.path, target)
        found = path_digest(target)  # as registration hashed it (registry.models)
        if found != file.sha256:
            broken.append(f"{file.path} has sha256 {found[:16]}…, registered as {file.sha256[:16]}…")
    if broken:
        _remove_written(destination, written)
        raise _refused(row, "exported", _differs(broken))
    return files


def _remove_written(destination: Path, written: Sequence[Path]) -> None:
    """Take back a refused export: the files written and the folders made for them, ``destination`` kept."""
    for path in written:
        path.unlink(missing_ok=True)
    for parent in sorted({p for path in written for p in path.parents if destination in p.parents}, key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):  # a folder that held something before the export stays
            parent.rmdir()
