"""Folder trees nested deeper than a path-based walk survives, for the tests of what the platform does
with a script's output (a RecursionError there once crashed the tournament driver)."""

from __future__ import annotations

import os
from pathlib import Path


def nest(root: Path, levels: int, name: str = "a") -> None:
    """``levels`` folders one inside the other under ``root``, and a file ``deep.txt`` in the last, made
    through directory fds as a script does (the path grows past what a path-based mkdir accepts)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as fh:
            fh.write("x")
    finally:
        os.close(fd)
