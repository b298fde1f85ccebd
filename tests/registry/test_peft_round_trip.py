"""A real PEFT LoRA adapter on the tiny model, registered and loaded back from the registry folder with
transformers + PEFT (the tokenizer the folder got from the base model included), then generating."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainarena.contract import TaskType
from trainarena.execution import validate_artifact
from trainarena.registry import ModelSource, SameAsBaseVerdict, register_model
from trainarena.registry.card import parse_front_matter
from trainarena.settings import Settings
from trainarena.store import open_store


def _registered(artifact: Path, base_model: Path, data_dir: Path) -> Path:
    """``artifact`` checked as a run's output is, then registered as a job's model; its folder."""
    settings = Settings(data_dir=data_dir)
    assert validate_artifact(artifact, TaskType.INSTRUCT, settings.artifacts).ok
    with open_store(settings) as store, store.transaction() as session:
        return Path(register_model(settings, session, artifact_dir=artifact, source=ModelSource.JOB, task_type="instruct",
                                   base_model=str(base_model), dataset_digest="e" * 64, score=None,
                                   owner_key_id=None, same_as_base=SameAsBaseVerdict(None, None)).path)  # fmt: skip


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft 0.21 on transformers 5
def test_a_registered_lora_adapter_loads_with_peft_and_generates(assets, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    trained = get_peft_model(AutoModelForCausalLM.from_pretrained(assets.tiny_llama),
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))  # fmt: skip
    artifact = tmp_path / "output"
    trained.save_pretrained(artifact)  # as a script leaves it: adapter only, no tokenizer
    folder = _registered(artifact, assets.tiny_llama, tmp_path / "data")
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in folder.iterdir()}
    assert parse_front_matter((folder / "README.md").read_text())["library_name"] == "peft"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(assets.tiny_llama), folder).eval()
    inputs = tokenizer("What is 2 and 3?", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs).logits, trained.eval()(**inputs).logits, atol=1e-5)
        output = loaded.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)  # fmt: skip
    assert output.shape[1] == inputs["input_ids"].shape[1] + 5
    assert isinstance(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:]), str)


def test_a_published_full_model_loads_as_the_evaluator_scored_it(assets, tmp_path: Path) -> None:
    """The audit's artifact: a fine-tune whose config.json asks for another rms_norm_eps and remote code.
    The evaluator scores the weights in the base model's config; the published folder loads to that same
    model with plain from_pretrained, and trust_remote_code finds no code to run."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainarena.tasks.text.scoring import load_scoring_model

    torch.manual_seed(0)
    trained = AutoModelForCausalLM.from_pretrained(assets.tiny_llama)
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    artifact = tmp_path / "output"
    trained.save_pretrained(artifact)
    config = json.loads((artifact / "config.json").read_text())
    config |= {"rms_norm_eps": 0.5, "auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}}
    (artifact / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "planted-code-ran"
    (artifact / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom transformers import LlamaForCausalLM as EvilForCausalLM\n")
    folder = _registered(artifact, assets.tiny_llama, tmp_path / "data")
    scored = load_scoring_model(artifact, str(assets.tiny_llama), "cpu")
    published = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert not marker.exists() and not (folder / "modeling_evil.py").exists()
    assert published.config.rms_norm_eps == scored.config.rms_norm_eps != 0.5
    inputs = AutoTokenizer.from_pretrained(folder)("What is 2 and 3?", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(published(**inputs).logits, scored(**inputs).logits)
