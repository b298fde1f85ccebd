"""`trainarena task check TASK_FILE`: a task file and its dataset checked without running anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainarena.cli import app
from trainarena.tasks.text import hub_rows

TASK = """
name = "prefs"
type = "dpo"
base_model = "models/tiny"
budget_seconds = 30
[dataset]
source = "prefs.jsonl"
field_prompt = "prompt"
field_chosen = "chosen"
field_rejected = "rejected"
"""



def write_task(folder: Path, rows: list[dict], task: str = TASK) -> Path:
    (folder / "prefs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "task.toml").write_text(task)
    return folder / "task.toml"


def preference_rows() -> list[dict]:
    """40 prompts, each with two rejected answers (80 rows), and 3 rows without a chosen answer."""
    rows = [{"prompt": f"add {i} and 1", "chosen": str(i + 1), "rejected": str(i + d)} for i in range(40) for d in (2, 3)]
    return rows + [{"prompt": "add 90 and 1", "chosen": "", "rejected": "92"}] * 3


def test_check_prints_a_summary_at_80_columns(runner, tmp_path):
    result = runner.invoke(app, ["task", "check", str(write_task(tmp_path, preference_rows()))], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    text = "\n".join(line.rstrip() for line in lines)
    assert "task        prefs (dpo)" in text
    assert "rows        83: 72 train, 8 hidden, 3 dropped" in text
    assert "groups      36 train, 4 hidden" in text  # two rows per prompt, never split up
    assert "dropped     column 'chosen' is empty (rows 81, 82, 83)" in text
    assert "leak check  passed: no group key on both sides" in text
    assert not (tmp_path / "data").exists()  # nothing written to the data dir


def test_check_json(runner, tmp_path):
    result = runner.invoke(app, ["task", "check", str(write_task(tmp_path, preference_rows())), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["ok"] and payload["type"] == "dpo" and payload["source"] == str(tmp_path / "prefs.jsonl")
    assert (payload["rows"], payload["train_rows"], payload["hidden_rows"], payload["dropped_rows"]) == (83, 72, 8, 3)
    assert payload["dropped"] == [{"reason": "column 'chosen' is empty", "rows": [81, 82, 83]}]
    assert payload["leak_check"] == {"passed": True, "shared_groups": []}


@pytest.mark.parametrize(
    ("rows", "task", "message"),
    [
        ([], TASK, "prefs.jsonl: the file is empty (no rows)"),
        (preference_rows()[:20] + [{"prompt": "p", "chosen": None, "rejected": "r"}] * 5, TASK,
         "5 of 25 rows (20%) are unusable, more than the 10% allowed"),
        ([{"prompt": "same", "chosen": "a", "rejected": str(i)} for i in range(30)], TASK, "all 30 rows share one group key"),
        (preference_rows(), TASK.replace("budget_seconds = 30", "budget_seconds = -1"), "budget_seconds must be a positive number"),
        (preference_rows(), TASK.replace('field_chosen = "chosen"', 'field_chosen = "good"'), "missing column 'good' (field_chosen)"),
    ],
)
def test_check_names_the_problem_and_exits_nonzero(runner, tmp_path, rows, task, message):
    task_file = write_task(tmp_path, rows, task)
    result = runner.invoke(app, ["task", "check", str(task_file)], env={"COLUMNS": "80"})
    assert result.exit_code == 1 and message in " ".join(result.stderr.split()), result.output
    as_json = runner.invoke(app, ["task", "check", str(task_file), "--json"])
    payload = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and not payload["ok"] and message in payload["error"]


def test_check_of_a_misspelt_dataset_names_the_path_beside_the_task_file(runner, tmp_path, monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", *hub_rows.PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_rows, "hub_reachable", lambda: False)  # no test reaches the network
    task_file = write_task(tmp_path, preference_rows(), TASK.replace('source = "prefs.jsonl"', 'source = "prefz"'))
    payload = json.loads(runner.invoke(app, ["task", "check", str(task_file), "--json"]).stdout)
    assert payload["error"].startswith(f"prefz: no file or folder {tmp_path / 'prefz'}, and the Hugging Face dataset 'prefz'")


def test_check_of_an_image_task(runner, tmp_path):
    from PIL import Image

    (tmp_path / "faces" / "images").mkdir(parents=True)
    captions = []
    for index in range(12):
        Image.new("RGB", (8, 8), (index * 20, 50, 90)).save(tmp_path / "faces" / "images" / f"{index}.png")
        captions.append(json.dumps({"file": f"images/{index}.png", "caption": f"a photo of zxq person {index}"}))
    (tmp_path / "faces" / "captions.jsonl").write_text("\n".join(captions) + "\n")
    task = 'name = "faces"\ntype = "image"\nbase_model = "m"\nbudget_seconds = 9\n[dataset]\nsource = "faces"\nkind = "person"\nmodel_type = "sd"\n'
    (tmp_path / "image.toml").write_text(task)
    payload = json.loads(runner.invoke(app, ["task", "check", str(tmp_path / "image.toml"), "--json"]).stdout)
    assert payload["ok"] and (payload["train_rows"], payload["hidden_rows"]) == (11, 1) and payload["leak_check"]["passed"]
