"""trainarena example competitor: a short, fixed LoRA schedule that finishes early.

The bet: a small LoRA (rank 4) at a high rate converges in a few dozen steps; more steps only
overfit the handful of training images. It stops after MAX_STEPS or the clock, whichever is first.
Otherwise as the house image baseline (cached latents, SIGTERM-safe save of
pytorch_lora_weights.safetensors, torch threads from OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import signal
import time
import zipfile

STOP_FRACTION = 0.75  # saving, and imports already paid, fit in the rest
LORA_RANK = 4
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
LEARNING_RATE = 3e-3  # few steps, so a high rate
MIN_LR_RATIO = 0.1
WARMUP_STEPS = 10
BATCH_SIZE = 8
CAPTION_DROPOUT = 0.5  # scoring is 75% unprompted
SCORED_TIMESTEP_SHARE = 0.8  # share of steps drawn at the noise levels img2img scoring uses
MAX_STEPS = 40
STOP_REQUESTED = False


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-type", required=True, choices=["image"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--dataset-spec", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--budget-seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", default="")
    args, _later_contract_arguments = parser.parse_known_args()
    return args


def on_sigterm(*_) -> None:
    global STOP_REQUESTED
    STOP_REQUESTED = True


def read_images(zip_path: str, captions_file: str) -> list[tuple[object, str]]:
    from PIL import Image

    with zipfile.ZipFile(zip_path) as archive:
        rows = [json.loads(line) for line in archive.read(captions_file).decode().splitlines() if line.strip()]
        return [(Image.open(io.BytesIO(archive.read(row["file"]))).convert("RGB"), row["caption"]) for row in rows]


def encode_data(pairs, vae, text_encoder, tokenizer, device):
    """Latents of every image and its mirror, the caption embeddings, and the empty prompt's."""
    import numpy as np
    import torch

    pixels = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) / 127.5 - 1 for image, _ in pairs]))
    pixels = pixels.permute(0, 3, 1, 2).to(device)
    pixels = torch.cat([pixels, pixels.flip(3)])
    captions = [caption for _, caption in pairs] * 2

    def embed(texts):
        ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        return text_encoder(ids.to(device))[0]

    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
        return latents, embed(captions), embed([""])[0]


def lr_multiplier(started: float, stop_at: float):
    def multiplier(step: int) -> float:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        progress = min(1.0, max((time.time() - started) / max(stop_at - started, 1e-6), step / MAX_STEPS))
        return warmup * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))

    return multiplier


def train(args, spec: dict, stop_at: float) -> int:
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import AutoTokenizer, CLIPTextModel

    if spec.get("model_type", "sd") != "sd":
        raise SystemExit(f"this script trains SD-layout pipelines, not {spec['model_type']!r}")
    device = "cuda" if args.devices and torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(args.model, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder").to(device).requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae").to(device).requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet").to(device).requires_grad_(False)
    scheduler = DDPMScheduler.from_pretrained(args.model, subfolder="scheduler")
    unet.add_adapter(LoraConfig(r=LORA_RANK, lora_alpha=LORA_RANK, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    latents, captions, empty = encode_data(read_images(args.dataset, spec["captions_file"]), vae, text_encoder, tokenizer, device)

    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(time.time(), stop_at))
    total_timesteps = scheduler.config.num_train_timesteps
    scored = max(1, int(spec.get("scoring", {}).get("strength", 1.0) * total_timesteps))
    rng, generator = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    unet.train()
    step, step_seconds = 0, 0.0
    while step < MAX_STEPS and not STOP_REQUESTED and time.time() + step_seconds < stop_at:
        began = time.time()
        index = torch.randint(len(latents), (BATCH_SIZE,), generator=generator)
        drop = torch.tensor([rng.random() < CAPTION_DROPOUT for _ in range(BATCH_SIZE)])
        states = torch.where(drop[:, None, None], empty.expand_as(captions[index]), captions[index])
        high = [scored if rng.random() < SCORED_TIMESTEP_SHARE else total_timesteps for _ in range(BATCH_SIZE)]
        timesteps = torch.tensor([rng.randrange(h) for h in high])
        noise = torch.randn(latents[index].shape, generator=generator).to(device)
        noisy = scheduler.add_noise(latents[index], noise, timesteps.to(device))
        loss = F.mse_loss(unet(noisy, timesteps.to(device), states).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        step_seconds = time.time() - began
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(args.output_dir, unet_lora_layers=layers, safe_serialization=True)
    return step


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep on a shared CPU
    signal.signal(signal.SIGTERM, on_sigterm)
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + args.budget_seconds))
    stop_at = deadline - (1.0 - STOP_FRACTION) * args.budget_seconds
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(args.seed)
    with open(args.dataset_spec) as handle:
        spec = json.load(handle)
    steps = train(args, spec, stop_at)
    print(f"image_fewsteps: {steps} steps, saved {time.time() - stop_at:+.1f}s from the stop time", flush=True)


if __name__ == "__main__":
    main()
