"""Facts about a finished run read from disk for its statement: file digests of the artifact and the
logs, the sandbox and the limits its backend says it applied (``logs/sandbox.txt``), the digests of
the task's base model and splits, and the platform's environment."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import sys
import threading
from pathlib import Path
from typing import Any

import trainarena
from trainarena.tasks.digests import path_digest

__all__ = ["environment", "file_subjects", "folder_digest", "sandbox_applied", "split_digests"]

# The libraries a trained model's result depends on, named with their versions in every run statement.
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "diffusers", "safetensors", "tokenizers")
SANDBOX_LOG = "sandbox.txt"


def file_subjects(folder: Path | None) -> list[dict[str, Any]]:
    """Every regular file under ``folder`` as ``{name, digest: {sha256}, size}``, by relative path.
    Links are left out: the artifact checks refuse them, and the registry never follows one."""
    if folder is None or not Path(folder).is_dir():
        return []
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())
    return [{"name": p.relative_to(folder).as_posix(), "digest": {"sha256": folder_digest(p)}, "size": p.stat().st_size}
            for p in files]


@functools.lru_cache(maxsize=4096)
def _cached_digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    return path_digest(Path(path))


# One lock per digest being computed: an lru_cache lets concurrent misses each compute, so threads
# asking for the same path and stamp at once (parallel requests) wait on the first instead of hashing again.
_COMPUTING: dict[tuple[str, tuple[tuple[str, int, int], ...]], threading.Lock] = {}
_COMPUTING_GUARD = threading.Lock()


def _digest_once(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    key = (path, stamp)
    with _COMPUTING_GUARD:
        lock = _COMPUTING.setdefault(key, threading.Lock())
    try:
        with lock:
            return _cached_digest(path, stamp)  # the waiters find the first one's result cached
    finally:
        with _COMPUTING_GUARD:
            if _COMPUTING.get(key) is lock:
                del _COMPUTING[key]


def folder_digest(path: Path | None) -> str | None:
    """``tasks.digests.path_digest`` of a file or folder (None when absent), cached while none of its
    files changed modification time or size: a tournament's runs share the same base model and splits.
    Concurrent calls for the same unchanged path hash it once."""
    if path is None or not Path(path).exists():
        return None
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _digest_once(str(path), stamp)


def split_digests(prepared: dict[str, Any]) -> dict[str, str | None]:
    """The digests a run statement gives of a prepared task's splits (``PreparedTask.to_json()``): the
    train file the script got, and the whole hidden folder its artifact was scored on."""
    train, hidden = prepared.get("train_file"), prepared.get("hidden_file")
    return {"train_split_sha256": folder_digest(Path(train)) if train else None,
            "hidden_split_sha256": folder_digest(Path(hidden).parent) if hidden else None}


def sandbox_applied(log_dir: Path | None) -> dict[str, Any]:
    """The backend and the limits it applied, as its ``logs/sandbox.txt`` states them line by line."""
    path = None if log_dir is None else Path(log_dir) / SANDBOX_LOG
    if path is None or not path.is_file():
        return {"backend": None, "applied": [], "note": "the run never reached a sandbox (no sandbox.txt)"}
    lines = path.read_text(errors="replace").splitlines()
    backend = next((line.removeprefix("backend=") for line in lines if line.startswith("backend=")), None)
    return {"backend": backend, "applied": [line for line in lines if not line.startswith("backend=")]}


@functools.cache
def environment() -> dict[str, Any]:
    """The interpreter, the platform, the library versions and the digests of the lock file (when the
    package runs from a checkout) and of every installed distribution."""
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                       if d.metadata["Name"])
    lock = Path(trainarena.__file__).resolve().parents[2] / "requirements.lock"
    return {
        "trainarena": trainarena.__version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "lock_file_sha256": path_digest(lock) if lock.is_file() else None,
        "installed_sha256": hashlib.sha256("\n".join(installed).encode()).hexdigest(),
    }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
