"""``make_backend``: the configured execution backend, built in a shell (CLI callback, test fixture)."""

from __future__ import annotations

from pathlib import Path

from trainarena.execution.base import Backend
from trainarena.execution.runtime import SandboxUnavailable
from trainarena.settings import Settings

BACKEND_NAMES = ("bwrap", "docker", "local-unsafe")


def make_backend(settings: Settings, unsafe: bool = False) -> Backend:
    """The backend ``settings.sandbox.backend`` names; ``unsafe=True`` (the CLI's ``--unsafe``) or
    ``settings.sandbox.allow_unsafe`` is required for ``local-unsafe`` and selects it."""
    rules = settings.sandbox
    name = "local-unsafe" if unsafe else rules.backend
    if name == "local-unsafe":
        if not (unsafe or rules.allow_unsafe):
            raise SandboxUnavailable(
                "the local-unsafe backend runs untrusted code without isolation; pass --unsafe or set "
                "TRAINARENA_SANDBOX__ALLOW_UNSAFE=true if you really trust every script"
            )
        from trainarena.execution.local import LocalUnsafeBackend

        return LocalUnsafeBackend(rules, log_tail_chars=rules.log_tail_chars)
    if name == "bwrap":
        from trainarena.execution.bwrap import BwrapBackend

        return BwrapBackend(rules, protected=never_bound(settings))
    if name == "docker":
        from trainarena.execution.docker import DockerBackend

        backend = DockerBackend(rules, protected=never_bound(settings))
        backend.prepare()  # no daemon, no image: say so now, not at the first run
        return backend
    raise SandboxUnavailable(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


def never_bound(settings: Settings) -> tuple[Path, ...]:
    """What no bind of a sandbox may contain: the data dir (the hidden split and every run), and the
    secret files wherever the settings put them (a signing key or SQLite store outside the data dir)."""
    return (settings.hidden_dir, settings.data_dir, *(path for path, _ in settings.secret_files))
