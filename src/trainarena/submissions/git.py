"""Git plumbing for registration: validate what a competitor gives us, fetch it, read its tree.

Protects against: arguments that git would read as options (``--upload-pack=...``; every repository
argument follows ``--``), remote helpers that run commands (``ext::``; only https, ssh and file
transports are allowed, also through ``GIT_ALLOW_PROTOCOL``), credential prompts that would hang a
validator (``GIT_TERMINAL_PROMPT=0``), slow or endless fetches (a timeout on every call), and hooks or
config inside the fetched repository (a bare mirror never runs them), and a clone or fetch past a size
its caller gives (``max_bytes``: the key's room, ``submissions.mirror_quota``; git is stopped once the
mirror's folder passes it, polled every ``WATCH_SECONDS``). It does not protect against a malicious server
exhausting disk within the timeout where no size is given, nor against two processes fetching the same
cache at once (the mirror is created atomically, later fetches are git's own business).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from trainarena.submissions.errors import RegistrationError

_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_TAG_LIKE = re.compile(r"(refs/tags/.+|v?\d+(\.\d+)+([-+.].*)?|v\d+.*)")
_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>(?!//).+)")
_ALLOWED_SCHEMES = ("https", "ssh", "file")
_MODE_KINDS = {"100644": "file", "100755": "file", "120000": "symlink", "160000": "submodule"}
GIT_MISSING = "git is not installed on this machine; install git to register competitors"
WATCH_SECONDS = 0.2  # how often a bounded clone or fetch's folder is measured: git writes at most this long past the bound


class MirrorTooLarge(RegistrationError):
    """A clone or fetch passed the ``max_bytes`` it was given and was stopped; ``size`` is the mirror's then."""

    def __init__(self, url: str, command: str, size: int, max_bytes: int) -> None:
        super().__init__(f"the git {command} of {url} passed {max_bytes:,} bytes ({size:,} written) and was stopped")
        self.size = size


def check_commit_sha(commit: str) -> str:
    """Return ``commit`` as a lower-case 40-hex SHA-1, or say what it looks like and what is needed."""
    value = commit.strip()
    if _FULL_SHA.fullmatch(value.lower()):
        return value.lower()
    need = "a full 40-character commit SHA (run `git rev-parse HEAD` in your repository)"
    if not value:
        raise RegistrationError(f"the commit is empty; give {need}")
    if _HEX.fullmatch(value) and len(value) < 40:
        kind = f"an abbreviated SHA ({len(value)} characters)"
    elif _HEX.fullmatch(value):
        kind = f"a {len(value)}-character hex string (too long for a SHA-1)"
    elif _TAG_LIKE.fullmatch(value):
        kind = "a tag name"
    else:
        kind = "a branch or other ref name"
    raise RegistrationError(
        f"commit {value!r} looks like {kind}; refs move, so registration needs {need}"
    )


def normalize_repo_url(repo: str) -> str:
    """One spelling per repository, used as the cache key: https/ssh URLs lower-case their scheme and
    host and drop a trailing ``/`` or ``.git``; ``user@host:path`` becomes ``ssh://``; a local path or
    ``file://`` URL becomes ``file://`` + the resolved absolute path (which must be a directory)."""
    value = repo.strip()
    if not value:
        raise RegistrationError("the repository is empty; give an https or ssh URL or a local path")
    if value.startswith("-"):
        raise RegistrationError(f"repository {value!r} must not start with '-'")
    if "::" in value.split("/", 1)[0]:
        raise RegistrationError(f"repository {value!r} uses a git remote helper; only https, ssh and file are allowed")
    parts = urlsplit(value)
    if parts.scheme and "://" in value:
        return _normalize_url(value, parts.scheme.lower())
    scp = _SCP_LIKE.fullmatch(value)
    if scp and not Path(value).exists():
        return _normalize_url(f"ssh://{scp['user'] or ''}{scp['host']}/{scp['path'].lstrip('/')}", "ssh")
    return _local_url(Path(value))


def is_remote_repo(repo: str) -> bool:
    """Whether ``repo`` names a repository on another host (an https or ssh URL, ``user@host:path``)
    rather than a path or ``file://`` URL on this machine, read as :func:`normalize_repo_url` reads it."""
    value = repo.strip()
    parts = urlsplit(value)
    if parts.scheme and "://" in value:
        return parts.scheme.lower() != "file"
    return _SCP_LIKE.fullmatch(value) is not None and not Path(value).exists()


def local_repo_path(repo_url: str) -> Path | None:
    """The folder a stored ``file://`` repository URL names (as :func:`normalize_repo_url` stores a local
    repository); None for a remote repository."""
    parts = urlsplit(repo_url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _normalize_url(value: str, scheme: str) -> str:
    parts = urlsplit(value)
    if parts.password is not None or (parts.username is not None and scheme in ("http", "https")):
        # The URL is stored, shown on the dashboard and the API, and signed into the append-only
        # records log: a token in it would be published for good. Nor is it echoed here.
        shown = urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
        raise RegistrationError(
            f"repository URL {shown!r} carries credentials (user:password@ or a token before the host); the URL is "
            "published in signed records, so it must not: give the URL without them and let git find them on the "
            "platform's host (a credential helper, or an ssh deploy key with git@host:path)"
        )
    if scheme not in _ALLOWED_SCHEMES:
        raise RegistrationError(
            f"repository {value!r} uses {scheme}://; allowed are https://, ssh://, git@host:path, "
            "file:// and local paths"
        )
    parts = urlsplit(value)
    if scheme == "file":
        return _local_url(Path(parts.path))
    if not parts.hostname:
        raise RegistrationError(f"repository URL {value!r} has no host")
    if parts.query or parts.fragment:
        raise RegistrationError(f"repository URL {value!r} must not carry a query or fragment")
    netloc = parts.netloc.rsplit("@", 1)
    netloc[-1] = netloc[-1].lower()
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return urlunsplit((scheme, "@".join(netloc), path, "", ""))


def _local_url(path: Path) -> str:
    resolved = path.expanduser().resolve()
    if not resolved.is_dir():
        raise RegistrationError(f"repository {str(path)!r} is not a directory (nor an https/ssh URL)")
    return resolved.as_uri()


def repo_cache_key(normalized_url: str) -> str:
    return hashlib.sha256(normalized_url.encode()).hexdigest()


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ALLOW_PROTOCOL="https:ssh:file",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",
        LC_ALL="C",
    )
    return env


def _git(args: list[str], *, timeout: float, cwd: Path | None = None, check: bool = True,
         stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, env=_git_env(), input=stdin,
                                capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as error:
        raise RegistrationError(GIT_MISSING) from error
    except subprocess.TimeoutExpired as error:
        raise RegistrationError(f"git {args[0]} took longer than {timeout:g} s and was stopped") from error
    if check and result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-800:]
        raise RegistrationError(f"git {args[0]} failed: {message or f'exit code {result.returncode}'}")
    return result


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it is not there); files git removes or renames
    while they are counted are left out."""
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _watched_git(args: list[str], folder: Path, url: str, *, timeout: float, max_bytes: int | None,
                 cwd: Path | None = None) -> tuple[int, str]:
    """Run git ``args`` (a clone or fetch that writes into ``folder``) and return its exit code and stderr;
    stopped (MirrorTooLarge) once ``folder`` passes ``max_bytes``, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    try:  # its own process group: index-pack and a file:// upload-pack are stopped with it
        process = subprocess.Popen(["git", *args], cwd=cwd, env=_git_env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    except FileNotFoundError as error:
        raise RegistrationError(GIT_MISSING) from error
    with process:
        while True:
            try:
                _out, stderr = process.communicate(timeout=WATCH_SECONDS)
                break
            except subprocess.TimeoutExpired:
                written = 0 if max_bytes is None else folder_bytes(folder)
                over = max_bytes is not None and written > max_bytes
                if over or time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):  # the group ended since the last look
                        os.killpg(process.pid, signal.SIGKILL)
                    process.communicate()
                    if over:
                        raise MirrorTooLarge(url, args[0], written, max_bytes) from None
                    raise RegistrationError(f"git {args[0]} took longer than {timeout:g} s and was stopped") from None
    if max_bytes is not None and (written := folder_bytes(folder)) > max_bytes:  # written after the last look
        raise MirrorTooLarge(url, args[0], written, max_bytes)
    return process.returncode, stderr.decode(errors="replace")


def _clone(url: str, target: Path, *, timeout: float, max_bytes: int | None) -> None:
    """``git clone --mirror`` into ``target``, stopped (MirrorTooLarge) once ``target`` passes ``max_bytes``."""
    returncode, stderr = _watched_git(["clone", "--mirror", "--quiet", "--", url, str(target)], target, url,
                                      timeout=timeout, max_bytes=max_bytes)  # fmt: skip
    if returncode != 0:
        raise RegistrationError(_clone_failure(url, stderr))


def _fetch(url: str, mirror: Path, arguments: list[str], *, timeout: float, max_bytes: int | None,
           check: bool) -> None:
    """``git fetch arguments`` into ``mirror``, stopped once the mirror passes ``max_bytes``; a fetch
    stopped midway leaves the mirror as it was. Every fetch writes one pack (``fetch.unpackLimit=1``, not loose
    objects), so what a stopped one wrote is git's temporary pack files, removed here."""
    args = ["-c", "fetch.unpackLimit=1", "fetch", "--quiet", *arguments]
    try:
        returncode, stderr = _watched_git(args, mirror, url, cwd=mirror, timeout=timeout, max_bytes=max_bytes)
    except RegistrationError:
        for leftover in [*mirror.glob("objects/pack/tmp_*"), *mirror.glob("objects/??/tmp_obj_*")]:
            leftover.unlink(missing_ok=True)
        raise
    if check and returncode != 0:
        raise RegistrationError(f"git fetch failed: {stderr.strip()[-800:] or f'exit code {returncode}'}")


def _clone_failure(url: str, stderr: str) -> str:
    """One line for a clone git refused: its first complaint, or what to do with a folder that is not a repository."""
    complaints = [line.strip().removeprefix("fatal: ") for line in stderr.splitlines() if line.strip()]
    if any("does not appear to be a git repository" in line for line in complaints):
        return (f"{url} is not a git repository: commit the script there (git init, git add, git commit) and register "
                "that commit; `trainarena run --repo PATH` tries a folder without registering it")  # fmt: skip
    return f"git clone of {url} failed: {complaints[0] if complaints else 'no reason given'}"


def fetch_mirror(url: str, mirror: Path, commit: str, *, timeout: float, max_bytes: int | None = None) -> None:
    """Make ``mirror`` a bare mirror of ``url`` that contains ``commit`` if the remote has it; a clone or
    fetch is stopped (MirrorTooLarge) once the mirror passes ``max_bytes`` (None: no bound): nothing of a new
    mirror's clone is kept, a mirror fetched into is left as it was."""
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=mirror.parent))
        try:
            _clone(url, staging / "repo.git", timeout=timeout, max_bytes=max_bytes)
            try:
                (staging / "repo.git").rename(mirror)  # atomic: a half-clone is never seen as the cache
            except OSError:
                if not mirror.is_dir():
                    raise
                # a concurrent registration of the same repository made the mirror first: use it
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    elif not has_commit(mirror, commit, timeout=timeout):
        _fetch(url, mirror, ["--prune", "origin"], timeout=timeout, max_bytes=max_bytes, check=True)
    if not has_commit(mirror, commit, timeout=timeout):
        # Not on any branch or tag: hosts such as GitHub still serve a reachable SHA by name.
        _fetch(url, mirror, ["origin", commit], timeout=timeout, max_bytes=max_bytes, check=False)


def has_commit(mirror: Path, commit: str, *, timeout: float) -> bool:
    return _git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=mirror, timeout=timeout, check=False).returncode == 0


def tree_hash(mirror: Path, commit: str, *, timeout: float) -> str:
    return _git(["rev-parse", f"{commit}^{{tree}}"], cwd=mirror, timeout=timeout).stdout.decode().strip()


@dataclass(frozen=True)
class TreeEntry:
    path: str  # POSIX, relative to the repository root
    mode: str  # git mode: 100644, 100755, 120000 (symlink), 160000 (submodule)
    object_id: str
    size: int  # bytes; 0 for submodules

    @property
    def kind(self) -> str:
        return _MODE_KINDS.get(self.mode, "other")


def list_tree(mirror: Path, commit: str, *, timeout: float) -> list[TreeEntry]:
    """Every entry of the commit's tree, recursively, without checking anything out."""
    output = _git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit], cwd=mirror, timeout=timeout).stdout
    entries = []
    for record in output.decode("utf-8", errors="surrogateescape").split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, _kind, object_id, size = meta.split()
        entries.append(TreeEntry(path=path, mode=mode, object_id=object_id, size=0 if size == "-" else int(size)))
    return entries


def read_blobs(mirror: Path, object_ids: list[str], *, timeout: float) -> dict[str, bytes]:
    """Contents of the given blobs, read in one ``git cat-file --batch`` call."""
    unique = list(dict.fromkeys(object_ids))
    if not unique:
        return {}
    output = _git(["cat-file", "--batch"], cwd=mirror, timeout=timeout, stdin="\n".join(unique).encode() + b"\n").stdout
    blobs: dict[str, bytes] = {}
    position = 0
    for object_id in unique:
        header_end = output.index(b"\n", position)
        header = output[position:header_end].decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise RegistrationError(f"git object {object_id} could not be read as a file: {' '.join(header)}")
        size = int(header[2])
        blobs[object_id] = output[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1  # content is followed by a newline
    return blobs
