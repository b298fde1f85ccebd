"""Memory caps for a run: a cgroup v2 ``memory.max`` where the platform may write one, else RLIMIT_AS.

cgroup v2 (preferred): a child cgroup of the platform's own, with ``memory.max`` = the limit and
``memory.swap.max`` = 0; it covers every process of the run together, page cache included, and the
kernel OOM-kills inside the cgroup only. It is used only when ``/sys/fs/cgroup`` is a cgroup v2
hierarchy, the platform's cgroup already delegates the ``memory`` controller to its children
(``cgroup.subtree_control``) and the platform may create a child there; we never enable controllers
ourselves.

RLIMIT_AS (fallback, set in the child before exec): caps the *virtual address space of each process*.
It does not cover the sum over processes (a script may fork N workers of the limit each) and counts
reserved-but-untouched memory (so it is stricter than resident memory for allocators that reserve
big arenas).

RLIMIT_DATA (fallback for runs with GPUs assigned): the CUDA driver reserves far more virtual address
space than any sane RLIMIT_AS, so cuInit fails under it (measured on an H200: cuInit returned
CUDA_ERROR_OUT_OF_MEMORY under an 8 GiB RLIMIT_AS, and succeeded - context created - under an 8 GiB
RLIMIT_DATA). RLIMIT_DATA caps each process's private writable mappings (heap, anonymous mmap) but
not shared or file-backed mappings, nor the sum over processes. ``MemoryLimit.kind`` says which cap
applied; backends write it to the run's ``sandbox.txt``.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class MemoryLimit:
    """One run's memory cap: ``preexec`` runs in the child before exec, ``close`` after the run."""

    kind: str  # "cgroup-v2" | "rlimit-as" | "rlimit-data"
    limit_bytes: int
    cgroup_dir: Path | None = None

    def preexec(self) -> Callable[[], None] | None:
        if self.kind in ("rlimit-as", "rlimit-data"):
            limit = self.limit_bytes
            which = resource.RLIMIT_AS if self.kind == "rlimit-as" else resource.RLIMIT_DATA

            def _set_rlimit() -> None:
                resource.setrlimit(which, (limit, limit))

            return _set_rlimit
        if self.kind == "cgroup-v2" and self.cgroup_dir is not None:
            procs = str(self.cgroup_dir / "cgroup.procs")

            def _join_cgroup() -> None:
                with open(procs, "w") as fh:  # noqa: PTH123 - runs between fork and exec: keep it minimal
                    fh.write(str(os.getpid()))

            return _join_cgroup
        return None

    def close(self) -> None:
        if self.cgroup_dir is not None:
            with contextlib.suppress(OSError):
                self.cgroup_dir.rmdir()  # empty once every process of the run is gone


def memory_limit_for(run_name: str, limit_mb: int, has_gpus: bool, cgroup_root: Path = CGROUP_ROOT) -> MemoryLimit:
    """The strongest memory cap this machine allows for one run (see the module docstring)."""
    limit_bytes = limit_mb * 1024 * 1024
    cgroup_dir = _make_cgroup_v2(run_name, limit_bytes, cgroup_root)
    if cgroup_dir is not None:
        return MemoryLimit("cgroup-v2", limit_bytes, cgroup_dir)
    if has_gpus:
        return MemoryLimit("rlimit-data", limit_bytes)
    return MemoryLimit("rlimit-as", limit_bytes)


def _own_cgroup(cgroup_root: Path) -> Path | None:
    if not (cgroup_root / "cgroup.controllers").is_file():
        return None  # not a cgroup v2 hierarchy (v1 or hybrid)
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return cgroup_root / line[3:].lstrip("/")
    return None


def _make_cgroup_v2(run_name: str, limit_bytes: int, cgroup_root: Path) -> Path | None:
    parent = _own_cgroup(cgroup_root)
    if parent is None:
        return None
    try:
        if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
            return None
        child = parent / f"trainarena-{run_name}"
        child.mkdir(exist_ok=False)
    except OSError:
        return None
    try:
        (child / "memory.max").write_text(str(limit_bytes))
        if (child / "memory.swap.max").exists():
            (child / "memory.swap.max").write_text("0")
    except OSError:
        child.rmdir()  # a cgroup directory is removed with rmdir, its control files with it
        return None
    return child
