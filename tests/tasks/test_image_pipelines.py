"""Each image model_type has its scoring pipeline, and a local base model of another family is refused
when the task is prepared, naming the family it is and the model_type to set."""

from __future__ import annotations

import json

import pytest

from trainarena.settings import Settings
from trainarena.tasks.base import DatasetError
from trainarena.tasks.image.pipelines import FAMILIES, check_base_model, family_of


def test_every_declared_model_type_has_a_scoring_pipeline():
    assert set(Settings().image.model_types) == set(FAMILIES)
    assert {f.img2img for f in FAMILIES.values()} == {
        "StableDiffusionImg2ImgPipeline", "StableDiffusionXLImg2ImgPipeline", "FluxImg2ImgPipeline",
    }
    with pytest.raises(DatasetError, match=r"model_type 'kandinsky' has no scoring pipeline; supported: \['flux', 'sd', 'sdxl'\]"):
        family_of("kandinsky")


def saved_pipeline(tmp_path, class_name: str):
    folder = tmp_path / class_name
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": class_name, "_diffusers_version": "0.42.1"}))
    return str(folder)


@pytest.mark.parametrize(("saved_as", "model_type"), [
    ("StableDiffusionPipeline", "sd"), ("StableDiffusionXLPipeline", "sdxl"), ("FluxPipeline", "flux"), ("FluxImg2ImgPipeline", "flux"),
])
def test_a_base_model_of_the_declared_family_passes(tmp_path, saved_as, model_type):
    check_base_model(saved_pipeline(tmp_path, saved_as), model_type)


def test_a_base_model_of_another_family_is_refused_with_the_fix(tmp_path):
    flux = saved_pipeline(tmp_path, "FluxPipeline")
    with pytest.raises(DatasetError, match=r"is a FluxPipeline, not a model_type 'sdxl' pipeline; set model_type = 'flux'"):
        check_base_model(flux, "sdxl")
    unknown = saved_pipeline(tmp_path, "KandinskyPipeline")
    with pytest.raises(DatasetError, match=r"is a KandinskyPipeline, not a model_type 'sd' pipeline$"):
        check_base_model(unknown, "sd")


def test_a_hub_id_is_left_to_the_loader(tmp_path):
    check_base_model("stabilityai/stable-diffusion-xl-base-1.0", "sdxl")  # no local model_index.json to read


def test_preparing_a_task_checks_the_base_model(tmp_path):
    from trainarena.tasks import TaskDefinition, get_task_type

    dataset = {"source": str(tmp_path / "never-read"), "kind": "style", "model_type": "sd"}
    task = TaskDefinition("t", "image", saved_pipeline(tmp_path, "StableDiffusionXLPipeline"), dataset, 10)
    with pytest.raises(DatasetError, match="set model_type = 'sdxl'"):
        get_task_type("image").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())


def test_images_are_centre_cropped_to_the_pipelines_multiple():
    import numpy as np

    from trainarena.tasks.image.evaluation import crop_to_multiple

    image = np.arange(7 * 10 * 3, dtype=np.float32).reshape(7, 10, 3)
    cropped = crop_to_multiple(image, 4)
    assert cropped.shape == (4, 8, 3) and np.array_equal(cropped, image[1:5, 1:9])
    assert crop_to_multiple(image[:4, :8], 4).shape == (4, 8, 3)  # already a multiple: unchanged


def test_batches_hold_one_image_size_and_keep_the_order_of_one_sized_data():
    from trainarena.tasks.image.evaluation import same_size_batches

    jobs = [(i, seed) for i in range(3) for seed in (5, 6)]
    assert same_size_batches(jobs, [(32, 32, 3)] * 3, 4) == [jobs[:4], jobs[4:]]
    mixed = same_size_batches(jobs, [(32, 32, 3), (16, 48, 3), (32, 32, 3)], 3)
    assert mixed == [[(1, 5), (1, 6)], [(0, 5), (0, 6), (2, 5)], [(2, 6)]]
