"""The model families the house image script trains: what differs between SD, SDXL and Flux.

Each family loads its text-to-image pipeline from ``--model`` (frozen), makes its denoiser (the UNet, or
Flux's transformer) trainable, encodes the training data once with the pipeline's own text encoding (so
the conditioning is exactly the one scoring uses), computes the training loss of a batch, and saves a
LoRA in diffusers' layout for that pipeline (``pytorch_lora_weights.safetensors``).

What trains depends on the denoiser's size: a small one is fully fine-tuned (every Linear and Conv2d
weight) and its change is saved as an exact full-rank LoRA (``WeightDelta``), since on a small model a
full fine-tune both learns more per step and steps faster than a LoRA (no adapter layers in the
forward pass); a large one gets a PEFT LoRA on its attention and feed-forward projections.

Objectives, as each family was trained:
- SD and SDXL: DDPM noising at integer timesteps; the target is the noise (``epsilon``) or the velocity
  (``v_prediction``), as the scheduler's ``prediction_type`` says. SDXL also conditions on the pooled
  text embedding and the six size/crop numbers (original size, no crop, target size).
- Flux: flow matching. ``x_s = (1 - s) x0 + s noise`` and the target is ``noise - x0``; ``s`` is a uniform
  draw passed through the scheduler's resolution-dependent shift, as Flux's sampler spaces its sigmas.
Both draw ``scored_share`` of the noise levels below the img2img strength the task is scored at.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
FLUX_LORA_TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",  # joint attention
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out",
]
PIPELINES = {"sd": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}


def load_family(model_type: str, model: str, device: str, rank: int, guidance_scale: float = 1.0, full_finetune_below: int = 0):
    """The family of ``model_type`` loaded from ``model``; its denoiser fully fine-tuned when it has fewer
    than ``full_finetune_below`` parameters, else given a rank-``rank`` LoRA."""
    import diffusers

    if model_type not in PIPELINES:
        raise SystemExit(f"model_type {model_type!r}: this script trains {sorted(PIPELINES)}")
    extra = {"safety_checker": None, "requires_safety_checker": False} if model_type == "sd" else {}
    pipeline = getattr(diffusers, PIPELINES[model_type]).from_pretrained(model, **extra).to(device)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False)
    family = FluxFamily(pipeline, guidance_scale) if model_type == "flux" else UNetFamily(pipeline, model_type)
    if sum(p.numel() for p in family.denoiser.parameters()) < full_finetune_below:
        family.delta = WeightDelta(family.denoiser)
    else:
        from peft import LoraConfig  # imported only here: it costs seconds of a small budget

        targets = FLUX_LORA_TARGETS if model_type == "flux" else UNET_LORA_TARGETS
        family.denoiser.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets))
    return family


class WeightDelta:
    """A full fine-tune of a denoiser's Linear and Conv2d weights, saved as a LoRA: each layer's change
    factored exactly (``exact_lora_factors``), so any LoRA loader applies the fine-tuned model as it was
    trained. Biases and norms stay frozen (a LoRA cannot carry them)."""

    def __init__(self, denoiser: torch.nn.Module) -> None:
        self.layers = {name: m for name, m in denoiser.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
        self.start = {name: layer.weight.detach().clone() for name, layer in self.layers.items()}
        for layer in self.layers.values():
            layer.weight.requires_grad_(True)

    def lora_layers(self) -> dict[str, torch.Tensor]:
        """PEFT-named LoRA tensors (``<layer>.lora_A.weight`` / ``lora_B``) whose product is each layer's change."""
        layers = {}
        for name, layer in self.layers.items():
            down, up = exact_lora_factors(layer.weight.detach() - self.start[name])
            layers[f"{name}.lora_A.weight"], layers[f"{name}.lora_B.weight"] = down, up
        return layers


def exact_lora_factors(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(down, up) whose product is ``delta``: its SVD at full rank, the singular values in ``up``. A conv
    kernel (out, in, kh, kw) factors as PEFT's conv LoRA does: a kh x kw convolution down to the rank and
    a 1x1 convolution up."""
    u, s, vh = torch.linalg.svd(delta.float().reshape(delta.shape[0], -1), full_matrices=False)
    down, up = vh.contiguous(), (u * s).contiguous()
    if delta.dim() == 4:
        down, up = down.reshape(len(s), *delta.shape[1:]), up.reshape(delta.shape[0], len(s), 1, 1)
    return down, up


def adapter_layers(family) -> dict[str, torch.Tensor]:
    """What the family trained, as PEFT-named LoRA tensors for its pipeline's ``save_lora_weights``."""
    if family.delta:
        return family.delta.lora_layers()
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(family.denoiser)


class UNetFamily:
    """SD and SDXL: a UNet trained on DDPM noising, epsilon or v-prediction."""

    def __init__(self, pipeline, model_type: str) -> None:
        from diffusers import DDPMScheduler

        self.pipeline, self.model_type, self.denoiser = pipeline, model_type, pipeline.unet
        self.delta: WeightDelta | None = None  # set by load_family for a full fine-tune
        self.scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
        self.prediction = self.scheduler.config.prediction_type

    def encode_latents(self, pixels):
        vae = self.pipeline.vae
        return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor

    def encode_text(self, texts: list[str], size: tuple[int, int]) -> dict:
        """Per text: the cross-attention states (and, for SDXL, the pooled embedding and size numbers)."""
        device = self.pipeline.device
        if self.model_type == "sd":
            states, _ = self.pipeline.encode_prompt(texts, device, 1, False)
            return {"states": states}
        states, _, pooled, _ = self.pipeline.encode_prompt(texts, device=device, do_classifier_free_guidance=False)
        time_ids = torch.tensor([[*size, 0, 0, *size]], dtype=states.dtype, device=device).expand(len(texts), -1)
        return {"states": states, "pooled": pooled, "time_ids": time_ids}

    def loss(self, latents, text: dict, high: list[int], rng: random.Random, generator) -> torch.Tensor:
        """``high[i]``: example i's timestep is drawn below it."""
        device = latents.device
        timesteps = torch.tensor([rng.randrange(h) for h in high], device=device)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        extra = {"added_cond_kwargs": {"text_embeds": text["pooled"], "time_ids": text["time_ids"]}} if "pooled" in text else {}
        prediction = self.denoiser(noisy, timesteps, text["states"], **extra).sample
        target = noise if self.prediction == "epsilon" else self.scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(prediction, target)

    def timestep_limits(self, strength: float) -> tuple[int, int]:
        """(all noise levels, the scored ones): timesteps below the second are the ones img2img uses."""
        total = self.scheduler.config.num_train_timesteps
        return total, max(1, int(strength * total))

    def save(self, output_dir: str) -> None:
        type(self.pipeline).save_lora_weights(output_dir, unet_lora_layers=adapter_layers(self), safe_serialization=True)


class FluxFamily:
    """Flux: a transformer over 2x2-packed latents, trained by flow matching (rectified flow)."""

    STEPS = 1000  # the uniform grid noise levels are drawn on, as timesteps are for DDPM

    def __init__(self, pipeline, guidance_scale: float = 1.0) -> None:
        self.pipeline, self.denoiser = pipeline, pipeline.transformer
        self.delta: WeightDelta | None = None  # set by load_family for a full fine-tune
        self.guidance_scale = guidance_scale  # only guidance-distilled transformers (Flux.1-dev) take it

    def encode_latents(self, pixels):
        """Packed latents (N, tokens, 4 x channels), the way the pipeline packs them."""
        vae = self.pipeline.vae
        latents = (vae.encode(pixels).latent_dist.mean - vae.config.shift_factor) * vae.config.scaling_factor
        n, c, h, w = latents.shape
        self.image_ids = self.pipeline._prepare_latent_image_ids(n, h // 2, w // 2, latents.device, latents.dtype)
        self.tokens = (h // 2) * (w // 2)
        return self.pipeline._pack_latents(latents, n, c, h, w)

    def encode_text(self, texts: list[str], size: tuple[int, int]) -> dict:
        tokens = self.pipeline.tokenizer_2.model_max_length
        states, pooled, text_ids = self.pipeline.encode_prompt(texts, device=self.pipeline.device, max_sequence_length=tokens)
        self.text_ids = text_ids
        return {"states": states, "pooled": pooled}

    def timestep_limits(self, strength: float) -> tuple[int, int]:
        return self.STEPS, max(1, int(strength * self.STEPS))

    def sigmas(self, uniform: torch.Tensor) -> torch.Tensor:
        """The scheduler's shift for this image size, applied to uniform draws in (0, 1]."""
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        config = self.pipeline.scheduler.config
        if not config.use_dynamic_shifting:
            return config.shift * uniform / (1 + (config.shift - 1) * uniform)
        mu = calculate_shift(self.tokens, config.base_image_seq_len, config.max_image_seq_len, config.base_shift, config.max_shift)
        return self.pipeline.scheduler.time_shift(mu, 1.0, uniform)

    def loss(self, latents, text: dict, high: list[int], rng: random.Random, generator) -> torch.Tensor:
        device = latents.device
        uniform = torch.tensor([(rng.randrange(h) + 1) / self.STEPS for h in high], device=device)
        sigma = self.sigmas(uniform).to(latents.dtype)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        noisy = (1 - sigma[:, None, None]) * latents + sigma[:, None, None] * noise
        guidance = torch.full_like(sigma, self.guidance_scale) if self.denoiser.config.guidance_embeds else None
        prediction = self.denoiser(
            hidden_states=noisy, timestep=sigma, guidance=guidance, pooled_projections=text["pooled"],
            encoder_hidden_states=text["states"], txt_ids=self.text_ids, img_ids=self.image_ids,
        ).sample
        return F.mse_loss(prediction, noise - latents)

    def save(self, output_dir: str) -> None:
        type(self.pipeline).save_lora_weights(output_dir, transformer_lora_layers=adapter_layers(self), safe_serialization=True)
