"""A job's split: the plugin's own preparation holding out the job's share, or with no share every row
in the train file (text and image), and the log lines that become progress events."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from trainarena.contract import TaskType
from trainarena.jobs.progress import LogFollower, Progress
from trainarena.jobs.split import JobPreparer
from trainarena.settings import JobRules, Settings
from trainarena.tasks.base import TaskDefinition
from trainarena.tasks.text.rows import read_jsonl


def _instruct(tmp_path: Path, rows: int) -> TaskDefinition:
    source = tmp_path / "qa.jsonl"
    source.write_text("".join(json.dumps({"q": f"what is {i} times 3", "a": str(3 * i)}) + "\n" for i in range(rows)))
    return TaskDefinition("job-x", TaskType.INSTRUCT, "m", {"source": str(source), "field_instruction": "q", "field_output": "a"}, 10.0)


@pytest.mark.parametrize(("share", "train", "hidden"), [(0.2, 40, 10), (0.5, 25, 25)])
def test_the_job_share_is_held_out(tmp_path: Path, share: float, train: int, hidden: int) -> None:
    prepared = JobPreparer(Settings(data_dir=tmp_path / "data"), share, seed=3).prepare(_instruct(tmp_path, 50))
    assert (prepared.train_rows, prepared.hidden_rows) == (train, hidden)
    assert len(read_jsonl(prepared.train_file)) == train
    held_out = {row["q"] for row in read_jsonl(prepared.hidden_file)}
    assert not held_out & {row["q"] for row in read_jsonl(prepared.train_file)}


def test_with_no_share_every_row_is_trained_on(tmp_path: Path) -> None:
    prepared = JobPreparer(Settings(data_dir=tmp_path / "data"), 0.0, seed=3).prepare(_instruct(tmp_path, 50))
    train = read_jsonl(prepared.train_file)
    assert prepared.train_rows == len(train) == 50
    assert sorted(int(row["a"]) for row in train) == [3 * i for i in range(50)]
    assert prepared.dataset_spec["field_instruction"] == "q"  # the script's spec as a tournament writes it


def test_with_no_share_every_image_is_trained_on(tmp_path: Path) -> None:
    source = tmp_path / "images.zip"
    with zipfile.ZipFile(source, "w") as archive:
        lines = []
        for i in range(6):
            out = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 40, 10, 200 - i * 20)).save(out, format="PNG")
            archive.writestr(f"images/{i}.png", out.getvalue())
            lines.append(json.dumps({"file": f"images/{i}.png", "caption": f"square {i}"}) + "\n")
        archive.writestr("captions.jsonl", "".join(lines))
    task = TaskDefinition("job-img", TaskType.IMAGE, "m", {"source": str(source), "kind": "style", "model_type": "sd"}, 10.0)
    prepared = JobPreparer(Settings(data_dir=tmp_path / "data"), 0.0, seed=1).prepare(task)
    with zipfile.ZipFile(prepared.train_file) as archive:
        names = archive.namelist()
        captions = [json.loads(line) for line in archive.read("captions.jsonl").decode().splitlines()]
    assert prepared.train_rows == prepared.dataset_spec["images"] == 6
    assert sorted(c["caption"] for c in captions) == [f"square {i}" for i in range(6)]
    assert all(c["file"] in names for c in captions)
    assert json.loads((prepared.train_file.parent / "dataset_spec.json").read_text())["images"] == 6


def test_log_follower_hands_on_new_complete_lines_only(tmp_path: Path) -> None:
    rules = JobRules(progress_lines=2, progress_line_chars=20)
    follower = LogFollower(tmp_path, rules)
    assert follower.new_progress() is None  # no logs yet
    (tmp_path / "stdout.log").write_text("step 1 loss 2.0\nstep 2 loss 1.8\nstep 3 loss 1.6\npartial")
    assert follower.new_progress() == Progress(["step 2 loss 1.8", "step 3 loss 1.6"], "step 3 loss 1.6")  # the last two; the partial line waits
    with (tmp_path / "stdout.log").open("a") as log:
        log.write(" line\n")
    (tmp_path / "stderr.log").write_text("x" * 50 + "\n\n")
    assert follower.new_progress() == Progress(["partial line", "x" * 20], "x" * 20)
    assert follower.new_progress() is None
