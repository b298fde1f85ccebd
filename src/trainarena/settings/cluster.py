"""The settings section of where runs execute: on this machine, or as Ray tasks on a cluster
(``Settings.cluster``; docs/deploy.md, "Ray cluster")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainarena.settings.fields import Section

__all__ = ["ClusterRules"]


class ClusterRules(Section):
    """Where runs, evaluations and jobs execute. ``local``: in this process's sandbox backend.
    ``ray``: each as a Ray task on a node of a Ray cluster, still in that node's sandbox backend, with
    the data directory shared by every node at the same path (docs/deploy.md, "Ray cluster")."""

    executor: Literal["local", "ray"] = Field(
        "local", description="Where runs execute: 'local' (this machine) or 'ray' (a Ray cluster, see address)."
    )
    address: str | None = Field(
        None, description="Ray cluster to connect to: 'auto' (the cluster this machine joined with `ray start`), "
        "'HOST:PORT' of a head node, or 'ray://HOST:10001'. None: start a one-machine Ray instance in this process."
    )
    namespace: str = Field("trainarena", min_length=1, description="Ray namespace the platform's tasks run in.")
    cpus_per_run: float = Field(
        1.0, gt=0.0, description="CPUs each run, evaluation or job asks Ray for, and (rounded up) the threads its "
        "libraries start, whatever the driver's cores; sandbox.cpus_per_run, when set, caps the threads instead."
    )
    memory_per_run_mb: int | None = Field(
        None, ge=0, description="Memory each run asks Ray for (MB), so a node never takes on more runs than it can "
        "hold; None: sandbox.memory_limit_mb, the run's own cap; 0: no request."
    )
    gpu_runs: Literal["auto", "always", "never"] = Field(
        "auto", description="Whether runs ask Ray for the GPUs of the sizing rule: 'auto' when a node the driver "
        "has seen since it connected has GPUs (so runs wait for a GPU node that went down, never silently "
        "training on the CPU), 'always' (a driver started while every GPU node is down waits for one), "
        "'never' (CPU only)."
    )
    stop_poll_seconds: float = Field(
        0.5, gt=0.0, description="How often a node checks whether a run it started was asked to stop (a job "
        "cancelled, its worker stopping, a drive that lost its lease): the driver asks through a file in the run's "
        "folder on the shared data directory; and how often the driver looks at a run still waiting for a node."
    )
    placement_timeout_seconds: float | None = Field(
        900.0, ge=0.0, description="How long a run not yet started may wait while no live node of the Ray cluster "
        "could ever hold what it asks for (its GPUs, CPUs, memory; a GPU node down, say): then it is cancelled and "
        "the drive or job ends with an error naming what it asked for and what the live nodes have. A run waiting "
        "only for a busy node to free up waits without limit. Raise it on a cluster whose nodes take longer to "
        "(re)start; 0 or None: no limit."
    )
