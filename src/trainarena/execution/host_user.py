"""Who a sandbox runs as on the host: an unprivileged uid when the platform runs as root.

Why: bwrap started by root leaves the script's processes host uid 0 (capabilities dropped, but a
kernel bug that escapes the namespaces, or a file a bind exposes, is then root's). With
``SandboxRules.run_as`` set, bwrap is started as that uid and gid (nobody by default) instead: it
builds its user namespace unprivileged, the script still sees ``sandbox_uid`` inside, and the host
sees every process of the run as ``run_as``. With ``SandboxRules.run_as_pool`` each sandbox takes a
uid of its own from a pool instead (``execution.uid_pool``), the gid staying ``run_as``; the docker
backend leases its containers' uids the same way (:func:`pool_user`, :func:`leased`).

The catch is reaching the binds: the run's folders sit under 0700 folders of the data directory
(``runs/``, ``cache/``), and bwrap resolves every bind source by path as the user it runs as (it
does so even for ``--bind-fd``: bubblewrap 0.8 calls realpath on ``/proc/self/fd/N``). So
in the child, still root, :func:`as_host_user`'s hook enters a private mount namespace, opens every
source, mounts a small tmpfs on /tmp there (the host's /tmp is untouched) and bind-mounts each
opened source under it; only then does it give up root and exec bwrap, which binds those staged
paths. The unprivileged uid reaches exactly the run's sources, with their own
permissions: what it cannot read (a root-only 0600 file) stays unreadable though bound. The run's
/output is handed to it (chown) and its inputs shared with its group (:func:`hand_over`); after the
run, ``output_tree.settle_modes`` gives everything back to root.

The cgroup join, rlimits and niceness (``Confinement.preexec``) run first, as root, so every process
of the run is in its cgroup as before; root still signals and kills the run's processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from trainarena.execution.base import SandboxJob
from trainarena.execution.runtime import SandboxUnavailable
from trainarena.execution.uid_pool import UidPool

STAGE = "/tmp"  # where the child's private mount namespace mounts the staged sources
_BIND_OPTIONS = ("--bind", "--ro-bind", "--ro-bind-try")
# bwrap options the sandboxes use, with how many arguments each takes: a bind is told from an
# environment value that happens to read "--bind" only by walking the command line option by option.
_ARITY = {
    "--unshare-all": 0, "--unshare-user": 0, "--disable-userns": 0, "--die-with-parent": 0,
    "--new-session": 0, "--clearenv": 0, "--uid": 1, "--gid": 1, "--hostname": 1, "--cap-drop": 1,
    "--proc": 1, "--dev": 1, "--size": 1, "--tmpfs": 1, "--remount-ro": 1, "--chdir": 1, "--info-fd": 1,
    "--symlink": 2, "--dev-bind": 2, "--setenv": 2, "--bind": 2, "--ro-bind": 2, "--ro-bind-try": 2,
}
_CLONE_NEWNS = 0x00020000  # <linux/sched.h>
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_SLAVE = 0x2, 0x4, 0x1000, 0x4000, 0x80000  # <linux/mount.h>


@dataclass(frozen=True)
class HostUser:
    """The host uid and gid bwrap and the script run as."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()  # supplementary groups (those of the run's GPU nodes); none by default
    pool: UidPool | None = None  # where each sandbox leases its own uid (``uid`` is then the pool's first)


def choose_host_user(
    run_as: int, problem: Callable[[int, int], str | None], pool: tuple[int, int] | None = None
) -> tuple[HostUser | None, str]:
    """The host user for sandboxes (None: the platform's own) and a few words saying who and why.
    ``problem(uid, gid)``: why bwrap cannot start as ``uid`` here, None when it can
    (``bwrap.run_as_problem``); ``pool``: ``SandboxRules.run_as_pool``, (first uid, count)."""
    euid = os.geteuid()
    if euid != 0:
        return None, f"uid {euid}, the platform's own"
    if run_as == 0:
        return None, "root (sandbox.run_as is 0)"
    pool_problem = ""
    if pool is not None:
        pooled, line = pool_user(pool, run_as, problem)
        if pooled is not None:
            return pooled, line
        pool_problem = f"; {line}"
    found = problem(run_as, run_as)
    if found is not None:
        return None, f"root (bwrap cannot start as uid {run_as}: {found}{pool_problem})"
    return HostUser(run_as, run_as), f"uid {run_as} (sandbox.run_as{pool_problem})"


def pool_user(
    pool: tuple[int, int], shared: int, problem: Callable[[int, int], str | None] = lambda _uid, _gid: None
) -> tuple[HostUser | None, str]:
    """The host user of sandboxes that each lease a uid of their own from ``pool`` (first uid, count;
    ``SandboxRules.run_as_pool``), the gid staying ``shared`` (the uid and gid every sandbox has
    without a pool), and the line saying so; or None and why the pool cannot be used here (the
    docker backend and bwrap's :func:`choose_host_user` alike; ``problem`` as there)."""
    uids = UidPool(*pool)
    why_not = _pool_problem(uids, shared, problem)
    if why_not is not None:
        return None, why_not
    return HostUser(uids.first, shared, pool=uids), f"{uids.describe()}, one per sandbox, gid {shared} (sandbox.run_as_pool)"


def _pool_problem(uids: UidPool, gid: int, problem: Callable[[int, int], str | None]) -> str | None:
    """Why sandboxes cannot take their uids from ``uids`` here (it holds the shared uid ``gid``,
    someone on the host holds some, or bwrap cannot start as them), None when they can."""
    if uids.first <= gid <= uids.last:
        return f"sandbox.run_as_pool's {uids.describe()} hold uid {gid}, the uid every sandbox without a pool shares"
    holders = uids.holders()
    if holders:
        shown = ", ".join(holders[:3]) + (f" and {len(holders) - 3} more" if len(holders) > 3 else "")
        return f"sandbox.run_as_pool's {uids.describe()} are not free here, held by {shown}"
    for uid in (uids.first, uids.last):  # a host maps uids in ranges (a container's uid_map): the ends answer for all
        if (why := problem(uid, gid)) is not None:
            return f"bwrap cannot start as uid {uid}: {why} of sandbox.run_as_pool"
    return None


@contextlib.contextmanager
def leased(user: HostUser | None) -> Iterator[tuple[HostUser | None, str]]:
    """``user`` for one sandbox: with a uid of its own from its pool, held until the sandbox ends,
    and a few words for the run's sandbox log (the uid, and the wait for it when there was one)."""
    if user is None or user.pool is None:
        yield user, ""
        return
    with user.pool.lease() as (uid, waited):
        yield replace(user, uid=uid), f"uid {uid}" + (f" after {waited:.1f} s waiting for a free uid" if waited >= 1 else "")


def as_host_user(
    user: HostUser | None, argv: list[str], preexec: Callable[[], None] | None
) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` (bwrap's) and ``preexec`` as they start the sandbox as ``user``: the bind sources
    staged (module docstring) and privileges dropped after ``preexec``. Unchanged for None."""
    if user is None:
        return argv, preexec
    sources: list[tuple[str, bool]] = []
    return _stage(argv, sources), _enter(user, sources, preexec)


def _stage(argv: list[str], sources: list[tuple[str, bool]]) -> list[str]:
    """``argv`` with each bind source replaced by its staging path; each source appended to
    ``sources`` (path, whether a folder), in order. A missing ``--ro-bind-try`` source is left out,
    as bwrap would leave it."""
    end = argv.index("--") if "--" in argv else len(argv)
    out, at = [argv[0]], 1
    while at < end:
        option = argv[at]
        if option not in _ARITY:
            raise ValueError(f"unknown bwrap option {option!r} at position {at}: cannot stage its binds")
        values = argv[at + 1 : at + 1 + _ARITY[option]]
        at += 1 + len(values)
        if option in _BIND_OPTIONS:
            try:
                sources.append((values[0], stat.S_ISDIR(os.stat(values[0]).st_mode)))
            except FileNotFoundError:
                if option == "--ro-bind-try":
                    continue
                raise
            values = [f"{STAGE}/{len(sources) - 1}", values[1]]
        out += [option, *values]
    return out + argv[end:]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _enter(user: HostUser, sources: list[tuple[str, bool]], then: Callable[[], None] | None) -> Callable[[], None]:
    """The pre-exec hook: ``then`` (cgroup, rlimits) as root, the staging, then ``user``."""
    libc = _libc()  # loaded before the fork: nothing is looked up in the child
    mount, unshare = libc.mount, libc.unshare

    def _apply() -> None:
        if then is not None:
            then()
        _check(unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        # Slave first: nothing mounted from here on reaches the host's mount namespace.
        _check(mount(None, b"/", None, _MS_REC | _MS_SLAVE, None), "mount --make-rslave /")
        # Opened in this namespace (a bind from another one is refused), before the tmpfs hides
        # sources under /tmp.
        opened = [os.open(path, os.O_PATH) for path, _is_dir in sources]
        _check(mount(b"tmpfs", STAGE.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=64k"), "mount tmpfs")
        for index, (fd, (_path, is_dir)) in enumerate(zip(opened, sources, strict=True)):
            target = f"{STAGE}/{index}"
            if is_dir:
                os.mkdir(target)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            _check(mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, _MS_BIND | _MS_REC, None),
                   f"bind-mount {target}")
            os.close(fd)
        os.setgroups(list(user.groups))
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)

    return _apply


def hand_over(job: SandboxJob, uid: int, gid: int) -> None:
    """Let the run's host user ``uid``:``gid`` write /output (when the platform is root, which reads it
    back) and read /inputs and /submission, and nothing more (:func:`share_inputs`)."""
    if os.geteuid() == 0:
        os.chown(job.output_dir, uid, gid)
    share_inputs(job.inputs_dir, uid, gid)
    check_readable(job.submission_dir, uid)


def share_inputs(inputs: Path, uid: int, gid: int) -> None:
    """Let the run's host user read the run's inputs, and no other user: what it cannot read yet is
    handed to its group ``gid`` (folders g+rx, files g+r; others are given nothing). The files are
    hard links into the platform's caches (the model writer leaves model.safetensors 0600), and a
    link shares its file's owner and mode, so the cached copy takes that group too; a per-run copy
    would cost a base model's size on every run. Base models, train splits and task files only,
    which every run is given anyway; the hidden split is never among them (``check_hidden``)."""
    if uid == inputs.stat().st_uid:
        return
    for folder, _folders, files in os.walk(inputs):
        _grant(Path(folder), gid, 0o050)
        for name in files:
            _grant(Path(folder) / name, gid, 0o040)


def _grant(path: Path, gid: int, group_bits: int) -> None:
    """Give group ``gid`` the ``group_bits`` on ``path``, unless its other bits give them to every
    user already. A file of another group moves to ``gid``: the platform's cache is its own."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode) or mode & (group_bits >> 3) == group_bits >> 3:
        return
    if info.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if mode & group_bits != group_bits:
        path.chmod(mode | group_bits)


def check_readable(folder: Path, uid: int) -> None:
    """Refuse a run whose host user could not open its submission (a checkout made 0700, a working
    tree under umask 077): it would fail as if its script had."""
    info = folder.stat()
    if uid != info.st_uid and info.st_mode & 0o005 != 0o005:
        raise SandboxUnavailable(f"{folder} (mode {info.st_mode & 0o777:o}) cannot be read by the sandbox's host "
                                 f"user {uid}; make it readable (chmod o+rx) and keep the platform's umask at 022")
