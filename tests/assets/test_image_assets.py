"""The offline image assets: synthetic datasets are deterministic and show one subject or one style;
the tiny pipeline loads as a real SD pipeline; the image build is cached apart from the text assets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainarena.assets.image import synthetic


def test_synthetic_datasets_are_deterministic_and_name_their_subject():
    plan = synthetic.DATASETS[0]
    first, again = synthetic.generate_dataset(plan, 32, seed=0), synthetic.generate_dataset(plan, 32, seed=0)
    assert [(image.tobytes(), caption) for image, caption in first] == [(image.tobytes(), caption) for image, caption in again]
    other = synthetic.generate_dataset(plan, 32, seed=1)
    assert [image.tobytes() for image, _ in other] != [image.tobytes() for image, _ in first]
    assert len(first) == plan.images and all(image.size == (32, 32) for image, _ in first)
    assert all(f"{plan.token} person" in caption for _, caption in first)
    assert len({caption for _, caption in first}) > plan.images // 2  # varied poses, shirts, backgrounds


def test_a_style_keeps_its_palette_across_varied_content():
    import numpy as np

    plan = next(d for d in synthetic.DATASETS if d.kind == "style")
    pairs = synthetic.generate_dataset(plan, 32, seed=0)
    assert len({caption.split(" in ")[0] for _, caption in pairs}) >= 4  # several kinds of object
    corners = {tuple(np.asarray(image)[0, 0]) for image, _ in pairs}
    assert len(corners) <= 2  # one background (a dot may touch the corner), whatever the content


def test_image_stamp_is_apart_from_the_text_stamp():
    import hashlib

    from trainarena.assets import ASSETS_VERSION, assets_stamp, build
    from trainarena.assets.image import image_assets_stamp

    text_dir = Path(build.__file__).parent
    # The text stamp hashes exactly the text builder's own modules: the image package is not among them,
    # so building or changing the image assets never invalidates the text assets.
    digest = hashlib.sha256(str(ASSETS_VERSION).encode())
    for source in sorted(text_dir.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    assert assets_stamp() == f"v{ASSETS_VERSION}-{digest.hexdigest()[:12]}"
    assert Path(synthetic.__file__).parent not in {p.parent for p in text_dir.glob("*.py")}
    assert image_assets_stamp() != assets_stamp()


@pytest.mark.slow
def test_the_tiny_pipeline_loads_as_an_sd_pipeline_and_pretrained(image_assets):
    from diffusers import StableDiffusionImg2ImgPipeline

    manifest = image_assets.manifest
    assert manifest["model_type"] == "sd" and manifest["resolution"] == 32
    assert manifest["pretraining"]["unet"]["last_loss"] < manifest["pretraining"]["unet"]["first_loss"]
    assert manifest["pretraining"]["vae"]["reconstruction_mse"] < 0.01  # the box codec: img2img's floor stays low
    pipeline = StableDiffusionImg2ImgPipeline.from_pretrained(image_assets.tiny_sd, safety_checker=None, requires_safety_checker=False)
    assert pipeline.tokenizer.model_max_length == pipeline.text_encoder.config.max_position_embeddings
    assert pipeline.vae_scale_factor == 2 and pipeline.unet.config.cross_attention_dim == pipeline.text_encoder.config.hidden_size
    for name, folder in image_assets.datasets.items():
        rows = [json.loads(line) for line in (folder / "captions.jsonl").read_text().splitlines()]
        assert len(rows) == manifest["datasets"][name]["images"] and all((folder / row["file"]).is_file() for row in rows)


@pytest.mark.slow
def test_ensure_image_assets_reuses_the_build(image_assets):
    from trainarena.assets.image import ensure_image_assets, image_assets_stamp

    assert ensure_image_assets(image_assets.root.parent).root == image_assets.root
    assert image_assets_stamp() in image_assets.root.name


@pytest.mark.slow  # imports diffusers (~3-9 s)
def test_the_box_codec_vae_reconstructs_as_a_2x2_box_filter():
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL

    from trainarena.assets.image.codec import codec_groups, init_box_codec
    from trainarena.assets.image.model import images_to_tensor

    vae = AutoencoderKL(
        latent_channels=4, block_out_channels=(16, 16), layers_per_block=1, norm_num_groups=codec_groups(16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, mid_block_add_attention=False,
    )
    init_box_codec(vae)
    pixels = images_to_tensor([image for image, _ in synthetic.generate_dataset(synthetic.DATASETS[2], 32, seed=0)[:8]])
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
        decoded = vae.decode(latents).sample
    box = F.avg_pool2d(pixels, 2)
    assert latents.shape == (8, 4, 16, 16)
    assert torch.allclose(latents[:, :3], box, atol=2e-3) and latents[:, 3].abs().max() < 1e-6
    assert torch.allclose(decoded, F.interpolate(box, scale_factor=2), atol=5e-3)  # brightness survives the GroupNorm
