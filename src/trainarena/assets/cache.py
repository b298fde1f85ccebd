"""Build-once directories shared by the asset builders: a file lock so that two processes never build
the same tree, and a build in a staging directory renamed into place only when complete."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def ensure_built(final: Path, marker: str, lock_file: Path, build: Callable[[Path], None]) -> None:
    """Make ``final`` exist with ``marker`` (its last file written) inside, calling ``build(staging)``
    at most once across processes; an interrupted build leaves nothing behind."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if (final / marker).is_file():
        return
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (final / marker).is_file():  # another process built it while we waited
            return
        staging = Path(tempfile.mkdtemp(prefix=f".building-{final.name}-", dir=final.parent))
        try:
            build(staging)
            if final.exists():  # a stale tree without its marker: an interrupted rename is impossible, so junk
                shutil.rmtree(final)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
