"""The tiny VAE's weights, set by construction: an ``AutoencoderKL`` that encodes each 2x2 pixel patch as
its mean RGB and decodes by nearest upsampling (pixel MSE ~0.005 on the synthetic datasets, RGB in [0, 1]).

Why not train it: on a shared 2-core machine the build's VAE budget bought 30-50 steps, and the trained
VAE's reconstruction error (~0.065) was as large as the images' own variance (~0.08). img2img scoring can
never beat its VAE, so every LoRA scored the same to four decimals. This codec has the error of a 2x2
box filter from the first step, costs nothing to build, and keeps the SD layout (diffusers class,
config, safetensors), so scripts and the evaluator load it as any SD VAE.

How: every ``ResnetBlock2D`` gets a zero ``conv2`` (the block becomes its shortcut, as ReZero-style
inits do), so the encoder and decoder are linear convolutions up to their final GroupNorm + SiLU. That
GroupNorm would remove each image's brightness; it is made harmless by giving each signal channel
``s`` a group of four ``[s, -s, K, -K]`` (mean exactly 0, variance ~K^2/2 whatever ``s``), and the SiLU
by shifting its input by ``SILU_SHIFT`` into its linear range. Latent channels 0-2 are the RGB means;
channel 3 is zero (the UNet learns to leave it so).
"""

from __future__ import annotations

GROUP_SIZE = 4  # [s, -s, K, -K]
CONSTANT = 20.0  # K: the group's variance is (E[s^2] + K^2) / 2, within 0.1% of K^2 / 2 for |s| <= 1
SILU_SHIFT = 10.0  # SiLU(x + 10) = x + 10 within 1e-3 for x >= -1
RGB = 3


def codec_groups(channels: int) -> int:
    """GroupNorm groups the codec needs for ``channels`` channels (four channels a group)."""
    if channels % GROUP_SIZE or channels // GROUP_SIZE < RGB + 1:
        raise ValueError(f"the box codec needs a multiple of {GROUP_SIZE} channels, at least {GROUP_SIZE * (RGB + 1)}")
    return channels // GROUP_SIZE


def box_codec_vae(resolution: int, channels: tuple[int, ...], latent_channels: int, **config):
    """An ``AutoencoderKL`` of ``len(channels) - 1`` downsamplings set to the box codec (frozen, eval mode);
    ``config`` adds a family's own keys (Flux: no quant convs, a shift factor)."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        block_out_channels=channels, layers_per_block=1, norm_num_groups=codec_groups(channels[0]),
        down_block_types=("DownEncoderBlock2D",) * len(channels), up_block_types=("UpDecoderBlock2D",) * len(channels),
        sample_size=resolution, mid_block_add_attention=False, **config,
    )
    init_box_codec(vae)
    return vae.eval().requires_grad_(False)


def init_box_codec(vae) -> None:
    """Set ``vae``'s weights (one downsampling, all blocks ``codec_groups`` wide) to the 2x2 box codec."""
    import torch

    encoder, decoder = vae.encoder, vae.decoder
    with torch.no_grad():
        for module in vae.modules():
            if module.__class__.__name__ == "ResnetBlock2D":
                module.conv2.weight.zero_()
                module.conv2.bias.zero_()
        _signal_layout(encoder.conv_in)
        downsample = encoder.down_blocks[0].downsamplers[0].conv
        _identity(downsample, taps=((0, 0), (0, 1), (1, 0), (1, 1)))  # encoder pads right/bottom: taps 0-1 are the patch
        _add_constants(encoder.mid_block.resnets[0].conv2)
        _pick_signals(encoder.conv_norm_out, encoder.conv_out)
        encoder.conv_out.bias[vae.config.latent_channels :] = -10.0  # log-variance: a near-deterministic posterior
        for conv in (vae.quant_conv, vae.post_quant_conv):
            if conv is not None:
                _identity(conv, taps=((0, 0),))
        _signal_layout(decoder.conv_in)
        _add_constants(decoder.mid_block.resnets[0].conv2)
        for block in decoder.up_blocks:
            for upsampler in block.upsamplers or []:
                _identity(upsampler.conv, taps=((1, 1),))
        _pick_signals(decoder.conv_norm_out, decoder.conv_out)


def _identity(conv, taps) -> None:
    """Channel c -> channel c, the mean over ``taps`` (kernel positions)."""
    conv.weight.zero_()
    conv.bias.zero_()
    for channel in range(min(conv.weight.shape[:2])):
        for row, column in taps:
            conv.weight[channel, channel, row, column] = 1.0 / len(taps)


def _signal_layout(conv) -> None:
    """Input channel i (< RGB) -> channels 4i (s) and 4i+1 (-s), centre tap; the rest zero."""
    conv.weight.zero_()
    conv.bias.zero_()
    centre = conv.weight.shape[-1] // 2
    for signal in range(RGB):
        conv.weight[GROUP_SIZE * signal, signal, centre, centre] = 1.0
        conv.weight[GROUP_SIZE * signal + 1, signal, centre, centre] = -1.0


def _add_constants(conv) -> None:
    """Bias +K / -K on the constant slots: 2 and 3 of signal groups, alternating in the spare groups."""
    for channel in range(conv.out_channels):
        group, slot = divmod(channel, GROUP_SIZE)
        if group < RGB and slot < 2:
            continue
        conv.bias[channel] = CONSTANT if slot % 2 == 0 else -CONSTANT


def _pick_signals(norm, conv_out) -> None:
    """GroupNorm scales each group back to ``s`` and shifts it into SiLU's linear range; ``conv_out``
    takes the ``s`` channels and removes the shift."""
    norm.weight.fill_(((CONSTANT**2 + 1 / 3) / 2) ** 0.5)  # E[s^2] = 1/3 for s uniform in [-1, 1]
    norm.bias.fill_(SILU_SHIFT)
    conv_out.weight.zero_()
    conv_out.bias.zero_()
    centre = conv_out.weight.shape[-1] // 2
    for signal in range(RGB):
        conv_out.weight[signal, GROUP_SIZE * signal, centre, centre] = 1.0
        conv_out.bias[signal] = -SILU_SHIFT


def calibrate_latents(vae, pixels, shift: bool) -> None:
    """Set ``vae``'s ``scaling_factor`` so that the latents of ``pixels`` ((N, 3, H, W) in [-1, 1]) have
    unit variance, and, when ``shift`` (Flux's VAE has one), its ``shift_factor`` so that they have zero
    mean: the real VAEs' constants are chosen so."""
    import torch

    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
    mean = round(latents.mean().item(), 5) if shift else 0.0
    config = {"scaling_factor": round(1.0 / (latents - mean).std().item(), 5)}
    vae.register_to_config(**config | ({"shift_factor": mean} if shift else {}))
