"""Builds the offline image assets into a cache directory, once: the tiny SD-shaped pipeline (pre-trained),
tiny SDXL- and Flux-shaped ones (random weights, built in about a second) and the synthetic person and
style datasets (each a folder of PNGs + ``captions.jsonl``).

Cached apart from the text assets: its own lock (``.image-assets.lock``), its own directory and stamp
(the hash of this folder's source and of the text tokenizer builder it reuses), so building or changing
the image assets never rebuilds the text ones, and a text-only user never pays for the image build.
Same concurrency scheme as ``assets/build.py``: exclusive ``fcntl`` lock, build into a temporary
directory, rename into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainarena.assets.cache import ensure_built

IMAGE_ASSETS_VERSION = 2  # 2: tiny_sdxl and tiny_flux
MANIFEST = "manifest.json"
TINY_SD = "tiny_sd"
TINY_SDXL = "tiny_sdxl"
TINY_FLUX = "tiny_flux"
CALIBRATION_IMAGES = 256  # the latent statistics the SDXL and Flux VAE constants are set from (all 2,000 took 5 s)
PIPELINES = {"sd": TINY_SD, "sdxl": TINY_SDXL, "flux": TINY_FLUX}  # model_type -> folder (and built-in name)
CAPTIONS_FILE = "captions.jsonl"
IMAGES_DIR = "images"
MODEL_TYPE = "sd"  # the tiny pipeline has SD 1.x's layout


@dataclass(frozen=True)
class ImageAssets:
    """Paths of a finished image build. ``dataset_kinds[name]`` is person or style; ``pipelines[model_type]``
    is the tiny pipeline of that type (``pipelines["sd"]`` is ``tiny_sd``)."""

    root: Path
    tiny_sd: Path  # diffusers pipeline directory (model_index.json, safetensors)
    datasets: dict[str, Path]  # folders: images/*.png + captions.jsonl
    dataset_kinds: dict[str, str]
    manifest: dict[str, Any]
    pipelines: dict[str, Path] = field(default_factory=dict)


def image_assets_stamp() -> str:
    """Version + hash of this builder's source and of the text tokenizer trainer it reuses."""
    from trainarena.assets import tokenizer as tokenizer_module

    digest = hashlib.sha256(str(IMAGE_ASSETS_VERSION).encode())
    sources = sorted(Path(__file__).parent.glob("*.py")) + [Path(tokenizer_module.__file__)]
    for source in sources:
        digest.update(source.name.encode() + source.read_bytes())
    return f"v{IMAGE_ASSETS_VERSION}-{digest.hexdigest()[:12]}"


def ensure_image_assets(cache_dir: Path, seed: int = 0) -> ImageAssets:
    """The built image assets under ``cache_dir``, built first if absent (idempotent, process-safe)."""
    cache_dir = Path(cache_dir)
    final = cache_dir / f"image-assets-{image_assets_stamp()}-seed{seed}"
    ensure_built(final, MANIFEST, cache_dir / ".image-assets.lock", lambda staging: _build(staging, seed))
    return _load(final)


def write_image_folder(pairs: list[tuple[object, str]], directory: Path) -> None:
    """``directory/images/0000.png ...`` + ``directory/captions.jsonl`` ({"file", "caption"} per line)."""
    (directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    lines = []
    for index, (image, caption) in enumerate(pairs):
        name = f"{IMAGES_DIR}/{index:04d}.png"
        image.save(directory / name)
        lines.append(json.dumps({"file": name, "caption": caption}) + "\n")
    (directory / CAPTIONS_FILE).write_text("".join(lines), encoding="utf-8")


def _build(root: Path, seed: int) -> None:
    import torch

    from trainarena.assets.image import model as model_builder
    from trainarena.assets.image import synthetic
    from trainarena.assets.tokenizer import train_tokenizer

    timings: dict[str, float] = {}
    started = time.monotonic()
    shape, plan = model_builder.TinySDShape(), model_builder.PretrainPlan()
    datasets = {d.name: synthetic.generate_dataset(d, shape.resolution, seed) for d in synthetic.DATASETS}
    for name, pairs in datasets.items():
        write_image_folder(pairs, root / "datasets" / name)
    generic = synthetic.generic_images(plan.generic_images, shape.resolution, seed)
    timings["images"] = time.monotonic() - started

    mark = time.monotonic()
    captions = [caption for pairs in (*datasets.values(), generic) for _, caption in pairs]
    tokenizer = train_tokenizer(captions * 4, shape.vocab_size, model_max_length=shape.max_caption_tokens)
    threads = torch.get_num_threads()
    try:
        # One thread: pre-training is capped by the clock, and on a busy machine OpenMP threads that
        # spin at barriers (the caller may have imported torch before OMP_WAIT_POLICY could be set)
        # slowed it to 9 UNet steps in 40 s instead of ~320 (measured); a single thread has no barrier
        # and was within 3% of two threads' speed on the shared 2-core machine.
        torch.set_num_threads(1)
        components = model_builder.build_components(tokenizer, shape, seed)
        pretraining = model_builder.pretrain(components, generic, plan, seed)
    finally:
        torch.set_num_threads(threads)
    model_builder.save_pipeline(components, root / TINY_SD)
    timings["model"] = time.monotonic() - mark
    mark = time.monotonic()
    sample = model_builder.images_to_tensor([image for image, _ in generic[:CALIBRATION_IMAGES]])
    family_parameters = _build_families(root, captions, sample, seed)
    timings["sdxl_flux"] = time.monotonic() - mark
    timings["total"] = time.monotonic() - started
    manifest = {
        "stamp": image_assets_stamp(),
        "seed": seed,
        "tiny_sd": TINY_SD,
        "model_type": MODEL_TYPE,
        "pipelines": PIPELINES,
        "resolution": shape.resolution,
        "parameters": {k: sum(p.numel() for p in components[k].parameters()) for k in ("vae", "unet", "text_encoder")},
        "family_parameters": family_parameters,
        "pretraining": pretraining,
        "datasets": {
            d.name: {"folder": f"datasets/{d.name}", "kind": d.kind, "token": d.token, "images": d.images}
            for d in synthetic.DATASETS
        },
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _build_families(root: Path, captions: list[str], pixels, seed: int) -> dict[str, dict[str, int]]:
    """Build and save the tiny SDXL and Flux pipelines; their parameter counts by component."""
    from trainarena.assets.image.codec import calibrate_latents
    from trainarena.assets.image.flux import build_flux
    from trainarena.assets.image.sdxl import build_sdxl

    counts = {}
    for model_type, builder in (("sdxl", build_sdxl), ("flux", build_flux)):
        pipeline = builder(captions, seed)
        calibrate_latents(pipeline.vae, pixels, shift=model_type == "flux")
        pipeline.save_pretrained(root / PIPELINES[model_type], safe_serialization=True)
        modules = {name: part for name, part in pipeline.components.items() if hasattr(part, "parameters")}
        counts[model_type] = {name: sum(p.numel() for p in part.parameters()) for name, part in modules.items()}
    return counts


def _load(root: Path) -> ImageAssets:
    manifest = json.loads((root / MANIFEST).read_text())
    return ImageAssets(
        root=root,
        tiny_sd=root / manifest["tiny_sd"],
        datasets={name: root / info["folder"] for name, info in manifest["datasets"].items()},
        dataset_kinds={name: info["kind"] for name, info in manifest["datasets"].items()},
        manifest=manifest,
        pipelines={model_type: root / folder for model_type, folder in manifest["pipelines"].items()},
    )
