"""Register a competitor: ``repo@commit`` -> a checked, content-addressed :class:`Registration`.

Steps, each a small function: check the name and the commit (no network), fetch the repository into a
cache keyed by its normalized URL, check the commit exists, list its tree and reject forbidden content
(weights, datasets, big files, submodules, links leaving the repository), read and validate
``trainarena.toml``, compute the tree hash and the source digest, and export the tree into a checkout
directory keyed by commit that runs bind read-only. Nothing here touches the store: the result is a
plain value, and :func:`find_copies` compares it with already registered competitors the caller passes in.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from trainarena.contract import MANIFEST_NAME, name_problem
from trainarena.settings import RegistrationRules, Settings
from trainarena.submissions import git
from trainarena.submissions.digest import source_digest
from trainarena.submissions.errors import RegistrationError
from trainarena.submissions.manifest import Manifest, parse_manifest
from trainarena.submissions.mirror_quota import fetch_within_quota

_MB = 1024 * 1024


@dataclass(frozen=True)
class Registration:
    """A repository at a commit that passed every registration check."""

    name: str
    repo_url: str  # normalized: the cache key and what the store records
    commit: str  # full lower-case SHA-1
    tree_hash: str  # git tree of the commit: equal trees are byte-identical repositories
    source_digest: str  # see submissions.digest: equal digests are the same code modulo cosmetics
    manifest: Manifest
    checkout_dir: Path  # the exported tree; bound read-only as /submission
    file_count: int
    total_bytes: int

    @property
    def entrypoint(self) -> str:
        return self.manifest.entrypoint


class RegisteredCompetitor(Protocol):
    """What copy detection needs to know about an existing competitor (the store's rows fit)."""

    name: str
    repo_url: str
    commit: str
    tree_hash: str
    source_digest: str


@dataclass(frozen=True)
class CopyMatch:
    kind: Literal["tree_hash", "source_digest"]
    other_name: str
    other_commit: str

    @property
    def message(self) -> str:
        """Names the other competitor and its commit, not its repository: the message reaches the key
        that registers, and the other's repository may be a folder on the server (the operator's champion)."""
        what = "the same tree (identical files)" if self.kind == "tree_hash" else "the same source code modulo comments and layout"
        return f"has {what} as competitor {self.other_name!r} (commit {self.other_commit[:12]})"


def repo_mirror_path(settings: Settings, normalized_url: str) -> Path:
    return settings.cache_dir / "repos" / git.repo_cache_key(normalized_url)


def checkout_path(settings: Settings, commit: str) -> Path:
    """Where the tree of ``commit`` is exported for runs (content-addressed: one directory per commit)."""
    return settings.cache_dir / "checkouts" / git.check_commit_sha(commit)


def check_name(name: str, rules: RegistrationRules) -> str:
    problem = name_problem("competitor", name, rules.name_max_length)
    if problem is not None:
        raise RegistrationError(problem)
    return name


def register(settings: Settings, *, name: str, repo: str, commit: str, quota_key: int | None = None) -> Registration:
    """Fetch (within ``quota_key``'s mirror quota; None: not limited), check and export ``repo`` at
    ``commit``; raise RegistrationError with the reason."""
    rules = settings.registration
    name = check_name(name, rules)
    sha = git.check_commit_sha(commit)
    url = git.normalize_repo_url(repo)
    mirror = repo_mirror_path(settings, url)
    timeout = rules.git_timeout_seconds
    fetch_within_quota(settings, quota_key, url, mirror, sha)
    if not git.has_commit(mirror, sha, timeout=timeout):
        raise RegistrationError(
            f"commit {sha} is not in {url} (fetched every branch and tag); push it and register again"
        )
    entries = git.list_tree(mirror, sha, timeout=timeout)
    where = f"the commit's tree ({sha[:12]})"
    manifest_entry(entries, where)
    check_tree_entries(entries, rules)
    files = [entry for entry in entries if entry.kind == "file"]
    blobs = git.read_blobs(mirror, [entry.object_id for entry in entries if entry.kind != "submodule"], timeout=timeout)
    manifest = check_content(entries, blobs, where=where)
    checkout = checkout_path(settings, sha)
    export_tree(entries, blobs, checkout)
    return Registration(
        name=name,
        repo_url=url,
        commit=sha,
        tree_hash=git.tree_hash(mirror, sha, timeout=timeout),
        source_digest=source_digest(
            ((entry.path, blobs[entry.object_id]) for entry in files),
            ignore_suffixes=rules.digest_ignore_suffixes,
            ignore_names=rules.digest_ignore_names,
        ),
        manifest=manifest,
        checkout_dir=checkout,
        file_count=len(files),
        total_bytes=sum(entry.size for entry in files),
    )


def _capped(items: list[str], cap: int) -> str:
    shown = ", ".join(items[:cap])
    return shown + (f" (and {len(items) - cap} more)" if len(items) > cap else "")


def check_tree_entries(entries: Iterable[git.TreeEntry], rules: RegistrationRules) -> None:
    """Reject weights and datasets, big files, a big tree and submodules, naming every offending path."""
    entries = list(entries)
    cap = rules.max_reported_paths
    problems = []
    suffixes = tuple(s.lower() for s in rules.forbidden_suffixes)
    forbidden = [e.path for e in entries if e.path.lower().endswith(suffixes)]
    if forbidden:
        problems.append(
            f"model weights or datasets must not be in the repository ({', '.join(rules.forbidden_suffixes)}; "
            f"the platform provides the model and data): {_capped(forbidden, cap)}"
        )
    big = [f"{e.path} ({e.size / _MB:.1f} MB)" for e in entries if e.size > rules.max_file_mb * _MB]
    if big:
        problems.append(f"files larger than {rules.max_file_mb:g} MB: {_capped(big, cap)}")
    total = sum(e.size for e in entries)
    if total > rules.max_repo_mb * _MB:
        problems.append(f"the tree holds {total / _MB:.1f} MB, over the {rules.max_repo_mb:g} MB limit")
    submodules = [e.path for e in entries if e.kind == "submodule"]
    if submodules:
        problems.append(f"submodules are not fetched, vendor their code instead: {_capped(submodules, cap)}")
    others = [f"{e.path} (mode {e.mode})" for e in entries if e.kind == "other"]
    if others:
        problems.append(f"entries of an unsupported kind: {_capped(others, cap)}")
    if problems:
        raise RegistrationError("repository rejected: " + "; ".join(problems))


def check_content(entries: list[git.TreeEntry], blobs: dict[str, bytes], *, where: str) -> Manifest:
    """The checks on what the files hold (after :func:`check_tree_entries`): a valid manifest, its
    entrypoint a file of the tree, no link leaving the tree. Returns the manifest. ``where`` names the
    tree in the errors, as the user knows it ("the commit's tree (1a2b3c4d5e6f)", "the folder /src/x")."""
    manifest = _manifest(entries, blobs, where)
    _check_entrypoint(manifest, entries, where)
    _check_symlinks(entries, blobs)
    return manifest


def manifest_entry(entries: list[git.TreeEntry], where: str) -> git.TreeEntry:
    """The manifest's entry at the root of the tree. Checked before :func:`check_tree_entries`, so that a
    tree that is no competitor's (a `--repo` one folder too high) is named for its missing manifest,
    not for the weights and sizes of whatever it holds."""
    entry = next((e for e in entries if e.path == MANIFEST_NAME and e.kind == "file"), None)
    if entry is None:
        raise RegistrationError(
            f"no {MANIFEST_NAME} at the root of {where}; add one with [trainarena] contract = 1 and "
            'entrypoint = "train.py" (docs/contract.md, "The manifest")'
        )
    return entry


def _manifest(entries: list[git.TreeEntry], blobs: dict[str, bytes], where: str) -> Manifest:
    entry = manifest_entry(entries, where)
    try:
        text = blobs[entry.object_id].decode("utf-8")
    except UnicodeDecodeError as error:
        raise RegistrationError(f"{MANIFEST_NAME} is not UTF-8 text") from error
    return parse_manifest(text)


def _check_entrypoint(manifest: Manifest, entries: list[git.TreeEntry], where: str) -> None:
    entry = next((e for e in entries if e.path == manifest.entrypoint), None)
    if entry is None:
        folder = any(e.path.startswith(f"{manifest.entrypoint}/") for e in entries)
        what = "a folder, not a file," if folder else "not"
        raise RegistrationError(f"entrypoint {manifest.entrypoint!r} named in {MANIFEST_NAME} is {what} in {where}")
    if entry.kind != "file":
        raise RegistrationError(f"entrypoint {manifest.entrypoint!r} must be a regular file, not a {entry.kind}")


# As the kernel's limit on links followed in one lookup: past it a lookup fails (ELOOP), here it is refused.
_MAX_LINKS_FOLLOWED = 40


def _check_symlinks(entries: list[git.TreeEntry], blobs: dict[str, bytes]) -> None:
    """A link may point inside the repository only: outside it would read the host in a sandbox-less run.
    Links are followed through the tree as the kernel would (``b -> .`` then ``a -> b/b/../..`` climbs
    two levels, which the text alone does not show)."""
    links = {}
    for entry in (entry for entry in entries if entry.kind == "symlink"):
        try:  # as the export writes it: a target it cannot write is refused here, in words
            links[entry.path] = blobs[entry.object_id].decode("utf-8")
        except UnicodeDecodeError:
            raise RegistrationError(f"symbolic link {entry.path} points at a name that is not UTF-8") from None
        if "\0" in links[entry.path]:
            raise RegistrationError(f"symbolic link {entry.path} points at a name holding a NUL byte")
    escaping = [f"{path} -> {target}" for path, target in links.items()
                if _escapes(list(PurePosixPath(path).parent.parts) + target.split("/"), links)]
    if escaping:
        raise RegistrationError(f"symbolic links must stay inside the repository: {', '.join(escaping)}")


def _escapes(components: list[str], links: dict[str, str]) -> bool:
    """Whether the path ``components`` (from the repository root) leaves it, following the tree's links;
    a path that follows too many links is refused as escaping."""
    if components and components[0] == "":
        return True  # absolute
    resolved: list[str] = []
    pending, followed = list(reversed(components)), 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return True
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is None:
            continue
        followed += 1
        if followed > _MAX_LINKS_FOLLOWED or target.startswith("/"):
            return True
        resolved.pop()  # the link is replaced by its target, read from the link's folder
        pending.extend(reversed(target.split("/")))
    return False


def export_tree(entries: list[git.TreeEntry], blobs: dict[str, bytes], destination: Path) -> None:
    """Write the tree into ``destination`` atomically (staged, then renamed); an existing export of the
    same commit is kept, since a commit's tree never changes."""
    if destination.exists():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=destination.parent))
    # Readable as its files are (mkdtemp makes it 0700): the docker backend's container user is not the platform's.
    staging.chmod(0o755)
    try:
        for entry in entries:
            if entry.kind == "submodule":
                continue
            parts = PurePosixPath(entry.path).parts
            if any(part in ("", ".", "..", ".git") for part in parts):  # git refuses these; a crafted tree may not
                raise RegistrationError(f"unsafe path in the tree: {entry.path!r}")
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            content = blobs[entry.object_id]
            if entry.kind == "symlink":
                target.symlink_to(content.decode())
            else:
                target.write_bytes(content)
                target.chmod(0o755 if entry.mode == "100755" else 0o644)
        try:
            staging.rename(destination)
        except OSError:
            if not destination.is_dir():
                raise
            # another registration of the same commit exported it first; the content is the same
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find_copies(registration: Registration, existing: Iterable[RegisteredCompetitor]) -> list[CopyMatch]:
    """Existing competitors with the same tree hash or source digest (one match per competitor, the
    stronger kind first). A competitor registered under the same name is not its own copy."""
    matches = []
    for other in existing:
        if other.name == registration.name:
            continue
        if other.tree_hash == registration.tree_hash:
            kind: Literal["tree_hash", "source_digest"] = "tree_hash"
        elif other.source_digest == registration.source_digest:
            kind = "source_digest"
        else:
            continue
        matches.append(CopyMatch(kind=kind, other_name=other.name, other_commit=other.commit))
    return sorted(matches, key=lambda m: (m.kind != "tree_hash", m.other_name))
