"""The image side of the demo: its entrants, its default champion and its task source (captioned person
and style datasets on the tiny offline SD-shaped pipeline). ``demo.set_up_demo(kind="image")`` uses it."""

from __future__ import annotations

from trainarena.assets.image import ImageAssets
from trainarena.contract import TaskType
from trainarena.engine.model import Stage
from trainarena.runs import TaskSource
from trainarena.tasks.base import TaskDefinition

IMAGE_DEMO_PREFIX = "demo-image-"
# The reigning image champion of a fresh store: a LoRA script on diffusers' example defaults.
IMAGE_DEFAULT_CHAMPION = "image_defaults"
IMAGE_DEMO_ENTRANTS = ("image_baseline", "image_highrank", "image_fewsteps")
IMAGE_DEMO_BUDGET_SECONDS = 45.0


def image_demo_task_source(assets: ImageAssets, budget_seconds: float) -> TaskSource:
    """Each task draws one of the synthetic person/style datasets from its seed."""
    names = sorted(assets.datasets)

    def source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
        dataset = names[seed % len(names)]
        return TaskDefinition(
            name=f"{dataset}-{seed % 10_000:04d}",
            task_type=TaskType.IMAGE,
            base_model=str(assets.tiny_sd),
            dataset={"source": str(assets.datasets[dataset]), "kind": assets.dataset_kinds[dataset], "model_type": assets.manifest["model_type"]},
            budget_seconds=budget_seconds,
            seed=seed,
        )

    return source
