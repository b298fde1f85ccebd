"""The training-script contract, version 1: what the platform gives a competitor's script and what it
expects back. ``docs/contract.md`` is the same contract in prose, with examples.

A competitor repository has a ``trainarena.toml`` at its root::

    [trainarena]
    contract = 1
    entrypoint = "train.py"          # a Python file, run with the platform's training environment
    task_types = ["instruct"]        # optional: the task types the script supports

Inside the sandbox the script sees these paths (host paths are bound onto them):

- ``/submission``  the repository at the registered commit, read-only; it is the working directory.
- ``/inputs``      read-only: ``model/`` (the base model), ``train.<ext>`` (the train split only),
                   ``dataset_spec.json`` (field mapping and format strings), ``task.json`` (this RunSpec).
- ``/output``      writable, empty at start: the artifact goes here (layout below).
- ``/tmp``         writable scratch, private to the run, discarded afterwards.

It is started as ``python <entrypoint> --task-type T --model /inputs/model --dataset /inputs/train.jsonl
--dataset-spec /inputs/dataset_spec.json --output-dir /output --budget-seconds S --seed N --devices D``
with the environment in :func:`script_environment`. At the budget it gets SIGTERM, after a grace period
SIGKILL. There is no network: scripts use only the platform's pinned training environment.

Output layout: text tasks leave a ``save_pretrained`` model directory or a PEFT adapter directory
(``adapter_config.json`` + ``adapter_model.safetensors``) in ``/output``; image tasks leave LoRA weights
as ``pytorch_lora_weights.safetensors``. Weights must be safetensors: pickle files are rejected.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

CONTRACT_VERSION = 1
# A name people type and the platform prints (competitors, API keys, tasks, pools, tournaments): one
# line, no spaces, nothing a path or markup reads.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name_problem(what: str, name: str, max_length: int) -> str | None:
    """Why ``name`` may not name a ``what`` (competitor, API key), or None when it may."""
    if NAME_PATTERN.fullmatch(name) and len(name) <= max_length:
        return None
    return (f"{what} name {name!r} is not allowed: use 1 to {max_length} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")  # fmt: skip


# Tasks, pools and tournaments are named by the same rule (they sit in URL paths, table cells and
# commands as competitors do), up to the store's name columns. Names stored before the rule stay readable.
STORED_NAME_MAX_LENGTH = 100


def stored_name_problem(what: str, name: str) -> str | None:
    """Why ``name`` may not name a new ``what`` (task, pool, tournament), or None when it may."""
    return name_problem(what, name, STORED_NAME_MAX_LENGTH)


# The largest --seed a script is given (tasks' and jobs' seeds alike): what every seeding call takes
# (torch.manual_seed overflows past 64 bits, numpy's legacy seed past 32) and a store integer holds.
SEED_MAX = 2**31 - 1

# The largest integer the store keeps where a caller names one (an id, a seed, an offset): a 32-bit
# column on PostgreSQL, which refuses a larger parameter outright (an error, not "no run N").
STORE_INT_MAX = 2**31 - 1

MANIFEST_NAME = "trainarena.toml"

SANDBOX_SUBMISSION = PurePosixPath("/submission")
SANDBOX_INPUTS = PurePosixPath("/inputs")
SANDBOX_OUTPUT = PurePosixPath("/output")
SANDBOX_MODEL = SANDBOX_INPUTS / "model"
SANDBOX_DATASET_SPEC = SANDBOX_INPUTS / "dataset_spec.json"
SANDBOX_TASK_FILE = SANDBOX_INPUTS / "task.json"

# An optional file at the top of /output in which a script says that the weights it saved are the base
# model's, unchanged, because training found no improvement over it, and why (docs/contract.md,
# "/output/trainarena_outcome.json"): {"same_as_base": true, "why": "..."}. The platform reads it from a
# checked artifact; the model card and a job's views say it. Not scored, not published.
OUTCOME_FILE = "trainarena_outcome.json"
OUTCOME_WHY_MAX = 300  # characters of "why"; a longer or unprintable one, or a malformed file, is ignored
OUTCOME_MAX_BYTES = 4096  # the most of the file read; a larger file is ignored


class TaskType(StrEnum):
    INSTRUCT = "instruct"
    CHAT = "chat"
    DPO = "dpo"
    GRPO = "grpo"
    IMAGE = "image"


class Direction(StrEnum):
    """Which way a task's score is better."""

    LOWER = "lower"
    HIGHER = "higher"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exited 0 before the deadline with a valid artifact
    FAILED = "failed"  # non-zero exit, or the platform could not start it
    TIMED_OUT = "timed_out"  # still running at the budget; killed
    INVALID = "invalid"  # exited 0 but the artifact broke the output contract

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


@dataclass(frozen=True)
class RunSpec:
    """What one run of one script on one task is given. Serialized to ``/inputs/task.json``."""

    run_id: str
    task_type: TaskType
    dataset_file: str  # file name under /inputs, e.g. "train.jsonl"
    budget_seconds: float
    seed: int
    devices: tuple[int, ...] = ()
    base_model_name: str = ""  # the model's id (Hub id, trainarena:NAME, else /inputs/model), for information only
    contract_version: int = CONTRACT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # task-type specific, e.g. the image model type

    def argv(self, entrypoint: str) -> list[str]:
        """The command line the script is started with (inside the sandbox)."""
        return [
            "python",
            entrypoint,
            "--task-type", self.task_type.value,
            "--model", str(SANDBOX_MODEL),
            "--dataset", str(SANDBOX_INPUTS / self.dataset_file),
            "--dataset-spec", str(SANDBOX_DATASET_SPEC),
            "--output-dir", str(SANDBOX_OUTPUT),
            "--budget-seconds", f"{self.budget_seconds:g}",
            "--seed", str(self.seed),
            "--devices", ",".join(str(d) for d in self.devices),
        ]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def same_as_base_reason(output_dir: Path) -> str | None:
    """The reason a script gave in ``output_dir``'s :data:`OUTCOME_FILE` for saving the base model's
    weights unchanged (whitespace folded to single spaces); None when the file is absent, does not say
    ``"same_as_base": true``, or is not as the contract describes it (a script's optional note never
    fails its run)."""
    path = output_dir / OUTCOME_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(OUTCOME_MAX_BYTES + 1)
        outcome = json.loads(raw) if len(raw) <= OUTCOME_MAX_BYTES else None
    except (OSError, ValueError, RecursionError):  # absent, a folder, not UTF-8 JSON, nested past Python's limit
        return None
    if not isinstance(outcome, dict) or outcome.get("same_as_base") is not True or not isinstance(outcome.get("why"), str):
        return None
    why = " ".join(outcome["why"].split())
    return why if why and why.isprintable() and len(why) <= OUTCOME_WHY_MAX else None


def script_environment(spec: RunSpec, deadline_unix: float) -> dict[str, str]:
    """Environment variables a script runs with (nothing else from the platform's environment leaks in)."""
    return {
        "TRAINARENA_CONTRACT": str(spec.contract_version),
        "TRAINARENA_RUN_ID": spec.run_id,
        "TRAINARENA_DEADLINE": f"{deadline_unix:.3f}",
        "CUDA_VISIBLE_DEVICES": ",".join(str(d) for d in spec.devices),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": "/tmp/hf",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
    }
