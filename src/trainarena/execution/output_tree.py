"""What a script left in /output, handled by the platform after the script has ended: walked, given
safe modes, removed. Every walk here is iterative (an explicit stack, ``os.scandir``), never
recursive: a script can nest folders thousands deep, which ``Path.rglob`` and ``shutil.rmtree`` meet
with RecursionError (Python 3.11).

Protects against: a setuid/setgid file or a world-writable folder the script left for the host (under
bwrap the sandbox's host uid is the platform's, or ``sandbox.run_as`` when the platform is root and
the host allows it: ``settle_modes`` gives every file and folder to a root platform, every folder
0755 and every file 0644, or 0755 when executable, before anything checks, digests or publishes the
artifact); a tree too deep or too large to check
(``walk`` stops at ``ArtifactRules.max_depth`` / ``max_entries`` with the reason); a tree the platform
could not delete (``remove_tree`` lifts a folder above a fixed path length before descending, so no
path it builds grows past what the kernel accepts, and opens folders a script made unreadable).
Does not protect against: anything while the script still runs (its processes are gone when these are
called); symlinks are never followed and keep their modes (the artifact check refuses them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from pathlib import Path

DIR_MODE = 0o755
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
OTHER_MODE = 0o600  # a FIFO or socket: the artifact check refuses it, nobody else may open it meanwhile
_HOIST_AT = 2048  # path length past which remove_tree lifts a folder up before descending (PATH_MAX is 4096)


class TreeError(ValueError):
    """Why a tree could not be walked: past a cap, or unreadable."""


def walk(root: Path, *, max_depth: int, max_entries: int) -> list[tuple[str, os.stat_result]]:
    """Every entry under ``root`` as (relative POSIX path, lstat), sorted by path; links not followed.
    Raises :class:`TreeError` past ``max_depth`` levels or ``max_entries`` entries, or on a read error."""
    found: list[tuple[str, os.stat_result]] = []
    pending: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while pending:
        directory, prefix, depth = pending.pop()
        for entry, info in _scan(directory, prefix):
            rel = prefix + entry.name
            if len(found) >= max_entries:
                raise TreeError(f"holds more than {max_entries} files and folders (the platform's cap)")
            if depth + 1 > max_depth:
                raise TreeError(f"{_shown(rel)} is nested deeper than {max_depth} folders (the platform's cap)")
            found.append((rel, info))
            if stat.S_ISDIR(info.st_mode):
                pending.append((entry.path, rel + "/", depth + 1))
    return sorted(found, key=lambda item: item[0])


def settle_modes(root: Path, *, max_depth: int, max_entries: int) -> None:
    """Give ``root`` and everything under it fixed modes (module docstring), owned by the platform's
    uid when it runs as root; stops with :class:`TreeError` where :func:`walk` would."""
    owner = os.geteuid() if os.geteuid() == 0 else None
    _settle(str(root), os.lstat(root), owner)
    count = 0
    pending: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while pending:
        directory, prefix, depth = pending.pop()
        for entry, info in _scan(directory, prefix):
            count += 1
            if count > max_entries:
                raise TreeError(f"holds more than {max_entries} files and folders (the platform's cap)")
            if depth + 1 > max_depth:
                raise TreeError(f"{_shown(prefix + entry.name)} is nested deeper than {max_depth} folders (the platform's cap)")
            _settle(entry.path, info, owner)
            if stat.S_ISDIR(info.st_mode):
                pending.append((entry.path, prefix + entry.name + "/", depth + 1))


def remove_tree(root: Path) -> None:
    """Delete ``root`` and everything under it, however deep, never following a link (a link is
    removed, not its target); what cannot be removed is left, silently, as ``rmtree(ignore_errors=True)``."""
    if not root.is_dir() or root.is_symlink():
        with contextlib.suppress(OSError):
            root.unlink()
        return
    top = str(root)
    lifted = itertools.count()
    folders: list[str] = []  # parents before their children: removed in reverse
    pending = [top]
    while pending:
        directory = pending.pop()
        folders.append(directory)
        _open_up(directory)
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in list(entries):
                if not entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                    continue
                path = entry.path
                if len(path) > _HOIST_AT:  # lifted to the top, so the paths below it stay short
                    target = os.path.join(top, f".lifted-{next(lifted)}")
                    with contextlib.suppress(OSError):
                        os.rename(path, target)
                        path = target
                pending.append(path)
    for directory in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def _scan(directory: str, prefix: str) -> list[tuple[os.DirEntry[str], os.stat_result]]:
    try:
        with os.scandir(directory) as entries:
            return [(entry, entry.stat(follow_symlinks=False)) for entry in entries]
    except OSError as error:
        raise TreeError(f"{_shown(prefix) or 'the folder'} could not be read ({error.strerror or error})") from None


def _settle(path: str, info: os.stat_result, owner: int | None) -> None:
    if stat.S_ISLNK(info.st_mode):
        return
    if owner is not None and (info.st_uid, info.st_gid) != (owner, owner):
        os.chown(path, owner, owner, follow_symlinks=False)
    if stat.S_ISDIR(info.st_mode):
        mode = DIR_MODE
    elif stat.S_ISREG(info.st_mode):
        mode = EXECUTABLE_MODE if info.st_mode & 0o111 else FILE_MODE
    else:
        mode = OTHER_MODE
    os.chmod(path, mode)


def _open_up(directory: str) -> None:
    """A script may leave a folder it made unreadable (0000): the platform owns it and opens it again."""
    with contextlib.suppress(OSError):
        if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
            os.chmod(directory, 0o700)


def _shown(rel: str) -> str:
    """A relative path as a reason names it: its start and end when it is long."""
    rel = rel.rstrip("/").encode("utf-8", "backslashreplace").decode()
    return rel if len(rel) <= 120 else f"{rel[:50]}...{rel[-50:]}"
