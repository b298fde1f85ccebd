"""The executor's own pieces: task preparation cache, model staging, parameter counting, GPU sharing."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from trainarena.assets import ensure_assets
from trainarena.contract import TaskType
from trainarena.execution import DevicePool
from trainarena.pipeline import link_tree, parameter_count, visible_gpus
from trainarena.runs import definition_digest
from trainarena.settings import Settings
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks import get_task_type
from trainarena.tasks.base import TaskDefinition


def _task(assets, **changes) -> TaskDefinition:
    fields = dict(
        name="units",
        task_type=TaskType.INSTRUCT,
        base_model=str(assets.tiny_llama),
        dataset={"source": str(assets.datasets["units"]), **assets.dataset_fields["units"]},
        budget_seconds=10,
        seed=1,
    )
    return TaskDefinition(**{**fields, **changes})


def test_parameter_count_reads_safetensors_headers(tmp_path: Path) -> None:
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, tmp_path / "model.safetensors")
    save_file({"c": torch.zeros(2, 2, 2)}, tmp_path / "more.safetensors")
    assert parameter_count(tmp_path) == 12 + 5 + 8


def test_task_preparation_is_cached_by_definition(tmp_path: Path, assets) -> None:
    settings = Settings(data_dir=tmp_path)
    preparer = TaskPreparer(settings)
    first = preparer.prepare(_task(assets))
    # The hidden split lives under the hidden dir, the train split elsewhere.
    assert first.hidden_file.is_relative_to(settings.hidden_dir)
    assert not first.train_file.is_relative_to(settings.hidden_dir)
    mtime = first.hidden_file.stat().st_mtime_ns
    again = TaskPreparer(settings).prepare(_task(assets))  # a new process would find it on disk
    assert again == first and first.hidden_file.stat().st_mtime_ns == mtime
    other = preparer.prepare(_task(assets, seed=2))
    assert definition_digest(_task(assets, seed=2)) != definition_digest(_task(assets))
    assert other.hidden_file != first.hidden_file


def test_link_tree_mirrors_without_copying(tmp_path: Path) -> None:
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "sub" / "w.safetensors").write_bytes(b"x" * 10)
    link_tree(source, tmp_path / "inputs" / "model")
    linked = tmp_path / "inputs" / "model" / "sub" / "w.safetensors"
    assert linked.read_bytes() == b"x" * 10 and linked.stat().st_ino == (source / "sub" / "w.safetensors").stat().st_ino


def test_visible_gpus_from_device_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("nvidia0", "nvidia1", "nvidia3", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus(tmp_path) == [0, 1, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert visible_gpus(tmp_path) == [1, 3]


def test_device_pool_never_shares_a_gpu_and_waits_for_release() -> None:
    pool = DevicePool([0, 1, 2])
    first = pool.acquire(2)
    assert first == (0, 1)
    got: list[tuple[int, ...]] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(2)))
    waiter.start()
    time.sleep(0.2)
    assert got == []  # only one GPU is free: the second run waits
    pool.release(first)
    waiter.join(timeout=5)
    assert got == [(0, 1)]
    assert DevicePool([]).acquire(4) == ()  # no GPUs: the run goes on the CPU
    with pytest.raises(ValueError, match="only 3"):
        DevicePool([0, 1, 2]).acquire(4)


def test_a_run_stopped_while_waiting_for_gpus_takes_none() -> None:
    pool, stop = DevicePool([0, 1]), threading.Event()
    held = pool.acquire(2)
    got: list[tuple[int, ...] | None] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(1, stop=stop)))
    waiter.start()
    time.sleep(0.2)
    assert got == []  # waiting for a GPU
    stop.set()  # a cancelled job, a drive that lost its lease: it gives up at once, not when GPUs free
    waiter.join(timeout=5)
    assert got == [None]
    pool.release(held)
    assert pool.acquire(2) == (0, 1)  # it took nothing


def test_the_default_data_dir_reaches_the_evaluator_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets) -> None:
    """As `trainarena demo` runs from a checkout: no TRAINARENA_* variable, the default `.trainarena`
    of the working directory. The evaluation child runs in a folder of its own, so a relative base
    model path there named nothing (and `from_pretrained` took it for a malformed hub id)."""
    for name in [name for name in os.environ if name.startswith("TRAINARENA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".trainarena" / "cache").mkdir(parents=True)
    # The session's asset build, where the default data dir keeps it (no second pre-training).
    (tmp_path / ".trainarena" / "cache" / "assets").symlink_to(assets.root.parent, target_is_directory=True)
    settings = Settings()
    task = _task(ensure_assets(settings.assets_dir))  # as the demo draws its tasks
    prepared = TaskPreparer(settings).prepare(task)
    artifact = shutil.copytree(assets.tiny_llama, tmp_path / "artifact")  # the base model, unchanged
    evaluation = get_task_type(task.task_type).evaluate(task, prepared, artifact, settings)
    assert evaluation.failure is None
    assert evaluation.score is not None and math.isfinite(evaluation.score) and evaluation.score > 0
    assert Path(task.base_model).is_absolute() and Path(task.dataset["source"]).is_absolute()
    assert prepared.train_file.is_absolute() and prepared.hidden_file.is_absolute()
