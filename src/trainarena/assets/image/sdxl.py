"""A tiny pipeline of SDXL's shape, built from configs (not pre-trained), saved as a real SDXL pipeline.

As SDXL: a box-codec ``AutoencoderKL`` (``codec.py``), two CLIP text encoders whose penultimate states are
concatenated for cross-attention (the second, ``CLIPTextModelWithProjection``, also gives the pooled
embedding), a ``UNet2DConditionModel`` with ``addition_embed_type="text_time"`` (pooled text + the six
size/crop numbers) and linear attention projections, and an Euler scheduler with SDXL's betas and
epsilon prediction. ``StableDiffusionXLImg2ImgPipeline.from_pretrained`` loads it; LoRA keys have SDXL's
names (``unet.…attn1.to_q``). Its weights are random: it exists so that SDXL's code paths (loading, LoRA
training and loading, img2img scoring) run for real; the pre-trained SD pipeline is the one to compare
training methods on.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainarena.assets.image.codec import box_codec_vae
from trainarena.assets.image.model import scheduler_config
from trainarena.assets.image.text_encoders import clip_text_encoder, train_clip_tokenizer


@dataclass(frozen=True)
class TinySDXLShape:
    resolution: int = 32
    vae_channels: tuple[int, ...] = (16, 16)  # one downsampling: 16x16x4 latents
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (16, 32)
    norm_groups: int = 8
    attention_head_dim: int = 2
    text_hidden: tuple[int, int] = (16, 16)  # CLIP-L and CLIP-G's places; their sum is the cross-attention width
    text_layers: int = 2
    text_heads: int = 2
    pooled_dim: int = 16  # the second encoder's projection
    time_embed_dim: int = 8  # per size/crop number; six of them
    max_caption_tokens: int = 32
    vocab_size: int = 600
    train_timesteps: int = 1000


def build_sdxl(captions: list[str], seed: int, shape: TinySDXLShape = TinySDXLShape()):
    """The tiny ``StableDiffusionXLPipeline`` (random weights, box-codec VAE; scale set by ``calibrate``)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer = train_clip_tokenizer(captions, shape.vocab_size, shape.max_caption_tokens)
    first, second = shape.text_hidden
    text_encoder = clip_text_encoder(tokenizer, first, shape.text_layers, shape.text_heads, first, with_projection=False)
    text_encoder_2 = clip_text_encoder(tokenizer, second, shape.text_layers, shape.text_heads, shape.pooled_dim, with_projection=True)
    unet = UNet2DConditionModel(
        sample_size=shape.resolution // 2 ** (len(shape.vae_channels) - 1),
        in_channels=shape.latent_channels, out_channels=shape.latent_channels,
        block_out_channels=shape.unet_channels, layers_per_block=1, norm_num_groups=shape.norm_groups,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=first + second, attention_head_dim=shape.attention_head_dim, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=shape.time_embed_dim,
        projection_class_embeddings_input_dim=6 * shape.time_embed_dim + shape.pooled_dim,
    )
    schedule = scheduler_config(shape) | {"timestep_spacing": "leading"}
    schedule.pop("clip_sample"), schedule.pop("set_alpha_to_one")  # DDIM's keys, not Euler's
    return StableDiffusionXLPipeline(
        vae=box_codec_vae(shape.resolution, shape.vae_channels, shape.latent_channels, force_upcast=False),
        text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer,
        unet=unet.eval().requires_grad_(False), scheduler=EulerDiscreteScheduler(**schedule),
    )
