"""What a run asks a Ray cluster for (``cluster.resources``), and how the executor is chosen."""

from __future__ import annotations

import pytest

from trainarena.cli.demo import threads_per_run
from trainarena.cluster.resources import MB, ClusterTooSmall, asked_resources, describe, describe_nodes, holds, task_resources
from trainarena.settings import Settings


def test_a_run_asks_for_the_sizing_rules_gpus_on_a_cluster_that_has_gpus() -> None:
    settings = Settings(cluster={"cpus_per_run": 2.0}, sandbox={"memory_limit_mb": 4096})
    assert task_resources(settings, gpus_needed=2, largest_node_gpus=8) == {"num_cpus": 2.0, "num_gpus": 2, "memory": 4096 * MB}


def test_a_cpu_only_cluster_gets_no_gpu_request() -> None:
    assert task_resources(Settings(), gpus_needed=1, largest_node_gpus=0)["num_gpus"] == 0


def test_gpu_runs_always_asks_for_gpus_and_never_asks_none() -> None:
    always = Settings(cluster={"gpu_runs": "always"})
    assert task_resources(always, gpus_needed=1, largest_node_gpus=0)["num_gpus"] == 1  # waits for a GPU node
    assert task_resources(Settings(cluster={"gpu_runs": "never"}), gpus_needed=1, largest_node_gpus=8)["num_gpus"] == 0
    with pytest.raises(ValueError, match="gpu_runs"):
        Settings(cluster={"gpu_runs": "sometimes"})


def test_the_memory_request_follows_the_cluster_setting_and_zero_asks_none() -> None:
    assert task_resources(Settings(cluster={"memory_per_run_mb": 512}), 1, 0)["memory"] == 512 * MB
    assert "memory" not in task_resources(Settings(cluster={"memory_per_run_mb": 0}), 1, 0)


def test_a_run_no_node_can_hold_is_refused_with_the_numbers() -> None:
    with pytest.raises(ClusterTooSmall, match="needs 4 GPUs .* the largest node of the Ray cluster has 2"):
        task_resources(Settings(), gpus_needed=4, largest_node_gpus=2)


def test_the_executor_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_CLUSTER__EXECUTOR", "ray")
    monkeypatch.setenv("TRAINARENA_CLUSTER__ADDRESS", "10.0.0.1:6379")
    assert (Settings().cluster.executor, Settings().cluster.address) == ("ray", "10.0.0.1:6379")
    monkeypatch.setenv("TRAINARENA_CLUSTER__EXECUTOR", "kubernetes")
    with pytest.raises(ValueError, match="executor"):
        Settings()


def test_a_run_on_ray_gets_the_threads_it_asks_its_node_for_not_the_drivers_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 64)  # a big driver: its share would be 32 threads a run
    on_ray = Settings(cluster={"executor": "ray", "cpus_per_run": 1.5})
    assert threads_per_run(on_ray, parallel=2).sandbox.cpus_per_run == 2
    assert threads_per_run(Settings(), parallel=2).sandbox.cpus_per_run == 32
    chosen = on_ray.model_copy(update={"sandbox": on_ray.sandbox.model_copy(update={"cpus_per_run": 3})})
    assert threads_per_run(chosen, parallel=2).sandbox.cpus_per_run == 3


def test_a_node_holds_a_run_when_it_has_every_resource_the_run_asks_for() -> None:
    options = {"num_cpus": 2.0, "num_gpus": 1, "memory": 256 * MB, "resources": {"fast_disk": 1.0}}
    asked = asked_resources(options)
    assert asked == {"CPU": 2.0, "GPU": 1.0, "memory": 256.0 * MB, "fast_disk": 1.0}
    assert asked_resources({"num_cpus": 1.0, "num_gpus": 0}) == {"CPU": 1.0}  # none asked of what is zero
    gpu_node = {"CPU": 8.0, "GPU": 4.0, "memory": 4096.0 * MB, "fast_disk": 1.0}
    assert holds(gpu_node, asked)
    assert not holds({"CPU": 8.0, "memory": 4096.0 * MB, "fast_disk": 1.0}, asked)  # no GPU: Ray omits it
    assert not holds({**gpu_node, "CPU": 1.0}, asked)


def test_the_placement_error_describes_the_ask_and_the_live_nodes_by_shape() -> None:
    asked = asked_resources({"num_cpus": 1.0, "num_gpus": 2, "memory": 512 * MB})
    nodes = [{"CPU": 4.0, "memory": 1024.0 * MB}, {"CPU": 4.0, "memory": 1024.0 * MB}, {"CPU": 0.0, "memory": 64.0 * MB}]
    assert describe(asked) == "1 CPU, 2 GPU, 512 MB memory"
    assert describe_nodes(nodes, asked) == "1 node of 0 CPU, 0 GPU, 64 MB memory; 2 nodes of 4 CPU, 0 GPU, 1024 MB memory"
    assert describe_nodes([], asked) == "no live node"


def test_the_placement_timeout_defaults_to_a_limit_and_zero_or_none_means_none() -> None:
    assert Settings().cluster.placement_timeout_seconds == 900.0
    assert Settings(cluster={"placement_timeout_seconds": 0}).cluster.placement_timeout_seconds == 0
    assert Settings(cluster={"placement_timeout_seconds": None}).cluster.placement_timeout_seconds is None
    with pytest.raises(ValueError, match="placement_timeout_seconds"):
        Settings(cluster={"placement_timeout_seconds": -1})
