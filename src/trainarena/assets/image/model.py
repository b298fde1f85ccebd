"""A tiny text-to-image pipeline of Stable Diffusion's shape, built from configs and pre-trained briefly.

Components, as in SD 1.x: ``AutoencoderKL`` (one downsampling: 32x32 RGB <-> 16x16x4 latents; its
weights are set by construction to a 2x2 box codec, see ``codec.py``), a
``UNet2DConditionModel`` with cross-attention blocks, a ``CLIPTextModel`` over a byte-level BPE tokenizer
trained on the captions, and a DDIM scheduler with SD's scaled-linear betas. Saved with
``StableDiffusionPipeline.save_pretrained`` (safetensors), so the evaluator and the competitors load it
exactly as they would a real SD checkpoint, and LoRA targets (``to_q``, ``to_k``, ``to_v``,
``to_out.0``) have SD's names.

Pre-training (noise prediction for UNet and text encoder; the VAE is not trained) runs on generic
shapes only, for a fixed number of steps or a wall-clock cap, whichever comes first: the pipeline
knows pictures in general, and a LoRA fine-tune on a person or a style has something to add.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinySDShape:
    resolution: int = 32  # pixels; latents are resolution // 2
    vae_channels: tuple[int, ...] = (16, 16)  # the box codec's width: four GroupNorm channels per RGB signal + one spare group
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (16, 32)
    norm_groups: int = 8
    cross_attention_dim: int = 32
    attention_head_dim: int = 2  # diffusers: the number of heads; few heads keep CPU attention cheap
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 4
    max_caption_tokens: int = 32  # CLIP max positions; the tokenizer's model_max_length
    vocab_size: int = 600
    train_timesteps: int = 1000


@dataclass(frozen=True)
class PretrainPlan:
    unet_steps: int = 1500
    unet_seconds: float = 40.0  # the wall-clock cap keeps the build under a minute on a slow machine
    batch_size: int = 16
    unet_lr: float = 1e-3
    generic_images: int = 2000
    caption_dropout: float = 0.2  # empty captions teach the unconditional case img2img scoring uses too


def scheduler_config(shape: TinySDShape) -> dict:
    """SD 1.x's noise schedule (scaled-linear betas), shared by the training (DDPM) and scoring (DDIM) sides."""
    return {
        "num_train_timesteps": shape.train_timesteps,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "prediction_type": "epsilon",
    }


def build_components(tokenizer, shape: TinySDShape, seed: int) -> dict:
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from trainarena.assets.image.codec import box_codec_vae

    torch.manual_seed(seed)
    vae = box_codec_vae(shape.resolution, shape.vae_channels, shape.latent_channels)
    unet = UNet2DConditionModel(
        sample_size=shape.resolution // 2 ** (len(shape.vae_channels) - 1),
        in_channels=shape.latent_channels, out_channels=shape.latent_channels,
        block_out_channels=shape.unet_channels, layers_per_block=1, norm_num_groups=shape.norm_groups,
        # Attention at the lower resolution only (8x8 tokens, and the mid block): ~25% cheaper steps than
        # attention at 16x16 (measured), so pre-training and the competitors' budgets buy more steps.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=shape.cross_attention_dim, attention_head_dim=shape.attention_head_dim,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=shape.text_hidden, intermediate_size=shape.text_hidden * 2,
            num_hidden_layers=shape.text_layers, num_attention_heads=shape.text_heads,
            max_position_embeddings=shape.max_caption_tokens, projection_dim=shape.cross_attention_dim,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
    )
    if shape.text_hidden != shape.cross_attention_dim:
        raise ValueError("text_hidden must equal cross_attention_dim (the UNet attends to the text states)")
    scheduler = DDIMScheduler(**scheduler_config(shape))
    return {"vae": vae, "unet": unet, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def images_to_tensor(images: list) -> torch.Tensor:  # noqa: F821 - torch imported lazily
    """PIL images -> float tensor (N, 3, H, W) in [-1, 1], the range SD's VAE works in."""
    import numpy as np
    import torch

    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def pretrain(components: dict, pairs: list[tuple[object, str]], plan: PretrainPlan, seed: int) -> dict:
    """UNet + text encoder noise prediction on the generic pairs (the VAE is the fixed box codec)."""
    pixels = images_to_tensor([image for image, _ in pairs])
    captions = [caption for _, caption in pairs]
    report = {"vae": {"codec": "2x2 box", "reconstruction_mse": reconstruction_mse(components["vae"], pixels)}}
    report["unet"] = _pretrain_unet(components, pixels, captions, plan, seed)
    return report


def reconstruction_mse(vae, pixels) -> float:
    """Pixel MSE (RGB in [0, 1]) of encoding and decoding ``pixels``: the floor of every img2img score."""
    import torch

    with torch.no_grad():
        decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample.clamp(-1, 1)
    return round(float(((decoded - pixels) / 2).pow(2).mean()), 5)


def encode_latents(vae, pixels, generator=None):
    """Scaled latent means (deterministic): what the UNet is trained to denoise."""
    import torch

    with torch.no_grad():
        return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor


def _pretrain_unet(components: dict, pixels, captions: list[str], plan: PretrainPlan, seed: int) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    vae, unet, text_encoder, tokenizer = (components[k] for k in ("vae", "unet", "text_encoder", "tokenizer"))
    noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
    latents = torch.cat([encode_latents(vae, chunk) for chunk in pixels.split(256)])
    # The VAE's scaling factor is set so that the latents have unit variance, as SD's 0.18215 does for SD.
    std = (latents / vae.config.scaling_factor).std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    latents = latents / latents.std()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=plan.unet_lr)
    unet.train(), text_encoder.train()
    started, losses, step = time.monotonic(), [], 0
    while step < plan.unet_steps and time.monotonic() - started < plan.unet_seconds:
        index = torch.randint(len(latents), (plan.batch_size,), generator=generator)
        texts = ["" if rng.random() < plan.caption_dropout else captions[i] for i in index.tolist()]
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn(latents[index].shape, generator=generator)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(index),), generator=generator)
        noisy = noise_scheduler.add_noise(latents[index], noise, timesteps)
        prediction = unet(noisy, timesteps, text_encoder(ids).last_hidden_state).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        step += 1
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return {"steps": step, "first_loss": round(losses[0], 4), "last_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4)}


def save_pipeline(components: dict, directory: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipeline.save_pretrained(directory, safe_serialization=True)
