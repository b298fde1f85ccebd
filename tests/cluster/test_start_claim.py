"""The start claim (``cluster.node``): exactly one side creates it, and a node that finds its run
withdrawn by the driver starts nothing (no Ray here: ``do_work`` as a Ray task would call it)."""

from __future__ import annotations

import threading
from pathlib import Path

from ray_fakes import FakeOnNode, fake_task

from trainarena.cluster.node import START_CLAIM, EvaluateBase, SharedCheck, claim_start, do_work
from trainarena.settings import Settings


def test_of_many_claimants_at_once_exactly_one_claims_the_start(tmp_path: Path) -> None:
    claim, ready = tmp_path / START_CLAIM, threading.Barrier(8)
    won: list[str] = []

    def claimant(name: str) -> None:
        ready.wait()
        if claim_start(claim, name):
            won.append(name)

    threads = [threading.Thread(target=claimant, args=(f"claimant {i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and claim.read_text() == f"{won[0]}\n"


def test_a_node_that_finds_its_run_withdrawn_starts_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    shared, built = SharedCheck.create(settings.data_dir), []

    def factory(settings: Settings, gpus: list[int]):  # noqa: ANN202 - FakeOnNode's runner
        built.append(gpus)
        return FakeOnNode()(settings, gpus)

    task = fake_task("text", None, "m", 0, 1)  # type: ignore[arg-type]
    withdrawn, free = tmp_path / "withdrawn", tmp_path / "free"
    assert claim_start(withdrawn, "withdrawn by the driver: stopped before a node started it")
    assert do_work(EvaluateBase(task), settings, factory, shared, [], withdrawn) is None
    assert built == []  # no executor was even built
    assert do_work(EvaluateBase(task), settings, factory, shared, [], free) is not None
    assert built == [[]] and free.read_text().startswith("started on Ray node")
