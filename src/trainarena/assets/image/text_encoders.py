"""Tiny text encoders of the real pipelines' kinds, with their tokenizers trained from code on the captions.

SDXL and Flux read text through CLIP (SDXL: two of them, the second with a projection whose pooled output
conditions the UNet; Flux: one, pooled) and Flux also through T5 (per-token states). The tokenizers are the
real classes (``CLIPTokenizer``: byte-level BPE with ``</w>`` word ends, ``<|startoftext|> ... <|endoftext|>``;
``T5Tokenizer``: Unigram over ``▁``-marked words, ``... </s>``, ``<pad>`` = 0), built from vocabularies
trained here, so the pipelines and the scripts load them as they would a hub checkpoint's, offline.
CLIP's pooled output reads the first ``<|endoftext|>``: the tokenizer adds one to every caption, so the
pooled vector depends on the caption (the SD builder's BPE adds none; SD never pools).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"
T5_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5's SentencePiece model


def train_clip_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int):
    """A ``CLIPTokenizer`` whose BPE vocabulary and merges are trained on ``texts``."""
    from tokenizers import pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    core = CLIPTokenizer()._tokenizer  # CLIP's normalizer and pre-tokenizer around an empty BPE
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[CLIP_BOS, CLIP_EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>", show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    model = json.loads(core.to_str())["model"]
    merges = [tuple(merge) for merge in model["merges"]]
    return CLIPTokenizer(vocab=model["vocab"], merges=merges, model_max_length=max_length)


def train_t5_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int):
    """A ``T5Tokenizer`` whose Unigram vocabulary is trained on ``texts`` (no sentinel ids: nothing decodes)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    core = Tokenizer(models.Unigram())
    core.pre_tokenizer = pre_tokenizers.Sequence(  # as T5Tokenizer splits, so the trained pieces are the ones it sees
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(T5_SPECIALS), unk_token="<unk>", show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    vocab = [tuple(piece) for piece in json.loads(core.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_length)


def clip_text_encoder(tokenizer, hidden: int, layers: int, heads: int, projection_dim: int, with_projection: bool):
    """A random-initialised ``CLIPTextModel`` (or ``CLIPTextModelWithProjection``) sized to ``tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=tokenizer.model_max_length, projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def t5_text_encoder(tokenizer, d_model: int, layers: int, heads: int):
    """A random-initialised ``T5EncoderModel`` sized to ``tokenizer``."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // heads, d_ff=d_model * 2, num_layers=layers,
        num_heads=heads, relative_attention_num_buckets=8, relative_attention_max_distance=tokenizer.model_max_length,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, is_encoder_decoder=False,
    )
    return T5EncoderModel(config)
