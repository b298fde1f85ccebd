"""What one run asks a Ray cluster for (no I/O): the GPUs of the existing sizing rule
(``execution.resources.gpus_for``), the CPUs and the memory of ``settings.cluster``; and whether a
node (Ray's ``ray.nodes()`` entry) could ever hold it, for the placement timeout's error.

A CPU-only cluster gets no GPU request (the run goes on the CPU, as on a machine without GPUs); a
cluster whose largest node has fewer GPUs than a run needs refuses the run here, with the numbers,
instead of leaving it unschedulable forever. "Largest node" is the largest the driver has seen, alive
or not: Ray forgets a dead node's resources, and a run that went to the CPU because the GPU nodes
were down would be measured on other hardware than its rivals (``cluster.gpu_runs``). A run that
waits for such a node waits at most ``cluster.placement_timeout_seconds`` while no live node could
hold it (``cluster.ray_executor``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from trainarena.runs import RunNotStarted
from trainarena.settings import Settings
from trainarena.wording import counted

MB = 1024 * 1024
# Ray's names for the task options' resources (``resources`` holds custom ones under their own names).
_OPTION_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


class ClusterTooSmall(RunNotStarted):
    """No node of the cluster can ever hold the run; the message says what it needs and what there is."""


class PlacementTimeout(RunNotStarted):
    """A run waited ``cluster.placement_timeout_seconds`` while no live node could hold it, and was
    cancelled before it started; the message says what it asked for and what the live nodes have."""


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


def asked_resources(options: Mapping[str, object]) -> dict[str, float]:
    """The resources Ray task ``options`` ask for, by Ray's names (``CPU``, ``GPU``, ``memory`` in
    bytes, custom ones as named), those of zero left out."""
    asked = {name: float(options[key]) for key, name in _OPTION_NAMES.items() if options.get(key)}  # type: ignore[arg-type]
    custom = options.get("resources") or {}
    asked.update({name: float(amount) for name, amount in custom.items() if amount})  # type: ignore[union-attr]
    return asked


def holds(node_resources: Mapping[str, float], asked: Mapping[str, float]) -> bool:
    """Whether a node with these total resources could ever hold the ask (busy or not)."""
    return all(node_resources.get(name, 0.0) >= amount for name, amount in asked.items())


def describe(asked: Mapping[str, float]) -> str:
    """``1 GPU, 2 CPU, 256 MB memory``: the ask (or a node's share of its kinds) in words."""
    parts = [f"{amount / MB:g} MB memory" if name == "memory" else f"{amount:g} {name}" for name, amount in asked.items()]
    return ", ".join(parts) or "nothing"


def describe_nodes(nodes: Iterable[Mapping[str, float]], asked: Mapping[str, float]) -> str:
    """The live nodes, counted by their totals of the kinds ``asked`` names: ``2 nodes of 0 GPU, 1 CPU``."""
    shapes = Counter(describe({name: node.get(name, 0.0) for name in asked}) for node in nodes)
    if not shapes:
        return "no live node"
    return "; ".join(f"{counted(count, 'node')} of {shape}" for shape, count in sorted(shapes.items()))
