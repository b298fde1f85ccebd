"""Where runs execute: on this machine, or as Ray tasks on a cluster (``settings.cluster``).

``make_executor(settings)`` builds the executor the shells (CLI, API, job worker) hand to the
orchestrator, the workbench, audits and jobs: the pipeline's ``SandboxedExecutor`` over the local
backend, or a :class:`~trainarena.cluster.ray_executor.RayExecutor` that runs that same executor on
a Ray node per run. Ray is imported only when chosen.
"""

from trainarena.cluster.factory import Executor, make_executor
from trainarena.cluster.node import ClusterUnavailable, SharedPathMissing
from trainarena.cluster.resources import task_resources

__all__ = ["ClusterUnavailable", "Executor", "SharedPathMissing", "make_executor", "task_resources"]
