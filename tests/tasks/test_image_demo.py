"""The image demo's set-up: image entrants registered as image competitors, an image tournament whose
boss round faces image_defaults, separate from the text demo's champion line."""

from __future__ import annotations

from pathlib import Path

from trainarena.assets.image import ImageAssets
from trainarena.contract import TaskType
from trainarena.demo.image import IMAGE_DEFAULT_CHAMPION, IMAGE_DEMO_ENTRANTS, image_demo_task_source
from trainarena.demo.text import examples_root, set_up_demo
from trainarena.engine.model import Stage
from trainarena.settings import Settings
from trainarena.store import get_competitor, get_tournament, open_store


def test_image_task_source_draws_person_and_style_tasks(tmp_path):
    assets = ImageAssets(
        root=tmp_path, tiny_sd=tmp_path / "tiny_sd",
        datasets={"person_a": tmp_path / "pa", "style_b": tmp_path / "sb"},
        dataset_kinds={"person_a": "person", "style_b": "style"}, manifest={"model_type": "sd"},
    )
    source = image_demo_task_source(assets, 45.0)
    tasks = [source("image", Stage.KNOCKOUT, "m1", 0, seed) for seed in (10, 11)]
    assert {t.task_type for t in tasks} == {TaskType.IMAGE}
    assert {t.dataset["kind"] for t in tasks} == {"person", "style"}
    assert all(t.dataset["model_type"] == "sd" and t.base_model == str(tmp_path / "tiny_sd") for t in tasks)
    assert source("image", Stage.KNOCKOUT, "m1", 0, 10) == tasks[0]


def test_image_demo_sets_up_an_image_tournament_against_image_defaults(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, kind="image")
        assert setup.tournament_name.startswith("demo-image-")
        with store.session() as session:
            tournament = get_tournament(session, setup.tournament_id)
            assert tournament.kind == "image"
            assert tournament.champion_before.name == IMAGE_DEFAULT_CHAMPION
            assert all(get_competitor(session, name).kind == "image" for name in IMAGE_DEMO_ENTRANTS)
        again = set_up_demo(store, settings, seed=1, kind="image")
        assert again.resumed and again.tournament_id == setup.tournament_id
        assert all((Path(examples_root()) / name / "train.py").is_file() for name in IMAGE_DEMO_ENTRANTS)
