"""What the registry tests build for themselves: tiny artifacts of each layout (a PEFT adapter, a full
model, a diffusers LoRA; real safetensors files, never trained), a base model folder with a tokenizer,
and git repositories registered as competitors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from trainarena.settings import Settings

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\n'
TRAIN_PY = "import sys\n\nsys.exit(0)\n"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}  # fmt: skip
MIT_TEXT = "MIT License\n\nCopyright (c) 2026 Someone\n\nPermission is hereby granted, free of charge, to any person..."


def _tensors(path: Path, **shapes: tuple[int, ...]) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({name: torch.ones(*shape) for name, shape in shapes.items()}, str(path))


def write_peft_artifact(folder: Path, base: str = "/model") -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "base_model_name_or_path": base}))
    _tensors(folder / "adapter_model.safetensors", **{"base_model.model.layer.lora_A.weight": (2, 4)})
    return folder


def write_full_artifact(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"own": True}))
    _tensors(folder / "model.safetensors", weight=(2, 2))
    return folder


def write_image_artifact(folder: Path) -> Path:
    folder.mkdir(parents=True)
    _tensors(folder / "pytorch_lora_weights.safetensors", **{"unet.lora.down.weight": (2, 4)})
    return folder


def write_base_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    _tensors(folder / "model.safetensors", weight=(2, 2))
    return folder


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(folder: Path, files: dict[str, str]) -> tuple[Path, str]:
    """A git repository of ``files`` (a value starting with ``-> `` is a symbolic link; a ``.sh`` file is
    executable), committed."""
    folder.mkdir(parents=True)
    git(folder, "init", "--quiet", "--initial-branch=main")
    # The name in the code: registration refuses a copy of an already registered competitor's code.
    own_train = f"NAME = {folder.name!r}\n" + TRAIN_PY
    for relative, content in {"trainarena.toml": MANIFEST, "train.py": own_train, **files}.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("-> "):
            path.symlink_to(content[3:])
        else:
            path.write_text(content)
            path.chmod(0o755 if path.suffix == ".sh" else 0o644)
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "-m", "initial")
    return folder, git(folder, "rev-parse", "HEAD")


def register_repo(settings: Settings, name: str, files: dict[str, str] | None = None) -> tuple[Path, str]:
    """Register a repository of ``files`` as competitor ``name``; its folder and commit."""
    from trainarena.store import open_store
    from trainarena.submissions.service import register_competitor

    repo, commit = make_repo(settings.data_dir.parent / "repos" / name, files or {})
    with open_store(settings) as store, store.transaction() as session:
        register_competitor(session, settings, name=name, repo=str(repo), commit=commit)
    return repo, commit


ROWS = [{"q": f"add {i} and {i + 1}", "a": str(2 * i + 1)} for i in range(40)]


def add_text_tasks(settings: Settings, folder: Path, *names: str, pool: str = "weekly") -> None:
    """Instruct tasks ``names`` in ``pool``, on a tiny model folder and 40 JSONL rows written in ``folder``."""
    from trainarena.operations.pools import add_task, task_from_flags
    from trainarena.store import open_store

    model, rows = folder / "model", folder / "rows.jsonl"
    if not model.exists():
        write_base_model(model)
        rows.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    with open_store(settings) as store, store.transaction() as session:
        for name in names:
            task = task_from_flags(name, "instruct", str(model), {"source": str(rows), "field_instruction": "q", "field_output": "a"}, 5.0)
            add_task(session, settings, task, pool, allow_reused_data=True)  # one dataset for every task: no secret kept here


def crown_alice(settings: Settings, folder: Path, alice_files: dict[str, str]) -> None:
    """alice (a repository of ``alice_files``) crowned over bob in a one-task text tournament of the pool
    ``weekly`` (its task's files in ``folder``)."""
    from trainarena.operations.tournaments import create_pool_tournament, run_pool_tournament
    from trainarena.store import open_store

    register_repo(settings, "alice", alice_files)
    register_repo(settings, "bob")
    add_text_tasks(settings, folder, "t1")
    with open_store(settings) as store:
        with store.transaction() as session:
            created = create_pool_tournament(session, settings, kind="text", pool="weekly", seed=1)
        run_pool_tournament(store, settings, created.id, executor=ArtifactExecutor({"alice": 0.1, "bob": 0.9}))


class ArtifactExecutor:
    """Every run succeeds with a PEFT adapter as its artifact and the competitor's score in ``scores``
    (lower is better); the task's prepared data says it held out 4 rows and scores eval_loss."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def execute(self, request):
        from trainarena.contract import Direction, RunStatus
        from trainarena.execution import validate_artifact
        from trainarena.runs import RunReport
        from trainarena.tasks.base import Evaluation

        artifact = write_peft_artifact(request.run_dir / "output")
        check = validate_artifact(artifact, request.task.task_type, Settings().artifacts)
        score = self.scores[request.competitor.name]
        prepared = {"hidden_rows": 4, "dataset_spec": {"scoring": {"metric": "eval_loss"}}}
        return RunReport(RunStatus.SUCCEEDED, 1.0, 2.0, artifact_path=artifact, artifact_digest=check.digest,
                         evaluation=Evaluation(score, Direction.LOWER), prepared_paths=prepared)  # fmt: skip
