"""The house image script (examples/competitors/image_baseline) reads training images of any sizes as
one batchable size, and keeps a dataset of one size as it is."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "competitors" / "image_baseline" / "train.py"


def house_script():
    spec = importlib.util.spec_from_file_location("image_baseline_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_zip(path: Path, sizes: list[tuple[int, int]]) -> Path:
    from PIL import Image

    with zipfile.ZipFile(path, "w") as archive:
        lines = []
        for index, size in enumerate(sizes):
            buffer = io.BytesIO()
            Image.new("RGB", size, (index * 40, 90, 200)).save(buffer, format="PNG")
            archive.writestr(f"images/{index:04d}.png", buffer.getvalue())
            lines.append(json.dumps({"file": f"images/{index:04d}.png", "caption": f"image {index}"}))
        archive.writestr("captions.jsonl", "\n".join(lines) + "\n")
    return path


def test_images_of_mixed_sizes_are_fitted_to_one_size(tmp_path):
    pairs = house_script().read_images(str(train_zip(tmp_path / "mixed.zip", [(70, 50), (40, 90), (64, 64)])), "captions.jsonl")
    assert {image.size for image, _ in pairs} == {(32, 48)}  # smallest width 40 -> 32, height 50 -> 48
    assert [caption for _, caption in pairs] == ["image 0", "image 1", "image 2"]
    assert pairs[0][0].getpixel((5, 5)) == (0, 90, 200)  # scaled and cropped, colours kept


def test_images_of_one_size_are_kept_as_they_are(tmp_path):
    pairs = house_script().read_images(str(train_zip(tmp_path / "same.zip", [(32, 32)] * 3)), "captions.jsonl")
    assert {image.size for image, _ in pairs} == {(32, 32)}
