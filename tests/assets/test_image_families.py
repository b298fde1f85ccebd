"""The tiny SDXL- and Flux-shaped pipelines: built from code with tokenizers trained offline, saved as
real SDXL and Flux pipelines that diffusers' img2img classes load, and a few hundred kilobytes each."""

from __future__ import annotations

import pytest

CAPTIONS = ["a photo of zxq person, arms up, wearing a red shirt", "a house in qrt style", "a fish in qrt style"] * 20


def test_the_clip_tokenizer_brackets_each_caption_so_the_pooled_output_reads_it():
    from transformers import CLIPTokenizer

    from trainarena.assets.image.text_encoders import train_clip_tokenizer

    tokenizer = train_clip_tokenizer(CAPTIONS, vocab_size=300, max_length=16)
    assert isinstance(tokenizer, CLIPTokenizer) and tokenizer.model_max_length == 16
    ids = tokenizer("a house in qrt style", padding="max_length", max_length=16).input_ids
    eos = ids.index(tokenizer.eos_token_id)
    assert ids[0] == tokenizer.bos_token_id and 1 < eos < 16 and tokenizer.unk_token_id not in ids[1:eos]
    assert tokenizer.decode(ids[1:eos]).strip() == "a house in qrt style"


def test_the_t5_tokenizer_ends_with_eos_and_pads_with_id_zero():
    from transformers import T5Tokenizer

    from trainarena.assets.image.text_encoders import train_t5_tokenizer

    tokenizer = train_t5_tokenizer(CAPTIONS, vocab_size=200, max_length=16)
    assert isinstance(tokenizer, T5Tokenizer) and (tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1)
    ids = tokenizer("a fish in qrt style", padding="max_length", max_length=16).input_ids
    end = ids.index(1)
    assert ids[end + 1 :] == [0] * (15 - end) and tokenizer.unk_token_id not in ids[:end]
    assert tokenizer.decode(ids[:end]) == "a fish in qrt style"


@pytest.mark.slow
def test_tiny_sdxl_loads_as_an_sdxl_img2img_pipeline(image_assets):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    pipeline = StableDiffusionXLImg2ImgPipeline.from_pretrained(image_assets.pipelines["sdxl"])
    unet, first, second = pipeline.unet, pipeline.text_encoder, pipeline.text_encoder_2
    assert type(second).__name__ == "CLIPTextModelWithProjection" and unet.config.addition_embed_type == "text_time"
    assert unet.config.cross_attention_dim == first.config.hidden_size + second.config.hidden_size
    assert unet.add_embedding.linear_1.in_features == 6 * unet.config.addition_time_embed_dim + second.config.projection_dim
    assert pipeline.tokenizer.model_max_length == first.config.max_position_embeddings
    assert pipeline.vae_scale_factor == 2 and pipeline.scheduler.config.prediction_type == "epsilon"
    assert image_assets.manifest["family_parameters"]["sdxl"]["unet"] == sum(p.numel() for p in unet.parameters())


@pytest.mark.slow
def test_tiny_flux_loads_as_a_flux_img2img_pipeline_with_a_t5_encoder(image_assets):
    from diffusers import FluxImg2ImgPipeline

    pipeline = FluxImg2ImgPipeline.from_pretrained(image_assets.pipelines["flux"])
    transformer, vae = pipeline.transformer, pipeline.vae
    assert type(pipeline.text_encoder_2).__name__ == "T5EncoderModel" and type(pipeline.tokenizer_2).__name__ == "T5Tokenizer"
    assert transformer.config.in_channels == 4 * vae.config.latent_channels  # 2x2 packed latents
    assert transformer.config.joint_attention_dim == pipeline.text_encoder_2.config.d_model
    assert transformer.config.pooled_projection_dim == pipeline.text_encoder.config.hidden_size
    assert vae.config.shift_factor != 0.0 and not vae.config.use_quant_conv
    assert type(pipeline.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler" and pipeline.scheduler.config.use_dynamic_shifting


@pytest.mark.slow
def test_the_family_pipelines_are_tiny_and_built_from_code(image_assets):
    for model_type, folder in image_assets.pipelines.items():
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        assert size < 3_000_000, f"{model_type}: {size} bytes"
        assert not list(folder.rglob("*.bin")) and list(folder.rglob("*.safetensors"))
    assert set(image_assets.pipelines) == {"sd", "sdxl", "flux"} and image_assets.pipelines["sd"] == image_assets.tiny_sd
