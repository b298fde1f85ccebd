"""A model folder as a tar stream, written as it is read: no temporary file, a chunk at a time, so a
download of a large model costs a buffer, not its size (``GET /v1/models/{id}/download``)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

CHUNK_BYTES = 1 << 20
_BLOCK = tarfile.BLOCKSIZE


def tar_chunks(folder: Path, root_name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of a tar archive of ``folder``'s files under ``root_name/`` (sorted; regular files
    only, mode 0644, the files' own modification times)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        stat = path.stat()
        info = tarfile.TarInfo(f"{root_name}/{path.relative_to(folder).as_posix()}")
        info.size, info.mode, info.mtime = stat.st_size, 0o644, int(stat.st_mtime)
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
