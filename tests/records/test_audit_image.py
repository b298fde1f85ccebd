"""`trainarena audit` of image runs: a stored image task is noised from its own secret seed, so the audit
must score the run again with that seed (and an older record, scored with the public one, with the
public one). Training stands in (the same LoRA every time: a deterministic script); the splits, the
scoring and the records are real, on the tiny SD pipeline the test assets build."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from trainarena.contract import RunStatus, TaskType
from trainarena.records.audit import Verdict, as_scored, audit_run
from trainarena.records.provenance import folder_digest
from trainarena.runs import CompetitorInfo, RunReport
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks import get_task_type
from trainarena.tasks.base import TaskDefinition
from trainarena.workbench import Workbench, worktree_script

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["image"]\n'


def write_lora(base_model: Path, directory: Path) -> Path:
    """A LoRA of the tiny UNet's attention with seeded up-projections (it changes the reconstructions)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(base_model / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=layers, safe_serialization=True)
    return directory


class LoraExecutor:
    """Hands back ``lora`` as the trained artifact and scores it with the image plugin on the task it is
    given. ``as_before``: scored as image runs were before noise seeds were per task (the public seed,
    and no ``noise_seed`` in the details), to stand for an older record."""

    def __init__(self, settings: Settings, lora: Path, as_before: bool = False) -> None:
        self.settings, self.lora, self.as_before = settings, lora, as_before
        self.tasks: list[TaskDefinition] = []

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.tasks.append(task)
        started = time.time()
        prepared = TaskPreparer(self.settings).prepare(task)
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "logs" / "stderr.log").write_text("trained\n")
        artifact = shutil.copytree(self.lora, run_dir / "output")
        evaluation = get_task_type(task.task_type).evaluate(replace(task, public_noise=True) if self.as_before else task,
                                                            prepared, artifact, self.settings)  # fmt: skip
        if self.as_before:
            evaluation = replace(evaluation, details={k: v for k, v in evaluation.details.items() if k != "noise_seed"})
        return RunReport(RunStatus.SUCCEEDED, started, time.time(), artifact_path=artifact, artifact_digest=folder_digest(artifact),
                         log_path=run_dir / "logs", evaluation=evaluation, prepared_paths=prepared.to_json())  # fmt: skip

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        raise AssertionError("an audit never scores the base model")

    def close(self) -> None:
        pass


def test_an_image_run_is_audited_with_the_noise_it_was_scored_with(settings: Settings, store: Store, image_assets,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    """A stored image task's run (noised from the task's secret seed) is reproduced exactly by its audit;
    so is an older record's (scored with the public seed, its evaluation naming none): the audit scores
    it with the public seed, and the two scores differ, so each audit used the noise of its record."""
    lora = write_lora(image_assets.tiny_sd, tmp_path / "lora")
    tree = tmp_path / "lora-script"
    tree.mkdir()
    (tree / "train.py").write_text("print('the LoRA is handed back by the test executor')\n")
    (tree / "trainarena.toml").write_text(MANIFEST)
    dataset = {"source": str(image_assets.datasets["style_qrt"]), "kind": "style", "model_type": "sd"}
    task = TaskDefinition("style-audit", TaskType.IMAGE, str(image_assets.tiny_sd), dataset, 10.0, split_key="style-audit:0a1b2c3d")
    script = worktree_script(settings, tree)

    [run_id] = Workbench(settings, store, LoraExecutor(settings, lora)).run(script, task)
    [older_id] = Workbench(settings, store, LoraExecutor(settings, lora, as_before=True)).run(script, task)
    audits = {}
    for recorded in (run_id, older_id):
        executor = LoraExecutor(settings, lora)
        audits[recorded] = audit_run(settings, store, executor, recorded)
        [audited_task] = executor.tasks
        assert audited_task.public_noise == (recorded == older_id) and audited_task.split_key == task.split_key
    for report in audits.values():
        comparison = report.comparison
        assert comparison.verdict == Verdict.CONSISTENT and comparison.difference == 0 and comparison.new is not None
    assert audits[run_id].comparison.recorded != audits[older_id].comparison.recorded


def test_the_audited_task_follows_the_noise_its_evaluation_names() -> None:
    """Only an image task with a split key has secret noise to replay; its record says which noise it
    was scored with, and a record from before the field was scored with the public seed."""
    stored = TaskDefinition("style", TaskType.IMAGE, "tiny-sd", {"model_type": "sd"}, 10.0, split_key="style:0a1b2c3d")
    scored = {name: as_scored(stored, evaluation).public_noise
              for name, evaluation in (("secret", {"details": {"noise_seed": "secret"}}),
                                       ("public", {"details": {"noise_seed": "public"}}),
                                       ("older", {"details": {"images": 4}}))}  # fmt: skip
    assert scored == {"secret": False, "public": True, "older": True}
    for unchanged in (replace(stored, split_key=None), replace(stored, task_type=TaskType.INSTRUCT)):
        assert as_scored(unchanged, {"details": {}}) == unchanged
