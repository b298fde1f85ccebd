"""What a run asks a Ray cluster for (``cluster.resources``), and how the executor is chosen."""

from __future__ import annotations

import pytest

from trainarena.cli.demo import threads_per_run
from trainarena.cluster.resources import MB, ClusterTooSmall, task_resources
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
