"""The offline assets: what the build contains, that it is reproducible, and that building is safe."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest

from trainarena.assets import build, synthetic
from trainarena.assets import model as model_builder


def test_datasets_have_the_columns_of_their_field_mapping(assets):
    for name, path in assets.datasets.items():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert 300 <= len(rows) <= 2000, name
        assert set(assets.dataset_fields[name].values()) == set(rows[0]), name
        assert all(isinstance(v, str) for row in rows for v in row.values())
        assert len({json.dumps(row, sort_keys=True) for row in rows}) == len(rows), f"{name} has duplicates"
    # one dataset uses non-standard column names, to exercise the field mapping
    assert any(fields["field_instruction"] != "instruction" for fields in assets.dataset_fields.values())


def test_tokenizer_has_special_tokens_a_chat_template_and_round_trips(assets):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.tiny_llama)
    assert 2000 <= len(tokenizer) <= 4096
    assert {tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token} == {"<|bos|>", "<|eos|>", "<|pad|>"}
    ids = tokenizer("add 12 and 7")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    text = "héllo wörld 😀 def f(x): return x"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|user|>\nhi<|eos|>\n<|assistant|>\n"


def test_tiny_llama_is_small_safetensors_and_was_pretrained(assets):
    from transformers import AutoModelForCausalLM

    assert (assets.tiny_llama / "model.safetensors").is_file()
    assert not list(assets.tiny_llama.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama, use_safetensors=True)
    assert model.config.model_type == "llama"
    assert 1_000_000 <= sum(p.numel() for p in model.parameters()) <= 10_000_000
    pretraining = assets.manifest["pretraining"]
    assert pretraining["last_loss"] < pretraining["first_loss"] - 1.0  # it learned something


def test_a_second_ensure_reuses_the_build(assets):
    manifest = assets.root / build.MANIFEST
    before = manifest.stat().st_mtime_ns
    again = build.ensure_assets(assets.root.parent)
    assert again.root == assets.root and manifest.stat().st_mtime_ns == before


def test_the_stamp_changes_with_the_builder_version(monkeypatch):
    stamp = build.assets_stamp()
    monkeypatch.setattr(build, "ASSETS_VERSION", build.ASSETS_VERSION + 1)
    assert build.assets_stamp() != stamp


def test_concurrent_builders_build_once_and_failures_leave_nothing(tmp_path, monkeypatch):
    calls = []

    def slow_fake_build(root: Path, seed: int) -> None:
        calls.append(seed)
        time.sleep(0.3)
        (root / "datasets").mkdir()
        manifest = {"tiny_llama": "tiny_llama", "datasets": {}}
        (root / build.MANIFEST).write_text(json.dumps(manifest))

    monkeypatch.setattr(build, "_build", slow_fake_build)
    threads = [threading.Thread(target=build.ensure_assets, args=(tmp_path,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [0]

    def broken_build(root: Path, seed: int) -> None:
        (root / "half-written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "_build", broken_build)
    with pytest.raises(RuntimeError):
        build.ensure_assets(tmp_path, seed=1)
    assert [p.name for p in tmp_path.iterdir() if "seed1" in p.name or p.name.startswith(".building")] == []


def test_synthetic_rows_are_seeded_and_correct():
    arithmetic = next(d for d in synthetic.DATASETS if d.name == "arithmetic")
    first, again, other = (synthetic.generate(arithmetic, s) for s in (0, 0, 1))
    assert first == again and first != other
    for row in first:
        if not row["input"]:
            words = row["instruction"].split()
            a, b = int(words[1]), int(words[3])
            expected = {"add": a + b, "subtract": b - a, "multiply": a * b}[words[0]]
            assert row["output"] == str(expected), row
    units = next(d for d in synthetic.DATASETS if d.name == "units")
    row = synthetic.generate(units, 0)[0]
    value, unit = row["input"].split()
    factor = next(f for src, dst, f in synthetic._UNITS if src == unit and row["output"].endswith(" " + dst))
    assert row["output"] == f"{int(value) * factor} {row['output'].split()[1]}"


def test_model_build_and_pretraining_are_deterministic_from_the_seed(assets):
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.tiny_llama)
    shape = model_builder.TinyLlamaShape(hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    plan = model_builder.PretrainPlan(max_steps=3, batch_size=2, seq_len=16)
    stream = [random.Random(0).randrange(len(tokenizer)) for _ in range(500)]

    def trained(seed: int):
        model = model_builder.build_model(tokenizer, shape, seed)
        model_builder.pretrain(model, stream, plan, seed)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(trained(3), trained(3))
    assert not torch.equal(trained(3), trained(4))
