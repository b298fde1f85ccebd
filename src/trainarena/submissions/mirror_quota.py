"""The disk one key's registrations may take with repository mirrors (``registration.mirror_quota_bytes``).

Registering fetches the repository into a bare mirror in the cache (``registration.repo_mirror_path``),
kept whether the registration then passes its checks or not; without a limit one competitor key could
fill the disk with many or huge repositories. A key is charged the mirrors its registrations fetched or
used, each at its size on disk now, from the moment the fetch ends (a registration refused later, for
its manifest say, still leaves its mirror). The charges are marker files,
``<cache>/repo-owners/key-<id>/<mirror name>``, so that no schema change is needed; a mirror an operator
removes from the cache costs nothing any more.

A fetch that would take the key past the limit is refused with :class:`MirrorQuotaExceeded`: git is
stopped as soon as the mirror passes the key's room (the limit less its other mirrors: the mirror's own
size counts), and a new mirror is removed; a mirror that was there before (another key's, or this key's
own fetched again) is kept as it was before the fetch, unmarked for this key when it is new to it.
One key's registrations run one at a time (a file lock per key), so two at once never both pass.
Keys the callers pass as None (operators', the CLI's) are not limited nor charged; 0 in the setting:
no limit (the usage is still counted).
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from trainarena.settings import Settings
from trainarena.submissions import git
from trainarena.submissions.errors import RegistrationError

MIRROR_SETTING = "registration.mirror_quota_bytes"


class MirrorQuotaExceeded(RegistrationError):
    """A registration whose mirror would take its key past ``registration.mirror_quota_bytes``;
    ``details`` name the setting, the key's usage, the mirror's size and the limit."""

    def __init__(self, used: int, mirror: int, limit: int) -> None:
        super().__init__(
            f"this key's repository mirrors would pass {limit:,} bytes ({MIRROR_SETTING}): its other registrations' "
            f"mirrors take {used:,} bytes and this repository's took {mirror:,} when it was refused; register a "
            "smaller repository (a shallow history, fewer branches), or ask the operator for room (GET /v1/me shows "
            "the usage)"
        )
        self.details = {"setting": MIRROR_SETTING, "used_bytes": used, "mirror_bytes": mirror, "limit_bytes": limit}


def _charges(settings: Settings, key_id: int) -> Path:
    return settings.cache_dir / "repo-owners" / f"key-{key_id}"


def mirror_usage(settings: Settings, key_id: int, *, leaving_out: Path | None = None) -> int:
    """The bytes the mirrors charged to ``key_id`` take now (but ``leaving_out``'s)."""
    charges = _charges(settings, key_id)
    names = [p.name for p in charges.iterdir()] if charges.is_dir() else []
    mirrors = settings.cache_dir / "repos"
    return sum(git.folder_bytes(mirrors / name) for name in names if leaving_out is None or name != leaving_out.name)


@contextmanager
def _one_at_a_time(settings: Settings, key_id: int) -> Iterator[None]:
    charges = _charges(settings, key_id)
    charges.mkdir(parents=True, exist_ok=True)
    with open(charges.with_suffix(".lock"), "w") as handle:  # kept: a per-key file, not one per registration
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def fetch_within_quota(settings: Settings, key_id: int | None, url: str, mirror: Path, commit: str) -> None:
    """:func:`git.fetch_mirror` of ``url`` into ``mirror``, charged to ``key_id`` (None: not limited)."""
    timeout = settings.registration.git_timeout_seconds
    if key_id is None:
        git.fetch_mirror(url, mirror, commit, timeout=timeout)
        return
    limit = settings.registration.mirror_quota_bytes or None  # 0: no limit, the usage still charged (GET /v1/me)
    with _one_at_a_time(settings, key_id):
        used = mirror_usage(settings, key_id, leaving_out=mirror)
        if limit is not None and used >= limit:
            raise MirrorQuotaExceeded(used, 0, limit)
        fresh = not mirror.exists()
        try:
            git.fetch_mirror(url, mirror, commit, timeout=timeout, max_bytes=None if limit is None else limit - used)
        except git.MirrorTooLarge as error:
            _refuse(mirror, fresh, MirrorQuotaExceeded(used, error.size, limit or 0))
        size = git.folder_bytes(mirror)
        if limit is not None and used + size > limit:
            _refuse(mirror, fresh, MirrorQuotaExceeded(used, size, limit))
        (_charges(settings, key_id) / mirror.name).touch()


def _refuse(mirror: Path, fresh: bool, refusal: MirrorQuotaExceeded) -> NoReturn:
    if fresh:  # made by this registration: a cache, so removing it costs no more than a later fetch
        shutil.rmtree(mirror, ignore_errors=True)
    raise refusal
