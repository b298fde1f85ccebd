"""A tiny pipeline of Flux's shape, built from configs (not pre-trained), saved as a real Flux pipeline.

As Flux.1: a box-codec ``AutoencoderKL`` without quant convs and with a shift factor (``codec.py``), a
CLIP text encoder (pooled output) and a T5 encoder (per-token states), a ``FluxTransformer2DModel``
(double- and single-stream blocks over 2x2-packed latents, rotary positions) without guidance
embedding, as Flux.1-schnell, and a flow-matching Euler scheduler with Flux's resolution-dependent
shift. ``FluxImg2ImgPipeline.from_pretrained`` loads it; LoRA keys have Flux's names
(``transformer.transformer_blocks.0.attn.to_q``). Random weights, for the reason given in ``sdxl.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainarena.assets.image.codec import box_codec_vae
from trainarena.assets.image.text_encoders import clip_text_encoder, t5_text_encoder, train_clip_tokenizer, train_t5_tokenizer


@dataclass(frozen=True)
class TinyFluxShape:
    resolution: int = 32
    vae_channels: tuple[int, ...] = (16, 16)  # one downsampling: 16x16x4 latents, packed to 8x8 tokens of 16
    latent_channels: int = 4
    double_blocks: int = 1
    single_blocks: int = 1
    heads: int = 2
    head_dim: int = 8
    rope_axes: tuple[int, int, int] = (2, 2, 4)  # sums to head_dim
    clip_hidden: int = 16  # the pooled vector's width
    clip_layers: int = 2
    t5_hidden: int = 32  # the per-token states' width
    t5_layers: int = 2
    text_heads: int = 2
    max_caption_tokens: int = 32  # CLIP's positions and the T5 sequence the pipeline is called with
    vocab_size: int = 600


def scheduler_config() -> dict:
    """Flux.1's flow-matching schedule: sigmas shifted by the image's token count."""
    return {
        "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True,
        "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096,
    }


def build_flux(captions: list[str], seed: int, shape: TinyFluxShape = TinyFluxShape()):
    """The tiny ``FluxPipeline`` (random weights, box-codec VAE; scale and shift set by ``calibrate``)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    tokenizer = train_clip_tokenizer(captions, shape.vocab_size, shape.max_caption_tokens)
    tokenizer_2 = train_t5_tokenizer(captions, shape.vocab_size, shape.max_caption_tokens)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * shape.latent_channels, num_layers=shape.double_blocks,
        num_single_layers=shape.single_blocks, attention_head_dim=shape.head_dim, num_attention_heads=shape.heads,
        joint_attention_dim=shape.t5_hidden, pooled_projection_dim=shape.clip_hidden, guidance_embeds=False,
        axes_dims_rope=shape.rope_axes,
    )
    vae = box_codec_vae(
        shape.resolution, shape.vae_channels, shape.latent_channels,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0, force_upcast=False,
    )
    return FluxPipeline(
        vae=vae, tokenizer=tokenizer, tokenizer_2=tokenizer_2,
        text_encoder=clip_text_encoder(tokenizer, shape.clip_hidden, shape.clip_layers, shape.text_heads, shape.clip_hidden, with_projection=False),
        text_encoder_2=t5_text_encoder(tokenizer_2, shape.t5_hidden, shape.t5_layers, shape.text_heads),
        transformer=transformer.eval().requires_grad_(False), scheduler=FlowMatchEulerDiscreteScheduler(**scheduler_config()),
    )
