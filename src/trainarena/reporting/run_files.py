"""A run's files as plain data: its log files (listed, and read whole or from their end) and its
artifact's files with their sizes and sha256. Only names found in the run's own folders are read, so
a name asked for from outside (a URL) can never reach another file."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from trainarena.submissions.seal import folder_stamps

_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileLine:
    path: str  # relative to the artifact folder, with /
    size: int
    sha256: str | None  # None: larger than the hashing limit


def log_names(log_path: str | None) -> list[str]:
    """The log files of a run's log folder (stdout.log, stderr.log...), sorted; none when it is gone."""
    folder = None if log_path is None else Path(log_path)
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())


def read_log(log_path: str | None, name: str, max_bytes: int) -> tuple[str, bool] | None:
    """(the log's text, whether only its last ``max_bytes`` were read), or None when the run's log
    folder holds no file of that name."""
    if name not in log_names(log_path):
        return None
    path = Path(str(log_path)) / name
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > max_bytes:
            handle.seek(size - max_bytes)
        data = handle.read(max_bytes)
    return data.decode("utf-8", errors="replace"), size > max_bytes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


ArtifactListing = tuple[tuple[FileLine, ...], int]  # (files listed, how many the folder holds)


def artifact_files(artifact_path: str | None, *, limit: int, hash_max_bytes: int) -> ArtifactListing:
    """(the first ``limit`` files of the artifact folder in path order, how many files it holds); their
    sha256 while the bytes hashed stay within ``hash_max_bytes`` (a page view's work, whatever a script
    wrote), the files past it listed without."""
    folder = None if artifact_path is None else Path(artifact_path)
    if folder is None or not folder.is_dir():
        return (), 0
    files = sorted((p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()), key=lambda p: p.relative_to(folder).as_posix())
    lines, budget = [], hash_max_bytes
    for path in files[:limit]:
        size = path.stat().st_size
        hashed = size <= budget
        budget -= size if hashed else 0
        lines.append(FileLine(path.relative_to(folder).as_posix(), size, _sha256(path) if hashed else None))
    return tuple(lines), len(files)


class ArtifactListings:
    """The :func:`artifact_files` listings of the ``size`` artifacts listed last, by the digest stored
    with their run (least recently listed dropped first): a second view of a run's page hashes nothing.
    The key is the digest, never the folder alone: an artifact with another digest is listed afresh,
    never shown with an old listing; and with the digest the folder's stamps (``folder_stamps``: every
    entry's inode, size and change time, read without reading a file), so a folder changed or removed
    since is listed again, as it is now. One with no digest, or whose folder holds no file (gone, or not
    there yet), is listed at each view. Shared by a server's request threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._listings: OrderedDict[tuple[str, tuple], ArtifactListing] = OrderedDict()
        self._lock = threading.Lock()

    def listing(self, digest: str | None, artifact_path: str | None, *, limit: int, hash_max_bytes: int) -> ArtifactListing:
        key = None if digest is None else (digest, _stamps(artifact_path))
        if key is not None:
            with self._lock:
                if (kept := self._listings.get(key)) is not None:
                    self._listings.move_to_end(key)
                    return kept
        listed = artifact_files(artifact_path, limit=limit, hash_max_bytes=hash_max_bytes)  # outside the lock: it hashes
        if key is not None and listed[1]:
            with self._lock:
                self._listings[key] = listed
                self._listings.move_to_end(key)
                while len(self._listings) > self.size:
                    self._listings.popitem(last=False)
        return listed


def _stamps(artifact_path: str | None) -> tuple:
    """The artifact folder's stamps as a key (empty when there is none or it is gone)."""
    try:
        return () if artifact_path is None else tuple(sorted(folder_stamps(Path(artifact_path)).items()))
    except OSError:
        return ()
