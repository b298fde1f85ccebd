"""Built-in offline assets named from a task file (``trainarena:NAME``): resolved against the data
dir's assets folder when the file is loaded; unknown or misplaced names are clear errors; every other
value keeps meaning a local path or a hub id."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskFileError, load_task_file, read_task_file
from trainarena.tasks.builtin_assets import DATASET, IMAGE, MODEL, TEXT, builtin_assets

TASK = """
name = "t"
type = "{type}"
base_model = "{model}"
budget_seconds = 30
[dataset]
source = "{source}"
field_instruction = "instruction"
field_output = "output"
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()


def task_file(folder: Path, *, model: str, source: str, type: str = "instruct") -> Path:
    path = folder / "task.toml"
    path.write_text(TASK.format(type=type, model=model, source=source))
    return path


@pytest.mark.parametrize(
    ("model", "source", "type", "message"),
    [
        ("trainarena:tiny_llama", "trainarena:arithmetics", "instruct",
         "dataset.source: 'trainarena:arithmetics' is not a built-in asset; built-in datasets for text tasks: "
         "trainarena:arithmetic, trainarena:strings"),
        ("trainarena:gpt2", "trainarena:arithmetic", "instruct",
         "base_model: 'trainarena:gpt2' is not a built-in asset; built-in models for text tasks: trainarena:tiny_llama"),
        ("trainarena:arithmetic", "trainarena:arithmetic", "instruct",
         "base_model: 'trainarena:arithmetic' is a built-in text dataset, not a text model; built-in models for text "
         "tasks: trainarena:tiny_llama"),
        ("trainarena:tiny_sd", "trainarena:arithmetic", "dpo",
         "base_model: 'trainarena:tiny_sd' is a built-in image model, not a text model"),
        ("trainarena:tiny_sd", "trainarena:arithmetic", "image",
         "dataset.source: 'trainarena:arithmetic' is a built-in text dataset, not a image dataset; built-in datasets "
         "for image tasks: trainarena:person_zxq, trainarena:person_vlk, trainarena:style_qrt, trainarena:style_mjb"),
    ],
)
def test_a_name_that_fits_no_asset_is_an_error_naming_those_that_fit(settings, tmp_path, model, source, type, message):
    path = task_file(tmp_path, model=model, source=source, type=type)
    with pytest.raises(TaskFileError) as error:
        load_task_file(path, settings)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert not settings.assets_dir.exists()  # nothing was built to find that out


def test_other_values_keep_their_meaning_and_build_nothing(settings, tmp_path):
    (tmp_path / "rows.jsonl").write_text("{}\n")
    task = load_task_file(task_file(tmp_path, model="org/some-model", source="rows.jsonl"), settings)
    assert task.base_model == "org/some-model"  # a hub id stays one
    assert task.dataset["source"] == str(tmp_path.resolve() / "rows.jsonl")  # relative to the task file
    (tmp_path / "models" / "mine").mkdir(parents=True)
    task = load_task_file(task_file(tmp_path, model="models/mine", source="org/dataset"), settings)
    assert task.base_model == str(tmp_path.resolve() / "models" / "mine") and task.dataset["source"] == "org/dataset"
    assert not settings.assets_dir.exists()


def test_reading_a_task_file_keeps_the_values_as_written(tmp_path):
    task = read_task_file(task_file(tmp_path, model="trainarena:tiny_llama", source="trainarena:nothing-checked-yet"))
    assert (task.base_model, task.dataset["source"], task.task_type) == ("trainarena:tiny_llama", "trainarena:nothing-checked-yet", TaskType.INSTRUCT)
    assert task.path == tmp_path / "task.toml" and task.seed == 0


def test_every_built_dataset_and_model_has_a_name(assets, image_assets):
    """The names come from the builders' lists: each one is something a build produces."""
    names = {(a.name, a.role, a.kind) for a in builtin_assets()}
    built = {(d.name, DATASET, TEXT) for d in assets.task_datasets} | {(n, DATASET, IMAGE) for n in image_assets.datasets}
    built |= {(assets.tiny_llama.name, MODEL, TEXT)} | {(p.name, MODEL, IMAGE) for p in image_assets.pipelines.values()}
    assert names == built


def test_a_known_name_resolves_inside_the_assets_dir(settings, tmp_path, assets):
    settings.assets_dir.mkdir(parents=True)
    (settings.assets_dir / assets.root.name).symlink_to(assets.root)  # the session's build, not a new one
    task = load_task_file(task_file(tmp_path, model="trainarena:tiny_llama", source="trainarena:arithmetic"), settings)
    assert task.base_model == str(settings.assets_dir / assets.root.name / "tiny_llama")
    assert task.dataset["source"] == str(settings.assets_dir / assets.root.name / "datasets" / "arithmetic.jsonl")
    assert Path(task.base_model).is_absolute() and Path(task.base_model, "config.json").is_file()
    assert Path(task.dataset["source"]).read_text().startswith("{")
