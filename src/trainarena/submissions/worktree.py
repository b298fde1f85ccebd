"""A working tree as a runnable submission, without registering it (``trainarena run --repo PATH``).

The tree's files, committed or not, pass the same checks registration applies to a commit's tree
(no weights or datasets, size limits, no submodules, a valid manifest and entrypoint, no link leaving
the tree), then are copied into a content-addressed snapshot under the cache: the run binds that copy
read-only, so editing the tree during or after a run changes nothing, and the stored run names the
snapshot it ran. A snapshot already in the cache is reused only while its files still hash to the
digest it is named by; one changed since (by hand, by a tool) is replaced by a fresh copy of the tree,
so a run never executes or signs code the tree does not hold; each run checks the copy against that
digest again before the sandbox binds it, and that nothing in it changed once the run ended
(``submissions.seal``). In a git repository the files
are those git would see (tracked and untracked, minus what ``.gitignore`` excludes); elsewhere every
file under the folder except ``.git`` and Python caches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainarena.contract import MANIFEST_NAME
from trainarena.settings import Settings
from trainarena.submissions.digest import source_digest
from trainarena.submissions.errors import RegistrationError
from trainarena.submissions.git import TreeEntry, local_repo_path
from trainarena.submissions.manifest import Manifest
from trainarena.submissions.registration import check_content, check_tree_entries, export_tree, manifest_entry

_SKIPPED_DIRS = frozenset({".git", "__pycache__"})
_GIT_TIMEOUT_SECONDS = 30.0  # local commands on the user's own repository


@dataclass(frozen=True)
class WorktreeSnapshot:
    path: Path  # the working tree, resolved
    commit: str | None  # HEAD when ``path`` is the top of a git repository with a commit
    dirty: bool | None  # uncommitted or untracked changes under ``path``; None outside git
    snapshot_dir: Path  # the checked copy the sandbox binds read-only
    manifest: Manifest
    source_digest: str

    @property
    def entrypoint(self) -> str:
        return self.manifest.entrypoint


def _git(root: Path, *args: str) -> str | None:
    """``git -C root ARGS`` output, or None when git is missing or fails (not a repository)."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=False,
                              timeout=_GIT_TIMEOUT_SECONDS, check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", errors="surrogateescape") if done.returncode == 0 else None


def _listed_paths(root: Path, listed: str | None) -> list[str]:
    """Relative POSIX paths of the tree's files (see the module's docstring): those git ``listed``, or
    with None (not a git repository) those found under ``root``."""
    if listed is not None:
        # --cached also lists tracked files deleted from the tree: those are not part of it.
        return sorted({p for p in listed.split("\0") if p and ((root / p).exists() or (root / p).is_symlink())})
    return _walked_paths(root, _SKIPPED_DIRS)


def _walked_paths(root: Path, skipped_dirs: frozenset[str]) -> list[str]:
    """Relative POSIX paths of the files and links under ``root``, outside folders named in ``skipped_dirs``."""
    paths = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skipped_dirs and not (Path(directory) / d).is_symlink())
        links = [d for d in os.listdir(directory) if d not in files and (Path(directory) / d).is_symlink()]
        paths += [(Path(directory) / name).relative_to(root).as_posix() for name in [*files, *links]]
    return sorted(paths)


def _entry(root: Path, relative: str) -> TreeEntry:
    info = (root / relative).lstat()
    if stat.S_ISLNK(info.st_mode):
        mode = "120000"
    elif stat.S_ISDIR(info.st_mode):  # a nested repository git lists as one path
        mode = "160000"
    elif stat.S_ISREG(info.st_mode):
        mode = "100755" if info.st_mode & stat.S_IXUSR else "100644"
    else:
        mode = "0"
    return TreeEntry(path=relative, mode=mode, object_id=relative, size=info.st_size if mode.startswith("100") else 0)


def _read(root: Path, entry: TreeEntry) -> bytes:
    if entry.kind == "symlink":
        return os.readlink(root / entry.path).encode()
    return (root / entry.path).read_bytes()


def _content_digest(entries: list[TreeEntry], blobs: dict[str, bytes]) -> str:
    """What names a snapshot: every path, mode and content of the tree."""
    content = hashlib.sha256()
    for entry in entries:
        blob = blobs.get(entry.object_id, b"")
        content.update(f"{entry.path}\0{entry.mode}\0{len(blob)}\0".encode("utf-8", "surrogateescape") + blob)
    return content.hexdigest()


def _source_digest(entries: list[TreeEntry], blobs: dict[str, bytes], settings: Settings) -> str:
    """The registration's digest of the code (comments and layout left out) of a tree's files."""
    rules = settings.registration
    return source_digest(((entry.path, blobs[entry.object_id]) for entry in entries if entry.kind == "file"),
                         ignore_suffixes=rules.digest_ignore_suffixes, ignore_names=rules.digest_ignore_names)


def _snapshot_files(snapshot_dir: Path) -> tuple[list[TreeEntry], dict[str, bytes]]:
    entries = [_entry(snapshot_dir, relative) for relative in _walked_paths(snapshot_dir, frozenset())]
    return entries, {entry.object_id: _read(snapshot_dir, entry) for entry in entries if entry.kind in ("file", "symlink")}


def snapshot_digest(snapshot_dir: Path) -> str:
    """``_content_digest`` of a snapshot as it is now on disk. Every file counts, caches included: a
    planted ``__pycache__`` would run as much as a changed ``train.py``."""
    return _content_digest(*_snapshot_files(snapshot_dir))


def snapshot_identity(settings: Settings, snapshot_dir: Path) -> tuple[str, str]:
    """What identifies the code a snapshot holds, from one read of its files: its content digest (what
    names its folder) and its source digest (as registration computes a commit's)."""
    entries, blobs = _snapshot_files(snapshot_dir)
    return _content_digest(entries, blobs), _source_digest(entries, blobs, settings)


def _discard_if_changed(snapshot_dir: Path, digest: str) -> None:
    """Remove a cached snapshot whose files no longer hash to the ``digest`` it is named by, so the tree
    is copied again."""
    if snapshot_dir.is_dir() and snapshot_digest(snapshot_dir) != digest:
        discard(snapshot_dir)


def discard(folder: Path) -> None:
    """Remove a cached copy (a snapshot, a checkout), so it is made afresh. Moved aside first: a concurrent
    user of the same copy (a snapshot of the same tree, an export of the same commit) never sees half a folder."""
    if not folder.is_dir():
        return
    stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=folder.parent))
    with contextlib.suppress(FileNotFoundError):  # another discard moved it first
        folder.rename(stale / folder.name)
    shutil.rmtree(stale, ignore_errors=True)


def snapshot_problem(snapshot_dir: Path, digest: str) -> str | None:
    """How a snapshot's files, whose ``snapshot_digest`` is ``digest``, differ from the tree its folder
    is named by (None: they are that tree)."""
    if digest.startswith(snapshot_dir.name):
        return None
    return f"its files no longer hash to the digest its folder is named by ({digest[:12]}, not {snapshot_dir.name[:12]})"


def snapshot_worktree(settings: Settings, path: Path) -> WorktreeSnapshot:
    """Check the working tree at ``path`` as registration would and copy it into the cache; raise
    RegistrationError naming what is wrong."""
    root = path.expanduser().resolve()
    if not root.is_dir():  # callers name the path
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise RegistrationError(f"{what}; give the folder that holds your trainarena.toml")
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    # Errors name the tree as the user has it: a git working tree, or a plain folder.
    where = f"the folder {root} (not a git repository)" if listed is None else f"the working tree {root}"
    entries = [_entry(root, relative) for relative in _listed_paths(root, listed)]
    if not entries:
        seen = "is empty" if listed is None else "holds no file git sees (none yet, or all in .gitignore)"
        raise RegistrationError(f"{where} {seen}; give the folder that holds your trainarena.toml and training script")
    if listed is not None and (root / MANIFEST_NAME).is_file() and all(entry.path != MANIFEST_NAME for entry in entries):
        raise RegistrationError(f"{MANIFEST_NAME} is in {where} but git ignores it (.gitignore): a run takes the files "
                                f"git sees; stop ignoring {MANIFEST_NAME}")  # fmt: skip
    manifest_entry(entries, where)
    rules = settings.registration
    check_tree_entries(entries, rules)  # sizes and kinds first: nothing big is read
    blobs = {entry.object_id: _read(root, entry) for entry in entries if entry.kind in ("file", "symlink")}
    manifest = check_content(entries, blobs, where=where)
    digest = _content_digest(entries, blobs)
    snapshot_dir = settings.cache_dir / "worktrees" / digest[:32]
    _discard_if_changed(snapshot_dir, digest)
    export_tree(entries, blobs, snapshot_dir)
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return WorktreeSnapshot(
        path=root,
        commit=own_head(root),
        dirty=None if status is None else bool(status.strip()),
        snapshot_dir=snapshot_dir,
        manifest=manifest,
        source_digest=_source_digest(entries, blobs, settings),
    )


def own_head(folder: Path) -> str | None:
    """The HEAD commit of the git repository whose top is ``folder``, or None: not a repository, no
    commit yet, or a folder inside another repository (a script copied into the trainarena checkout),
    whose HEAD is the enclosing checkout's, not the script's."""
    root = folder.expanduser().resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:
        return None
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return None if head is None else head.strip()


def changes_left_out(repo_url: str, commit: str) -> list[str]:
    """The uncommitted and untracked paths of the local working tree at ``repo_url`` (a ``file://`` URL
    as registration stores it) when its HEAD is ``commit``: what a competitor tried with `trainarena run
    --repo` and then registered at `git rev-parse HEAD` without committing, which the registration leaves
    out. Empty for a remote repository or another commit: no working tree was being registered."""
    root = local_repo_path(repo_url)
    if root is None:
        return []
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None or head.strip() != commit:
        return []
    status = _git(root, "status", "--porcelain", "--untracked-files=normal")
    return [line[3:] for line in (status or "").splitlines() if line.strip()]  # "XY PATH" (git quotes odd names)

