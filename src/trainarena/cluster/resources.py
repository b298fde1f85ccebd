"""What one run asks a Ray cluster for (no I/O): the GPUs of the existing sizing rule
(``execution.resources.gpus_for``), the CPUs and the memory of ``settings.cluster``.

A CPU-only cluster gets no GPU request (the run goes on the CPU, as on a machine without GPUs); a
cluster whose largest node has fewer GPUs than a run needs refuses the run here, with the numbers,
instead of leaving it unschedulable forever. "Largest node" is the largest the driver has seen, alive
or not: Ray forgets a dead node's resources, and a run that went to the CPU because the GPU nodes
were down would be measured on other hardware than its rivals (``cluster.gpu_runs``).
"""

from __future__ import annotations

from trainarena.settings import Settings

MB = 1024 * 1024


class ClusterTooSmall(RuntimeError):
    """No node of the cluster can ever hold the run; the message says what it needs and what there is."""


def task_resources(settings: Settings, gpus_needed: int, largest_node_gpus: float) -> dict[str, float]:
    """Ray task options (``num_cpus``, ``num_gpus``, ``memory`` in bytes) for a run needing
    ``gpus_needed`` GPUs on a cluster whose largest node (seen so far) offers ``largest_node_gpus``."""
    rules = settings.cluster
    asks_gpus = {"auto": largest_node_gpus > 0, "always": True, "never": False}[rules.gpu_runs]
    gpus = gpus_needed if asks_gpus else 0
    if gpus > largest_node_gpus > 0:
        raise ClusterTooSmall(
            f"a run needs {gpus} GPUs (resources.gpu_brackets) but the largest node of the Ray cluster has "
            f"{largest_node_gpus:g}; add a node with {gpus} GPUs or lower the brackets"
        )
    memory_mb = settings.sandbox.memory_limit_mb if rules.memory_per_run_mb is None else rules.memory_per_run_mb
    options: dict[str, float] = {"num_cpus": rules.cpus_per_run, "num_gpus": gpus}
    if memory_mb:
        options["memory"] = memory_mb * MB
    return options
