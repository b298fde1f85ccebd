"""Caps on what a run writes to disk, enforced while it runs.

/tmp: a tmpfs of ``SandboxRules.tmp_max_mb`` (bwrap ``--size``, docker ``--tmpfs size=``): the kernel
refuses the write that would pass it (ENOSPC), exactly. Its pages are memory, so they also count
against the run's memory cgroup.

/output is the host directory the artifact is read from, so it cannot be a tmpfs without holding the
whole model in RAM. Two mechanisms together: RLIMIT_FSIZE (``execution.limits``) stops every single
file at the cap exactly, and the supervisor measures the directory's total every
``SandboxRules.disk_check_seconds`` and kills the run when it passes ``SandboxRules.output_max_mb``
(and measures once more after the run). What this does not hold: between two measurements a script
writing many files can pass the total by what the disk writes in one interval; the run still ends as
a failure ("wrote more than N MB to /output"), and the pipeline deletes its ``output/`` as soon as the
run's report is made (its ``logs/`` and ``inputs/`` stay; ``pipeline``'s docstring says what is kept).

Sizes count what a file takes on disk or its length, whichever is larger (a sparse file counts at its
length), and every file or folder at least one block, so a million empty files count too. Symlinks
are never followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
_MIN_ENTRY_BYTES = 4096


@dataclass(frozen=True)
class DiskCap:
    """At most ``max_bytes`` in the host folder ``path``, which the script sees as ``label``."""

    label: str
    path: Path
    max_bytes: int

    def breach(self) -> str | None:
        """The failure reason when the folder holds more than the cap, else None."""
        if used_bytes(self.path) <= self.max_bytes:
            return None
        return f"wrote more than {self.max_bytes / MB:g} MB to {self.label} (the run's cap)"


def used_bytes(root: Path) -> int:
    """What ``root`` takes, counted as the module docstring says (0 when it does not exist)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            _open_up(directory)
            entries = _scan_or_empty(directory)
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue  # hard links count once
            seen.add((info.st_dev, info.st_ino))
            total += max(info.st_size if stat.S_ISREG(info.st_mode) else 0, info.st_blocks * 512, _MIN_ENTRY_BYTES)
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    return total


def _open_up(directory: str) -> None:
    """A script may chmod 000 a folder it made (it owns it, as the platform's uid, outside): undo
    that so the folder is counted, not skipped."""
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)


def _scan_or_empty(directory: str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(directory))
    except OSError:
        return []


def disk_description(tmp: str, output: DiskCap, interval: float) -> str:
    """``logs/sandbox.txt``'s line about disk caps."""
    return f"tmp={tmp} output=rlimit-fsize+measured-every-{interval:g}s:{output.max_bytes}\n"


def first_breach(caps: tuple[DiskCap, ...]) -> str | None:
    """The first cap passed, as a failure reason, or None."""
    for cap in caps:
        reason = cap.breach()
        if reason is not None:
            return reason
    return None
