"""Image task data: captioned folders and zips load and validate with errors that name the file; the
split is seeded, 10% with at least one hidden image; only the train split reaches the script's zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from trainarena.settings import DataRules, Settings
from trainarena.tasks import DatasetError, TaskDefinition, get_task_type
from trainarena.tasks.image.data import load_images, read_captions_file, split_images
from trainarena.tasks.image.spec import ImageDatasetSpec

MODEL_TYPES = ("sd", "sdxl", "flux")


def make_folder(root: Path, count: int) -> Path:
    from PIL import Image

    (root / "images").mkdir(parents=True)
    lines = []
    for index in range(count):
        Image.new("RGB", (8, 8), (index * 5 % 256, 100, 200)).save(root / "images" / f"{index:03d}.png")
        lines.append(json.dumps({"file": f"images/{index:03d}.png", "caption": f"a photo of zxq person number {index}"}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return root


def spec_for(source: Path, **overrides) -> ImageDatasetSpec:
    return ImageDatasetSpec.from_dict({"source": str(source), "kind": "person", "model_type": "sd", **overrides}, MODEL_TYPES)


def test_folder_loads_every_captioned_image_in_captions_order(tmp_path):
    images = load_images(spec_for(make_folder(tmp_path / "d", 6)), DataRules())
    assert [image.name for image in images] == [f"images/{i:03d}.png" for i in range(6)]
    assert images[2].caption == "a photo of zxq person number 2" and images[2].size == (8, 8)
    assert all(image.png.startswith(b"\x89PNG") for image in images)


def test_zip_loads_like_the_folder(tmp_path):
    folder = make_folder(tmp_path / "d", 5)
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder).as_posix())
    from_zip = load_images(spec_for(archive), DataRules())
    from_folder = load_images(spec_for(folder), DataRules())
    assert [(i.name, i.caption, i.png) for i in from_zip] == [(i.name, i.caption, i.png) for i in from_folder]


def test_unreadable_image_is_named(tmp_path):
    folder = make_folder(tmp_path / "d", 5)
    (folder / "images" / "003.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r"images/003\.png is unreadable") as refused:
        load_images(spec_for(folder), DataRules())
    # PIL names the in-memory stream it read (`<_io.BytesIO object at 0x...>`): the file is named instead.
    assert str(refused.value).endswith("images/003.png is unreadable (UnidentifiedImageError: cannot identify image file "
                                       "images/003.png)")
    assert "0x" not in str(refused.value)


def test_an_image_of_more_pixels_than_allowed_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """A 20 KB one-bit PNG of 13000x13000 pixels, under Pillow's own bomb limit, decoded to RGB took 1.6 GB
    and 6 s of the API process per image: its size is read from the header and refused first."""
    from PIL import Image

    folder = make_folder(tmp_path / "d", 5)
    Image.new("1", (5000, 4000)).save(folder / "images" / "000.png")  # 5 KB on disk
    monkeypatch.setattr(Image.Image, "convert", lambda *_args, **_kwargs: pytest.fail("the image was decoded"))
    with pytest.raises(DatasetError, match=r"d: image images/000\.png is 5000x4000 pixels, more than the 16,777,216 allowed "
                                           r"\(data\.max_image_pixels\); scale it down$"):
        load_images(spec_for(folder), DataRules())


def test_images_of_more_pixels_in_all_than_a_dataset_may_hold_are_refused_before_they_are_decoded(tmp_path, monkeypatch):
    """Thousands of 60 KB PNGs of 4096x4096 pixels each took a second each to decode: an hour of the API's
    CPU for one upload. The pixels of all the images are counted from their headers as they are read."""
    from PIL import Image

    folder = make_folder(tmp_path / "d", 5)  # 8x8 images: 64 pixels each
    decoded = []
    convert = Image.Image.convert
    monkeypatch.setattr(Image.Image, "convert", lambda image, *args, **kwargs: decoded.append(1) or convert(image, *args, **kwargs))
    with pytest.raises(DatasetError, match=r"the images up to images/003\.png hold more than the 200 pixels a dataset may "
                                           r"hold in all \(data\.max_dataset_pixels\)"):
        load_images(spec_for(folder), DataRules(max_dataset_pixels=200))
    assert len(decoded) == 3


def test_an_image_in_another_format_than_the_image_types_is_refused_unopened(tmp_path, monkeypatch):
    """PostScript named .png: Pillow detects a format by its content and had Ghostscript (where installed)
    render a customer's PostScript on the API's host; only the image types a dataset may hold are opened."""
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *_args, **_kwargs: pytest.fail("Ghostscript was run"))
    folder = make_folder(tmp_path / "d", 5)
    (folder / "images" / "001.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n%%EOF\n")
    with pytest.raises(DatasetError, match=r"images/001\.png is unreadable \(UnidentifiedImageError: "):
        load_images(spec_for(folder), DataRules())


def test_image_without_caption_is_named(tmp_path):
    from PIL import Image

    folder = make_folder(tmp_path / "d", 5)
    Image.new("RGB", (8, 8)).save(folder / "images" / "extra.png")
    with pytest.raises(DatasetError, match=r"image images/extra\.png has no caption"):
        load_images(spec_for(folder), DataRules())


def test_empty_caption_and_missing_file_are_named(tmp_path):
    folder = make_folder(tmp_path / "d", 5)
    lines = (folder / "captions.jsonl").read_text().splitlines()
    (folder / "captions.jsonl").write_text("\n".join([*lines[:4], json.dumps({"file": "images/004.png", "caption": " "})]))
    with pytest.raises(DatasetError, match=r"captions.jsonl line 5 \(images/004\.png\): column 'caption' is empty"):
        load_images(spec_for(folder), DataRules())
    for caption, problem in ((None, "is null"), (7, "is a int, not text"), ("x" * 65_537, "is 65,537 bytes, over the limit of 65,536")):
        (folder / "captions.jsonl").write_text("\n".join([*lines[:4], json.dumps({"file": "images/004.png", "caption": caption})]))
        with pytest.raises(DatasetError, match=rf"line 5 \(images/004\.png\): column 'caption' {problem}"):
            load_images(spec_for(folder), DataRules())
    (folder / "captions.jsonl").write_text("\n".join([*lines[:4], json.dumps({"file": "images/004.png"})]))
    with pytest.raises(DatasetError, match=r"column 'caption' is missing"):
        load_images(spec_for(folder), DataRules())
    (folder / "captions.jsonl").write_text("\n".join([*lines, json.dumps({"file": "images/gone.png", "caption": "x"})]))
    with pytest.raises(DatasetError, match=r"names images/gone\.png, which is not in the dataset"):
        load_images(spec_for(folder), DataRules())


def test_an_empty_or_non_utf8_captions_file_is_named(tmp_path):
    folder = make_folder(tmp_path / "d", 5)
    (folder / "captions.jsonl").write_text("\n \n")
    with pytest.raises(DatasetError, match="captions.jsonl is empty"):
        load_images(spec_for(folder), DataRules())
    (folder / "captions.jsonl").write_bytes(b'{"file": "images/000.png", "caption": "a"}\n{"file": "images/001.png", "caption": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl: line 2 is not valid UTF-8"):
        load_images(spec_for(folder), DataRules())


def test_too_few_images_and_missing_captions_file(tmp_path):
    with pytest.raises(DatasetError, match="3 captioned images, fewer than the minimum of 4"):
        load_images(spec_for(make_folder(tmp_path / "small", 3)), DataRules(min_images=4))
    folder = make_folder(tmp_path / "nocap", 5)
    (folder / "captions.jsonl").unlink()
    with pytest.raises(DatasetError, match="no captions file 'captions.jsonl'"):
        load_images(spec_for(folder), DataRules())
    with pytest.raises(DatasetError, match="not a folder or a .zip"):
        load_images(spec_for(tmp_path / "nowhere"), DataRules())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"kind": "landscape"}, "kind 'landscape'"), ({"model_type": "sd3"}, "model_type 'sd3'"),
     ({"captions": "../secret"}, "relative file name"), ({"colour": "red"}, "unknown keys")],
)
def test_spec_errors_name_the_field(tmp_path, overrides, message):
    with pytest.raises(DatasetError, match=message):
        spec_for(tmp_path, **overrides)


def test_a_missing_required_key_is_named_as_for_text_types(tmp_path):
    with pytest.raises(DatasetError, match=r"^image dataset spec: missing required key\(s\) \['kind', 'model_type'\]$"):
        ImageDatasetSpec.from_dict({"source": str(tmp_path)}, MODEL_TYPES)
    with pytest.raises(DatasetError, match="'kind' must be a non-empty string, got ''"):
        spec_for(tmp_path, kind="")
    with pytest.raises(DatasetError, match="^.*: 1 captioned image, fewer than the minimum of 4$"):
        load_images(spec_for(make_folder(tmp_path / "one", 1)), DataRules(min_images=4))


def test_split_is_seeded_ten_percent_with_at_least_one(tmp_path):
    images = load_images(spec_for(make_folder(tmp_path / "d", 30)), DataRules())
    train, hidden = split_images(images, DataRules())
    assert len(hidden) == 3 and len(train) == 27
    assert split_images(images, DataRules()) == (train, hidden)
    other_train, _ = split_images(images, DataRules(split_seed=7))
    assert [i.name for i in other_train] != [i.name for i in train]
    _, hidden_small = split_images(images[:5], DataRules())
    assert len(hidden_small) == 1


def test_prepare_keeps_hidden_images_out_of_the_train_zip(tmp_path):
    folder = make_folder(tmp_path / "d", 20)
    task = TaskDefinition("p", "image", "unused-model", {"source": str(folder), "kind": "style", "model_type": "sdxl"}, 10)
    prepared = get_task_type("image").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    assert (prepared.train_rows, prepared.hidden_rows) == (18, 2)
    with zipfile.ZipFile(prepared.train_file) as archive:
        rows = [json.loads(line) for line in archive.read("captions.jsonl").decode().splitlines()]
        assert all(archive.read(row["file"]).startswith(b"\x89PNG") for row in rows)
    hidden_captions = {caption for _, caption in read_captions_file(prepared.hidden_file)}
    assert len(rows) == 18 and not hidden_captions & {row["caption"] for row in rows}
    assert prepared.hidden_file.parent == tmp_path / "hidden"
    spec = json.loads((tmp_path / "train" / "dataset_spec.json").read_text())
    assert spec["model_type"] == "sdxl" and spec["kind"] == "style" and spec["output_file"] == "pytorch_lora_weights.safetensors"
    assert spec["scoring"]["text_weight"] == 0.25 and spec["scoring"]["no_text_weight"] == 0.75
