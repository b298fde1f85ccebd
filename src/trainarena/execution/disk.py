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
import errno
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


# A file system with less than this free (to unprivileged users) is full, for a run that failed on it:
# a save of a model fails on such a disk, whatever the script does.
FULL_BELOW_BYTES = 64 * MB


def free_bytes(path: Path) -> int:
    """What unprivileged writers may still write to the file system holding ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (``path`` itself may be gone)."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def full_disk_reason(output: DiskCap) -> str | None:
    """For a run that failed: the platform's reason when the file system holding its /output is
    (nearly) full while the run's own output stayed under its cap, so the disk, not the script, failed
    it (ENOSPC on its save); None otherwise."""
    try:
        free = free_bytes(output.path)
    except OSError:
        return None
    if free >= FULL_BELOW_BYTES or output.breach() is not None:
        return None
    return (f"the data directory's disk is full: {mount_point(output.path)} has {free / MB:.1f} MB free "
            f"(a run failed writing its output there); free space and run again")


def os_error_text(error: OSError, disk: Path) -> str:
    """An OSError in one line: the path(s) it names and its reason, without a traceback; for a full
    disk (ENOSPC), which file system, with its free space, holding ``disk``."""
    paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    reason = error.strerror or str(error)
    text = f"{paths}: {reason}" if paths else reason
    if error.errno == errno.ENOSPC:
        with contextlib.suppress(OSError):
            return (f"{text}; the data directory's disk is full: {mount_point(disk)} has "
                    f"{free_bytes(disk) / MB:.1f} MB free; free space and run again")
    return f"{text}; free space and run again" if error.errno == errno.ENOSPC else text
