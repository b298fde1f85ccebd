"""A run's submission folder fixed before the sandbox binds it, and checked again after the run ends.

The folder is a cached copy (a registered commit's checkout, a working tree's snapshot) that the
sandbox binds read-only, so the script cannot change it; the platform's own user can, as can root
and, for ``trainarena run``, the user whose cache it is. A signed record names the code a run ran,
so the pipeline seals the folder before the run (:func:`seal`) and refuses to score a run whose
folder :func:`changes` reports different after the sandbox ended.

Protects against: any change to the folder's files between the seal and the check, including one
undone before the check. The seal holds the folder's content digest and, for the folder and every
entry under it, its inode, mode, size, mtime and ctime; a write, chmod, link, rename, creation or
removal sets a ctime to the current time (the kernel does; no user can set it back), so a change
undone afterwards still shows, and the content digest catches what a coarse clock tick could hide.
Does not protect against: root changing the clock or the file system under the platform (root also
holds the operator's key); a file system that keeps a moved folder's ctime on rename (Linux's
update it), where a folder swapped for another and swapped back before the check would not show.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainarena.submissions.tree_hash import git_tree_hash
from trainarena.submissions.worktree import discard, snapshot_digest, snapshot_problem

__all__ = ["Seal", "changes", "discard", "folder_stamps", "is_cached", "seal", "seal_submission"]

_NAMED_PATHS = 5  # how many changed paths a reason names

Stamp = tuple[int, int, int, int, int, int]  # device, inode, mode, size, mtime_ns, ctime_ns


@dataclass(frozen=True)
class Seal:
    folder: Path
    digest: str  # the content digest ``digest_of`` gave
    stamps: dict[str, Stamp]  # by path relative to the folder ("." is the folder itself)
    digest_of: Callable[[Path], str]


def folder_stamps(folder: Path) -> dict[str, Stamp]:
    """The stamp of ``folder`` and of every entry under it (links not followed)."""

    def stamp(path: str) -> Stamp:
        info = os.lstat(path)
        return (info.st_dev, info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def failed(error: OSError) -> None:
        raise error

    stamps = {".": stamp(str(folder))}
    for directory, dirs, files in os.walk(folder, onerror=failed):
        for name in [*dirs, *files]:
            path = os.path.join(directory, name)
            stamps[os.path.relpath(path, folder)] = stamp(path)
    return stamps


def seal(folder: Path, digest_of: Callable[[Path], str]) -> Seal:
    """The folder as it is now: stamps first, then the content digest, so a change made while the
    digest reads the files moves a stamp. OSError when the folder is gone or unreadable."""
    stamps = folder_stamps(folder)
    return Seal(folder, digest_of(folder), stamps, digest_of)


def changes(sealed: Seal) -> str | None:
    """What changed in the sealed folder since :func:`seal` (the paths, at most a few named), or None."""
    try:
        now = folder_stamps(sealed.folder)
    except OSError:
        return "the folder is gone"
    if now["."][:2] != sealed.stamps["."][:2]:  # another folder (device, inode) at its path
        return "the folder itself was replaced"
    before = sealed.stamps
    changed = sorted(path for path in before.keys() & now.keys() if before[path] != now[path] and path != ".")
    added, removed = sorted(now.keys() - before.keys()), sorted(before.keys() - now.keys())
    named = [f"{what} {_listed(paths)}" for what, paths in (("changed", changed), ("added", added), ("removed", removed)) if paths]
    if named:
        return "; ".join(named)
    if now["."] != before["."]:
        return "the folder's own entry changed (mode or entries)"
    try:
        digest = sealed.digest_of(sealed.folder)
    except OSError as error:
        return f"its files cannot be read any more ({error.strerror})"
    return None if digest == sealed.digest else "its content digest changed"


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_NAMED_PATHS])
    return shown + (f" (and {len(paths) - _NAMED_PATHS} more)" if len(paths) > _NAMED_PATHS else "")


def seal_submission(cache_dir: Path, folder: Path, tree_hash: str) -> tuple[Seal | None, str | None]:
    """Seal a run's submission folder, and say how it is not the code the run's record names (None: it
    is): a registered commit's checkout (``cache_dir/checkouts``) not the git tree ``tree_hash``, a
    working tree's snapshot (``cache_dir/worktrees``) not the tree whose digest names its folder, or an
    unreadable folder. Such a cached copy is removed, to be made afresh. A folder outside the cache (a
    test's, an unsafe local run's) is sealed as it is."""
    checkout = folder.parent == cache_dir / "checkouts"
    try:
        sealed = seal(folder, git_tree_hash if checkout else snapshot_digest)
    except OSError as error:
        sealed, problem = None, f"it cannot be read ({error.strerror or error})"
    else:
        if checkout:
            problem = None if sealed.digest == tree_hash else f"its files hash to git tree {sealed.digest[:12]}, not {tree_hash[:12]}"
        else:
            problem = snapshot_problem(folder, sealed.digest) if folder.parent == cache_dir / "worktrees" else None
    if problem is not None and is_cached(cache_dir, folder):
        discard(folder)
    return sealed, problem


def is_cached(cache_dir: Path, folder: Path) -> bool:
    """Whether ``folder`` is a cached copy: a registered commit's checkout or a working tree's snapshot."""
    return folder.parent in (cache_dir / "checkouts", cache_dir / "worktrees")
