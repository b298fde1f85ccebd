"""A real Ray cluster on this machine, shared by the tests of a module: a head node that runs no work
(num_cpus=0, as an operator's head) and two worker nodes of one CPU each, on loopback; small object
stores and memory, for a 2-core test machine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import ray
import ray_fakes
from ray.cluster_utils import Cluster

MB = 1024 * 1024
# Each worker node: one run at a time (1 CPU), a memory resource the tests' runs ask a share of.
NODE = {"num_cpus": 1, "object_store_memory": 80 * MB, "memory": 1024 * MB}
# A dead node is noticed within about a second instead of Ray's default 15 s.
FAST_FAILURE_DETECTION = {"health_check_period_ms": 200, "health_check_failure_threshold": 3}


@dataclass
class LocalCluster:
    cluster: Cluster

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_worker(self, **resources: float):
        node = self.cluster.add_node(**NODE, resources=resources or None)
        self.cluster.wait_for_nodes()
        return node

    def node_with_id(self, node_id: str):
        return next(node for node in self.cluster.worker_nodes if node.node_id == node_id)

    def kill(self, node) -> None:
        """The node's processes killed outright (its raylet, workers and object store), as a machine lost."""
        self.cluster.remove_node(node, allow_graceful=False)

    def worker_count(self) -> int:
        return len(self.cluster.worker_nodes)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 80 * MB, "_system_config": FAST_FAILURE_DETECTION})  # fmt: skip
    local = LocalCluster(cluster)
    for _ in range(2):
        local.add_worker()
    # The tests' fake node executors live in tests/, which a worker cannot import: send them by value.
    ray.cloudpickle.register_pickle_by_value(ray_fakes)
    ray.init(address=cluster.address, namespace="trainarena-tests", log_to_driver=False)
    try:
        yield local
    finally:
        ray.shutdown()
        cluster.shutdown()
