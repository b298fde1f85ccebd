"""Data the operations tests write themselves: a tiny model folder (a config and one safetensors
tensor: enough to check it loads, never trained) and one small instruct dataset in three formats."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from trainarena.contract import Direction, RunStatus
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation

ROWS = [{"q": f"add {i} and {i + 1}", "a": str(2 * i + 1)} for i in range(40)]


@dataclass(frozen=True)
class OperatorData:
    model: Path
    jsonl: Path
    csv: Path
    saved: Path  # a datasets.save_to_disk folder
    settings: Settings


def write_model(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    save_file({"weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    return folder


def write_operator_data(folder: Path) -> OperatorData:
    import datasets

    jsonl = folder / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    with open(folder / "rows.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, ["q", "a"])
        writer.writeheader()
        writer.writerows(ROWS)
    datasets.disable_progress_bars()
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder / "saved"))
    return OperatorData(write_model(folder / "model"), jsonl, folder / "rows.csv", folder / "saved",
                        Settings(data_dir=folder / "data"))


def register_example(settings: Settings, name: str, example: str | None = None) -> Path:
    """Register ``examples/competitors/<example>`` (default: ``name``) as competitor ``name``, from a git
    repository made in the data dir; returns that repository."""
    from trainarena.demo.example_repos import make_example_repo
    from trainarena.demo.text import examples_root
    from trainarena.store import open_store
    from trainarena.submissions.service import register_competitor

    repo, commit = make_example_repo(examples_root() / (example or name), settings.data_dir / "repos" / name)
    with open_store(settings) as store, store.transaction() as session:
        register_competitor(session, settings, name=name, repo=str(repo), commit=commit)
    return repo


def add_tasks(data: OperatorData, *names: str, pool: str = "weekly") -> None:
    """Add instruct tasks ``names`` on the JSONL rows to ``pool``."""
    from trainarena.operations.pools import add_task, task_from_flags
    from trainarena.store import open_store

    with open_store(data.settings) as store, store.transaction() as session:
        for name in names:
            task = task_from_flags(name, "instruct", str(data.model),
                                   {"source": str(data.jsonl), "field_instruction": "q", "field_output": "a"}, 5.0)
            add_task(session, data.settings, task, pool, allow_reused_data=True)  # one dataset for every task: no secret kept here


class FakeExecutor:
    """Scores each (competitor, task) by a hash, lower is better; remembers every task it was given."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    def execute(self, request: RunRequest) -> RunReport:
        self.requests.append(request)
        digest = hashlib.sha256(f"{request.competitor.name}/{request.task.name}".encode()).digest()
        return RunReport(RunStatus.SUCCEEDED, 1.0, 2.0, evaluation=Evaluation(digest[0] / 255, Direction.LOWER))
