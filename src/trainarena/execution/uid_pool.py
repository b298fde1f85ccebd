"""A host uid of its own for each live sandbox, when the platform runs as root
(``sandbox.run_as_pool``).

Why: with ``run_as`` alone every run on the host is the same user, so a script that escaped its
namespaces could signal, ptrace or write into the runs alive beside it, and where the host has no
pids cgroup RLIMIT_NPROC counts all of their processes together. From a pool each sandbox takes a
uid that no other live sandbox holds: processes of different uids cannot signal or trace each other,
and the process cap is the run's own. The gid stays ``run_as`` for all of them: the cached inputs
are shared with the runs through their group (``host_user.share_inputs``), and a file has one group.

Leases are host-wide, since several platforms (a Ray worker beside a driver, two data directories)
may share one host: an exclusive ``flock`` on one file per uid under :data:`LEASE_DIR`. The kernel
drops it when the holder closes it or dies, so a crashed platform leaves no uid taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LEASE_DIR", "UidPool"]

LEASE_DIR = Path("/run/trainarena/host-uids")  # root's; /run is a tmpfs, emptied at boot
SUBUID = Path("/etc/subuid")
_POLL_SECONDS = 0.2
# UidPool.holders' answer for this host, by (first, last) uid: the accounts and /etc/subuid are read
# once per process and pool (a change to them reaches a running platform at its restart).
_HOST_HOLDERS: dict[tuple[int, int], tuple[str, ...]] = {}


@dataclass(frozen=True)
class UidPool:
    """Host uids ``first`` .. ``first + count - 1``, leased one per sandbox."""

    first: int
    count: int
    lease_dir: Path = LEASE_DIR

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def describe(self) -> str:
        return f"uids {self.first}-{self.last}" if self.count > 1 else f"uid {self.first}"

    def holders(self, accounts: Iterable[tuple[str, int]] | None = None, subuid: Path = SUBUID) -> list[str]:
        """Who on this host already has uids of the pool: accounts (``daemon (uid 1)``, from the user
        database unless ``accounts`` gives (name, uid) pairs) and the subordinate ranges /etc/subuid
        gives users' rootless containers. A run as one of them could, after an escape, use what it owns.
        The host's own answer (no ``accounts``, the default ``subuid``) is read once per process for
        each range, not at every sandbox start (a GRPO task starts a sandbox for each reward call)."""
        if accounts is not None or subuid != SUBUID:
            return self._holders(_accounts() if accounts is None else accounts, subuid)
        key = (self.first, self.last)
        if key not in _HOST_HOLDERS:
            _HOST_HOLDERS[key] = tuple(self._holders(_accounts(), subuid))
        return list(_HOST_HOLDERS[key])

    def _holders(self, accounts: Iterable[tuple[str, int]], subuid: Path) -> list[str]:
        found = [f"{name} (uid {uid})" for name, uid in accounts if self.first <= uid <= self.last]
        with contextlib.suppress(OSError):
            for line in _read_lines(subuid):
                owner, _, rest = line.partition(":")
                start, _, size = rest.partition(":")
                if start.isdigit() and size.isdigit() and int(start) <= self.last and self.first < int(start) + int(size):
                    found.append(f"{owner}'s subordinate uids {start}-{int(start) + int(size) - 1} (/etc/subuid)")
        return found

    @contextlib.contextmanager
    def lease(self) -> Iterator[tuple[int, float]]:
        """A uid no other live sandbox on this host holds, and the seconds waited for it. When every
        uid is held (more sandboxes at once than the pool has uids) it waits for one, as a run waits
        for a GPU: each lease ends with its sandbox, which ends by its budget."""
        self.lease_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        started = time.monotonic()
        while True:
            for uid in range(self.first, self.first + self.count):
                fd = os.open(self.lease_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                try:
                    yield uid, time.monotonic() - started
                finally:
                    os.close(fd)  # releases the lock
                return
            time.sleep(_POLL_SECONDS)


def _accounts() -> list[tuple[str, int]]:
    return [(entry.pw_name, entry.pw_uid) for entry in pwd.getpwall()]


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()
