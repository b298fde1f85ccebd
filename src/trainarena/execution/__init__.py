"""Execution backends: run a competitor's script under the contract, sandboxed, and check its artifact.

``make_backend(settings)`` builds the configured backend (bwrap by default); every backend is
``run(job) -> RunResult`` plus ``close()``. ``check_output`` settles and checks what a run left behind
(``validate_artifact`` checks only); ``remove_tree`` deletes a run's folder, however deep.
Backend modules are imported lazily by the factory: nothing here starts a process at import time.
"""

from trainarena.execution.artifacts import ArtifactCheck, check_output, validate_artifact
from trainarena.execution.base import Backend, RunResult, SandboxJob
from trainarena.execution.factory import make_backend
from trainarena.execution.output_tree import remove_tree
from trainarena.execution.resources import DevicePool, assign_devices, gpus_for
from trainarena.execution.runtime import SandboxUnavailable

__all__ = [
    "ArtifactCheck",
    "Backend",
    "DevicePool",
    "RunResult",
    "SandboxJob",
    "SandboxUnavailable",
    "assign_devices",
    "check_output",
    "gpus_for",
    "make_backend",
    "remove_tree",
    "validate_artifact",
]
