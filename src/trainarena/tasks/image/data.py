"""Loading, validating and splitting captioned image datasets (a folder or a zip holding the images and
a captions file). Every problem raises :class:`DatasetError` naming the dataset and the file.

Images are decoded and re-encoded as RGB PNG, so the train zip and the hidden folder hold one format
whatever the source used, and a file that only claims to be an image is caught here, not in a script.
The split groups images by their pixels (``content_key``), so one picture stored under two names never
lands on both sides.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError
from trainarena.tasks.image.spec import ImageDatasetSpec
from trainarena.tasks.split import split_rows
from trainarena.tasks.text.rows import check_text_size, parse_jsonl, text_problem
from trainarena.wording import counted

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# The formats an image is opened as, whatever its name: Pillow otherwise detects any format it knows by
# the content, EPS too, which it renders by running Ghostscript on the PostScript it was sent.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
CAPTIONS_FILE = "captions.jsonl"
IMAGES_DIR = "images"


@dataclass(frozen=True)
class CaptionedImage:
    name: str  # path inside the dataset, as the captions file names it
    caption: str
    png: bytes  # the image re-encoded as RGB PNG
    size: tuple[int, int]
    content_key: str  # sha256 of the size and RGB pixels: the split's group key


def load_images(spec: ImageDatasetSpec, rules: DataRules) -> list[CaptionedImage]:
    """Every captioned image of the source, validated, in captions-file order."""
    files = _read_source(Path(spec.source))
    if spec.captions not in files:
        raise DatasetError(f"{spec.source}: no captions file '{spec.captions}' (one JSON object per line: file, caption)")
    captions = _parse_captions(spec.source, spec.captions, files.pop(spec.captions), rules)
    uncaptioned = sorted(name for name in files if name.lower().endswith(IMAGE_SUFFIXES) and name not in captions)
    if uncaptioned:
        raise DatasetError(f"{spec.source}: image {uncaptioned[0]} has no caption in {spec.captions}")
    images, pixels = [], 0
    for name, caption in captions.items():
        if name not in files:
            raise DatasetError(f"{spec.source}: {spec.captions} names {name}, which is not in the dataset")
        images.append(_decode(spec.source, name, caption, files[name], rules, pixels))
        pixels += images[-1].size[0] * images[-1].size[1]
    if len(images) < rules.min_images:
        raise DatasetError(f"{spec.source}: {counted(len(images), 'captioned image')}, fewer than the minimum of {rules.min_images}")
    return images


def split_images(images: list[CaptionedImage], rules: DataRules, source: str = "dataset") -> tuple[list[CaptionedImage], list[CaptionedImage]]:
    """(train, hidden) with the same seeded rule as text rows, grouped by pixels (``content_key``)."""
    return split_rows(images, rules, lambda image: image.content_key, source)


def pixel_key(png: bytes) -> str:
    """The content key of an encoded image: the same pixels give the same key, whatever the file's name or format."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as opened:
        rgb = opened.convert("RGB")
    return _pixel_hash(rgb)


def written_image_keys(train_zip: Path, hidden_captions: Path) -> tuple[list[str], list[str]]:
    """The content key of every image of a written split: ``(train keys, hidden keys)``."""
    with zipfile.ZipFile(train_zip) as archive:
        train = [pixel_key(archive.read(name)) for name in archive.namelist() if name.startswith(f"{IMAGES_DIR}/")]
    return train, [pixel_key(path.read_bytes()) for path, _caption in read_captions_file(hidden_captions)]


def write_train_zip(images: list[CaptionedImage], path: Path) -> None:
    """``images/NNNN.png`` + ``captions.jsonl``, stored (PNG is already compressed); fixed timestamps, so
    the same split always gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        lines = []
        for index, image in enumerate(images):
            name = f"{IMAGES_DIR}/{index:04d}.png"
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), image.png)
            lines.append(json.dumps({"file": name, "caption": image.caption}) + "\n")
        archive.writestr(zipfile.ZipInfo(CAPTIONS_FILE, date_time=(2025, 1, 1, 0, 0, 0)), "".join(lines))


def write_hidden_folder(images: list[CaptionedImage], directory: Path) -> Path:
    """``directory/images/NNNN.png`` + ``directory/captions.jsonl``; returns the captions file."""
    (directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    lines = []
    for index, image in enumerate(images):
        name = f"{IMAGES_DIR}/{index:04d}.png"
        (directory / name).write_bytes(image.png)
        lines.append(json.dumps({"file": name, "caption": image.caption}) + "\n")
    captions = directory / CAPTIONS_FILE
    captions.write_text("".join(lines), encoding="utf-8")
    return captions


def read_captions_file(path: Path) -> list[tuple[Path, str]]:
    """(image path, caption) pairs of a written hidden folder, in file order."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append((path.parent / row["file"], row["caption"]))
    return pairs


def _read_source(source: Path) -> dict[str, bytes]:
    """Relative POSIX name -> bytes of every regular file of a folder or a zip."""
    if source.is_dir():
        return {p.relative_to(source).as_posix(): p.read_bytes() for p in sorted(source.rglob("*")) if p.is_file() and not p.is_symlink()}
    if source.is_file() and source.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(source) as archive:
                return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir() and _safe(info.filename)}
        except (zipfile.BadZipFile, OSError) as error:
            raise DatasetError(f"{source}: cannot read the zip ({error})") from None
    raise DatasetError(f"{source}: not a folder or a .zip of captioned images")


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def _parse_captions(source: str, captions_name: str, raw: bytes, rules: DataRules) -> dict[str, str]:
    captions: dict[str, str] = {}
    rows = parse_jsonl(f"{source}: {captions_name}", raw)
    if not rows:
        raise DatasetError(f"{source}: {captions_name} is empty (one JSON object per line: file, caption)")
    for number, row in rows:
        name, caption = row.get("file"), row.get("caption")
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{source}: {captions_name} line {number} has no 'file'")
        where = f"{source}: {captions_name} line {number} ({name})"
        problem = text_problem(row, "caption")
        if problem is None and not isinstance(caption, str):
            problem = f"column 'caption' is a {type(caption).__name__}, not text"
        if problem:
            raise DatasetError(f"{where}: {problem}")
        check_text_size(f"{where}: column 'caption'", caption, rules)
        captions[name] = caption.strip()
    return captions


def _decode(source: str, name: str, caption: str, raw: bytes, rules: DataRules, pixels_before: int) -> CaptionedImage:
    """The image, re-encoded; its size is read from its header and checked against ``rules`` (with the
    ``pixels_before`` of the dataset's images before it) before a pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    stream = io.BytesIO(raw)
    try:
        with Image.open(stream, formats=IMAGE_FORMATS) as opened:  # the header only
            width, height = opened.size
            if width * height > rules.max_image_pixels:
                raise DatasetError(f"{source}: image {name} is {width}x{height} pixels, more than the {rules.max_image_pixels:,} "
                                   "allowed (data.max_image_pixels); scale it down")  # fmt: skip
            if pixels_before + width * height > rules.max_dataset_pixels:
                raise DatasetError(f"{source}: the images up to {name} hold more than the {rules.max_dataset_pixels:,} pixels "
                                   "a dataset may hold in all (data.max_dataset_pixels); use fewer or smaller images")  # fmt: skip
            rgb = opened.convert("RGB")
    except DatasetError:  # a ValueError too: not one of the image's own
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        detail = str(error).replace(str(stream), name)  # PIL names the stream it read (a memory address), not the file
        raise DatasetError(f"{source}: image {name} is unreadable ({type(error).__name__}: {detail})") from None
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return CaptionedImage(name=name, caption=caption, png=buffer.getvalue(), size=rgb.size, content_key=_pixel_hash(rgb))


def _pixel_hash(rgb) -> str:
    return hashlib.sha256(f"{rgb.size[0]}x{rgb.size[1]}:".encode() + rgb.tobytes()).hexdigest()
